//! The harness's real node (kubelet + containerd + runc + CNI + kube-proxy, see
//! e2e/cluster/README.md) runs real processes from the images `make images` built:
//! an MCP server answers over `pods/attach` (API server → kubelet → container stdin),
//! over HTTP through a Service ClusterIP, and under restricted PodSecurity with a
//! read-only root filesystem.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use e2e::{TestNamespace, apply_yaml, client, kubectl, wait_until};
use k8s_openapi::api::core::v1::{Pod, Service};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;

fn fixture_image() -> String {
    format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// A pod of the mcp-fixture image with `args`, hardened for restricted PodSecurity.
fn fixture_pod(name: &str, args: &str, stdin: bool) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: mcp
      image: {image}
      imagePullPolicy: Never
      args: {args}
      stdin: {stdin}
      ports: [{{containerPort: 8080}}]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {{drop: [ALL]}}
"#,
        image = fixture_image()
    )
}

async fn running_on_real_node(ns: &TestNamespace, name: &str) -> anyhow::Result<Pod> {
    let pod = wait_until(
        &ns.api::<Pod>(),
        name,
        Duration::from_secs(90),
        |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        },
    )
    .await?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    assert_eq!(
        node.as_deref(),
        Some("thv-node"),
        "scheduled on the real node"
    );
    Ok(pod)
}

#[tokio::test]
async fn an_mcp_server_in_a_pod_answers_initialize_over_attach() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::on_real_node(
        &client,
        "real-attach",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    apply_yaml(&client, &ns.name, &fixture_pod("stdio", "[stdio]", true)).await?;
    running_on_real_node(&ns, "stdio").await?;

    // kubectl attach -i: the API server upgrades to the kubelet, which streams the
    // container's stdin and stdout from containerd. An attach made the moment the
    // container starts may end at once, without a word (seen once in CI): attach again,
    // as the proxy does.
    let mut answer = None;
    let mut ended = Vec::new();
    for _ in 0..5 {
        match attach_and_initialize(&ns.name).await? {
            Ok(line) => {
                answer = Some(line);
                break;
            }
            Err(why) => {
                ended.push(why);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let answer = answer.with_context(|| format!("no attach answered: {ended:?}"))?;
    let reply: serde_json::Value =
        serde_json::from_str(answer.trim()).with_context(|| format!("not JSON-RPC: {answer:?}"))?;
    assert_eq!(reply["id"], 1, "{reply}");
    assert!(
        reply["result"]["serverInfo"]["name"].is_string(),
        "initialize answered by the server in the pod: {reply}"
    );
    ns.delete().await
}

/// One `kubectl attach -i` to the pod `stdio`, writing `initialize` until the server's
/// first line comes back: `Ok(Ok(line))`, or `Ok(Err(why))` when kubectl ended first.
async fn attach_and_initialize(namespace: &str) -> anyhow::Result<Result<String, String>> {
    let mut attach = kubectl()
        .args(["attach", "-i", "-q", "-n", namespace, "stdio", "-c", "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = attach.stdin.take().context("stdin")?;
    let stdout = attach.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    // The attach stream may open after the first write: repeat until answered.
    let outcome = tokio::task::spawn_blocking(move || -> Result<String, String> {
        for _ in 0..30 {
            if let Err(e) = writeln!(stdin, "{INITIALIZE}").and_then(|()| stdin.flush()) {
                return Err(format!("kubectl attach ended before an answer: {e}"));
            }
            if reader.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        match reader.join() {
            Ok(Ok(line)) if !line.trim().is_empty() => Ok(line),
            Ok(Ok(_)) => Err("kubectl attach ended without output".to_owned()),
            Ok(Err(e)) => Err(format!("reading kubectl attach: {e}")),
            Err(_) => Err("the reader panicked".to_owned()),
        }
    })
    .await?;
    let _ = attach.kill();
    let _ = attach.wait();
    Ok(outcome)
}

#[tokio::test]
async fn an_mcp_server_in_a_pod_answers_over_http_through_its_cluster_ip() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::on_real_node(
        &client,
        "real-http",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let service = r#"
apiVersion: v1
kind: Service
metadata: {name: fixture}
spec:
  selector: {app: http}
  ports: [{port: 80, targetPort: 8080}]
"#;
    apply_yaml(
        &client,
        &ns.name,
        &fixture_pod(
            "http",
            "[http, --port, '8080', --host, 0.0.0.0, --allow-any-host]",
            false,
        ),
    )
    .await?;
    apply_yaml(&client, &ns.name, service).await?;
    let pod = running_on_real_node(&ns, "http").await?;
    let pod_ip = pod
        .status
        .and_then(|s| s.pod_ip)
        .context("the pod has an IP")?;
    assert!(pod_ip.starts_with("10.244.0."), "{pod_ip}");
    let cluster_ip = ns
        .api::<Service>()
        .get("fixture")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("ClusterIP")?;

    // kube-proxy's rules route the ClusterIP to the pod; retried while they sync.
    let mut last = String::new();
    for _ in 0..40 {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-m",
                "5",
                "-H",
                "content-type: application/json",
                "-H",
                "accept: application/json, text/event-stream",
                "-d",
                INITIALIZE,
                &format!("http://{cluster_ip}/mcp"),
            ])
            .output()?;
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && last.contains("serverInfo") {
            return ns.delete().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("no initialize answer through ClusterIP {cluster_ip} (pod {pod_ip}): {last}")
}
