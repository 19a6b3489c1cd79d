//! `make bench-vs-toolhive`: our operator and proxy side by side with ToolHive's, in one
//! run, alternating, several rounds; prints medians and ours/theirs. Numbers, not
//! pass/fail.
//!
//! 1. **Operator at scale** (`operator.rs`): N MCPServers applied at once to a fresh
//!    namespace; time until each has `observedGeneration == generation` and a proxy
//!    Deployment, the operator's peak RSS, CPU seconds and API requests (counted from
//!    the API server's audit log: each operator runs as its own ServiceAccount); then N
//!    spec updates; then a quiet period (requests per minute when nothing changes).
//! 2. **Proxy data path** (`proxy.rs`): the same upstream (`mcp-fixture echo`,
//!    streamable HTTP) reached directly, through ToolHive's `thv-proxyrunner` (a
//!    remote-URL RunConfig) and through ours: added latency at c=1, throughput at
//!    c=32, proxy CPU per request, RSS.
//! 3. **stdio on the real node** (`stdio.rs`): each proxy given a stdio RunConfig for the
//!    same image creates its StatefulSet and attaches to the pod; 100 sessions at once:
//!    messages/s, latency, proxy RSS and CPU, and answers that were wrong, failed or lost.
//! 4. **On real pods** (`pods.rs`): each operator given one stdio MCPServer; seconds from
//!    the apply to the first `tools/list` served through its proxy Service.
//!
//! ToolHive's binaries come from its Go module at a pinned version, built once into the
//! harness cache (`e2e/cluster/toolhive.sh`); its CRDs from the same module.
//!
//! Usage: `bench_vs_toolhive [operator] [proxy] [stdio] [pods]` (all by default). Environment:
//! `BENCH_ROUNDS` (3), `BENCH_SERVERS` (1000), `BENCH_QUIET_SECONDS` (300),
//! `BENCH_PROXY_SECONDS` (10), `BENCH_STDIO_SECONDS` (10), `BENCH_STDIO_SESSIONS` (100),
//! `TOOLHIVE_BIN` (directory of ToolHive's binaries),
//! `TOOLHIVE_CRDS` (directory of its CRD files), `TOOLHIVE_RUNNER_IMAGE` (its proxy
//! runner's image, on the real node), `BENCH_SIDES` (`ours,toolhive`; one of
//! them to iterate on one operator).

mod operator;
mod pods;
mod proxy;
mod stdio;

use std::path::PathBuf;

use anyhow::Context;

/// One measured quantity over rounds, for both sides.
pub struct Row {
    pub what: &'static str,
    pub unit: &'static str,
    pub ours: Vec<f64>,
    pub theirs: Vec<f64>,
    /// What "better" means and the target, e.g. "≤ 0.20" (ours/theirs).
    pub target: &'static str,
}

impl Row {
    pub fn new(what: &'static str, unit: &'static str, target: &'static str) -> Self {
        Self {
            what,
            unit,
            ours: Vec::new(),
            theirs: Vec::new(),
            target,
        }
    }
}

/// Adds one round's `values` to `rows`, in order, on the side they were measured on.
pub fn record(rows: &mut [Row], ours: bool, values: impl IntoIterator<Item = f64>) {
    for (row, value) in rows.iter_mut().zip(values) {
        if ours {
            row.ours.push(value);
        } else {
            row.theirs.push(value);
        }
    }
}

/// Prints rows as a Markdown table: medians of each side and ours/theirs.
pub fn print_table(title: &str, rounds: usize, rows: &[Row]) {
    println!("\n{title} (medians of {rounds} rounds)\n");
    println!("| measured | ours | ToolHive | ours/ToolHive | target |");
    println!("| --- | --- | --- | --- | --- |");
    for row in rows {
        let (ours, theirs) = (
            e2e::bench::median(&row.ours),
            e2e::bench::median(&row.theirs),
        );
        let ratio = if theirs > 0.0 {
            format!("{:.2}", ours / theirs)
        } else {
            "–".to_owned()
        };
        println!(
            "| {} | {} | {} | {ratio} | {} |",
            row.what,
            shown(ours, row.unit),
            shown(theirs, row.unit),
            row.target
        );
    }
}

fn shown(value: f64, unit: &str) -> String {
    if value.is_nan() {
        return "–".to_owned();
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// Where ToolHive's binaries and CRDs are.
pub struct ToolHive {
    pub bin: PathBuf,
    pub crds: PathBuf,
}

impl ToolHive {
    fn locate() -> anyhow::Result<Self> {
        let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let bin = from_env("TOOLHIVE_BIN")
            .context("TOOLHIVE_BIN is not set (make bench-vs-toolhive sets it)")?;
        let crds = from_env("TOOLHIVE_CRDS")
            .context("TOOLHIVE_CRDS is not set (make bench-vs-toolhive sets it)")?;
        for binary in ["thv-operator", "thv-proxyrunner"] {
            anyhow::ensure!(
                bin.join(binary).exists(),
                "{} is missing: e2e/cluster/toolhive.sh builds it",
                bin.join(binary).display()
            );
        }
        anyhow::ensure!(crds.is_dir(), "{} is not a directory", crds.display());
        Ok(Self { bin, crds })
    }
}

/// A number from the environment, or its default.
pub fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v}: not a whole number")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for row in &wanted {
        anyhow::ensure!(
            ["operator", "proxy", "stdio", "pods"].contains(&row.as_str()),
            "unknown row {row:?}: the rows are `operator`, `proxy`, `stdio` and `pods`"
        );
    }
    let runs = |row: &str| wanted.is_empty() || wanted.iter().any(|w| w == row);
    let toolhive = ToolHive::locate()?;
    let rounds = env_number("BENCH_ROUNDS", 3)? as usize;
    anyhow::ensure!(rounds > 0, "BENCH_ROUNDS must be at least 1");
    println!(
        "bench-vs-toolhive: {rounds} rounds, alternating which side goes first; ToolHive from {}",
        toolhive.bin.display()
    );
    if runs("proxy") {
        proxy::run(&toolhive, rounds).await?;
    }
    if runs("stdio") {
        stdio::run(&toolhive, rounds).await?;
    }
    if runs("pods") {
        pods::run(&toolhive, rounds).await?;
    }
    if runs("operator") {
        operator::run(&toolhive, rounds).await?;
    }
    Ok(())
}
