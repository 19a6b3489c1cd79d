//! The proxy's Kubernetes client: kube's, with `TCP_NODELAY`, TCP keep-alive and
//! `TCP_USER_TIMEOUT` on its connections, and the configuration of its watches.
//!
//! kube 5 connects with hyper's `HttpConnector` as it comes, Nagle's algorithm on
//! (kube-rs issue #2056). The stdio attach stream writes a frame per batch of messages:
//! with Nagle on, a frame written while the one before is not yet acknowledged waits
//! for the API server's delayed ACK, up to 40 ms. The API server, the kubelet and the
//! runtime (Go) all set `TCP_NODELAY`; kube's `Client::new` over our own connector is
//! the way kube documents for a client of one's own. Its layers are kube's default
//! client's, in kube's order (base URI, the retry of 429/503/504 when
//! `Config::default_retry`, auth, extra headers), less kube's debug-level HTTP spans.
//!
//! Its watches (the StatefulSet, the pods, the StatefulSet's Events) stay open for the
//! proxy's life, and each asks the API server to end it after 30 to 60 minutes
//! ([`watch_config`]) instead of kube's 290 s: at a thousand proxies with three or four
//! watches each, that is about 80 watches re-opened a minute across the cluster instead
//! of about 700. A connection that dies unseen (the API server's host lost, a load
//! balancer dropping its state) is found by TCP keep-alive ([`KEEPALIVE_IDLE`]) when it
//! is idle and by `TCP_USER_TIMEOUT` ([`UNACKNOWLEDGED`]) when it has bytes in flight:
//! a read timeout, as the operator has, would also cut a quiet stdio attach stream, and
//! Events watches get no bookmarks to keep one from firing.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::runtime::watcher;
use kube::{Client, Config};
use tower::retry::RetryLayer;

/// How long one watch is asked to stay open: the API server's own choice for a client
/// that names none (`--min-request-timeout`, 1800 s by default, times 1 to 2), drawn
/// per watch so that the watches of proxies started together re-open apart.
const WATCH_TIMEOUT: std::ops::RangeInclusive<u32> = 1800..=3600;

/// Idle time before the first keep-alive probe on a connection to the API server, the
/// time between probes, and the probes left unanswered before the kernel fails the
/// connection (Linux's own defaults take over two hours). With [`UNACKNOWLEDGED`] set,
/// the kernel fails an idle connection at the first probe 20 s after its last byte
/// arrived: about 20 s. That bounds an MCP call whose request the API server had
/// acknowledged when the path died: the bytes are not in flight, only the answer is
/// missing, and only keep-alive notices (with 30 s and 10 s the chaos suite saw such
/// calls wait 45 to 56 s). 15 s is Go's default keep-alive; a probe is an empty
/// segment and its acknowledgement, on a connection quiet that long.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;

/// How long bytes sent to the API server may stay unacknowledged before the kernel
/// fails the connection (`TCP_USER_TIMEOUT`, Linux). Keep-alive probes only an idle
/// connection: one with a message in flight (an MCP request written to a stdio attach
/// stream whose path died) is retransmitted for about 15 minutes by Linux's defaults,
/// every MCP call meanwhile unanswered. Seen on the harness by dropping the API
/// server's packets to one proxy: its watches were opened again in 48 s, its attach
/// stream not at all. 20 s: a live peer acknowledges within a second even when its
/// reader is slow (the window closes, the probes of it are acknowledged), and an MCP
/// client waiting on a call gets its error well before its own timeout (the chaos
/// suite's is 30 s).
#[cfg(target_os = "linux")]
const UNACKNOWLEDGED: Duration = Duration::from_secs(20);

/// A watch's configuration, with its own timeout drawn from [`WATCH_TIMEOUT`].
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(rand::random_range(WATCH_TIMEOUT))
}

/// A client for the cluster `Config::infer` finds (in the pod: its ServiceAccount).
pub async fn connect() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    if config.proxy_url.is_some() {
        // kube's builder knows the proxies (HTTP CONNECT, SOCKS5); a proxy between this
        // pod and its API server is rare enough to keep kube's connector for it (no
        // keep-alive there: a connection that died unseen is found only when its
        // watch's own timeout ends it).
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    // Linux only (the proxy's pods); a build elsewhere relies on keep-alive alone.
    #[cfg(target_os = "linux")]
    http.set_tcp_user_timeout(Some(UNACKNOWLEDGED));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_watch_asks_for_its_own_half_hour_to_hour() {
        let drawn: std::collections::BTreeSet<u32> =
            (0..64).filter_map(|_| watch_config().timeout).collect();
        assert!(drawn.iter().all(|t| WATCH_TIMEOUT.contains(t)), "{drawn:?}");
        assert!(
            drawn.len() > 1,
            "the watches would re-open together: {drawn:?}"
        );
    }
}
