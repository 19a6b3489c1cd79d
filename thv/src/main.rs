//! `thv`: Local ToolHive CLI.

use clap::Parser;

/// Local ToolHive CLI.
#[derive(Parser)]
#[command(version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("thv has no commands yet; see the project issues for what lands next")
}
