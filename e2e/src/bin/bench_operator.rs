//! `make bench-operator`: apply N MCPServers (default 1000) to the local control plane
//! with thv-operator running as its own process, and report the seconds until every
//! one has `status.observedGeneration == metadata.generation` and its objects exist,
//! objects per second, and the operator's peak RSS. Prints numbers; not a test.
//!
//! Usage: bench_operator [N] (the operator binary is target/release/thv-operator).

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::MCPServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};

enum Seen {
    Server(Box<MCPServer>),
    Deployment(String),
}

/// Objects the operator owns per MCPServer (2 ServiceAccounts, Role, RoleBinding,
/// ConfigMap, Service, Deployment).
const OWNED_PER_SERVER: usize = 7;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(1000);
    let client = e2e::client().await?;
    e2e::install_crds(&client).await?;
    let ns = e2e::TestNamespace::create(&client, "bench-operator", &[]).await?;
    let binary = e2e::repo_root().join("target/release/thv-operator");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p thv-operator",
        binary.display()
    );
    let mut operator = tokio::process::Command::new(&binary)
        .args(["--namespace", &ns.name, "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", e2e::kubeconfig_path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting thv-operator")?;
    let pid = operator.id().context("operator pid")?;

    let servers = ns.api::<MCPServer>();
    let start = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let servers = servers.clone();
            async move {
                let body = serde_json::json!({
                    "apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPServer",
                    "metadata": {"name": format!("server-{i}")},
                    "spec": {"image": "ghcr.io/stackloklabs/gofetch/server:1.0.1", "transport": "streamable-http"}
                });
                servers.patch(&format!("server-{i}"), &PatchParams::apply(e2e::TEST_MANAGER), &Patch::Apply(body)).await
            }
        })
        .buffer_unordered(32)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let applied = start.elapsed();

    // Convergence is followed with watches, not by listing 1,000 objects several times
    // a second: the bench must not be what loads the API server.
    let mut observed: HashSet<String> = HashSet::new();
    let mut deployments: HashSet<String> = HashSet::new();
    let server_events = watcher(servers.clone(), watcher::Config::default())
        .applied_objects()
        .map_ok(|s| Seen::Server(Box::new(s)))
        .boxed();
    let deployment_meta: Api<PartialObjectMeta<Deployment>> =
        Api::namespaced(client.clone(), &ns.name);
    let deployment_events = watcher(deployment_meta, watcher::Config::default())
        .applied_objects()
        .map_ok(|d| Seen::Deployment(d.metadata.name.unwrap_or_default()))
        .boxed();
    let mut events = futures::stream::select(server_events, deployment_events);
    let mut peak_rss_kib = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let done = loop {
        if observed.len() == count && deployments.len() == count {
            break start.elapsed();
        }
        let event = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => anyhow::bail!("watch ended"),
            Err(_) => anyhow::bail!(
                "not converged after 600 s: {}/{count} observed, {} Deployments",
                observed.len(),
                deployments.len()
            ),
        };
        peak_rss_kib = peak_rss_kib.max(e2e::bench::peak_rss_kib(pid).unwrap_or(0));
        match event {
            Seen::Server(s) => {
                let name = s.metadata.name.clone().unwrap_or_default();
                if s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
                {
                    observed.insert(name);
                } else {
                    observed.remove(&name);
                }
            }
            Seen::Deployment(name) => {
                deployments.insert(name);
            }
        }
    };
    peak_rss_kib = peak_rss_kib.max(e2e::bench::peak_rss_kib(pid).unwrap_or(0));
    let objects = count * OWNED_PER_SERVER;
    println!(
        "bench-operator: {count} MCPServers applied in {:.1} s",
        applied.as_secs_f64()
    );
    println!(
        "bench-operator: all reconciled (observedGeneration == generation, Deployments exist) after {:.1} s (target <= 30 s)",
        done.as_secs_f64()
    );
    println!(
        "bench-operator: {objects} owned objects, {:.0} objects/s",
        objects as f64 / done.as_secs_f64()
    );
    println!(
        "bench-operator: operator peak RSS {:.1} MiB (target <= 50 MiB)",
        peak_rss_kib as f64 / 1024.0
    );
    operator.kill().await.ok();
    ns.delete().await
}
