//! The control plane is real: our CRDs install with server-side apply and are explained,
//! an MCPServer round-trips, the garbage collector, kwok-backed pods and PodSecurity
//! admission all behave as on a real cluster.

use std::time::Duration;

use api::MCPServer;
use e2e::{TestNamespace, apply_yaml, client, kubectl_ok, wait_gone, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};

#[tokio::test]
async fn crds_install_server_side_and_are_explained() -> anyhow::Result<()> {
    client().await?;
    let crds = e2e::repo_root().join("config/crd/bases");
    let out = kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &crds.to_string_lossy(),
    ])?;
    assert!(out.contains("mcpservers.toolhive.stacklok.dev"), "{out}");
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/mcpservers.toolhive.stacklok.dev",
    ])?;
    let explained = kubectl_ok(&["explain", "mcpserver.spec.transport"])?;
    assert!(
        explained.contains("How the MCP server itself speaks MCP"),
        "{explained}"
    );
    assert!(explained.contains("streamable-http"), "{explained}");
    Ok(())
}

#[tokio::test]
async fn mcpserver_is_created_and_read_back_with_defaults() -> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, "smoke-crd", &[]).await?;
    apply_yaml(
        &client,
        &ns.name,
        &std::fs::read_to_string(e2e::repo_root().join("examples/mcpserver-minimal.yaml"))?,
    )
    .await?;
    let servers = ns.api::<MCPServer>();
    let server = servers.get("everything").await?;
    assert_eq!(
        server.spec.proxy_port, 8080,
        "schema default applied by the API server"
    );
    assert_eq!(server.spec.transport, api::mcpserver::Transport::Stdio);
    let printed = kubectl_ok(&["get", "mcps", "-n", &ns.name])?;
    assert!(
        printed.contains("STATUS") && printed.contains("URL") && printed.contains("everything"),
        "{printed}"
    );
    ns.delete().await
}

#[tokio::test]
async fn v1alpha1_manifests_apply_with_a_deprecation_warning() -> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, "smoke-alpha", &[]).await?;
    let manifest = "apiVersion: toolhive.stacklok.dev/v1alpha1\nkind: MCPServer\nmetadata: {name: legacy}\nspec: {image: docker.io/mcp/time:latest}\n";
    let path = std::env::temp_dir().join(format!("{}-legacy.yaml", ns.name));
    std::fs::write(&path, manifest)?;
    let output = e2e::kubectl()
        .args(["apply", "-n", &ns.name, "-f"])
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("deprecated"), "warning shown: {stderr}");
    assert_eq!(
        ns.api::<MCPServer>().get("legacy").await?.spec.image,
        "docker.io/mcp/time:latest"
    );
    ns.delete().await
}

#[tokio::test]
async fn garbage_collector_deletes_owned_objects() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-gc", &[]).await?;
    let maps = ns.api::<ConfigMap>();
    let mut owner = ConfigMap::default();
    owner.metadata.name = Some("owner".into());
    let owner = maps.create(&PostParams::default(), &owner).await?;
    let child: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "child", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]}
    }))?;
    maps.create(&PostParams::default(), &child).await?;
    maps.delete("owner", &DeleteParams::background()).await?;
    wait_gone(&maps, "child", Duration::from_secs(60)).await?;
    ns.delete().await
}

#[tokio::test]
async fn deployment_pods_become_ready_through_kwok() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-kwok", &[]).await?;
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx:1.27}]\n";
    apply_yaml(&client, &ns.name, yaml).await?;
    wait_until(
        &ns.api::<Deployment>(),
        "web",
        Duration::from_secs(60),
        |d: &Deployment| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1),
    )
    .await?;
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app=web"))
        .await?;
    let pod = &pods.items[0];
    assert_eq!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert!(
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| n.starts_with("kwok-node"))
    );
    ns.delete().await
}

#[tokio::test]
async fn pod_security_refuses_privileged_pods_in_restricted_namespaces() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(
        &client,
        "smoke-psa",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let privileged: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}
    }))?;
    let error = ns
        .api::<Pod>()
        .create(&PostParams::default(), &privileged)
        .await
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("violates PodSecurity \"restricted"),
        "{error}"
    );
    ns.delete().await
}
