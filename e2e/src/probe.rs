//! Connections from a pod: the fixture's `probe` mode run as a pod on the real node, to
//! show what a NetworkPolicy lets through.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams};

use crate::{TestNamespace, apply_yaml, wait_until};

/// A pod `name` (label `app: intruder`) that opens one TCP connection to `addr`.
fn pod_yaml(name: &str, addr: &str, timeout_secs: u64) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: intruder}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: probe
      image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
      imagePullPolicy: Never
      args: [probe, "{addr}", --timeout, "{timeout_secs}"]
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {{drop: [ALL]}}
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// What a probe pod saw.
pub struct Probe {
    /// The connection was accepted.
    pub connected: bool,
    /// Its one line: `connected to …`, or why not.
    pub output: String,
}

/// Runs a probe pod `name` in `ns` that connects to `addr` (waiting `timeout_secs` for an
/// answer), then deletes it.
pub async fn connect_from_pod(
    client: &kube::Client,
    ns: &TestNamespace,
    name: &str,
    addr: &str,
    timeout_secs: u64,
) -> anyhow::Result<Probe> {
    let pods = ns.api::<Pod>();
    apply_yaml(client, &ns.name, &pod_yaml(name, addr, timeout_secs)).await?;
    let done = wait_until(&pods, name, Duration::from_secs(90), |p| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    })
    .await
    .with_context(|| format!("the probe pod {name} to {addr} finished"))?;
    let output = pods.logs(name, &LogParams::default()).await?;
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await?;
    Ok(Probe {
        connected: done.status.and_then(|s| s.phase).as_deref() == Some("Succeeded"),
        output: output.trim().to_owned(),
    })
}

/// `ip:port` of a running pod of MCPServer `server`'s MCP server (not of its proxy).
pub async fn backend_addr(ns: &TestNamespace, server: &str, port: u16) -> anyhow::Result<String> {
    let selector = format!("app={server},app.kubernetes.io/name notin (mcpserver)");
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector))
        .await?;
    let ip = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && crate::pod_ready(p))
        .find_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()))
        .with_context(|| format!("a ready pod matching {selector}"))?;
    Ok(format!("{ip}:{port}"))
}
