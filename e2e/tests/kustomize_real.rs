//! `kubectl apply -k config/default` installs what the chart installs by default, and it
//! runs: the operator pod on the harness's real node, its webhook (cluster-wide, through
//! its Service) refusing an invalid manifest with the field path. `kubectl delete -k`
//! removes it again (all but the CRDs).
//!
//! One test in its own binary: a cluster-wide operator and webhook must not run while
//! other tests use the shared cluster (test binaries run one after another).

use std::time::Duration;

use anyhow::Context;
use e2e::{REAL_NODE_ANNOTATIONS, TestNamespace, client, kubectl, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};

const SYSTEM: &str = "toolhive-system";

fn kubectl_run(args: &[&str]) -> anyhow::Result<std::process::Output> {
    kubectl()
        .args(args)
        .output()
        .with_context(|| format!("kubectl {}", args.join(" ")))
}

#[tokio::test]
async fn kubectl_apply_k_config_default_runs_the_operator_and_its_webhook() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("kustomize-real");
    let client = client().await?;
    let config = e2e::repo_root().join("config/default");
    let config = config.to_string_lossy();

    // The namespace exists first so that its pods go to the real node (kustomize's
    // Namespace object then only adds what it declares).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(SYSTEM).await?.is_none() {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(SYSTEM.to_owned());
        ns.metadata.annotations = Some(
            REAL_NODE_ANNOTATIONS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let out = kubectl_run(&["apply", "--server-side", "--force-conflicts", "-k", &config])?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl apply -k config/default: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SYSTEM);
    wait_until(
        &deployments,
        "thv-operator",
        Duration::from_secs(120),
        |d: &Deployment| {
            d.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or_default()
                >= 1
        },
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), SYSTEM);
    let pod = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=thv-operator"))
        .await?
        .items
        .into_iter()
        .next()
        .context("an operator pod")?;
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some("thv-node"),
        "the operator runs on the real node"
    );
    watch.lap("operator Ready on the real node");

    // The cluster-wide webhook refuses an invalid manifest in any namespace.
    let team = TestNamespace::on_real_node(&client, "kustomize-team", &[]).await?;
    let invalid = e2e::repo_root().join("examples/invalid/cedar-syntax.yaml");
    let mut refusal = String::new();
    for _ in 0..90 {
        let out = kubectl()
            .args(["apply", "-n", &team.name, "-f"])
            .arg(&invalid)
            .output()?;
        anyhow::ensure!(
            !out.status.success(),
            "an invalid Cedar policy was admitted"
        );
        refusal = String::from_utf8_lossy(&out.stderr).into_owned();
        if refusal.contains("denied the request") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        refusal.contains("spec.authzConfig.inline.policies[1]"),
        "refused with the field path: {refusal}"
    );
    team.delete().await?;
    watch.lap("webhook refused the invalid manifest");

    // kubectl delete -k removes it. The CRDs stay: deleting them would delete every
    // MCPServer of the cluster (and the other tests' CRDs).
    let out = kubectl_run(&[
        "delete",
        "-k",
        &config,
        "-l",
        "app.kubernetes.io/name=thv-operator",
        "--ignore-not-found",
        "--wait=true",
    ])?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl delete -k config/default: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    watch.lap("kubectl delete -k");
    let out = kubectl_run(&["delete", "namespace", SYSTEM, "--wait=true"])?;
    anyhow::ensure!(out.status.success(), "deleting {SYSTEM}");
    watch.lap("namespace deleted");
    Ok(())
}
