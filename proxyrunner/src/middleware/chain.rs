//! The middleware chain: each middleware is one type implementing [`Middleware`], and
//! the chain applies them in the order the RunConfig declares
//! ([`runconfig::ValidatedRunConfig::middleware`], outermost first). The proxy calls the
//! chain at fixed points of a request's life; a middleware implements the hooks it needs:
//!
//! | hook | when | order |
//! |---|---|---|
//! | [`serve`](Middleware::serve) | before any check, for paths the middleware owns | chain |
//! | [`admit`](Middleware::admit) | after Host/Origin, from the headers (401) | chain |
//! | [`begin`](Middleware::begin) | a POST's messages are parsed | chain |
//! | [`amend`](Middleware::amend) | before any call is decided: change or refuse messages | chain |
//! | [`decide`](Middleware::decide) | each MCP call; the first refusal wins | chain |
//! | [`rewrite`](Middleware::rewrite) | each list result on its way back | reversed |
//! | [`finish`](Middleware::finish) | the answer, as the client gets it | reversed |
//! | [`abandon`](Middleware::abandon) | the client left (499) or a panic (500) | reversed |
//!
//! Adding a middleware: a file under `middleware/` with its type and `impl Middleware`,
//! and one line in `stages!` below (its RunConfig variant and type); its place in the
//! chain is its place in `ValidatedRunConfig::middleware`.
//!
//! Why a trait of our own rather than tower layers: a tower `Service` sees one request
//! and returns one response, but the proxy's middleware decide per JSON-RPC message of a
//! batch (one refusal refuses the batch), rewrite list results that may arrive on another
//! HTTP exchange (the legacy SSE session stream), and record requests whose client went
//! away. As layers they would each re-parse the body or pass state through request
//! extensions, and a chain whose stages and order come from the RunConfig at run time
//! needs type-erased services (`BoxCloneService`): a boxed future and a virtual call per
//! layer per request. Here the stages are an enum dispatched with `match` (no boxing; the
//! futures of `admit`, `decide` and `rewrite` are plain state machines), and a request
//! allocates nothing for the chain itself. See docs/decisions.md.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use runconfig::ValidatedRunConfig;
use runconfig::validate::ProxyMode;
use serde_json::Value;

use super::audit::{Outcome, Sink};
use super::authn::Principal;
use super::telemetry::Metrics;
use crate::mcp::{self, Call};
use crate::reply::Body;
use crate::runner::BuildError;

/// One middleware. Every hook has a default that does nothing, so a middleware writes
/// only the hooks it takes part in.
pub trait Middleware: Send + Sync {
    /// Its RunConfig section, as validation returned it.
    type Config<'a>;

    /// Builds it; `None` when the configuration asks for nothing to be done.
    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError>
    where
        Self: Sized;

    /// Answers a request for a path this middleware owns (e.g. RFC 9728 metadata).
    fn serve(&self, _path: &str, _headers: &HeaderMap) -> Option<Response<Body>> {
        None
    }

    /// Admits a request from its headers, which it may change for the server: `Ok(Some)`
    /// names the caller, `Err` is the answer (401).
    fn admit(
        &self,
        _parts: &mut Parts,
    ) -> impl Future<Output = Result<Option<Principal>, Response<Body>>> + Send {
        async { Ok(None) }
    }

    /// A POST's messages are parsed; `headers` are those the server will receive.
    fn begin(&self, _exchange: &mut Exchange, _headers: &mut HeaderMap) {}

    /// Changes the POST's messages (`exchange.request` and `exchange.body` together) or
    /// refuses some (`exchange.refusals`), before any call is decided; later stages see
    /// the changed messages.
    fn amend(&self, _exchange: &mut Exchange) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Decides one MCP call (a request or notification) of `principal`.
    fn decide(&self, _principal: &Principal, _call: &Call) -> impl Future<Output = Verdict> + Send {
        async { Verdict::Pass }
    }

    /// Whether this middleware rewrites results of `method` (a list request).
    fn rewrites(&self, _method: &str) -> bool {
        false
    }

    /// Rewrites the `result` of a `method` request it [`rewrites`](Self::rewrites).
    fn rewrite(
        &self,
        _principal: &Principal,
        _method: &str,
        _result: &mut Value,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The exchange is answered with `response`, as the client gets it.
    fn finish(&self, _exchange: &mut Exchange, response: Response<Body>) -> Response<Body> {
        response
    }

    /// The exchange ended without an answer: `status` is 499 when the client went away,
    /// 500 after a panic.
    fn abandon(&self, _exchange: &Exchange, _status: u16) {}
}

/// What a middleware decides about one MCP call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Let it through, with `params.name` set to this (the server's tool name).
    Rename(String),
    /// Answer it with a JSON-RPC error instead.
    Refuse(Refusal),
}

