//! `thv-proxyrunner`: the proxy in front of one MCP server. It reads a RunConfig,
//! validates it with `runconfig`, builds the middleware chain from the validated form
//! only, and forwards MCP traffic to the workload.
//!
//! - [`config`]: finding, reading and validating the RunConfig.
//! - [`runner`]: assembling and serving the proxy.
//! - [`proxy`]: routes and the middleware chain ([`middleware`] documents the order).
//! - [`backend`]: workloads (local process over the stdio [`backend::bridge`], HTTP upstream).
//! - [`transport`]: streamable HTTP and legacy SSE in front of the bridge.
//! - [`mcp`], [`sse`], [`rewrite`], [`reply`]: message parsing, event framing, list
//!   rewriting and the replies the proxy writes itself.

pub mod backend;
pub mod config;
pub mod mcp;
pub mod middleware;
pub mod proxy;
pub mod reply;
pub mod rewrite;
pub mod runner;
pub mod sse;
#[doc(hidden)]
pub mod test_redis;
pub mod transport;
