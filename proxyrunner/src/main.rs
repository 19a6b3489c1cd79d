//! `thv-proxyrunner`: Proxy runner for one MCP server: loads a RunConfig and proxies MCP traffic through the middleware chain (data path lands with its own issue).

use clap::Parser;

/// Proxy runner for one MCP server: loads a RunConfig and proxies MCP traffic through the middleware chain (data path lands with its own issue).
#[derive(Parser)]
#[command(version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("thv-proxyrunner has no commands yet; see the project issues for what lands next")
}
