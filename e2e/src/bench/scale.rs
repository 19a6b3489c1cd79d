//! Many MCPServers at once: apply them, then follow their convergence with watches
//! (not by listing them several times a second: the benchmark must not be what loads
//! the API server). Objects are handled untyped, so the same code measures an operator
//! whose CRDs and status differ from ours (ToolHive's).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::{GroupVersionKind, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

/// MCPServers in `namespace`, untyped.
pub fn servers(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("toolhive.stacklok.dev", "v1beta1", "MCPServer");
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// The MCPServer `server-{i}` the benchmarks apply: an image and a transport, which
/// every operator of this API accepts; `args` tell one generation from the next.
pub fn server(i: usize, args: &[&str]) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "image": "ghcr.io/stackloklabs/gofetch/server:1.0.1",
        "transport": "streamable-http",
    });
    if !args.is_empty() {
        spec["args"] = serde_json::json!(args);
    }
    serde_json::json!({
        "apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPServer",
        "metadata": {"name": format!("server-{i}")},
        "spec": spec,
    })
}

/// Server-side applies `server(i, args)` for every `i` below `count`, `in_flight` at a
/// time; returns how long it took.
pub async fn apply(
    servers: &Api<DynamicObject>,
    manager: &str,
    count: usize,
    args: &[&str],
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let params = PatchParams::apply(manager).force();
    futures::stream::iter(0..count)
        .map(|i| {
            let (servers, params) = (servers.clone(), params.clone());
            async move {
                let name = format!("server-{i}");
                servers
                    .patch(&name, &params, &Patch::Apply(server(i, args)))
                    .await
                    .with_context(|| format!("applying MCPServer {name}"))
            }
        })
        .buffer_unordered(in_flight)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(start.elapsed())
}

enum Seen {
    Server {
        name: String,
        generation: Option<i64>,
        observed: Option<i64>,
    },
    Deployment(String),
}

/// What was seen while waiting for convergence.
pub struct Converged {
    /// When the last MCPServer reached its criterion.
    pub at: Instant,
    /// The highest peak RSS of `pid` seen meanwhile, KiB.
    pub peak_rss_kib: u64,
}

/// Waits until each of `count` MCPServers in `namespace` has
/// `status.observedGeneration == metadata.generation` with a generation of at least
/// `min_generation` (2 after one update), and (with `deployments`) until `count`
/// Deployments exist there. Samples the peak RSS of `pid` on every event.
pub async fn converged(
    client: &Client,
    namespace: &str,
    count: usize,
    min_generation: i64,
    deployments: bool,
    pid: u32,
    timeout: Duration,
) -> anyhow::Result<Converged> {
    let server_events = watcher(servers(client, namespace), watcher::Config::default())
        .applied_objects()
        .map_ok(|s| Seen::Server {
            name: s.metadata.name.clone().unwrap_or_default(),
            generation: s.metadata.generation,
            observed: s
                .data
                .pointer("/status/observedGeneration")
                .and_then(serde_json::Value::as_i64),
        })
        .boxed();
    let deployment_meta: Api<PartialObjectMeta<Deployment>> =
        Api::namespaced(client.clone(), namespace);
    let deployment_events = watcher(deployment_meta, watcher::Config::default())
        .applied_objects()
        .map_ok(|d| Seen::Deployment(d.metadata.name.unwrap_or_default()))
        .boxed();
    let mut events = futures::stream::select(server_events, deployment_events);
    let (mut observed, mut seen_deployments) = (HashSet::new(), HashSet::new());
    let mut peak_rss_kib = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if observed.len() == count && (!deployments || seen_deployments.len() >= count) {
            peak_rss_kib = peak_rss_kib.max(super::peak_rss_kib(pid).unwrap_or(0));
            return Ok(Converged {
                at: Instant::now(),
                peak_rss_kib,
            });
        }
        let event = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => bail!("the watch ended"),
            Err(_) => bail!(
                "not converged after {} s: {}/{count} MCPServers observed, {} Deployments",
                timeout.as_secs(),
                observed.len(),
                seen_deployments.len()
            ),
        };
        peak_rss_kib = peak_rss_kib.max(super::peak_rss_kib(pid).unwrap_or(0));
        match event {
            Seen::Server {
                name,
                generation,
                observed: at,
            } => {
                let done = generation.is_some_and(|g| g >= min_generation) && at == generation;
                if done {
                    observed.insert(name);
                } else {
                    observed.remove(&name);
                }
            }
            Seen::Deployment(name) => {
                seen_deployments.insert(name);
            }
        }
    }
}
