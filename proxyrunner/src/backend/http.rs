//! An MCP server reached over HTTP: requests forwarded with the body bytes as received,
//! responses streamed back frame by frame (SSE events are never buffered), connections
//! pooled. The client's `Host` is preserved by default (the server may route or check on
//! it); `X-Forwarded-For/Proto/Host` tell the server who asked.
//!
//! `https://` upstreams are reached over TLS (rustls, ring) verified against the
//! platform's roots, so every URL validation admits is one the proxy can reach.
//!
//! A legacy SSE stream (`GET /sse`) is passed through [`legacy_sse`], which rewrites
//! what the proxy must rewrite on it.
//!
//! In a cluster an HTTP server's pods are the upstream: a [`PodRouter`] chooses each
//! request's pod (its session's), which overrides the upstream's own address for that
//! request.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

use super::legacy_sse;
use super::pods::{PodRouter, Unroutable};
use crate::reply::{Body, BoxError};
use crate::rewrite::ListRewrite;
use crate::transport::sse::session_param;

/// Which `Host` header the upstream receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HostHeader {
    /// The client's, unchanged.
    Preserve,
    /// The upstream's own authority.
    Upstream,
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream URL cannot be combined with the request path.
    #[error("invalid upstream URI: {0}")]
    Uri(#[from] http::Error),
    /// Connecting or exchanging failed.
    #[error("upstream request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    /// Connecting failed (dedicated connection).
    #[error("upstream connection failed: {0}")]
    Connect(#[from] std::io::Error),
    /// Exchanging failed (dedicated connection).
    #[error("upstream request failed: {0}")]
    Exchange(#[from] hyper::Error),
}

/// The upstream connection dedicated to one client connection.
///
/// HTTP/1.1 answers a connection's requests one after the other, so each client
/// connection can own one upstream connection: no pool lookup, no lock contention
/// between clients, and the upstream sees the same connection pattern as the client's.
/// Requests outside a client connection's scope (tests calling `forward` directly) use
/// the shared pool, and so do requests for another address than the dedicated
/// connection's (a client connection carrying sessions of several pods).
pub type Dedicated = std::sync::Arc<tokio::sync::Mutex<Option<DedicatedConnection>>>;

/// An open dedicated connection and where it goes.
pub struct DedicatedConnection {
    /// `host:port` it is connected to.
    address: String,
    sender: hyper::client::conn::http1::SendRequest<Body>,
}

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

tokio::task_local! {
    /// The current client connection's upstream connection (see [`Dedicated`]).
    pub static DEDICATED: Dedicated;
}

/// How to speak TLS to an `https://` upstream.
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

/// The upstream server.
#[derive(Clone)]
pub struct Upstream {
    /// Boxed: the pool handle is large and the proxy's backend enum holds an `Upstream`.
    client: Box<Client<HttpsConnector<HttpConnector>, Body>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// `host:port` to connect to (the authority may leave the port implicit).
    address: String,
    /// For `https://` upstreams.
    tls: Option<Tls>,
    /// Path of the server's MCP endpoint (`/mcp`, `/sse`), used for the proxy's own
    /// `/mcp` or `/sse`.
    endpoint_path: String,
    /// The path the client uses for that endpoint.
    client_path: &'static str,
    host_header: HostHeader,
    trust_proxy_headers: bool,
    /// Prefix of the proxy's advertised paths (the `endpoint` event's).
    endpoint_prefix: String,
    /// Legacy SSE sessions open through the proxy.
    sse_sessions: Arc<legacy_sse::Sessions>,
    /// In a cluster: the server's pods, which each request goes to instead of `address`.
    pods: Option<Arc<PodRouter>>,
    /// Headers added to every request (a remote server's `headers`), replacing any the
    /// client sent under the same name.
    added: Arc<Vec<(HeaderName, HeaderValue)>>,
}

impl Upstream {
    /// An upstream at `url` (its path is the MCP endpoint) for a proxy serving
    /// `client_path` (`/mcp` or `/sse`).
    pub fn new(
        url: &url::Url,
        client_path: &'static str,
        host_header: HostHeader,
        trust_proxy_headers: bool,
    ) -> Result<Self, String> {
        let (scheme, https) = match url.scheme() {
            "http" => (http::uri::Scheme::HTTP, false),
            "https" => (http::uri::Scheme::HTTPS, true),
            other => return Err(format!("upstream {url}: unsupported scheme {other}")),
        };
        let authority = url[url::Position::BeforeHost..url::Position::AfterPort]
            .parse()
            .map_err(|e| format!("upstream {url}: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("upstream {url}: no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("upstream {url}: no port"))?;
        let address = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        // Only an https upstream needs the platform's roots (read from disk).
        let roots = if https {
            platform_roots()
        } else {
            rustls::RootCertStore::empty()
        };
        let config = tls_config(roots).map_err(|e| format!("upstream {url}: TLS: {e}"))?;
        let tls = if https {
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let server_name = ServerName::try_from(name.to_owned())
                .map_err(|e| format!("upstream {url}: {e}"))?;
            // hyper-rustls sets the pool's ALPN itself; the dedicated connections say
            // HTTP/1.1 here.
            let mut dedicated = config.clone();
            dedicated.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Tls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(dedicated)),
                server_name,
            })
        } else {
            None
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Box::new(
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .build(connector),
        );
        let endpoint_path = match url.path() {
            "" | "/" => client_path.to_owned(),
            path => path.to_owned(),
        };
        Ok(Self {
            client,
            scheme,
            authority,
            address,
            tls,
            endpoint_path,
            client_path,
            host_header,
            trust_proxy_headers,
            endpoint_prefix: String::new(),
            sse_sessions: Arc::default(),
            pods: None,
            added: Arc::default(),
        })
    }

    /// Adds `headers` to every request sent to this upstream (and to the proxy's own
    /// handshake with it), replacing any a client sent under the same names.
    pub fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.added = Arc::new(headers);
        self
    }

    /// The headers added to every request (for the proxy's own handshakes).
    pub fn headers(&self) -> Arc<Vec<(HeaderName, HeaderValue)>> {
        self.added.clone()
    }

    /// Where the proxy's own handshake reaches this upstream, the `Host` it sends and
    /// the MCP endpoint's path.
    pub fn probe_target(&self) -> (super::probe::Target, String, String) {
        let target = super::probe::Target {
            address: self.address.clone(),
            tls: self
                .tls
                .as_ref()
                .map(|tls| (tls.connector.clone(), tls.server_name.clone())),
            headers: self.added.clone(),
        };
        (
            target,
            self.authority.to_string(),
            self.endpoint_path.clone(),
        )
    }

    /// Sends each request to the pod `pods` routes it to (its session's).
    pub fn with_pods(mut self, pods: Arc<PodRouter>) -> Self {
        self.pods = Some(pods);
        self
    }

    /// The pod router, when the upstream is a StatefulSet's pods (readiness reads its
    /// routable pods).
    pub fn pods(&self) -> Option<&Arc<PodRouter>> {
        self.pods.as_ref()
    }

    /// Advertises the message endpoint of a legacy SSE server under `prefix`.
    pub fn with_endpoint_prefix(mut self, prefix: &str) -> Self {
        prefix
            .trim_end_matches('/')
            .clone_into(&mut self.endpoint_prefix);
        self
    }

    /// Notes the list requests of a legacy SSE POST (`query` names the session): their
    /// results arrive on the session's stream and are rewritten there.
    pub fn expect_lists(&self, query: Option<&str>, rewrite: &ListRewrite) {
        if self.client_path == "/sse" {
            self.sse_sessions.expect_lists(query, rewrite);
        }
    }

    /// Sends the proxy's own answers (refusals) to a legacy SSE POST on the stream of
    /// the session `query` names, where the client looks for them; false when this is
    /// not a legacy SSE upstream or the session has no stream through this proxy.
    pub fn inject(&self, query: Option<&str>, messages: &[serde_json::Value]) -> bool {
        self.client_path == "/sse" && self.sse_sessions.inject(query, messages)
    }

    /// Forwards one request; `body` is what the middleware let through.
    pub async fn forward(
        &self,
        parts: http::request::Parts,
        body: Body,
        peer: SocketAddr,
    ) -> Result<Response<Body>, UpstreamError> {
        let path = parts.uri.path();
        let sse_stream =
            parts.method == Method::GET && path == "/sse" && self.client_path == "/sse";
        let path = if path == self.client_path {
            self.endpoint_path.as_str()
        } else {
            path
        };
        let path_and_query = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let legacy = self.client_path == "/sse";
        let route = match &self.pods {
            Some(pods) => match pods.route(legacy, &parts) {
                Ok(route) => Some(route),
                // Another replica's session, when sessions are shared.
                Err(Unroutable::SessionGone(id)) if !legacy => match pods.adopt(&parts, id).await {
                    Ok(route) => Some(route),
                    Err(unroutable) => return Ok(unroutable.response()),
                },
                Err(unroutable) => return Ok(unroutable.response()),
            },
            None => {
                // A legacy SSE session's responses arrive on its stream, and the proxy
                // filters them there: a POST for a stream open through another proxy
                // replica (or closed) would have its list results pass unfiltered.
                if self.client_path == "/sse"
                    && parts.method == Method::POST
                    && let Some(id) = session_param(parts.uri.query())
                    && !self.sse_sessions.is_open(&id)
                {
                    return Ok(Unroutable::SessionGone(id).response());
                }
                None
            }
        };
        let (authority, address) = match &route {
            Some(route) => {
                let address = route.address().to_string();
                let authority = address.parse().map_err(http::Error::from)?;
                (authority, Cow::Owned(address))
            }
            None => (self.authority.clone(), Cow::Borrowed(self.address.as_str())),
        };
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(authority.clone())
            .path_and_query(path_and_query)
            .build()?;
        let mut request = Request::builder()
            .method(parts.method)
            .uri(uri)
            .body(body)?;
        *request.headers_mut() = self.upstream_headers(parts.headers, peer, &authority);
        let response = match DEDICATED.try_with(Clone::clone) {
            Ok(dedicated) => self.send_dedicated(&dedicated, request, &address).await?,
            Err(_) => self.send_pooled(request).await?,
        };
        let (mut parts, mut body) = response.into_parts();
        let change = route
            .as_ref()
            .and_then(|route| route.shared_change(parts.status, &parts.headers));
        let pick = route.and_then(|route| route.learn(parts.status, &parts.headers));
        if let (Some(change), Some(pods)) = (change, &self.pods) {
            pods.share(change).await;
        }
        strip_hop_by_hop(&mut parts.headers);
        let event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if sse_stream && event_stream {
            parts.headers.remove(header::CONTENT_LENGTH);
            body = legacy_sse::stream(
                body,
                self.endpoint_prefix.clone(),
                self.sse_sessions.clone(),
                pick,
            );
        }
        Ok(Response::from_parts(parts, body))
    }

    /// Sends on the shared pool's connections (keyed by authority).
    async fn send_pooled(&self, request: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        Ok(self
            .client
            .request(request)
            .await?
            .map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
    }

    /// Sends on the client connection's own upstream connection to `address`, opening
    /// it when there is none or the last one closed; while it is open to another
    /// address, the request takes a pooled connection instead.
    async fn send_dedicated(
        &self,
        dedicated: &Dedicated,
        mut request: Request<Body>,
        address: &str,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut slot = dedicated.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| c.address != address && !c.sender.is_closed())
        {
            drop(slot);
            return self.send_pooled(request).await;
        }
        // hyper's connection API sends the URI as given: origin form for HTTP/1.1.
        if let Some(path_and_query) = request.uri().path_and_query().cloned() {
            *request.uri_mut() = Uri::from(path_and_query);
        }
        let mut reusable = slot.take().filter(|c| c.address == address);
        if let Some(connection) = reusable.as_mut()
            && connection.sender.ready().await.is_err()
        {
            reusable = None;
        }
        let connection = match reusable {
            Some(connection) => slot.insert(connection),
            None => {
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("connecting to {address} timed out"),
                            )
                        })??;
                stream.set_nodelay(true)?;
                let sender = match &self.tls {
                    None => handshake(stream).await?,
                    Some(tls) => {
                        let stream = tls
                            .connector
                            .connect(tls.server_name.clone(), stream)
                            .await?;
                        handshake(stream).await?
                    }
                };
                slot.insert(DedicatedConnection {
                    address: address.to_owned(),
                    sender,
                })
            }
        };
        let response = connection.sender.send_request(request).await?;
        Ok(response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
    }

    /// The client's request headers as the upstream gets them.
    fn upstream_headers(
        &self,
        mut headers: HeaderMap,
        peer: SocketAddr,
        authority: &http::uri::Authority,
    ) -> HeaderMap {
        strip_hop_by_hop(&mut headers);
        // The body may not be the one the client sent (a renamed tool call): hyper
        // frames it from its own length.
        headers.remove(header::CONTENT_LENGTH);
        self.add_forwarded(&mut headers, peer);
        if (self.host_header == HostHeader::Upstream || !headers.contains_key(header::HOST))
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, value);
        }
        // Responses must arrive as plain bytes: the proxy reads SSE events (the endpoint
        // event) and list results (the tool filter and authorization rewrite them); a
        // compressed list would pass unfiltered.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        for (name, value) in self.added.iter() {
            headers.insert(name.clone(), value.clone());
        }
        headers
    }

    fn add_forwarded(&self, headers: &mut HeaderMap, peer: SocketAddr) {
        let ip = peer.ip().to_string();
        let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(existing) if self.trust_proxy_headers => format!("{existing}, {ip}"),
            _ => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        if !(self.trust_proxy_headers && headers.contains_key("x-forwarded-host"))
            && let Some(host) = headers.get(header::HOST).cloned()
        {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        if !(self.trust_proxy_headers && headers.contains_key("x-forwarded-proto")) {
            headers.insert(
                HeaderName::from_static("x-forwarded-proto"),
                HeaderValue::from_static("http"),
            );
        }
    }
}

