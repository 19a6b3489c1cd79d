//! Row 4: on real pods, each operator (as its own process and ServiceAccount, with its
//! own CRDs): the time from applying one stdio MCPServer to the first `tools/list`
//! answered through the proxy Service it creates. In between: the operator reconciles,
//! the proxy pod starts on the real node (ours: our proxy runner image; ToolHive's: its
//! own `thv-proxyrunner` built from its module, `e2e/cluster/toolhive.sh image`), the
//! proxy creates the server's StatefulSet, the server pod starts, the proxy attaches.
//! Also when the MCPServer's status first said it was ready, against when it served.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use e2e::bench::Session;
use e2e::bench::audit::{AuditLog, Identity};
use e2e::bench::scale;
use e2e::{TEST_MANAGER, TestNamespace};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Patch, PatchParams};

use crate::operator::{Side, fresh_leases, install_crds, spawn, wait_namespace_gone};
use crate::{Row, ToolHive, print_table, record};

/// How long one side may take to serve.
const SERVE_TIMEOUT: Duration = Duration::from_secs(300);

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;

/// What one side's round saw, seconds after the apply.
struct Seen {
    served: f64,
    /// When `status.phase` was first seen `Ready` (both operators' word), if it was
    /// within [`SERVE_TIMEOUT`].
    status_ready: Option<f64>,
}

pub async fn run(toolhive: &ToolHive, rounds: usize) -> anyhow::Result<()> {
    let runner_image = std::env::var("TOOLHIVE_RUNNER_IMAGE").context(
        "TOOLHIVE_RUNNER_IMAGE is not set (make bench-vs-toolhive sets it; the image: e2e/cluster/toolhive.sh image)",
    )?;
    let client = e2e::client().await?;
    let audit = AuditLog::harness()?;
    let logs = e2e::kubeconfig_path()
        .parent()
        .map(|p| p.join("logs"))
        .context("no harness state directory")?;
    println!(
        "\non real pods: one stdio MCPServer (mcp-fixture echo --stdio) applied; seconds until its proxy Service answers tools/list; operator logs in {}",
        logs.display()
    );
    let mut rows = [
        Row::new("apply → first served tools/list", "s", ""),
        Row::new("apply → status says ready", "s", ""),
    ];
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [Side::Ours, Side::ToolHive]
        } else {
            [Side::ToolHive, Side::Ours]
        };
        for side in order {
            let seen = one(&client, &audit, toolhive, &runner_image, side, round, &logs)
                .await
                .with_context(|| format!("round {} of {}", round + 1, side.key()))?;
            println!(
                "  round {} {:<8}: tools/list served {:.1} s after the apply; status said ready {}",
                round + 1,
                side.key(),
                seen.served,
                seen.status_ready
                    .map_or("never".to_owned(), |s| format!("at {s:.1} s"))
            );
            let values = [seen.served, seen.status_ready.unwrap_or(f64::NAN)];
            record(&mut rows, side == Side::Ours, values);
        }
    }
    print_table("on real pods, one stdio MCPServer", rounds, &rows);
    // Leave the cluster with our CRDs, as the tests expect.
    e2e::install_crds(&client).await
}

async fn one(
    client: &Client,
    audit: &AuditLog,
    toolhive: &ToolHive,
    runner_image: &str,
    side: Side,
    round: usize,
    logs: &std::path::Path,
) -> anyhow::Result<Seen> {
    install_crds(client, toolhive, side).await?;
    let identity = Identity::create(client, side.key(), 4).await?;
    let ns =
        TestNamespace::on_real_node(client, &format!("bench-pods-{}-{round}", side.key()), &[])
            .await?;
    let log = logs.join(format!("bench-pods-{}.log", side.key()));
    fresh_leases(client).await?;
    let offset = audit.offset()?;
    let env: &[(&str, &str)] = match side {
        Side::Ours => &[],
        Side::ToolHive => &[("TOOLHIVE_RUNNER_IMAGE", runner_image)],
    };
    let mut operator = spawn(toolhive, side, &ns.name, &identity, &log, env)?;
    audit
        .wait_for_watch(
            offset,
            &identity.user,
            "mcpservers",
            Duration::from_secs(60),
        )
        .await
        .with_context(|| format!("waiting for the operator to start (log: {})", log.display()))?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let image = format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    );
    let server = serde_json::json!({
        "apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPServer",
        "metadata": {"name": "echo"},
        "spec": {
            "image": image, "transport": "stdio", "proxyMode": "streamable-http",
            "args": ["echo", "--stdio"],
        },
    });
    let servers = scale::servers(client, &ns.name);
    let services = ns.api::<Service>();
    let applied = Instant::now();
    servers
        .patch(
            "echo",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(server),
        )
        .await
        .context("applying MCPServer echo")?;
    let mut status_ready = None;
    let served = loop {
        anyhow::ensure!(
            applied.elapsed() < SERVE_TIMEOUT,
            "no tools/list served after {SERVE_TIMEOUT:?} (operator log: {})",
            log.display()
        );
        if status_ready.is_none()
            && let Ok(Some(s)) = servers.get_opt("echo").await
            && s.data.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Ready")
        {
            status_ready = Some(applied.elapsed().as_secs_f64());
        }
        let address = services
            .get_opt("mcp-echo-proxy")
            .await
            .ok()
            .flatten()
            .and_then(|s| {
                let spec = s.spec?;
                let port = spec.ports?.first()?.port;
                Some(format!("{}:{port}", spec.cluster_ip?))
            });
        if let Some(address) = address
            && lists_tools(&address).await
        {
            break applied.elapsed().as_secs_f64();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The status may follow the first answer (ours says Ready once the proxy reports
    // that a real process answered).
    while status_ready.is_none() && applied.elapsed() < SERVE_TIMEOUT {
        if let Ok(Some(s)) = servers.get_opt("echo").await
            && s.data.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Ready")
        {
            status_ready = Some(applied.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The namespace goes while the operator runs: ToolHive's finalizers need it.
    let name = ns.name.clone();
    ns.delete().await?;
    wait_namespace_gone(client, &name, Duration::from_secs(600)).await?;
    operator.kill().await.ok();
    Ok(Seen {
        served,
        status_ready,
    })
}

/// Whether an MCP session at `address` answers `tools/list` with the echo tool.
async fn lists_tools(address: &str) -> bool {
    let attempt = async {
        let mut session = Session::open(address, "/mcp").await?;
        let (_, answer) = session
            .exchange(Bytes::from_static(TOOLS_LIST.as_bytes()))
            .await?;
        anyhow::Ok(String::from_utf8_lossy(&answer).contains("\"echo\""))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), attempt).await,
        Ok(Ok(true))
    )
}
