//! The Helm chart installs on the real control plane, cluster-wide or namespace-scoped,
//! and the RBAC it grants is enough for the operator to run an MCPServer: the
//! controller runs here impersonating the chart's ServiceAccount. Without a cluster:
//! the chart lints strictly, its values.schema.json refuses a misspelt value, and
//! config/ (for kustomize) is what the chart renders.
//!
//! The chart's webhook is disabled here: on the loopback control plane nothing routes
//! to Service IPs, so a Service-based webhook would refuse every apply in the shared
//! cluster. The webhook is tested by URL in webhook.rs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::controllers::InProcess;
use e2e::{TestNamespace, apply_yaml, client, client_as, helm, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::Api;

fn helm_ok(args: &[&str]) -> anyhow::Result<String> {
    let output = helm().args(args).output()?;
    anyhow::ensure!(
        output.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs the chart into `namespace` with extra `--set` values, waiting for it; returns
/// the release name. The chart's Service-based webhook is disabled (see the module doc).
/// So are its CRDs: the shared test cluster's CRDs are applied by `e2e::install_crds`,
/// and a release owning them would conflict with the other releases these tests install
/// (Helm refuses to take over objects it did not create, or another release owns).
fn install(namespace: &str, sets: &[&str]) -> anyhow::Result<String> {
    let release = format!("thv-{}", &namespace[namespace.len() - 5..]);
    let chart = chart();
    let mut args = vec![
        "install",
        &release,
        &chart,
        "-n",
        namespace,
        "--set",
        "webhook.enabled=false",
        "--set",
        "crds.install=false",
        "--wait",
        "--timeout",
        "60s",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    helm_ok(&args)?;
    Ok(release)
}

fn chart() -> String {
    e2e::repo_root()
        .join("charts/toolhive")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn namespace_scoped_install_needs_no_cluster_role_and_suffices_for_the_operator()
-> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let system = TestNamespace::create(&client, "chart-system", &[]).await?;
    let team = TestNamespace::create(&client, "chart-team", &[]).await?;
    let release = install(&system.name, &[&format!("watchNamespace={}", team.name)])?;

    // The operator Deployment is scheduled and ready (kwok stands in for the kubelet).
    let deployment = system.api::<Deployment>().get("thv-operator").await?;
    assert_eq!(deployment.status.and_then(|s| s.ready_replicas), Some(1));
    assert!(
        team.api::<Role>().get_opt("thv-operator").await?.is_some(),
        "a Role in the watched namespace"
    );
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        cluster_roles
            .get_opt(&format!("thv-operator-{}", system.name))
            .await?
            .is_none(),
        "no ClusterRole"
    );

    // Run the controller with exactly the chart's permissions.
    let account = format!("system:serviceaccount:{}:thv-operator", system.name);
    let restricted = client_as(
        &account,
        &["system:serviceaccounts", "system:authenticated"],
    )
    .await?;
    let controller = InProcess::mcpserver(&restricted, &team.name)?;
    apply_yaml(
        &client,
        &team.name,
        &std::fs::read_to_string(e2e::repo_root().join("examples/mcpserver-minimal.yaml"))?,
    )
    .await?;
    wait_until(
        &team.api::<MCPServer>(),
        "everything",
        Duration::from_secs(60),
        |s| s.status.as_ref().and_then(|s| s.ready_replicas) == Some(1),
    )
    .await?;
    e2e::report_initialized(&team.api::<MCPServer>(), "everything").await?;
    wait_until(
        &team.api::<MCPServer>(),
        "everything",
        Duration::from_secs(60),
        |s| s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready),
    )
    .await?;
    drop(controller);

    // The MCPRemoteProxy controller too: it creates the proxy's Role, which the chart's
    // permissions must cover (Kubernetes refuses to let the operator escalate).
    let proxies = InProcess::mcpremoteproxy(&restricted, &team.name)?;
    apply_yaml(
        &client,
        &team.name,
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata: {name: github}\nspec:\n  remoteUrl: https://mcp.example.com/mcp\n",
    )
    .await?;
    let remote = team.api::<api::MCPRemoteProxy>();
    wait_until(&remote, "github", Duration::from_secs(60), |p| {
        p.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await?;
    e2e::report_initialized(&remote, "github").await?;
    wait_until(&remote, "github", Duration::from_secs(60), |p| {
        p.status.as_ref().and_then(|s| s.phase)
            == Some(api::remoteproxy::MCPRemoteProxyPhase::Ready)
    })
    .await?;
    drop(proxies);

    helm_ok(&["uninstall", &release, "-n", &system.name, "--wait"])?;
    team.delete().await?;
    system.delete().await
}

#[tokio::test]
async fn cluster_wide_install_grants_a_cluster_role() -> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let system = TestNamespace::create(&client, "chart-wide", &[]).await?;
    let release = install(&system.name, &["operator.leaderElect=false"])?;
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    let role = cluster_roles
        .get(&format!("thv-operator-{}", system.name))
        .await?;
    let rules = role.rules.unwrap_or_default();
    assert!(
        rules.iter().any(|r| r
            .resources
            .as_ref()
            .is_some_and(|res| res.contains(&"pods/attach".to_owned()))),
        "can grant the proxy attach"
    );
    let args = system
        .api::<Deployment>()
        .get("thv-operator")
        .await?
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default();
    assert!(!args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    helm_ok(&["uninstall", &release, "-n", &system.name, "--wait"])?;
    assert!(
        cluster_roles
            .get_opt(&format!("thv-operator-{}", system.name))
            .await?
            .is_none(),
        "removed on uninstall"
    );
    system.delete().await
}

#[test]
fn chart_passes_strict_lint() -> anyhow::Result<()> {
    helm_ok(&["lint", "--strict", &chart()])?;
    Ok(())
}

/// values.schema.json: a misspelt key or a value outside its enum fails the install with
/// a message naming it, instead of being silently ignored.
#[test]
fn chart_refuses_a_misspelt_value_naming_it() -> anyhow::Result<()> {
    let chart = chart();
    for (set, named) in [
        ("operator.replica=2", "'replica' not allowed"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("webhook.certMode=selfsigned", "/webhook/certMode"),
    ] {
        let output = helm()
            .args(["template", "thv", &chart, "--set", set])
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains(named),
            "--set {set}: the error names {named}: {stderr}"
        );
    }
    Ok(())
}

/// config/{rbac,manager,webhook,default} (`kubectl apply -k config/default`) is what
/// scripts/gen-config.sh generates from the chart: the same objects as `helm install`.
#[test]
fn config_default_matches_the_chart() -> anyhow::Result<()> {
    let root = e2e::repo_root();
    let generated = std::env::temp_dir().join(format!("thv-gen-config-{}", std::process::id()));
    let output = Command::new(root.join("scripts/gen-config.sh"))
        .arg(&generated)
        .env("HELM", helm().get_program())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "scripts/gen-config.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut stale = Vec::new();
    for folder in ["rbac", "manager", "webhook", "default"] {
        let (fresh, committed) = (generated.join(folder), root.join("config").join(folder));
        for name in file_names(&fresh).union(&file_names(&committed)) {
            let read = |dir: &Path| std::fs::read_to_string(dir.join(name)).ok();
            if read(&fresh) != read(&committed) {
                stale.push(format!("config/{folder}/{name}"));
            }
        }
    }
    std::fs::remove_dir_all(&generated)?;
    assert!(
        stale.is_empty(),
        "config/ differs from the chart in {stale:?}: run scripts/gen-config.sh"
    );
    Ok(())
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}
