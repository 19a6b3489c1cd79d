//! Keeps a [`PodRouter`]'s pods current: applies the MCP server's StatefulSet and
//! headless Service (and keeps them, [`kubernetes::apply_and_keep`]), then watches the
//! StatefulSet's pods (selector `app=<name>`) through a reflector.
//!
//! Pods rather than the headless Service's EndpointSlices: the proxy already watches
//! the server's pods (its Role grants `pods` get/list/watch for the stdio attach), a pod
//! carries everything routing needs in one object — name, UID, IP, `Ready`, deletion and
//! the `mcp` container's restart count, which tells a restarted server (whose sessions
//! are gone) from a live one — and EndpointSlices would need another grant and lag the
//! pods by the endpointslice controller's batching.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use tokio::sync::watch;

use super::{PodRouter, PodTarget};
use crate::backend::kubernetes::{self, ServerObjects};
use crate::backend::report::{self, Inputs, LinkState, Problem, Reason};

/// A router fed by a task that applies `objects` and watches their pods; requests are
/// sent to the pods' `port`. Nothing is routable until the first pod is Ready. What
/// the pods show (an image that cannot be pulled, a crash loop) and a failed apply go
/// to `inputs`, which are reported on the MCPServer ([`report::spawn`]).
pub fn start(objects: ServerObjects, port: u16, inputs: watch::Sender<Inputs>) -> Arc<PodRouter> {
    let router = PodRouter::new();
    tokio::spawn(run(router.clone(), Arc::new(objects), port, inputs));
    router
}

/// Connects, applies and watches, retrying with backoff until each step works: until
/// then the router has no pod and requests are answered 503.
async fn run(
    router: Arc<PodRouter>,
    objects: Arc<ServerObjects>,
    port: u16,
    inputs: watch::Sender<Inputs>,
) {
    let mut delay = Backoff::default();
    let client = loop {
        match kube_connect::infer().await {
            Ok(client) => break client,
            Err(error) => {
                tracing::error!(%error, "connecting to the Kubernetes API");
                delay.wait().await;
            }
        }
    };
    report::spawn(client.clone(), objects.subject(), inputs.subscribe());
    kubernetes::watch_create_failures(client.clone(), objects.clone(), inputs.clone());
    let mut delay = Backoff::default();
    while let Err(error) = kubernetes::apply_and_keep(client.clone(), objects.clone()).await {
        tracing::error!(%error, "applying the MCP server's StatefulSet and Service");
        let failed = LinkState::Failed(Problem::new(Reason::ApplyFailed, error.to_string()));
        inputs.send_if_modified(|i| {
            let changed = i.link != failed;
            i.link = failed.clone();
            changed
        });
        delay.wait().await;
    }
    let pods: Api<Pod> = Api::namespaced(client, &objects.namespace);
    let selector = workload_k8s::names::selector(&objects.name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let (store, writer) = reflector::store();
    let mut events = reflector(
        writer,
        watcher::watcher(pods, kube_connect::watch_config().labels(&selector)),
    )
    .default_backoff()
    .boxed();
    loop {
        match events.try_next().await {
            Ok(Some(_)) => {
                let pods = store.state();
                router.set_targets(pods.iter().filter_map(|p| target(p, port)).collect());
                let problem = report::diagnose_all(pods.iter().map(|p| p.as_ref()));
                inputs.send_if_modified(|i| {
                    let changed = i.pods != problem;
                    i.pods = problem;
                    changed
                });
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, statefulset = %objects.name, "watching the MCP server's pods")
            }
        }
    }
}

/// The pod as a target when requests may go to it: Ready, not being deleted, with an IP.
pub fn target(pod: &Pod, port: u16) -> Option<PodTarget> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    let restarts = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == workload_k8s::names::CONTAINER)
        .map_or(0, |c| c.restart_count);
    Some(PodTarget {
        name: pod.metadata.name.clone()?,
        instance: format!("{}/{restarts}", pod.metadata.uid.as_deref()?),
        address: SocketAddr::new(ip, port),
    })
}

/// 1 s doubling to 30 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_secs(1))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(ready: &str, deleting: bool, ip: Option<&str>) -> Pod {
        let mut pod = json!({
            "metadata": {"name": "fixture-1", "uid": "u-1"},
            "status": {
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [{"name": "mcp", "restartCount": 2, "ready": true, "image": "i", "imageID": ""}],
            },
        });
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        if let Some(ip) = ip {
            pod["status"]["podIP"] = json!(ip);
        }
        serde_json::from_value(pod).expect("a pod")
    }

    #[test]
    fn a_ready_pod_is_a_target_at_its_ip_and_the_servers_port() {
        let target = target(&pod("True", false, Some("10.244.0.7")), 8080).expect("a target");
        assert_eq!(target.name, "fixture-1");
        assert_eq!(target.address, SocketAddr::from(([10, 244, 0, 7], 8080)));
        assert_eq!(target.instance, "u-1/2");
    }

    #[test]
    fn unready_terminating_or_addressless_pods_are_not_targets() {
        assert!(target(&pod("False", false, Some("10.244.0.7")), 8080).is_none());
        assert!(target(&pod("True", true, Some("10.244.0.7")), 8080).is_none());
        assert!(target(&pod("True", false, None), 8080).is_none());
    }
}
