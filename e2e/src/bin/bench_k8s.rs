//! `make bench-k8s`: what the Kubernetes path costs, on the harness's real node. Numbers,
//! not pass/fail.
//!
//! The same server (`mcp-fixture echo`, which answers every request at once) is reached
//! three ways, side by side in one run:
//! - **direct**: client → the echo pod's IP (streamable HTTP, no proxy);
//! - **stdio**: client → the proxy Service's ClusterIP → the proxy pod → `pods/attach`
//!   (through the API server and the kubelet) → the echo pod's stdin, the path a stdio
//!   MCPServer takes;
//! - **HTTP**: client → the proxy Service → the proxy pod → the session's pod IP, the
//!   path a `streamable-http` MCPServer takes.
//!
//! Printed: time from `kubectl apply` to `Ready` (a real pod answered `initialize`),
//! latency p50/p99 at c=1 and throughput at c=32 for both paths, and the proxy pod's RSS
//! idle and with 100 open sessions.
//!
//! Usage: `bench_k8s [SECONDS]` (per load phase, default 10) against the cluster of
//! `e2e/cluster` (or `KUBECONFIG` with `THV_E2E_USE_EXISTING=1`); the images must be
//! imported (`make images`, `cluster.sh load-images`).
//!
//! Load generator: `e2e::bench` (one MCP session per worker on its own connection).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::bench::{Session, load, us};
use e2e::controllers::InProcess;
use e2e::{TestNamespace, apply_yaml, client, wait_until};
use k8s_openapi::api::core::v1::{Pod, Service};

/// Resident memory (KiB) of the process on this machine whose environment says it is
/// the proxy of MCPServer `name` in `namespace` (the real node's containers are this
/// machine's processes).
fn proxy_rss_kib(namespace: &str, name: &str) -> anyhow::Result<u64> {
    let wanted_ns = format!("POD_NAMESPACE={namespace}");
    let wanted_name = format!("POD_NAME={name}-");
    for entry in std::fs::read_dir("/proc")? {
        let dir = entry?.path();
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let has = |wanted: &str, prefix: bool| {
            vars.iter().any(|v| {
                if prefix {
                    v.starts_with(wanted.as_bytes())
                } else {
                    *v == wanted.as_bytes()
                }
            })
        };
        if !(has(&wanted_ns, false) && has(&wanted_name, true)) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status"))?;
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        {
            return Ok(kib);
        }
    }
    bail!(
        "no proxy process of {namespace}/{name} on this machine (is the real node up, and this run as root?)"
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SECONDS: {s:?} is not a whole number"))?,
        None => 10,
    };
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::on_real_node(&client, "bench-k8s", &[]).await?;
    let _operator = InProcess::mcpserver_with_real_proxy(&client, &ns.name)?;
    let image = format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    );

    // The same server twice: behind the proxy over stdio, and alone over HTTP.
    let applied = Instant::now();
    apply_yaml(
        &client,
        &ns.name,
        &format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: echo}}\nspec:\n  image: {image}\n  transport: stdio\n  args: [echo, --stdio]\n"
        ),
    )
    .await?;
    apply_yaml(
        &client,
        &ns.name,
        &format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: echo-http}}\nspec:\n  image: {image}\n  transport: streamable-http\n  mcpPort: 8080\n  args: [echo, --port, \"8080\", --host, 0.0.0.0]\n"
        ),
    )
    .await?;
    apply_yaml(
        &client,
        &ns.name,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: echo-direct}}\nspec:\n  containers:\n  - name: echo\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    args: [echo, --port, \"8080\", --host, 0.0.0.0]\n"
        ),
    )
    .await?;
    wait_until(
        &ns.api::<MCPServer>(),
        "echo",
        Duration::from_secs(300),
        |s| s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready),
    )
    .await?;
    let apply_to_ready = applied.elapsed();
    wait_until(
        &ns.api::<MCPServer>(),
        "echo-http",
        Duration::from_secs(300),
        |s| s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready),
    )
    .await?;
    let direct_ip = wait_until(
        &ns.api::<Pod>(),
        "echo-direct",
        Duration::from_secs(120),
        |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
        },
    )
    .await?
    .status
    .and_then(|s| s.pod_ip)
    .context("the direct pod's IP")?;
    let proxy_ip = ns
        .api::<Service>()
        .get("mcp-echo-proxy")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the proxy Service's ClusterIP")?;
    let http_proxy_ip = ns
        .api::<Service>()
        .get("mcp-echo-http-proxy")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the HTTP server's proxy Service ClusterIP")?;
    let (direct, proxied) = (format!("{direct_ip}:8080"), format!("{proxy_ip}:8080"));
    let http_proxied = format!("{http_proxy_ip}:8080");
    // The direct server may take a moment to listen.
    let start = Instant::now();
    while let Err(e) = Session::open(&direct, "/mcp").await {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(e.context("the direct echo pod never answered"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!("bench-k8s: {seconds} s per phase, the real node of e2e/cluster");
    println!(
        "kubectl apply -> Ready (a real pod answered initialize), stdio server: {apply_to_ready:.1?}"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>12}",
        "path", "p50 µs", "p99 µs", "requests/s"
    );
    for (concurrency, label) in [(1, "c=1"), (32, "c=32")] {
        let d = load(&direct, "/mcp", concurrency, seconds).await?;
        let h = load(&http_proxied, "/mcp", concurrency, seconds).await?;
        let p = load(&proxied, "/mcp", concurrency, seconds).await?;
        for (path, run) in [
            ("direct to the pod", &d),
            ("proxy pod -> pod IP (HTTP)", &h),
            ("proxy pod -> attach (stdio)", &p),
        ] {
            println!(
                "{:<34} {:>10.0} {:>10.0} {:>12.0}",
                format!("{path}, {label}"),
                us(run.p50),
                us(run.p99),
                run.rps
            );
        }
        for (path, run) in [("HTTP", &h), ("stdio", &p)] {
            println!(
                "  added by the {path} path at {label}: p50 +{:.0} µs, p99 +{:.0} µs, throughput {:.0} % of direct",
                us(run.p50.saturating_sub(d.p50)),
                us(run.p99.saturating_sub(d.p99)),
                100.0 * run.rps / d.rps.max(1.0)
            );
        }
    }
    let idle = proxy_rss_kib(&ns.name, "echo")?;
    let mut sessions = Vec::new();
    for _ in 0..100 {
        sessions.push(Session::open(&proxied, "/mcp").await?);
    }
    let busy = proxy_rss_kib(&ns.name, "echo")?;
    println!(
        "proxy pod RSS: {:.1} MiB after the load, {:.1} MiB with 100 more open sessions ({:.1} KiB per session)",
        idle as f64 / 1024.0,
        busy as f64 / 1024.0,
        busy.saturating_sub(idle) as f64 / 100.0
    );
    drop(sessions);
    ns.delete().await
}