/// A refused call's JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// JSON-RPC error code.
    pub code: i64,
    /// Error message.
    pub message: String,
    /// A rate limit's refusal: seconds until a retry may pass. The POST is then
    /// answered HTTP 429 with `Retry-After`, and the error carries
    /// `data.retryAfterSeconds` (as ToolHive answers).
    pub retry_after: Option<u64>,
}

/// What a stage may need besides its RunConfig section.
pub struct BuildContext<'a> {
    /// The whole validated RunConfig.
    pub config: &'a ValidatedRunConfig,
    /// The client-facing transport (decides the advertised endpoint).
    pub mode: ProxyMode,
    /// Metrics, when kept (shared with the transports, which count connections).
    pub metrics: Option<Arc<Metrics>>,
    /// Where audit lines go instead of stdout.
    pub audit_sink: Option<Sink>,
}

/// Declares the stages: `RunConfigVariant => Type`. The match over the RunConfig's
/// middleware list is exhaustive, so a middleware validation admits cannot lack a stage.
macro_rules! stages {
    ($($variant:ident => $ty:ty,)*) => {
        /// One configured middleware (an enum, so calls through the chain are static).
        pub enum Stage {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )*
        }

        impl Stage {
            fn build(
                middleware: runconfig::Middleware<'_>,
                context: &BuildContext<'_>,
            ) -> Result<Option<Self>, BuildError> {
                Ok(match middleware {
                    $(runconfig::Middleware::$variant(config) => {
                        <$ty as Middleware>::build(config, context)?.map(Self::$variant)
                    })*
                })
            }

            /// The RunConfig's name for this middleware.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)*
                }
            }

            fn serve(&self, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
                match self {
                    $(Self::$variant(m) => m.serve(path, headers),)*
                }
            }

            async fn admit(
                &self,
                parts: &mut Parts,
            ) -> Result<Option<Principal>, Response<Body>> {
                match self {
                    $(Self::$variant(m) => m.admit(parts).await,)*
                }
            }

            fn begin(&self, exchange: &mut Exchange, headers: &mut HeaderMap) {
                match self {
                    $(Self::$variant(m) => m.begin(exchange, headers),)*
                }
            }

            async fn amend(&self, exchange: &mut Exchange) {
                match self {
                    $(Self::$variant(m) => m.amend(exchange).await,)*
                }
            }

            async fn decide(&self, principal: &Principal, call: &Call) -> Verdict {
                match self {
                    $(Self::$variant(m) => m.decide(principal, call).await,)*
                }
            }

            fn rewrites(&self, method: &str) -> bool {
                match self {
                    $(Self::$variant(m) => m.rewrites(method),)*
                }
            }

            async fn rewrite(&self, principal: &Principal, method: &str, result: &mut Value) {
                match self {
                    $(Self::$variant(m) => m.rewrite(principal, method, result).await,)*
                }
            }

            fn finish(&self, exchange: &mut Exchange, response: Response<Body>) -> Response<Body> {
                match self {
                    $(Self::$variant(m) => m.finish(exchange, response),)*
                }
            }

            fn abandon(&self, exchange: &Exchange, status: u16) {
                match self {
                    $(Self::$variant(m) => m.abandon(exchange, status),)*
                }
            }
        }
    };
}

stages! {
    Telemetry => super::telemetry::Telemetry,
    Authentication => super::authn::Authentication,
    TokenExchange => super::token_exchange::TokenExchange,
    Audit => super::audit::Auditor,
    MutatingWebhooks => super::webhooks::Webhooks,
    ValidatingWebhooks => super::webhooks::Webhooks,
    Authorization => super::authz::Authorizer,
    RateLimit => super::ratelimit::RateLimiter,
    Tools => super::tools::ToolFilter,
}

/// The configured middleware, outermost first.
pub struct Chain {
    stages: Vec<Stage>,
}

impl Chain {
    /// The chain the RunConfig declares, in its order.
    pub fn build(context: &BuildContext<'_>) -> Result<Self, BuildError> {
        let mut stages = Vec::new();
        for middleware in context.config.middleware() {
            stages.extend(Stage::build(middleware, context)?);
        }
        Ok(Self { stages })
    }

    /// A chain of these stages, outermost first (tests; the proxy uses [`Chain::build`]).
    pub fn new(stages: Vec<Stage>) -> Self {
        Self { stages }
    }

    /// The stages, outermost first.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The answer of the middleware that owns `path`, if one does.
    pub fn serve(&self, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
        self.stages.iter().find_map(|s| s.serve(path, headers))
    }

