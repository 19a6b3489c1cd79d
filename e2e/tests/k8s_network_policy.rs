//! The MCPServer's NetworkPolicy, enforced on the real node (kube-network-policies, which
//! the harness runs as a DaemonSet pod): with the operator's `--network-policies` (the
//! chart's default), only the server's own proxy reaches the MCP server's pods. Another
//! pod of the same namespace cannot open a connection to them, yet reaches the proxy; the
//! proxy serves calls; when the server opts out (`spec.networkPolicy.enabled: false`) the
//! policy goes and the same pod gets through.

use std::time::Duration;

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::probe::{backend_addr, connect_from_pod};
use e2e::{apply_yaml, wait_until};
use k8s_openapi::api::networking::v1::NetworkPolicy;

const SERVER: &str = "isolated";

fn server_yaml() -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: {SERVER}
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
  transport: streamable-http
  mcpPort: 8080
  args: [http, --port, "8080", --host, 0.0.0.0, --allow-any-host]
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

#[tokio::test]
async fn only_the_proxy_reaches_the_mcp_server_pods() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-network-policy");
    let (client, ns, _controller) =
        e2e::controllers::real_node_with_isolating_operator("k8s-netpol").await?;
    apply_yaml(&client, &ns.name, &server_yaml()).await?;
    let servers = ns.api::<MCPServer>();
    wait_until(&servers, SERVER, Duration::from_secs(180), |s| {
        s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready)
    })
    .await
    .context("the MCPServer behind its NetworkPolicy is Ready")?;
    let policies = ns.api::<NetworkPolicy>();
    let policy_name = format!("mcp-{SERVER}-ingress");
    wait_until(&policies, &policy_name, Duration::from_secs(30), |_| true).await?;
    watch.lap("MCPServer Ready behind its NetworkPolicy");

    // The proxy reaches the server: a call through it is answered.
    let url = format!(
        "http://{}:8080/mcp",
        ns.cluster_ip(&format!("mcp-{SERVER}-proxy")).await?
    );
    let session = e2e::curl::first_session(&url, Duration::from_secs(30)).await?;
    let echoed = e2e::curl::call(&url, &session, "echo", r#"{"message":"through the proxy"}"#)?;
    anyhow::ensure!(
        echoed.contains("through the proxy"),
        "served through the proxy: {echoed}"
    );
    watch.lap("a call served through the proxy");

    // The MCP server's pod, by its IP (what the policy selects; not the proxy's pods).
    let backend = backend_addr(&ns, SERVER, 8080).await?;
    // Another pod of the namespace: its connection to the server is dropped...
    let refused = connect_from_pod(&client, &ns, "intruder", &backend, 5).await?;
    anyhow::ensure!(
        !refused.connected && refused.output.contains("no answer within"),
        "a pod that is not the proxy must not reach {backend}: {}",
        refused.output
    );
    // ...while it reaches the proxy (so what stopped it is the policy).
    let proxy = format!(
        "{}:8080",
        ns.cluster_ip(&format!("mcp-{SERVER}-proxy")).await?
    );
    let reached = connect_from_pod(&client, &ns, "visitor", &proxy, 5).await?;
    anyhow::ensure!(
        reached.connected,
        "the same pod reaches the proxy {proxy}: {}",
        reached.output
    );
    watch.lap("another pod: MCP server refused, proxy reached");

    // Opting out removes the policy, and the same pod gets through.
    e2e::kubectl_ok(&[
        "patch",
        "mcpserver",
        SERVER,
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"networkPolicy":{"enabled":false}}}"#,
    ])?;
    e2e::wait_gone(&policies, &policy_name, Duration::from_secs(60)).await?;
    let again = connect_from_pod(&client, &ns, "intruder-again", &backend, 5).await?;
    anyhow::ensure!(
        again.connected,
        "with the policy gone, {backend} is reachable: {}",
        again.output
    );
    watch.lap("opted out: policy deleted, the MCP server reachable");
    Ok(())
}
