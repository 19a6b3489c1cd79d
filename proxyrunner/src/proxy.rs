//! The request handler: routes, and the middleware chain in the order
//! `middleware` documents, in front of the backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use runconfig::validate::ProxyMode;

use crate::backend::http::Upstream;
use crate::mcp;
use crate::middleware::audit::{Auditor, Event, Outcome};
use crate::middleware::authn::{self, Authenticator, Principal};
use crate::middleware::authz::Authorizer;
use crate::middleware::body_limit;
use crate::middleware::origin::OriginGuard;
use crate::middleware::telemetry::Metrics;
use crate::middleware::tools::{self, CallDecision, ToolFilter};
use crate::middleware::tracing_export::{self, Span, Tracer};
use crate::reply::{self, Body, code};
use crate::rewrite::ListRewrite;
use crate::transport::sse::{self as sse_transport, Sse};
use crate::transport::streamable::Streamable;

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
    /// Authentication.
    pub authn: Authenticator,
    /// Authorization, when configured.
    pub authz: Option<Arc<Authorizer>>,
    /// Tool filter, when configured.
    pub tools: Option<Arc<ToolFilter>>,
    /// Audit, when configured.
    pub audit: Option<Auditor>,
    /// Metrics, when enabled.
    pub metrics: Option<Arc<Metrics>>,
    /// OTLP metrics export, when configured.
    pub metrics_export: Option<Arc<crate::middleware::metrics_export::Exporter>>,
    /// OTLP trace export, when configured.
    pub tracer: Option<Tracer>,
    /// The backend.
    pub backend: Backend,
    /// Client-facing transport.
    pub mode: ProxyMode,
    /// Trust `X-Forwarded-*` when building URLs the proxy advertises.
    pub trust_proxy_headers: bool,
    /// Prefix of advertised URLs.
    pub endpoint_prefix: String,
}

const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

