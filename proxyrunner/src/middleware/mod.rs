//! The middleware, one module per middleware. The configurable ones implement
//! [`chain::Middleware`] and run in the order the RunConfig declares
//! (`runconfig::ValidatedRunConfig::middleware`); the proxy's own framing (recovery,
//! Host/Origin, body limit, MCP parsing) surrounds them in `proxy`. A request, outermost
//! first:
//!
//! 1. recovery — a panic while handling a request is a 500, never a crash (`proxy`).
//! 2. `origin` — Host/Origin allow-list (403), before anything else is read.
//! 3. chain, `admit`: `authn` — who is calling (401 with RFC 9728 metadata); then
//!    `token_exchange` — the caller's token traded for one the server accepts (RFC 8693;
//!    403 when refused, 502 when the exchange fails).
//! 4. `body_limit` — the body is read, at most the limit (413).
//! 5. MCP parsing (`crate::mcp`) — method, id, target (JSON-RPC parse error).
//! 6. chain, for each parsed POST, in RunConfig order:
//!    - `telemetry` — metrics for every MCP message, whatever the outcome, and an OTLP
//!      span per POST (`tracing_export`); `metrics_export` pushes the metrics over OTLP;
//!    - `authn` — (admitted above);
//!    - `audit` — records what the later stages decide and how the server answered;
//!    - `webhooks` — mutating request webhooks may change each MCP request, then
//!      validating ones allow or deny it (HTTP POSTs, ToolHive's protocol, HMAC-signed);
//!    - `authz` — Cedar or HTTP decision (JSON-RPC error -32001 on deny); list results
//!      filtered on the way back;
//!    - `ratelimit` — token buckets on `tools/call` in Redis (HTTP 429, JSON-RPC 429);
//!    - `tools` — hidden tools refused, renamed ones mapped to the server's names; list
//!      results filtered and renamed on the way back (before authz filters them, so
//!      policies name the tools as clients see them).

pub mod audit;
pub mod authn;
pub mod authz;
pub mod body_limit;
pub mod chain;
#[cfg(test)]
mod fixtures;
pub mod metrics_export;
pub mod origin;
pub mod ratelimit;
pub mod telemetry;
pub mod token_exchange;
pub mod tools;
pub mod tracing_export;
pub mod webhooks;
