//! `helm install` for real: the chart's operator runs from the image `make images`
//! built, as a pod on the harness's real node, with leader election and its admission
//! webhook reached by the API server through the webhook Service. Then `helm upgrade`
//! to a chart whose CRD changed updates the CRD, and `helm uninstall` leaves nothing
//! behind but the CRDs.
//!
//! One test in its own binary: it takes ownership of the shared cluster's CRDs, which
//! no other test may apply meanwhile (test binaries run one after another).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use e2e::{TestNamespace, client, helm, kubectl, run_ok, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::ListParams;

const RELEASE: &str = "toolhive";

fn helm_ok(args: &[&str]) -> anyhow::Result<String> {
    let mut command = helm();
    command.args(args);
    run_ok(command, &format!("helm {}", args.join(" ")))
}

/// install or upgrade the chart at `chart` into `system`, watching `team`.
fn helm_deploy(verb: &str, chart: &Path, system: &str, team: &str) -> anyhow::Result<String> {
    let chart = chart.to_string_lossy();
    let watch = format!("watchNamespace={team}");
    let mut args = vec![
        verb,
        RELEASE,
        &chart,
        "-n",
        system,
        "--set",
        &watch,
        "--wait",
        "--timeout",
        "180s",
    ];
    if verb == "install" {
        // The shared test cluster's CRDs were applied by other tests (e2e::install_crds).
        args.push("--take-ownership");
    }
    helm_ok(&args)
}

