//! Waiting for an MCPServer to be Ready, with a spinner that shows what it waits for:
//! the operator's phase and message and the proxy's report of the MCP server behind it.

use std::time::{Duration, Instant};

use anyhow::bail;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cluster::Cluster;

/// One line on where `server` stands.
pub fn describe(server: &MCPServer) -> String {
    let Some(status) = &server.status else {
        return "Pending: the operator has not seen it yet".to_owned();
    };
    let phase = status
        .phase
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "Pending".to_owned());
    let mut line = match &status.message {
        Some(message) => format!("{phase}: {message}"),
        None => phase,
    };
    if let Some(backend) = status
        .backend
        .as_ref()
        .filter(|b| b.reason != "Initialized")
    {
        line.push_str(&format!(" (MCP server: {}", backend.reason));
        if let Some(message) = &backend.message {
            line.push_str(&format!(": {message}"));
        }
        line.push(')');
    }
    line
}

/// What the server said when it became Ready.
pub fn summary(server: &MCPServer) -> String {
    let Some(backend) = server.status.as_ref().and_then(|s| s.backend.as_ref()) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(name) = &backend.server_name {
        parts.push(format!(
            "{name} {}",
            backend.server_version.as_deref().unwrap_or_default()
        ));
    }
    if let Some(version) = &backend.protocol_version {
        parts.push(format!("MCP {version}"));
    }
    if let Some(tools) = backend.tools {
        parts.push(format!("{tools} tools"));
    }
    parts.join(", ")
}

fn seen(server: &MCPServer) -> bool {
    let observed = server.status.as_ref().and_then(|s| s.observed_generation);
    observed.is_some() && observed >= server.metadata.generation
}

/// Polls MCPServer `name` until it is Ready (returned), Failed, or `timeout` passes
/// (errors that say why).
pub async fn ready(cluster: &Cluster, name: &str, timeout: Duration) -> anyhow::Result<MCPServer> {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    loop {
        let server = cluster.server(name).await?;
        let phase = server.status.as_ref().and_then(|s| s.phase);
        if seen(&server) && phase == Some(MCPServerPhase::Ready) {
            spinner.finish_and_clear();
            println!(
                "MCPServer {name} is Ready after {:.1} s: {}",
                start.elapsed().as_secs_f64(),
                summary(&server)
            );
            return Ok(server);
        }
        if seen(&server) && phase == Some(MCPServerPhase::Failed) {
            spinner.finish_and_clear();
            bail!(
                "MCPServer {name} failed: {}\n(`thv logs {name}` shows the server's output; `thv rm {name}` removes it)",
                describe(&server)
            );
        }
        let now = describe(&server);
        if start.elapsed() > timeout {
            spinner.finish_and_clear();
            bail!(
                "MCPServer {name} is not Ready after {} s: {now}",
                timeout.as_secs()
            );
        }
        spinner.set_message(format!("waiting for {name}: {now}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
