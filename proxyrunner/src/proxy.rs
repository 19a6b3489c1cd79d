//! The request handler: routes, the proxy's own framing (recovery, Host/Origin, body
//! limit, MCP parsing) and the middleware chain (`middleware::chain`, in the RunConfig's
//! order) in front of the backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::backend::http::Upstream;
use crate::mcp;
use crate::middleware::authn::Principal;
use crate::middleware::body_limit;
use crate::middleware::chain::{Chain, Exchange, Refusal};
use crate::middleware::origin::OriginGuard;
use crate::middleware::telemetry::Metrics;
use crate::middleware::tools;
use crate::reply::{self, Body, code};
use crate::rewrite::ListRewrite;
use crate::transport::sse::{self as sse_transport, Sse};
use crate::transport::streamable::Streamable;

/// The liveness probe's path: 200 while the proxy serves HTTP (`/health` is readiness).
pub const LIVENESS_PATH: &str = "/livez";

/// Where requests go after the middleware.
pub enum Backend {
    /// Forwarded to an HTTP server.
    Http(Upstream),
    /// Streamable HTTP sessions over the stdio bridge.
    Streamable(Streamable),
    /// Legacy SSE sessions over the stdio bridge.
    Sse(Sse),
}

/// Everything a request needs.
pub struct Proxy {
    /// Host/Origin allow-list.
    pub origin: OriginGuard,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// The middleware chain, in the RunConfig's order.
    pub chain: Arc<Chain>,
    /// Metrics, when enabled: the transports count open streams with them (the chain's
    /// telemetry middleware counts messages).
    pub metrics: Option<Arc<Metrics>>,
    /// OTLP metrics export, when configured.
    pub metrics_export: Option<Arc<crate::middleware::metrics_export::Exporter>>,
    /// The backend.
    pub backend: Backend,
    /// Set when the process is asked to stop ([`Proxy::start_draining`]).
    pub draining: AtomicBool,
}

