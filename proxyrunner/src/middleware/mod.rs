//! The middleware chain, one module per stage. Order of a request, outermost first:
//!
//! 1. `recovery` — a panic while handling a request is a 500, never a crash (in `proxy`).
//! 2. `telemetry` — metrics for every MCP message, whatever the outcome;
//!    `tracing_export` — an OTLP span per POST, child of the client's `traceparent`;
//!    `metrics_export` — the same metrics pushed over OTLP at an interval.
//! 3. `origin` — Host/Origin allow-list (403), before anything else is read.
//! 4. `authn` — who is calling (401 with RFC 9728 metadata).
//! 5. `body_limit` — the body is read, at most the limit (413).
//! 6. MCP parsing (`crate::mcp`) — method, id, target (JSON-RPC parse error).
//! 7. `audit` — records what the later stages decide and how the server answered.
//! 8. `authz` — Cedar or HTTP decision (JSON-RPC error -32001 on deny); list results
//!    filtered on the way back.
//! 9. `tools` — hidden tools refused, renamed ones mapped to the server's names; list
//!    results filtered and renamed on the way back (before authz filters them, so
//!    policies name the tools as clients see them).

pub mod audit;
pub mod authn;
pub mod authz;
pub mod body_limit;
pub mod metrics_export;
pub mod origin;
pub mod telemetry;
pub mod tools;
pub mod tracing_export;
