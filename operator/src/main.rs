//! `thv-operator`: Kubernetes operator for MCP servers: reconciles MCPServer and MCPRegistry (controllers land with the operator issue).

use clap::Parser;

/// Kubernetes operator for MCP servers: reconciles MCPServer and MCPRegistry (controllers land with the operator issue).
#[derive(Parser)]
#[command(version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("thv-operator has no commands yet; see the project issues for what lands next")
}
