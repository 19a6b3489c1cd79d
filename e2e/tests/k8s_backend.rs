//! The proxy runner's Kubernetes backend on the real node: for a stdio MCPServer the
//! proxy pod applies the MCP server's StatefulSet, attaches to its container and serves
//! MCP through the proxy Service; the StatefulSet is repaired when deleted, and a killed
//! MCP pod is re-attached. Status tells the truth: Ready only once the server answered,
//! with what it said; a server that cannot run says why, in its status and Events; a
//! rotated Secret rolls the MCP pod.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::{TestNamespace, apply_yaml, wait_until};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{DeleteParams, ListParams};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;

fn server_yaml() -> String {
    server_with("fixture", &fixture_image(), "[stdio]", "")
}

fn fixture_image() -> String {
    format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// A stdio MCPServer `name` running `image` with `args`, and `extra` spec lines.
fn server_with(name: &str, image: &str, args: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: {name}
spec:
  image: {image}
  transport: stdio
  args: {args}
{extra}
"#
    )
}

/// `name` once the proxy reported `reason` and the operator read it into the
/// `BackendReady` condition.
async fn reported(
    servers: &kube::Api<MCPServer>,
    name: &str,
    reason: &str,
    within: Duration,
) -> anyhow::Result<MCPServer> {
    wait_until(servers, name, within, |s| {
        s.status.as_ref().is_some_and(|s| {
            s.backend.as_ref().is_some_and(|b| b.reason == reason)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "BackendReady" && c.reason == reason)
        })
    })
    .await
}

/// The reasons of the Events about MCPServer `name`.
async fn event_reasons(ns: &TestNamespace, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(ns
        .api::<Event>()
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("MCPServer")
                && e.involved_object.name.as_deref() == Some(name)
        })
        .filter_map(|e| e.reason)
        .collect())
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
    let (client, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-stdio").await?;
    let applied_at = Instant::now();
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
    // Ready because the server answered, and the status says what it said.
    let servers = ns.api::<MCPServer>();
    let ready = wait_until(&servers, "fixture", Duration::from_secs(60), |s| {
        s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready)
    })
    .await?;
    println!("kubectl apply to Ready: {:?}", applied_at.elapsed());
    let status = ready.status.clone().unwrap_or_default();
    let backend = status.backend.clone().context("status.backend")?;
    assert_eq!(backend.reason, "Initialized", "{backend:?}");
    assert_eq!(backend.server_name.as_deref(), Some("mcp-fixture"));
    assert!(backend.tools.is_some_and(|n| n > 0), "{backend:?}");
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "BackendReady" && c.status == "True"),
        "{:?}",
        status.conditions
    );
    let columns = e2e::kubectl_ok(&["get", "mcpservers", "-n", &ns.name, "fixture"])?;
    assert!(columns.contains("TOOLS"), "{columns}");
    watch.lap(&format!(
        "Ready with {} tools reported by the proxy",
        backend.tools.unwrap_or_default()
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

#[tokio::test]
async fn a_server_that_cannot_run_says_why_in_its_status_and_events() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-why");
    let (client, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-why").await?;
    // An image that is nowhere (the node pulls from no registry), and a server that
    // exits at once with a message on stderr.
    let missing = "ghcr.io/stacklok/toolhive-rs/not-imported:0.0.0";
    apply_yaml(
        &client,
        &ns.name,
        &server_with("missing", missing, "[stdio]", ""),
    )
    .await?;
    apply_yaml(
        &client,
        &ns.name,
        &server_with("crashing", &fixture_image(), "[no-such-mode]", ""),
    )
    .await?;
    // A pod the StatefulSet cannot even create: its ServiceAccount does not exist.
    apply_yaml(
        &client,
        &ns.name,
        &server_with(
            "unaccounted",
            &fixture_image(),
            "[stdio]",
            "  serviceAccount: nobody",
        ),
    )
    .await?;
    let servers = ns.api::<MCPServer>();

    let pull = reported(
        &servers,
        "missing",
        "ImagePullFailed",
        Duration::from_secs(120),
    )
    .await?;
    let status = pull.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(MCPServerPhase::Failed));
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains(missing), "names the image: {message}");
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "BackendReady" && c.reason == "ImagePullFailed"),
        "{:?}",
        status.conditions
    );
    watch.lap("image pull failure reported");

    let crash = reported(&servers, "crashing", "CrashLoop", Duration::from_secs(180)).await?;
    let message = crash
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("no-such-mode"),
        "carries the container's last words: {message}"
    );
    watch.lap("crash loop reported with its termination message");

    let uncreated = reported(
        &servers,
        "unaccounted",
        "PodCreateFailed",
        Duration::from_secs(120),
    )
    .await?;
    let message = uncreated
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("nobody"),
        "names the missing ServiceAccount: {message}"
    );
    watch.lap("a pod that cannot be created reported with the controller's reason");

    let events = wait_until_events(&ns, "missing", "ImagePullFailed").await?;
    assert!(events, "an ImagePullFailed Event on the MCPServer");
    assert!(wait_until_events(&ns, "crashing", "CrashLoop").await?);
    watch.lap("Events on the MCPServers");
    ns.delete().await
}

async fn wait_until_events(ns: &TestNamespace, name: &str, reason: &str) -> anyhow::Result<bool> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if event_reasons(ns, name).await?.iter().any(|r| r == reason) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("events about {name}: {:?}", event_reasons(ns, name).await?);
    Ok(false)
}

#[tokio::test]
async fn a_rotated_secret_rolls_the_mcp_pod() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-rotate");
    let (client, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-rotate").await?;
    let secret = |value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: token}}\nstringData: {{token: {value}}}\n"
        )
    };
    apply_yaml(&client, &ns.name, &secret("first")).await?;
    let extra = "  secrets:\n    - name: token\n      key: token\n      targetEnvName: API_TOKEN";
    apply_yaml(
        &client,
        &ns.name,
        &server_with("rotating", &fixture_image(), "[stdio]", extra),
    )
    .await?;
    let servers = ns.api::<MCPServer>();
    reported(
        &servers,
        "rotating",
        "Initialized",
        Duration::from_secs(120),
    )
    .await?;
    let pods = ns.api::<Pod>();
    let before = pods.get("rotating-0").await?.metadata.uid;
    watch.lap("serving with the first value");

    apply_yaml(&client, &ns.name, &secret("second")).await?;
    let rolled = wait_until(&pods, "rotating-0", Duration::from_secs(120), |p| {
        p.metadata.uid != before
            && p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                })
    })
    .await?;
    assert_ne!(rolled.metadata.uid, before, "a new MCP pod");
    reported(&servers, "rotating", "Initialized", Duration::from_secs(60)).await?;
    watch.lap("the MCP pod rolled and serves again");
    ns.delete().await
}