    /// The caller (anonymous unless a middleware names one), or the answer refusing it.
    pub async fn admit(&self, parts: &mut Parts) -> Result<Principal, Response<Body>> {
        let mut principal = None;
        for stage in &self.stages {
            if let Some(named) = stage.admit(parts).await? {
                principal = Some(named);
            }
        }
        Ok(principal.unwrap_or_else(Principal::anonymous))
    }

    /// Starts the exchange of a POST whose messages are parsed.
    pub fn begin(&self, exchange: &mut Exchange, headers: &mut HeaderMap) {
        for stage in &self.stages {
            stage.begin(exchange, headers);
        }
    }

    /// Decides every call of the exchange, after every stage amended it: refusals are
    /// recorded in it, renames (message index, server's tool name) returned.
    pub async fn decide(&self, exchange: &mut Exchange) -> Vec<(usize, String)> {
        for stage in &self.stages {
            stage.amend(exchange).await;
        }
        let mut renames = Vec::new();
        for (i, message) in exchange.body.messages.iter().enumerate() {
            let Some(call) = message.call() else { continue };
            if exchange.refusals.get(i).is_some_and(Option::is_some) {
                continue; // refused while amended
            }
            for stage in &self.stages {
                match stage.decide(&exchange.principal, call).await {
                    Verdict::Pass => {}
                    Verdict::Rename(name) => renames.push((i, name)),
                    Verdict::Refuse(refusal) => {
                        exchange.refusals[i] = Some(refusal);
                        break;
                    }
                }
            }
        }
        renames
    }

    /// Whether any middleware rewrites results of `method`.
    pub fn rewrites(&self, method: &str) -> bool {
        self.stages.iter().any(|s| s.rewrites(method))
    }

    /// Rewrites a list result on its way back: innermost middleware first.
    pub async fn rewrite(&self, principal: &Principal, method: &str, result: &mut Value) {
        for stage in self.stages.iter().rev() {
            if stage.rewrites(method) {
                stage.rewrite(principal, method, result).await;
            }
        }
    }

    /// Ends the exchange with `response`: innermost middleware first.
    pub fn finish(&self, mut exchange: Exchange, mut response: Response<Body>) -> Response<Body> {
        exchange.armed = false;
        for stage in self.stages.iter().rev() {
            response = stage.finish(&mut exchange, response);
        }
        response
    }
}

/// One POST as the middleware see it. Dropped before [`Chain::finish`] (the client went
/// away, or a panic), it calls every middleware's [`Middleware::abandon`], so nothing
/// handled goes unrecorded.
pub struct Exchange {
    /// The caller.
    pub principal: Principal,
    /// The parsed messages.
    pub body: mcp::Body,
    /// The body: as received until it is forwarded, then as forwarded.
    pub request: Bytes,
    /// When the proxy started handling it.
    pub started: Instant,
    /// Per message, the refusal that answers it.
    pub refusals: Vec<Option<Refusal>>,
    /// Per-exchange state of middleware (e.g. the trace span); empty costs nothing.
    pub extensions: http::Extensions,
    /// The client's address, when known.
    pub peer: Option<std::net::SocketAddr>,
    chain: Arc<Chain>,
    armed: bool,
}

impl Exchange {
    /// A parsed POST of `principal`, handled by `chain`.
    pub fn new(
        chain: Arc<Chain>,
        principal: Principal,
        body: mcp::Body,
        request: Bytes,
        started: Instant,
    ) -> Self {
        Self {
            principal,
            refusals: vec![None; body.messages.len()],
            body,
            request,
            started,
            extensions: http::Extensions::new(),
            peer: None,
            chain,
            armed: true,
        }
    }

    /// Whether any message was refused (then the whole POST is).
    pub fn refused(&self) -> bool {
        self.refusals.iter().any(Option::is_some)
    }

    /// How message `i` ended, when the POST was answered with `status`.
    pub fn outcome(&self, i: usize, status: StatusCode) -> Outcome {
        match self.refusals.get(i) {
            Some(Some(_)) => Outcome::Denied,
            _ if status.is_success() => Outcome::Success,
            _ => Outcome::Failure,
        }
    }
}

/// Status recorded for a request whose client went away before the answer (as nginx
/// logs it: "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Unwinding from a panic: the client is answered 500 (recovery), not gone.
        let status = if std::thread::panicking() {
            StatusCode::INTERNAL_SERVER_ERROR.as_u16()
        } else {
            CLIENT_CLOSED
        };
        let chain = self.chain.clone();
        for stage in chain.stages.iter().rev() {
            stage.abandon(self, status);
        }
    }
}

#[cfg(test)]
mod tests;
