//! Real MCP clients through the Kubernetes path on the real node: the TypeScript and
//! Python SDKs and the MCP conformance suite talk to the proxy's Service; the proxy pod
//! attaches to the MCP server's pod (the test fixture, from the image `make images`
//! built). Client → ClusterIP → proxy pod → pods/attach → MCP pod.

use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::controllers::InProcess;
use e2e::proxy::{Driver, conformance};
use e2e::{TestNamespace, apply_yaml, client, wait_until};
use k8s_openapi::api::core::v1::Service;

/// The fixture's tools for the drivers' steps (their defaults fit server-everything).
const FIXTURE_STEPS: &[&str] = &[
    "--steps",
    "initialize,list,call,progress,sampling,delete",
    "--tool",
    "test_simple_text",
    "--expect",
    "simple text response",
    "--progress-tool",
    "test_tool_with_progress",
    "--progress-args",
    "{}",
    "--sampling-tool",
    "test_sampling",
    "--sampling-args",
    r#"{"prompt":"say hi"}"#,
];

/// A Ready stdio MCPServer `name` serving the fixture in `mode` (`streamable-http` or
/// `sse`); its proxy's URL from the host.
async fn fixture_served(
    ns: &TestNamespace,
    name: &str,
    mode: &str,
) -> anyhow::Result<(String, Duration)> {
    let client = client().await?;
    let yaml = format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: {name}
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
  transport: stdio
  proxyMode: {mode}
  args: [stdio]
"#,
        version = env!("CARGO_PKG_VERSION")
    );
    let applied = Instant::now();
    apply_yaml(&client, &ns.name, &yaml).await?;
    wait_until(
        &ns.api::<MCPServer>(),
        name,
        Duration::from_secs(180),
        |s| s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready),
    )
    .await?;
    let took = applied.elapsed();
    let ip = ns
        .api::<Service>()
        .get(&format!("mcp-{name}-proxy"))
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the proxy Service's ClusterIP")?;
    let path = if mode == "sse" { "sse" } else { "mcp" };
    Ok((format!("http://{ip}:8080/{path}"), took))
}

#[tokio::test]
async fn both_sdks_and_the_conformance_suite_pass_through_the_kubernetes_path() -> anyhow::Result<()>
{
    let watch = e2e::Stopwatch::start("k8s-peers");
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::on_real_node(
        &client,
        "k8s-peers",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let _controller = InProcess::mcpserver_with_real_proxy(&client, &ns.name)?;
    let (streamable, took) = fixture_served(&ns, "fixture", "streamable-http").await?;
    watch.lap(&format!(
        "stdio fixture Ready behind streamable HTTP ({took:?} from apply)"
    ));
    let (sse, took) = fixture_served(&ns, "fixture-sse", "sse").await?;
    watch.lap(&format!(
        "stdio fixture Ready behind legacy SSE ({took:?} from apply)"
    ));

    let (streamable_url, sse_url) = (streamable.clone(), sse.clone());
    tokio::task::spawn_blocking(move || {
        for driver in Driver::BOTH {
            driver.run(&streamable_url, "streamable-http", FIXTURE_STEPS);
            driver.run(&sse_url, "sse", FIXTURE_STEPS);
        }
    })
    .await?;
    watch.lap("TypeScript and Python SDKs: every step over streamable HTTP and SSE");

    let url = streamable.clone();
    let run = tokio::task::spawn_blocking(move || conformance(&url)).await?;
    let summary = run
        .stdout
        .rfind("=== SUMMARY ===")
        .map_or(run.stdout.as_str(), |at| &run.stdout[at..])
        .to_owned();
    println!("conformance through the Kubernetes path (stdio):\n{summary}");
    // Every scenario but one must pass. `dns-rebinding-protection` tests "localhost MCP
    // servers" and fails any URL that is not localhost by its own definition (here: a
    // ClusterIP); the proxy's Host/Origin checks pass it on loopback
    // (tests/proxy_conformance.rs), and a proxy in a pod refuses foreign Origins.
    let failing: Vec<&str> = summary.lines().filter(|l| l.starts_with('✗')).collect();
    assert!(
        failing.len() == 1 && failing[0].contains("dns-rebinding-protection"),
        "conformance against {streamable} ({}):\n{summary}\nstderr:\n{}",
        run.status,
        run.stderr
    );
    assert!(
        summary.contains("✓ tools-call-sampling")
            && summary.contains("✓ server-sse-multiple-streams"),
        "{summary}"
    );
    watch.lap("conformance suite: every active scenario");
    ns.delete().await
}