impl Proxy {
    /// Handles one request; a panic inside is answered 500 (recovery).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        match std::panic::AssertUnwindSafe(self.route(request, peer))
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
        }
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
        if path
            .strip_prefix(METADATA_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return match self.authn.metadata(&self.resource_url(request.headers())) {
                Some(document) => reply::json(StatusCode::OK, &document),
                None => reply::error(
                    StatusCode::NOT_FOUND,
                    "this MCP server does not require authentication",
                ),
            };
        }
        if let Err(why) = self.origin.check(request.headers()) {
            return reply::error(StatusCode::FORBIDDEN, &why);
        }
        let principal = match self.authn.authenticate(request.headers()).await {
            Ok(principal) => principal,
            Err(e) => return self.unauthorized(request.headers(), &e),
        };
        let (mut parts, body) = request.into_parts();
        if self.authn.is_enabled() {
            // The token was issued to this proxy; passing it on would let the server
            // replay it elsewhere (MCP authorization spec: no token passthrough).
            parts.headers.remove(header::AUTHORIZATION);
        }
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

    fn health(&self) -> Response<Body> {
        let running = match &self.backend {
            Backend::Http(_) => true,
            Backend::Streamable(s) => s.bridge().is_running(),
            Backend::Sse(s) => s.bridge().is_running(),
        };
        let (status, text) = if running {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "MCP server not running")
        };
        reply::json(status, &serde_json::json!({ "status": text }))
    }

    /// The URL clients use for the MCP endpoint, from the request (for RFC 9728).
    fn resource_url(&self, headers: &http::HeaderMap) -> String {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded = |name: &str| {
            if self.trust_proxy_headers {
                header(name)
            } else {
                None
            }
        };
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .unwrap_or("localhost");
        let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
        let endpoint = match self.mode {
            ProxyMode::StreamableHttp => "/mcp",
            ProxyMode::Sse => "/sse",
        };
        format!("{scheme}://{host}{}{endpoint}", self.endpoint_prefix)
    }

    fn unauthorized(&self, headers: &http::HeaderMap, error: &authn::AuthError) -> Response<Body> {
        let resource = self.resource_url(headers);
        let base = resource
            .find("://")
            .and_then(|i| resource[i + 3..].find('/').map(|j| &resource[..i + 3 + j]))
            .unwrap_or(&resource);
        let metadata_url = format!("{base}{METADATA_PATH}");
        let mut response = reply::error(StatusCode::UNAUTHORIZED, &error.to_string());
        if let Ok(value) = HeaderValue::from_str(&authn::challenge(&metadata_url, error)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
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
        let trace = self.start_trace(&mut parts.headers);
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
        // Audits the messages if the client goes away before the answer (hyper then
        // drops this future, during an HTTP authorization call or while the server
        // works): nothing handled goes unrecorded.
        let abandoned = self.audit.as_ref().map(|_| Abandoned {
            proxy: self.clone(),
            principal: principal.clone(),
            body: body.clone(),
            request: bytes.clone(),
            started,
            armed: true,
        });
        let mut refusals: Vec<Option<(i64, String, Outcome)>> = vec![None; body.messages.len()];
        let mut renames: Vec<(usize, String)> = Vec::new();
        for (i, message) in body.messages.iter().enumerate() {
            let Some(call) = message.call() else { continue };
            if let Some(authz) = &self.authz {
                match authz.allows(&principal, call).await {
                    Ok(true) => {}
                    Ok(false) => {
                        refusals[i] = Some((
                            code::FORBIDDEN,
                            format!("not authorized: {}", describe(call)),
                            Outcome::Denied,
                        ));
                        continue;
                    }
                    Err(e) => {
                        refusals[i] = Some((
                            code::FORBIDDEN,
                            format!("authorization failed: {e}"),
                            Outcome::Denied,
                        ));
                        continue;
                    }
                }
            }
            if call.method == "tools/call"
                && let Some(filter) = &self.tools
            {
                match filter.call(call.target.as_deref().unwrap_or("")) {
                    CallDecision::Forward => {}
                    CallDecision::Rename(name) => renames.push((i, name)),
                    CallDecision::Refuse => {
                        refusals[i] = Some((
                            code::INVALID_PARAMS,
                            format!("unknown tool: {}", describe(call)),
                            Outcome::Denied,
                        ));
                    }
                }
            }
        }
        if refusals.iter().any(Option::is_some) {
            let response = self.refuse(&parts, &body, &refusals);
            if let Some(abandoned) = abandoned {
                abandoned.disarm();
            }
            return self.observe(
                &principal, body, &bytes, &refusals, response, started, trace,
            );
        }
        let bytes = if renames.is_empty() {
            bytes
        } else {
            rename(&bytes, &body, &renames)
        };
        let lists: HashMap<String, String> = body
            .messages
            .iter()
            .filter_map(|m| {
                let method = m.method()?;
                let listing = matches!(method, "tools/list" | "prompts/list" | "resources/list");
                (listing
                    && (self.authz.is_some() || (method == "tools/list" && self.tools.is_some())))
                .then(|| Some((m.id.clone()?, method.to_owned())))
                .flatten()
            })
            .collect();
        let rewrite = (!lists.is_empty()).then(|| ListRewrite {
            lists,
            principal: principal.clone(),
            tools: self.tools.clone(),
            authz: self.authz.clone(),
        });
        if let (Backend::Http(upstream), Some(rewrite)) = (&self.backend, &rewrite) {
            upstream.expect_lists(parts.uri.query(), rewrite);
        }
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
                server.post(&parts.headers, &body, &bytes).await
            }
            Backend::Sse(server) if parts.uri.path().ends_with("/messages") => {
                server
                    .post(
                        sse_transport::session_param(parts.uri.query()).as_deref(),
                        &body,
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
        if let Some(abandoned) = abandoned {
            abandoned.disarm();
        }
        self.observe(
            &principal, body, &bytes, &refusals, response, started, trace,
        )
    }

    /// Answers refused messages: one JSON-RPC error per request (a batch is refused
    /// whole). On the legacy SSE transport (over the bridge or from an HTTP upstream)
    /// the errors go to the session's stream, as its responses would.
    fn refuse(
        &self,
        parts: &http::request::Parts,
        body: &mcp::Body,
        refusals: &[Option<(i64, String, Outcome)>],
    ) -> Response<Body> {
        let first = refusals
            .iter()
            .flatten()
            .next()
            .map(|(c, m, _)| (*c, m.clone()));
        let (first_code, first_message) = first.unwrap_or((code::FORBIDDEN, "refused".to_owned()));
        let errors: Vec<serde_json::Value> = body
            .messages
            .iter()
            .zip(refusals)
            .filter(|(m, _)| m.is_request())
            .map(|(m, refusal)| {
                let (c, text) = refusal
                    .as_ref()
                    .map(|(c, t, _)| (*c, t.clone()))
                    .unwrap_or((first_code, format!("batch refused: {first_message}")));
                reply::jsonrpc_error_value(m.id.as_deref(), c, &text)
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
        let mut response = reply::json(StatusCode::OK, &value);
        if let Some(session) = parts.headers.get("mcp-session-id") {
            response
                .headers_mut()
                .insert("mcp-session-id", session.clone());
        }
        response
    }

    /// Starts the span of a POST: its context comes from the client's `traceparent`,
    /// and the upstream gets the proxy's span as its parent.
    fn start_trace(
        &self,
        headers: &mut http::HeaderMap,
    ) -> Option<(tracing_export::Context, String, u128)> {
        let tracer = self.tracer.as_ref()?;
        let context = tracer.context(headers.get("traceparent").and_then(|v| v.to_str().ok()));
        let span_id = tracing_export::span_id();
        let flags = if context.sampled { "01" } else { "00" };
        if let Ok(value) =
            HeaderValue::from_str(&format!("00-{}-{span_id}-{flags}", context.trace_id))
        {
            headers.insert("traceparent", value);
        }
        Some((context, span_id, tracing_export::now_ns()))
    }

    /// Exports the span of a POST when it is sampled.
    fn finish_trace(
        &self,
        trace: Option<(tracing_export::Context, String, u128)>,
        body: &mcp::Body,
        status: StatusCode,
    ) {
        let (Some(tracer), Some((context, span_id, start_ns))) = (&self.tracer, trace) else {
            return;
        };
        if !context.sampled {
            return;
        }
        let call = body.messages.iter().find_map(mcp::Message::call);
        let method = call.map_or("response", |c| c.method.as_str());
        let mut attributes = vec![
            ("mcp.method", method.to_owned()),
            ("rpc.system", "jsonrpc".to_owned()),
            ("http.response.status_code", status.as_u16().to_string()),
        ];
        if let Some(target) = call.and_then(|c| c.target.clone()) {
            attributes.push(("mcp.target", target));
        }
        if let Some(id) = body.messages.first().and_then(|m| m.id.clone()) {
            attributes.push(("mcp.request.id", id));
        }
        tracer.record(Span {
            trace_id: context.trace_id,
            span_id,
            parent_span_id: context.parent_span_id,
            name: call.map_or_else(|| method.to_owned(), describe),
            start_ns,
            end_ns: tracing_export::now_ns(),
            attributes,
            error: !status.is_success(),
        });
    }

    /// Audit, metrics and the trace span for every message of a POST, whose answer
    /// (as the client gets it) is `response`. Audit events with response data are
    /// written when that body has passed (see `audit::tap`).
    #[allow(clippy::too_many_arguments)]
    fn observe(
        self: &Arc<Self>,
        principal: &Principal,
        body: mcp::Body,
        bytes: &Bytes,
        refusals: &[Option<(i64, String, Outcome)>],
        response: Response<Body>,
        started: Instant,
        trace: Option<(tracing_export::Context, String, u128)>,
    ) -> Response<Body> {
        let status = response.status();
        self.finish_trace(trace, &body, status);
        if self.audit.is_none() && self.metrics.is_none() {
            return response;
        }
        let elapsed = started.elapsed();
        let outcomes: Vec<Outcome> = refusals
            .iter()
            .map(|refusal| match refusal {
                Some((_, _, outcome)) => *outcome,
                None if status.is_success() => Outcome::Success,
                None => Outcome::Failure,
            })
            .collect();
        if let Some(metrics) = &self.metrics {
            for (message, outcome) in body.messages.iter().zip(&outcomes) {
                let Some(call) = message.call() else { continue };
                let tool = (call.method == "tools/call")
                    .then_some(call.target.as_deref())
                    .flatten();
                metrics.request(
                    &call.method,
                    status.as_u16(),
                    *outcome == Outcome::Success,
                    elapsed,
                    tool,
                );
            }
        }
        let Some(audit) = &self.audit else {
            return response;
        };
        let (proxy, principal, request) = (self.clone(), principal.clone(), bytes.clone());
        // Writes the events; `ended` is false when the client went away before the
        // whole answer passed (then failure, with nginx's 499 "client closed request").
        let record = move |response: Option<&[u8]>, ended: bool, duration: std::time::Duration| {
            let Some(audit) = &proxy.audit else { return };
            for (message, outcome) in body.messages.iter().zip(&outcomes) {
                audit.record(&Event {
                    principal: &principal,
                    message,
                    outcome: if ended { *outcome } else { Outcome::Failure },
                    status: if ended {
                        status.as_u16()
                    } else {
                        CLIENT_CLOSED
                    },
                    duration,
                    request: &request,
                    response,
                });
            }
        };
        // A 202 carries no response: on legacy SSE the answers go to the session's
        // stream, and notifications have none.
        if audit.wants_response() && status != StatusCode::ACCEPTED {
            // The event waits for the body, so its duration covers the whole answer.
            return crate::middleware::audit::tap(
                response,
                audit.max_data_size(),
                move |seen: &[u8], ended: bool| record(Some(seen), ended, started.elapsed()),
            );
        }
        record(None, true, elapsed);
        response
    }
}

/// The messages of a POST in flight, audited as failed with status 499 (as nginx
/// logs a request whose client closed the connection) if dropped before
/// [`Abandoned::disarm`], or 500 when dropped by a panic.
struct Abandoned {
    proxy: Arc<Proxy>,
    principal: Principal,
    body: mcp::Body,
    request: Bytes,
    started: Instant,
    armed: bool,
}

/// Status recorded for a request whose client went away before the answer.
const CLIENT_CLOSED: u16 = 499;

impl Abandoned {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(audit) = self.proxy.audit.as_ref().filter(|_| self.armed) else {
            return;
        };
        // Unwinding from a panic: the client is answered 500 (recovery), not gone.
        let status = if std::thread::panicking() {
            StatusCode::INTERNAL_SERVER_ERROR.as_u16()
        } else {
            CLIENT_CLOSED
        };
        for message in &self.body.messages {
            audit.record(&Event {
                principal: &self.principal,
                message,
                outcome: Outcome::Failure,
                status,
                duration: self.started.elapsed(),
                request: &self.request,
                response: None,
            });
        }
    }
}

fn describe(call: &mcp::Call) -> String {
    match &call.target {
        Some(target) => format!("{} {target}", call.method),
        None => call.method.clone(),
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
