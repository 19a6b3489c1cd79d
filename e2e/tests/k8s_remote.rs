//! MCPRemoteProxy on the real node: an MCP server the operator did not start (the
//! fixture as a plain Deployment and Service, wanting an API key) is reached only
//! through the remote proxy's Service, with the proxy's middleware applied (an
//! MCPToolConfig filter) and the key added from a Secret (`headerForward`). The
//! status is Ready only once the remote server answered the proxy's own `initialize`
//! (its name and tool count in `status.backend`); a proxy in front of a port nobody
//! listens on, or without the key, says so in its status and never becomes Ready. A
//! legacy SSE remote server is served the same way. Real MCP clients (both
//! SDKs) and the MCP conformance suite pass through it.

use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPRemoteProxy;
use api::remoteproxy::MCPRemoteProxyPhase;
use e2e::curl::call_tool;
use e2e::proxy::{Driver, FIXTURE_STEPS, conformance_passes_through_the_cluster};
use e2e::{apply_yaml, wait_until};

/// The fixture as `name`, run as a remote server would be: no MCPServer, no proxy of
/// ours. `args` after the mode's own: how it speaks and what it requires.
fn remote_server_yaml(name: &str, args: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: mcp
          image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
          imagePullPolicy: Never
          args: [{args}]
          ports: [{{containerPort: 8080, name: http}}]
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {{drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 8080, targetPort: http, name: http}}]
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// The remote server's API key (`headerForward`) and bearer token
/// (MCPExternalAuthConfig `bearer`), both from the Secret `api-key`.
const KEY_FROM_SECRET: &str = "  headerForward:\n    addHeadersFromSecret:\n      - headerName: X-API-Key\n        valueSecretRef: {name: api-key, key: token}\n  externalAuthConfigRef: {name: bearer}\n";

fn proxy_yaml(name: &str, remote_url: &str, extra: &str) -> String {
    format!(
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata:\n  name: {name}\nspec:\n  remoteUrl: {remote_url}\n  transport: streamable-http\n{extra}"
    )
}

fn status_of(proxy: &MCPRemoteProxy) -> String {
    let Some(status) = &proxy.status else {
        return "no status".to_owned();
    };
    format!(
        "{:?} {:?} backend={:?}",
        status.phase, status.message, status.backend
    )
}

