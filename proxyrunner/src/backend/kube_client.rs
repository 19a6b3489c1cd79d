//! The proxy's Kubernetes client: kube's, with `TCP_NODELAY` on its
//! connections.
//!
//! kube 5 connects with hyper's `HttpConnector` as it comes, Nagle's algorithm on
//! (kube-rs issue #2056). The stdio attach stream writes a frame per batch of messages:
//! with Nagle on, a frame written while the one before is not yet acknowledged waits
//! for the API server's delayed ACK, up to 40 ms. The API server, the kubelet and the
//! runtime (Go) all set `TCP_NODELAY`; kube's `Client::new` over our own connector is
//! the way kube documents for a client of one's own. Its layers are kube's default
//! client's, in kube's order (base URI, the retry of 429/503/504 when
//! `Config::default_retry`, auth, extra headers), less kube's debug-level HTTP spans.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::{Client, Config};
use tower::retry::RetryLayer;

/// A client for the cluster `Config::infer` finds (in the pod: its ServiceAccount).
pub async fn connect() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    if config.proxy_url.is_some() {
        // kube's builder knows the proxies (HTTP CONNECT, SOCKS5); a proxy between this
        // pod and its API server is rare enough to keep kube's connector for it.
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, kube::client::Body>(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(client);
    Ok(Client::new(service, config.default_namespace))
}
