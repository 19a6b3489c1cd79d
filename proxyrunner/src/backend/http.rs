//! An MCP server reached over HTTP: requests forwarded with the body bytes as received,
//! responses streamed back frame by frame (SSE events are never buffered), connections
//! pooled. The client's `Host` is preserved by default (the server may route or check on
//! it); `X-Forwarded-For/Proto/Host` tell the server who asked.
//!
//! One thing is rewritten: the legacy SSE stream's `endpoint` event, which names where
//! the client POSTs. The server writes its own path (or URL); the client must be sent
//! to the proxy's, under the endpoint prefix an ingress serves the proxy at.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::reply::{Body, BoxError};
use crate::sse;

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
}

/// The upstream server.
#[derive(Clone)]
pub struct Upstream {
    /// Boxed: the pool handle is large and the proxy's backend enum holds an `Upstream`.
    client: Box<Client<HttpConnector, Body>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Path of the server's MCP endpoint (`/mcp`, `/sse`), used for the proxy's own
    /// `/mcp` or `/sse`.
    endpoint_path: String,
    /// The path the client uses for that endpoint.
    client_path: &'static str,
    host_header: HostHeader,
    trust_proxy_headers: bool,
    /// Prefix of the proxy's advertised paths (the `endpoint` event's).
    endpoint_prefix: String,
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
        if url.scheme() != "http" {
            return Err(format!(
                "upstream {url}: only http:// upstreams are supported by this proxy build"
            ));
        }
        let authority = url[url::Position::BeforeHost..url::Position::AfterPort]
            .parse()
            .map_err(|e| format!("upstream {url}: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
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
            scheme: http::uri::Scheme::HTTP,
            authority,
            endpoint_path,
            client_path,
            host_header,
            trust_proxy_headers,
            endpoint_prefix: String::new(),
        })
    }

    /// Advertises the message endpoint of a legacy SSE server under `prefix`.
    pub fn with_endpoint_prefix(mut self, prefix: &str) -> Self {
        prefix
            .trim_end_matches('/')
            .clone_into(&mut self.endpoint_prefix);
        self
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
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()?;
        let mut request = Request::builder()
            .method(parts.method)
            .uri(uri)
            .body(body)?;
        *request.headers_mut() = self.upstream_headers(parts.headers, peer);
        let response = self.client.request(request).await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let mut body = body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
        let event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if sse_stream && event_stream {
            parts.headers.remove(header::CONTENT_LENGTH);
            body = rewrite_endpoint_event(body, self.endpoint_prefix.clone());
        }
        Ok(Response::from_parts(parts, body))
    }

    /// The client's request headers as the upstream gets them.
    fn upstream_headers(&self, mut headers: HeaderMap, peer: SocketAddr) -> HeaderMap {
        strip_hop_by_hop(&mut headers);
        self.add_forwarded(&mut headers, peer);
        if (self.host_header == HostHeader::Upstream || !headers.contains_key(header::HOST))
            && let Ok(value) = HeaderValue::from_str(self.authority.as_str())
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

/// Passes an SSE stream through, rewriting its first `endpoint` event with
/// [`proxy_endpoint`]; every other byte is forwarded as it arrived, as soon as the
/// event it belongs to is complete (and untouched once the endpoint was seen).
fn rewrite_endpoint_event(body: Body, prefix: String) -> Body {
    struct State {
        chunks: http_body_util::BodyDataStream<Body>,
        /// Until the endpoint event went by.
        splitter: Option<sse::Splitter>,
        prefix: String,
    }
    let state = State {
        chunks: body.into_data_stream(),
        splitter: Some(sse::Splitter::default()),
        prefix,
    };
    let frames = futures::stream::unfold(state, |mut state| async move {
        loop {
            let Some(mut splitter) = state.splitter.take() else {
                let chunk = state.chunks.next().await?;
                return Some((chunk.map(hyper::body::Frame::data), state));
            };
            let chunk = match state.chunks.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Some((Err(e), state)),
                None => {
                    let rest = splitter.finish()?;
                    return Some((Ok(hyper::body::Frame::data(rest)), state));
                }
            };
            let mut out = BytesMut::new();
            let mut seen = false;
            for event in splitter.push(&chunk) {
                let endpoint = !seen && sse::fields(&event).event.as_deref() == Some("endpoint");
                match endpoint
                    .then(|| proxy_endpoint(&event, &state.prefix))
                    .flatten()
                {
                    Some(rewritten) => out.extend_from_slice(&rewritten),
                    None => out.extend_from_slice(&event),
                }
                seen |= endpoint;
            }
            if seen {
                // What followed the endpoint event in this chunk passes as it is.
                if let Some(rest) = splitter.finish() {
                    out.extend_from_slice(&rest);
                }
            } else {
                state.splitter = Some(splitter);
            }
            if !out.is_empty() {
                return Some((Ok(hyper::body::Frame::data(out.freeze())), state));
            }
        }
    });
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

/// The `endpoint` event a client of the proxy gets, given the server's: a server path
/// (`/messages?sessionId=…`) or URL (`http://host:port/messages?…`, which would send
/// the client around the proxy) becomes that path under `prefix`. `None` leaves the
/// event as it is (a path relative to the SSE URL needs no rewrite).
fn proxy_endpoint(event: &[u8], prefix: &str) -> Option<Bytes> {
    let fields = sse::fields(event);
    let data = fields.data.trim();
    let path = if data.starts_with("http://") || data.starts_with("https://") {
        let url = url::Url::parse(data).ok()?;
        url[url::Position::BeforePath..].to_owned()
    } else if data.starts_with('/') && !prefix.is_empty() {
        data.to_owned()
    } else {
        return None;
    };
    let prefix = prefix.trim_end_matches('/');
    Some(sse::encode(
        Some("endpoint"),
        fields.id.as_deref(),
        &format!("{prefix}{path}"),
    ))
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
    fn the_upstream_is_asked_for_uncompressed_responses() {
        let url = url::Url::parse("http://127.0.0.1:9/mcp").expect("a URL");
        let upstream =
            Upstream::new(&url, "/mcp", HostHeader::Preserve, false).expect("an upstream");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("proxy.example"));
        let peer = SocketAddr::from(([10, 0, 0, 1], 5000));
        let sent = upstream.upstream_headers(headers, peer);
        assert_eq!(sent[header::ACCEPT_ENCODING], "identity");
        assert_eq!(sent[header::HOST], "proxy.example");
        assert_eq!(sent["x-forwarded-for"], "10.0.0.1");
    }

    /// The stream of `chunks` through [`rewrite_endpoint_event`], as one string.
    async fn through(chunks: &[&'static str], prefix: &str) -> String {
        let frames: Vec<_> = chunks
            .iter()
            .map(|c| Ok::<_, BoxError>(hyper::body::Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        let frames = futures::stream::iter(frames);
        let body = http_body_util::StreamBody::new(frames).boxed_unsync();
        let out = collect(rewrite_endpoint_event(body, prefix.to_owned()))
            .await
            .expect("the stream has no errors");
        String::from_utf8(out.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn the_endpoint_event_gets_the_prefix_even_when_split_across_chunks() {
        let out = through(
            &[
                ": hello\n\nevent: endpo",
                "int\ndata: /message?sessionId=abc\n\nevent: message\ndata: {}\n\n",
                "event: endpoint\ndata: /not-again\n\n",
            ],
            "/everything/",
        )
        .await;
        assert_eq!(
            out,
            ": hello\n\nevent: endpoint\ndata: /everything/message?sessionId=abc\n\n\
             event: message\ndata: {}\n\nevent: endpoint\ndata: /not-again\n\n"
        );
    }

    #[tokio::test]
    async fn an_absolute_endpoint_url_becomes_a_path_through_the_proxy() {
        let out = through(
            &["event: endpoint\r\ndata: http://10.0.0.7:8080/messages/?session_id=1\r\n\r\n"],
            "",
        )
        .await;
        assert_eq!(out, "event: endpoint\ndata: /messages/?session_id=1\n\n");
    }

    #[tokio::test]
    async fn without_a_prefix_a_server_path_and_a_relative_endpoint_pass_unchanged() {
        let events = ["event: endpoint\r\ndata: /message?sessionId=1\r\n\r\n"];
        assert_eq!(through(&events, "").await, events[0]);
        let relative = ["event: endpoint\ndata: messages?sessionId=1\n\n"];
        assert_eq!(through(&relative, "/p").await, relative[0]);
    }
}