#[tokio::test]
async fn a_remote_server_is_served_only_through_the_remote_proxy() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-remote");
    let (client, ns, _servers) = e2e::controllers::real_node_with_operator("k8s-remote").await?;
    let _proxies = e2e::controllers::InProcess::mcpremoteproxy_with_real_proxy(&client, &ns.name)?;

    let keyed = r#"http, --port, "8080", --host, 0.0.0.0, --allow-any-host, --require-header, "X-API-Key=e2e-key", --require-header, "Authorization=Bearer e2e-token""#;
    apply_yaml(
        &client,
        &ns.name,
        &remote_server_yaml("remote-fixture", keyed),
    )
    .await?;
    let remote_ip = ns.cluster_ip("remote-fixture").await?;
    // No cluster DNS on the harness node: the remote server by its ClusterIP.
    let remote_url = format!("http://{remote_ip}:8080/mcp");

    // A proxy in front of nothing: its status says so, and it is never Ready.
    apply_yaml(
        &client,
        &ns.name,
        &proxy_yaml("nowhere", &format!("http://{remote_ip}:9/mcp"), ""),
    )
    .await?;
    let proxies = ns.api::<MCPRemoteProxy>();
    let nowhere = wait_until(&proxies, "nowhere", Duration::from_secs(180), |p| {
        p.status.as_ref().is_some_and(|s| {
            s.phase == Some(MCPRemoteProxyPhase::Failed)
                && s.backend
                    .as_ref()
                    .is_some_and(|b| b.reason == "InitializeFailed")
        })
    })
    .await
    .with_context(|| "the unreachable remote reported")?;
    let status = nowhere.status.clone().unwrap_or_default();
    anyhow::ensure!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&format!("{remote_ip}:9"))),
        "{}",
        status_of(&nowhere)
    );
    watch.lap("a proxy in front of a closed port: Failed, naming it");

    // The remote server wants an API key: without it, the proxy says what it answered,
    // and the proxy is not Ready (clients bringing their own key would still be served).
    apply_yaml(&client, &ns.name, &proxy_yaml("keyless", &remote_url, "")).await?;
    let keyless = wait_until(&proxies, "keyless", Duration::from_secs(180), |p| {
        p.status.as_ref().is_some_and(|s| {
            s.backend
                .as_ref()
                .is_some_and(|b| b.reason == "AuthenticationRequired")
                && s.message.as_deref().is_some_and(|m| m.contains("401"))
        })
    })
    .await
    .with_context(|| "the keyless proxy reported")?;
    anyhow::ensure!(
        keyless.status.as_ref().and_then(|s| s.phase) == Some(MCPRemoteProxyPhase::Pending),
        "{}",
        status_of(&keyless)
    );
    watch.lap("a proxy without the remote server's API key: Pending, AuthenticationRequired, 401");

    // The real one: the key from a Secret (headerForward), a tool filter applied.
    apply_yaml(
        &client,
        &ns.name,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-key\nstringData:\n  token: e2e-key\n  bearer: e2e-token\n---\napiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPExternalAuthConfig\nmetadata:\n  name: bearer\nspec:\n  type: bearerToken\n  bearerToken:\n    tokenSecretRef: {name: api-key, key: bearer}\n",
    )
    .await?;
    let applied = Instant::now();
    apply_yaml(
        &client,
        &ns.name,
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPToolConfig\nmetadata:\n  name: few\nspec:\n  toolsFilter: [echo, test_simple_text, test_tool_with_progress, test_sampling]\n",
    )
    .await?;
    apply_yaml(
        &client,
        &ns.name,
        &proxy_yaml(
            "fixture",
            &remote_url,
            &format!("{KEY_FROM_SECRET}  toolConfigRef: {{name: few}}\n"),
        ),
    )
    .await?;
    let ready = wait_until(&proxies, "fixture", Duration::from_secs(180), |p| {
        p.status.as_ref().and_then(|s| s.phase) == Some(MCPRemoteProxyPhase::Ready)
    })
    .await
    .with_context(|| "the remote proxy Ready")?;
    let backend = ready
        .status
        .as_ref()
        .and_then(|s| s.backend.clone())
        .context("status.backend written by the proxy")?;
    anyhow::ensure!(
        backend.reason == "Initialized"
            && backend.server_name.as_deref() == Some("mcp-fixture")
            && backend.tools.is_some_and(|n| n > 4),
        "{backend:?}"
    );
    watch.lap(&format!(
        "Ready {:?} after apply: {} answered, {} tools behind the proxy",
        applied.elapsed(),
        backend.server_name.unwrap_or_default(),
        backend.tools.unwrap_or_default()
    ));
    let runconfig = ns
        .api::<k8s_openapi::api::core::v1::ConfigMap>()
        .get("fixture-runconfig")
        .await?;
    let text = serde_json::to_string(&runconfig.data)?;
    anyhow::ensure!(
        text.contains("TOOLHIVE_HEADER_FROM_SECRET_0")
            && text.contains("TOOLHIVE_EXTERNAL_AUTH_BEARER")
            && !text.contains("e2e-key")
            && !text.contains("e2e-token"),
        "the key reaches the proxy by environment, never in its RunConfig: {text}"
    );
    let url = format!(
        "http://{}:8080/mcp",
        ns.cluster_ip("mcp-fixture-remote-proxy").await?
    );
    anyhow::ensure!(
        ready.status.and_then(|s| s.url).as_deref()
            == Some(
                format!(
                    "http://mcp-fixture-remote-proxy.{}.svc.cluster.local:8080/mcp",
                    ns.name
                )
                .as_str()
            ),
        "status.url"
    );

    // Both SDKs through the remote proxy; the filter holds (a hidden tool is refused).
    let steps = FIXTURE_STEPS;
    let target = url.clone();
    tokio::task::spawn_blocking(move || {
        for driver in Driver::BOTH {
            driver.run(&target, "streamable-http", steps);
        }
    })
    .await?;
    watch.lap("TypeScript and Python SDKs through the remote proxy");
    let hidden = call_tool(&url, "whoami")?;
    anyhow::ensure!(
        hidden.contains("unknown tool"),
        "a tool the MCPToolConfig hides is refused through the proxy: {hidden}"
    );

    // The conformance suite through the remote proxy, without the filter.
    apply_yaml(
        &client,
        &ns.name,
        &proxy_yaml("fixture", &remote_url, KEY_FROM_SECRET),
    )
    .await?;
    wait_until(&proxies, "fixture", Duration::from_secs(180), |p| {
        p.status.as_ref().is_some_and(|s| {
            s.observed_generation == p.metadata.generation
                && s.phase == Some(MCPRemoteProxyPhase::Ready)
                && s.tool_config_hash.is_none()
        })
    })
    .await?;
    // Ready follows the Deployment's availability, which an old pod (with the tool
    // filter) still gives during the roll: the suite runs once only new pods serve.
    let deployment = wait_until(
        &ns.api::<k8s_openapi::api::apps::v1::Deployment>(),
        "fixture",
        Duration::from_secs(180),
        e2e::rolled_out,
    )
    .await?;
    // …and the old pod is gone, not only replaced: while it terminates it drains, still
    // answering (with its filter) the connections kube-proxy has not moved yet.
    e2e::only_current_pods(&ns, &deployment, Duration::from_secs(120)).await?;
    conformance_passes_through_the_cluster(&url, "the remote proxy").await?;
    watch.lap("conformance through the remote proxy");

    // A legacy SSE remote server: the proxy serves it as SSE, its handshake on the stream.
    apply_yaml(
        &client,
        &ns.name,
        &remote_server_yaml(
            "remote-sse",
            r#"sse, --port, "8080", --host, 0.0.0.0, --allow-any-host"#,
        ),
    )
    .await?;
    let sse_ip = ns.cluster_ip("remote-sse").await?;
    apply_yaml(
        &client,
        &ns.name,
        &format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata:\n  name: sse\nspec:\n  remoteUrl: http://{sse_ip}:8080/sse\n  transport: sse\n"
        ),
    )
    .await?;
    let sse = wait_until(&proxies, "sse", Duration::from_secs(180), |p| {
        p.status.as_ref().and_then(|s| s.phase) == Some(MCPRemoteProxyPhase::Ready)
    })
    .await
    .with_context(|| "the SSE remote proxy Ready")?;
    anyhow::ensure!(
        sse.status
            .as_ref()
            .and_then(|s| s.url.as_deref())
            .is_some_and(|u| u.ends_with(":8080/sse")),
        "{}",
        status_of(&sse)
    );
    let sse_url = format!(
        "http://{}:8080/sse",
        ns.cluster_ip("mcp-sse-remote-proxy").await?
    );
    tokio::task::spawn_blocking(move || {
        for driver in Driver::BOTH {
            driver.run(&sse_url, "sse", steps);
        }
    })
    .await?;
    watch.lap("a legacy SSE remote server: Ready, both SDKs through its proxy");
    ns.delete().await
}
