//! Real MCP clients through the Kubernetes path on the real node: the TypeScript and
//! Python SDKs and the MCP conformance suite talk to the proxy's Service, which reaches
//! the test fixture (the image `make images` built) in its pods: client → ClusterIP →
//! proxy pod → pods/attach → MCP pod for a stdio server, or → the session's pod IP for
//! a streamable HTTP or legacy SSE server.

use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::proxy::{Driver, FIXTURE_STEPS, conformance_passes_through_the_cluster};
use e2e::{TestNamespace, apply_yaml, client, wait_until};
use k8s_openapi::api::core::v1::Service;

/// How the fixture runs in its pods.
enum Served {
    /// A stdio server; the proxy serves it as `streamable-http` or `sse`.
    Stdio(&'static str),
    /// A streamable HTTP server in this many pods.
    Http(u32),
    /// A legacy SSE server in this many pods.
    Sse(u32),
}

/// A Ready MCPServer `name` serving the fixture as `served`; its proxy's URL from the
/// host and the time from apply to Ready.
async fn fixture_served(
    ns: &TestNamespace,
    name: &str,
    served: Served,
) -> anyhow::Result<(String, Duration)> {
    let client = client().await?;
    let (workload, path) = match served {
        Served::Stdio(mode) => (
            format!("transport: stdio\n  proxyMode: {mode}\n  args: [stdio]"),
            if mode == "sse" { "sse" } else { "mcp" },
        ),
        Served::Http(replicas) => (
            format!(
                "transport: streamable-http\n  mcpPort: 8080\n  backendReplicas: {replicas}\n  args: [http, --port, \"8080\", --host, 0.0.0.0, --allow-any-host]"
            ),
            "mcp",
        ),
        Served::Sse(replicas) => (
            format!(
                "transport: sse\n  mcpPort: 8080\n  backendReplicas: {replicas}\n  args: [sse, --port, \"8080\", --host, 0.0.0.0, --allow-any-host]"
            ),
            "sse",
        ),
    };
    let yaml = format!(
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata:\n  name: {name}\nspec:\n  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}\n  {workload}\n",
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
    Ok((format!("http://{ip}:8080/{path}"), took))
}

#[tokio::test]
async fn both_sdks_and_the_conformance_suite_pass_through_the_kubernetes_path() -> anyhow::Result<()>
{
    let watch = e2e::Stopwatch::start("k8s-peers");
    let (_, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-peers").await?;
    let (streamable, took) =
        fixture_served(&ns, "fixture", Served::Stdio("streamable-http")).await?;
    watch.lap(&format!(
        "stdio fixture Ready behind streamable HTTP ({took:?} from apply)"
    ));
    let (sse, took) = fixture_served(&ns, "fixture-sse", Served::Stdio("sse")).await?;
    watch.lap(&format!(
        "stdio fixture Ready behind legacy SSE ({took:?} from apply)"
    ));
    let (http, took) = fixture_served(&ns, "fixture-http", Served::Http(2)).await?;
    watch.lap(&format!(
        "streamable HTTP fixture in 2 pods Ready ({took:?} from apply)"
    ));

    let (sse_pods, took) = fixture_served(&ns, "fixture-sse-pods", Served::Sse(2)).await?;
    watch.lap(&format!(
        "legacy SSE fixture in 2 pods Ready ({took:?} from apply)"
    ));

    let urls = [
        (streamable.clone(), "streamable-http"),
        (sse.clone(), "sse"),
        (http.clone(), "streamable-http"),
        (sse_pods, "sse"),
    ];
    tokio::task::spawn_blocking(move || {
        for driver in Driver::BOTH {
            for (url, transport) in &urls {
                driver.run(url, transport, FIXTURE_STEPS);
            }
        }
    })
    .await?;
    watch.lap("TypeScript and Python SDKs: every step on all four");

    conformance_passes_through_the_cluster(&streamable, "stdio").await?;
    watch.lap("conformance through the stdio path");
    conformance_passes_through_the_cluster(&http, "streamable HTTP pods").await?;
    watch.lap("conformance through the streamable HTTP path");
    ns.delete().await
}
