//! Workload backends: what the proxy forwards MCP traffic to.
//!
//! - [`Workload`]: something that speaks MCP over stdin/stdout — a local child process
//!   ([`process::LocalProcess`]), or in a cluster the container of the MCP server's
//!   StatefulSet reached over pods/attach ([`kubernetes::AttachedPod`]). [`bridge::Bridge`] multiplexes client sessions over one.
//! - [`http::Upstream`]: an MCP server reached over HTTP (SSE or streamable HTTP);
//!   [`legacy_sse`] does the proxy's work on its legacy SSE streams. In a cluster,
//!   [`pods::PodRouter`] sends each MCP session to the StatefulSet pod that holds it.

pub mod bridge;
pub mod http;
pub mod kubernetes;
pub mod legacy_sse;
pub mod pods;
pub mod probe;
pub mod process;
pub mod report;

use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A workload speaking newline-delimited JSON-RPC on its standard streams.
pub trait Workload: Send + Sync + 'static {
    /// Starts the workload (or attaches to it) and returns its streams. Called again
    /// after the workload ended, with backoff.
    fn start(&self) -> BoxFuture<'_, std::io::Result<Attached>>;

    /// A short description for logs (`node server.js`).
    fn describe(&self) -> String;
}

/// The streams of a started workload.
pub struct Attached {
    /// Messages to the server.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// Messages from the server.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Its diagnostics, drained into the proxy's log.
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Resolves when the workload has ended, with how it ended.
    pub exited: BoxFuture<'static, String>,
}