impl Proxy {
    /// Handles one request; a panic inside is answered 500 (recovery).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let mut response = match std::panic::AssertUnwindSafe(self.clone().route(request, peer))
            .catch_unwind()
            .await
        {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%method, path = uri.path(), panic = %what, "request handler panicked; answered 500");
                reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
        if self.is_draining() {
            // The client opens its next connection elsewhere: through the Service, to
            // a replica that is not stopping.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// From now on readiness fails (the pod leaves its Service's endpoints) and every
    /// response closes its connection; requests keep being served.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    async fn route(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = request.uri().path();
        if path == "/health" {
            return self.health();
        }
        if path == LIVENESS_PATH {
            // Alive means serving HTTP, whatever the MCP server behind does: a proxy
            // restarted because its server is restarting would only drop sessions.
            return reply::json(StatusCode::OK, &serde_json::json!({ "status": "alive" }));
        }
        if let Some(response) = self.chain.serve(path, request.headers()) {
            return response;
        }
        if let Err(why) = self.origin.check(request.headers()) {
            return reply::error(StatusCode::FORBIDDEN, &why);
        }
        let (mut parts, body) = request.into_parts();
        let principal = match self.chain.admit(&mut parts).await {
            Ok(principal) => principal,
            Err(response) => return response,
        };
        if parts.method == Method::POST {
            let bytes = match body_limit::read(&parts.headers, body, self.max_body_bytes).await {
                Ok(bytes) => bytes,
                Err(e @ body_limit::BodyError::TooLarge(_)) => {
                    return reply::error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
                }
                Err(e) => return reply::error(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            return self.post(parts, bytes, principal, peer).await;
        }
        self.other(parts, body, peer).await
    }

    /// Readiness: 200 while the MCP server behind is running (and, in a cluster, has
    /// answered the proxy's `initialize`; an HTTP upstream counts as running), 503
    /// otherwise; [`LIVENESS_PATH`] is the probe that ignores the backend.
    fn health(&self) -> Response<Body> {
        if self.is_draining() {
            return reply::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "draining" }),
            );
        }
        let running = match &self.backend {
            // In a cluster: a pod is routable and answered the proxy's initialize.
            Backend::Http(upstream) => upstream.pods().is_none_or(|pods| pods.is_ready()),
            Backend::Streamable(s) => s.bridge().is_ready(),
            Backend::Sse(s) => s.bridge().is_ready(),
        };
        let (status, text) = if running {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "MCP server not ready")
        };
        reply::json(status, &serde_json::json!({ "status": text }))
    }

    /// GET, DELETE and anything else that carries no MCP message.
    async fn other(
        &self,
        parts: http::request::Parts,
        body: Incoming,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = parts.uri.path();
        match &self.backend {
            Backend::Http(upstream) => {
                let body = body
                    .map_err(|e| Box::new(e) as reply::BoxError)
                    .boxed_unsync();
                let guard = (parts.method == Method::GET)
                    .then(|| self.metrics.as_ref().map(|m| m.connection()));
                match upstream.forward(parts, body, peer).await {
                    Ok(response) => keep_while_streaming(response, guard),
                    Err(e) => reply::error(StatusCode::BAD_GATEWAY, &e.to_string()),
                }
            }
            Backend::Streamable(server) if path == "/mcp" => match parts.method {
                Method::GET => server.get(&parts.headers),
                Method::DELETE => server.delete(&parts.headers),
                _ => method_not_allowed("GET, POST, DELETE"),
            },
            Backend::Sse(server) if path == "/sse" => match parts.method {
                Method::GET => server.get(),
                _ => method_not_allowed("GET"),
            },
            _ => reply::error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn post(
        self: Arc<Self>,
        mut parts: http::request::Parts,
        bytes: Bytes,
        principal: Principal,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let body = match mcp::parse(&bytes) {
            Ok(body) => body,
            Err(e) => {
                return reply::jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    e.code(),
                    &e.to_string(),
                );
            }
        };
        // From here every message is handled by the chain: dropped before it is
        // finished (the client went away, or a panic), the exchange is abandoned, so
        // nothing handled goes unrecorded.
        let mut exchange = Exchange::new(self.chain.clone(), principal, body, bytes, started);
        exchange.peer = Some(peer);
        self.chain.begin(&mut exchange, &mut parts.headers);
        let renames = self.chain.decide(&mut exchange).await;
        if exchange.refused() {
            let response = self.refuse(&parts, &exchange.body, &exchange.refusals);
            return self.chain.finish(exchange, response);
        }
        let bytes = if renames.is_empty() {
            exchange.request.clone()
        } else {
            rename(&exchange.request, &exchange.body, &renames)
        };
        let lists: HashMap<String, String> = exchange
            .body
            .messages
            .iter()
            .filter_map(|m| {
                let method = m.method()?;
                self.chain
                    .rewrites(method)
                    .then(|| Some((m.id.clone()?, method.to_owned())))
                    .flatten()
            })
            .collect();
        let rewrite = (!lists.is_empty()).then(|| ListRewrite {
            lists,
            principal: exchange.principal.clone(),
            chain: self.chain.clone(),
        });
        if let (Backend::Http(upstream), Some(rewrite)) = (&self.backend, &rewrite) {
            upstream.expect_lists(parts.uri.query(), rewrite);
        }
        let body = &exchange.body;
        let response = match &self.backend {
            Backend::Http(upstream) => match upstream
                .forward(parts, reply::full(bytes.clone()), peer)
                .await
            {
                Ok(response) => response,
                Err(e) => {
                    let id = body.messages.first().and_then(|m| m.id.as_deref());
                    reply::jsonrpc_error(
                        StatusCode::BAD_GATEWAY,
                        id,
                        code::UNAVAILABLE,
                        &e.to_string(),
                    )
                }
            },
            Backend::Streamable(server) if parts.uri.path() == "/mcp" => {
                server.post(&parts.headers, body, &bytes).await
            }
            Backend::Sse(server) if parts.uri.path().ends_with("/messages") => {
                server
                    .post(
                        sse_transport::session_param(parts.uri.query()).as_deref(),
                        body,
                        &bytes,
                        rewrite.clone(),
                    )
                    .await
            }
            _ => reply::error(StatusCode::NOT_FOUND, "not found"),
        };
        let response = match rewrite {
            Some(rewrite) => rewrite.response(response),
            None => response,
        };
        // What the server received is what audit records for an answered request.
        exchange.request = bytes;
        self.chain.finish(exchange, response)
    }

    /// Answers refused messages: one JSON-RPC error per request (a batch is refused
    /// whole). On the legacy SSE transport (over the bridge or from an HTTP upstream)
    /// the errors go to the session's stream, as its responses would.
    fn refuse(
        &self,
        parts: &http::request::Parts,
        body: &mcp::Body,
        refusals: &[Option<Refusal>],
    ) -> Response<Body> {
        let first = refusals
            .iter()
            .flatten()
            .next()
            .map(|r| (r.code, r.message.clone()));
        // A rate limit's refusal: the longest wait any of them asks for.
        let retry_after = refusals
            .iter()
            .flatten()
            .filter_map(|r| r.retry_after)
            .max();
        let (first_code, first_message) = first.unwrap_or((code::FORBIDDEN, "refused".to_owned()));
        let errors: Vec<serde_json::Value> = body
            .messages
            .iter()
            .zip(refusals)
            .filter(|(m, _)| m.is_request())
            .map(|(m, refusal)| {
                let (c, text) = refusal
                    .as_ref()
                    .map(|r| (r.code, r.message.clone()))
                    .unwrap_or((first_code, format!("batch refused: {first_message}")));
                let mut error = reply::jsonrpc_error_value(m.id.as_deref(), c, &text);
                if let Some(seconds) = refusal.as_ref().and_then(|r| r.retry_after) {
                    error["error"]["data"] = serde_json::json!({ "retryAfterSeconds": seconds });
                }
                error
            })
            .collect();
        if let Backend::Sse(server) = &self.backend
            && let Some(sink) =
                sse_transport::session_param(parts.uri.query()).and_then(|s| server.sink(&s))
        {
            for error in &errors {
                let _ = sink.send(Bytes::from(error.to_string()));
            }
            return reply::with_body(StatusCode::ACCEPTED, "text/plain", "Accepted");
        }
        if let Backend::Http(upstream) = &self.backend
            && upstream.inject(parts.uri.query(), &errors)
        {
            return reply::with_body(StatusCode::ACCEPTED, "text/plain", "Accepted");
        }
        let value = if body.batch || errors.len() != 1 {
            serde_json::Value::Array(errors)
        } else {
            errors.into_iter().next().unwrap_or(serde_json::Value::Null)
        };
        let mut response = match retry_after {
            Some(seconds) => {
                let mut limited = reply::json(StatusCode::TOO_MANY_REQUESTS, &value);
                limited
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
                limited
            }
            None => reply::json(StatusCode::OK, &value),
        };
        if let Some(session) = parts.headers.get("mcp-session-id") {
            response
                .headers_mut()
                .insert("mcp-session-id", session.clone());
        }
        response
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = reply::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Rewrites `params.name` of the renamed tool calls.
fn rename(bytes: &Bytes, body: &mcp::Body, renames: &[(usize, String)]) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.clone();
    };
    for (i, name) in renames {
        let message = if body.batch {
            value.get_mut(*i)
        } else {
            Some(&mut value)
        };
        if let Some(message) = message {
            tools::rename_call(message, name);
        }
    }
    Bytes::from(value.to_string())
}

/// Keeps `guard` (the active-connection count) alive while the response body streams.
fn keep_while_streaming<G: Send + 'static>(response: Response<Body>, guard: G) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let body = http_body_util::StreamBody::new(futures::StreamExt::map(
        body.into_data_stream(),
        move |chunk| {
            let _keep = &guard;
            chunk.map(hyper::body::Frame::data)
        },
    ));
    Response::from_parts(parts, body.boxed_unsync())
}