/// Opens an HTTP/1.1 connection on `io`, driven by its own task.
async fn handshake<IO>(
    io: IO,
) -> Result<hyper::client::conn::http1::SendRequest<Body>, hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// The platform's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set). Those
/// that fail to load are logged; an upstream whose certificate no root vouches for is
/// then answered 502, like any upstream that cannot be reached.
fn platform_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(error = %error, "loading the platform's CA certificates");
    }
    let (_added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "platform CA certificates rustls cannot use");
    }
    roots
}

/// TLS toward upstreams: ring (the workspace's provider), trusting `roots`.
fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Removes the headers that describe one hop (RFC 9110 §7.6.1), including those the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

/// Reads a whole upstream body (for responses the middleware rewrites).
pub async fn collect(body: Body) -> Result<Bytes, BoxError> {
    Ok(body.collect().await?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("mcp-session-id", HeaderValue::from_static("s"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("mcp-session-id"));
    }

    #[test]
    fn the_upstream_is_asked_for_uncompressed_responses_and_gets_no_stale_length() {
        let url = url::Url::parse("http://127.0.0.1:9/mcp").expect("a URL");
        let upstream =
            Upstream::new(&url, "/mcp", HostHeader::Preserve, false).expect("an upstream");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("proxy.example"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("64"));
        let peer = SocketAddr::from(([10, 0, 0, 1], 5000));
        let sent = upstream.upstream_headers(headers, peer, &upstream.authority);
        assert_eq!(sent[header::ACCEPT_ENCODING], "identity");
        assert_eq!(sent[header::HOST], "proxy.example");
        assert_eq!(sent["x-forwarded-for"], "10.0.0.1");
        assert!(!sent.contains_key(header::CONTENT_LENGTH));
    }
}
