//! The proxy runner's Kubernetes backend on the real node: for a stdio MCPServer the
//! proxy pod applies the MCP server's StatefulSet, attaches to its container and serves
//! MCP through the proxy Service; the StatefulSet is repaired when deleted, and a killed
//! MCP pod is re-attached.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e::controllers::InProcess;
use e2e::{TestNamespace, apply_yaml, client, wait_until};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;

fn server_yaml() -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: fixture
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}
  transport: stdio
  args: [stdio]
"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// POSTs one JSON-RPC message to the proxy's Service; the response headers and body.
fn post(cluster_ip: &str, session: Option<&str>, body: &str) -> anyhow::Result<String> {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "-i",
        "-m",
        "10",
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "-H",
        "mcp-protocol-version: 2025-06-18",
    ]);
    if let Some(session) = session {
        command.args(["-H", &format!("mcp-session-id: {session}")]);
    }
    let out = command
        .args(["-d", body, &format!("http://{cluster_ip}:8080/mcp")])
        .output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A whole MCP exchange through the proxy: initialize, initialized, then `tools/list`,
/// which the bridge cannot answer from its cache: the server in the pod must.
fn list_tools(cluster_ip: &str) -> anyhow::Result<String> {
    let answer = post(cluster_ip, None, INITIALIZE)?;
    let Some(session) = answer.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("mcp-session-id")
            .then(|| value.trim().to_owned())
    }) else {
        return Ok(answer);
    };
    post(
        cluster_ip,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )?;
    post(
        cluster_ip,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
}

/// Retries until the MCP server in the pod lists its tools through the proxy.
async fn answers(cluster_ip: &str, within: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < within {
        last = list_tools(cluster_ip)?;
        if last.contains(r#""tools":["#) {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("no tools/list answer through {cluster_ip}:8080 within {within:?}: {last}")
}

#[tokio::test]
async fn a_stdio_mcpserver_is_served_from_its_statefulset_over_attach() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-stdio");
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::on_real_node(
        &client,
        "k8s-stdio",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let _controller = InProcess::mcpserver_with_real_proxy(&client, &ns.name)?;
    apply_yaml(&client, &ns.name, &server_yaml()).await?;

    // The proxy pod applies the StatefulSet; its pod runs the MCP server for real.
    let statefulsets = ns.api::<StatefulSet>();
    let sts = wait_until(&statefulsets, "fixture", Duration::from_secs(120), |_| true).await?;
    assert!(
        sts.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "MCPServer" && o.name == "fixture"),
        "owned by the MCPServer: {:?}",
        sts.metadata.owner_references
    );
    watch.lap("StatefulSet applied by the proxy");
    let cluster_ip = ns
        .api::<Service>()
        .get("mcp-fixture-proxy")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("proxy Service ClusterIP")?;
    let took = answers(&cluster_ip, Duration::from_secs(120)).await?;
    watch.lap(&format!(
        "tools/list answered by the server through the proxy ({took:?} of retries)"
    ));
    let pods = ns.api::<Pod>();
    let server_pods = pods
        .list(&ListParams::default().labels("app=fixture"))
        .await?;
    let pod = server_pods.items.first().context("an MCP server pod")?;
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("thv-node")
    );

    // Killing the MCP server's pod: the StatefulSet makes a new one, the proxy attaches
    // to it and serves again.
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    pods.delete(&pod_name, &DeleteParams::default().grace_period(0))
        .await?;
    let took = answers(&cluster_ip, Duration::from_secs(60)).await?;
    println!("served again {took:?} after the MCP pod was deleted");
    watch.lap("re-attached after the MCP pod was deleted");

    // A deleted StatefulSet is applied again by the proxy.
    let deleted_at = Instant::now();
    statefulsets
        .delete("fixture", &DeleteParams::background())
        .await?;
    let uid = sts.metadata.uid.clone();
    wait_until(&statefulsets, "fixture", Duration::from_secs(10), |s| {
        s.metadata.uid != uid
    })
    .await?;
    println!(
        "StatefulSet recreated {:?} after deletion",
        deleted_at.elapsed()
    );
    answers(&cluster_ip, Duration::from_secs(60)).await?;
    watch.lap("StatefulSet recreated and serving");
    // The proxy's account of attaches and restarts, for the test log.
    if let Ok(logs) = e2e::kubectl_ok(&["logs", "-n", &ns.name, "deploy/fixture", "--tail=40"]) {
        eprintln!("--- proxy log ---\n{logs}");
    }
    if std::env::var_os("THV_E2E_KEEP").is_some() {
        return Ok(());
    }
    ns.delete().await
}