/// A copy of the chart, version 0.1.1, whose MCPServer CRD has one more printer column.
fn upgraded_chart(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = e2e::repo_root().join("charts/toolhive");
    let target = dir.join("toolhive");
    run_ok(
        {
            let mut c = Command::new("cp");
            c.arg("-r").arg(&source).arg(&target);
            c
        },
        "copying the chart",
    )?;
    let chart_yaml = target.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml)?.replace("version: 0.1.0", "version: 0.1.1");
    std::fs::write(&chart_yaml, text)?;
    let crd = std::fs::read_dir(target.join("files/crds"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_mcpservers.yaml"))
        .context("the chart has the MCPServer CRD in files/crds")?;
    let text = std::fs::read_to_string(&crd)?;
    let column = "  - additionalPrinterColumns:\n    - jsonPath: .metadata.generation\n      name: Upgraded\n      type: integer\n";
    anyhow::ensure!(text.contains("  - additionalPrinterColumns:\n"));
    std::fs::write(
        &crd,
        text.replacen("  - additionalPrinterColumns:\n", column, 1),
    )?;
    Ok(target)
}

fn has_upgraded_column(crd: &CustomResourceDefinition) -> bool {
    crd.spec.versions.iter().any(|v| {
        v.additional_printer_columns
            .iter()
            .flatten()
            .any(|c| c.name == "Upgraded")
    })
}

/// Applies a manifest with kubectl (client side) and returns its stderr on refusal.
fn kubectl_apply(namespace: &str, file: &Path) -> anyhow::Result<Result<(), String>> {
    let output = kubectl()
        .args(["apply", "-n", namespace, "-f"])
        .arg(file)
        .output()?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

#[tokio::test]
async fn helm_install_runs_the_operator_and_its_webhook_on_the_real_node() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("helm-real");
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let restricted = [("pod-security.kubernetes.io/enforce", "restricted")];
    let system = TestNamespace::on_real_node(&client, "helm-real", &restricted).await?;
    let team = TestNamespace::on_real_node(&client, "helm-team", &restricted).await?;
    let chart = e2e::repo_root().join("charts/toolhive");
    helm_deploy("install", &chart, &system.name, &team.name)?;
    watch.lap("helm install --wait");

    // The operator runs for real on the real node, and is Ready.
    let pods = system
        .api::<Pod>()
        .list(&ListParams::default().labels("app.kubernetes.io/name=thv-operator"))
        .await?;
    let pod = pods.items.first().context("an operator pod")?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().context("pod spec")?;
    assert_eq!(spec.node_name.as_deref(), Some("thv-node"));
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some(concat!(
            "ghcr.io/stacklok/toolhive-rs/operator:",
            env!("CARGO_PKG_VERSION")
        ))
    );

    // It holds the leader Lease.
    let lease = wait_until(
        &system.api::<Lease>(),
        "thv-operator-leader",
        Duration::from_secs(60),
        |l: &Lease| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .is_some_and(|h| h.contains(&pod_name))
        },
    )
    .await?;
    assert!(lease.spec.is_some());
    watch.lap("leader Lease held");

    // The webhook, reached through its Service, refuses an invalid manifest with the
    // field path; a valid one is admitted and reconciled by the operator in the pod.
    let invalid = e2e::repo_root().join("examples/invalid/cedar-syntax.yaml");
    let mut refusal = String::new();
    for _ in 0..60 {
        match kubectl_apply(&team.name, &invalid)? {
            Ok(()) => anyhow::bail!("an invalid Cedar policy was admitted"),
            Err(message) if message.contains("denied the request") => {
                refusal = message;
                break;
            }
            // The operator is still issuing its certificate or publishing the caBundle.
            Err(message) => refusal = message,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        refusal.contains("spec.authzConfig.inline.policies[1]"),
        "refused with the field path: {refusal}"
    );
    watch.lap("webhook refused the invalid manifest");
    kubectl_apply(
        &team.name,
        &e2e::repo_root().join("examples/mcpserver-minimal.yaml"),
    )?
    .map_err(anyhow::Error::msg)?;
    wait_until(
        &team.api::<ConfigMap>(),
        "everything-runconfig",
        Duration::from_secs(60),
        |_| true,
    )
    .await?;

    watch.lap("MCPServer reconciled");
    // The chart turns NetworkPolicies on: only the proxy may reach the MCP server's pods
    // (applied with the chart's RBAC); an MCPServer that opts out gets its policy deleted.
    let policies = team.api::<NetworkPolicy>();
    let policy = wait_until(
        &policies,
        "mcp-everything-ingress",
        Duration::from_secs(60),
        |_| true,
    )
    .await?;
    let selected = policy
        .spec
        .and_then(|s| s.pod_selector)
        .and_then(|s| s.match_labels)
        .unwrap_or_default();
    assert_eq!(selected.get("app").map(String::as_str), Some("everything"));
    e2e::kubectl_ok(&[
        "patch",
        "mcpserver",
        "everything",
        "-n",
        &team.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"networkPolicy":{"enabled":false}}}"#,
    ])?;
    let mut gone = false;
    for _ in 0..60 {
        if policies.get_opt("mcp-everything-ingress").await?.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(gone, "the opted-out server's NetworkPolicy is deleted");
    watch.lap("NetworkPolicy applied by default, deleted when the server opts out");
    // Its metrics answer, counting that reconcile (through the API server's proxy to the metrics Service).
    let metrics = e2e::kubectl_ok(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/{}/services/thv-operator-metrics:8080/proxy/metrics",
            system.name
        ),
    ])?;
    assert!(
        metrics.contains("thv_operator_reconcile_total"),
        "{metrics}"
    );

    // helm upgrade to a chart whose CRD changed updates the CRD; then back.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let tmp = std::env::temp_dir().join(format!("thv-chart-upgrade-{}", system.name));
    let _ = std::fs::remove_dir_all(&tmp);
    watch.lap("helm upgrade and back");
    std::fs::create_dir_all(&tmp)?;
    let upgraded = upgraded_chart(&tmp)?;
    helm_deploy("upgrade", &upgraded, &system.name, &team.name)?;
    let crd = crds.get("mcpservers.toolhive.stacklok.dev").await?;
    assert!(has_upgraded_column(&crd), "helm upgrade updated the CRD");
    helm_deploy("upgrade", &chart, &system.name, &team.name)?;
    assert!(!has_upgraded_column(
        &crds.get("mcpservers.toolhive.stacklok.dev").await?
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    watch.lap("helm upgrade and back");

    // helm uninstall: nothing of the release is left but the CRDs (kept on purpose).
    helm_ok(&["uninstall", RELEASE, "-n", &system.name, "--wait"])?;
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let mut left = Vec::new();
    for _ in 0..60 {
        left = e2e::kubectl_ok(&[
            "get",
            "deploy,rs,pod,svc,sa,secret,cm,role,rolebinding,lease",
            "-n",
            &system.name,
            "-o",
            "name",
        ])?
        .lines()
        .filter(|l| !l.ends_with("/default") && !l.ends_with("/kube-root-ca.crt"))
        .map(str::to_owned)
        .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(left.is_empty(), "left in {}: {left:?}", system.name);
    watch.lap("helm uninstall, nothing left");
    let cluster_left = e2e::kubectl_ok(&[
        "get",
        "clusterrole,clusterrolebinding,validatingwebhookconfiguration",
        "-l",
        &selector,
        "-o",
        "name",
    ])?;
    assert!(
        !cluster_left.contains(&system.name),
        "cluster-scoped objects left: {cluster_left}"
    );
    assert!(
        crds.get_opt("mcpservers.toolhive.stacklok.dev")
            .await?
            .is_some(),
        "CRDs are kept (helm.sh/resource-policy: keep)"
    );
    let deployments = system
        .api::<Deployment>()
        .list(&ListParams::default())
        .await?;
    assert!(deployments.items.is_empty());
    team.delete().await?;
    system.delete().await
}
