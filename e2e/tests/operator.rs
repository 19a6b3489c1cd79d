//! The MCPServer controller on the real control plane: objects, rollouts on config and
//! Secret changes, reference watches, drift repair, invalid specs, garbage collection,
//! and kstatus verdicts.

use std::time::Duration;

use api::mcpserver::MCPServerPhase;
use api::{MCPServer, MCPToolConfig};
use e2e::controllers::InProcess;
use e2e::{TestNamespace, apply_yaml, client, wait_gone, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use operator::labels::{RUNCONFIG_CHECKSUM, SECRETS_CHECKSUM};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn setup(prefix: &str) -> anyhow::Result<(Client, TestNamespace, InProcess)> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, prefix, &[]).await?;
    let operator = InProcess::mcpserver(&client, &ns.name)?;
    Ok((client, ns, operator))
}

fn phase(server: &MCPServer) -> Option<MCPServerPhase> {
    server.status.as_ref().and_then(|s| s.phase)
}

fn condition(server: &MCPServer, type_: &str) -> Option<String> {
    server
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// kstatus's verdict for a custom resource (observedGeneration, Stalled, Reconciling).
fn kstatus(server: &MCPServer) -> &'static str {
    let Some(status) = &server.status else {
        return "InProgress";
    };
    if status.observed_generation != server.metadata.generation {
        "InProgress"
    } else if condition(server, "Stalled").as_deref() == Some("True") {
        "Failed"
    } else if condition(server, "Reconciling").as_deref() == Some("True") {
        "InProgress"
    } else {
        "Current"
    }
}

fn template_annotation(d: &Deployment, key: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

const SERVER: &str = "apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: fetch}
spec:
  image: ghcr.io/stackloklabs/gofetch/server:1.0.1
  transport: streamable-http
  mcpPort: 8080
  secrets: [{name: fetch-token, key: token, targetEnvName: TOKEN}]
  toolConfigRef: {name: fetch-tools}
";

const TOOLS: &str = "apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPToolConfig
metadata: {name: fetch-tools}
spec: {toolsFilter: [fetch]}
---
apiVersion: v1
kind: Secret
metadata: {name: fetch-token}
stringData: {token: first}
";

#[tokio::test]
async fn creates_every_owned_object_and_is_ready_only_once_a_backend_is_reported()
-> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-create").await?;
    apply_yaml(&client, &ns.name, TOOLS).await?;
    apply_yaml(&client, &ns.name, SERVER).await?;
    // The proxy Deployment is available on kwok, but no proxy reported a server that
    // answered: not Ready, and the status says why.
    let waiting = wait_until(&ns.api::<MCPServer>(), "fetch", TIMEOUT, |s| {
        s.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await?;
    assert_eq!(phase(&waiting), Some(MCPServerPhase::Pending));
    assert_eq!(condition(&waiting, "Ready").as_deref(), Some("False"));
    assert!(
        waiting
            .status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("has not reported its MCP server")),
        "{:?}",
        waiting.status
    );
    e2e::report_initialized(&ns.api::<MCPServer>(), "fetch").await?;
    let server = wait_until(&ns.api::<MCPServer>(), "fetch", TIMEOUT, |s| {
        phase(s) == Some(MCPServerPhase::Ready)
    })
    .await?;
    assert_eq!(condition(&server, "BackendReady").as_deref(), Some("True"));
    assert_eq!(kstatus(&server), "Current");
    let status = server.status.clone().unwrap_or_default();
    assert_eq!(
        status.url.as_deref(),
        Some(
            format!(
                "http://mcp-fetch-proxy.{}.svc.cluster.local:8080/mcp",
                ns.name
            )
            .as_str()
        )
    );
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(
        condition(&server, "ToolConfigRefValidated").as_deref(),
        Some("True")
    );

    let uid = server.metadata.uid.clone();
    let owned_by_server = |meta: &kube::api::ObjectMeta| {
        meta.owner_references.as_ref().is_some_and(|o| {
            o.iter()
                .any(|r| r.uid == uid.clone().unwrap_or_default() && r.controller == Some(true))
        })
    };
    let deployment = ns.api::<Deployment>().get("fetch").await?;
    assert!(owned_by_server(&deployment.metadata));
    assert!(owned_by_server(
        &ns.api::<Service>().get("mcp-fetch-proxy").await?.metadata
    ));
    assert!(owned_by_server(
        &ns.api::<ServiceAccount>()
            .get("fetch-proxy-runner")
            .await?
            .metadata
    ));
    assert!(owned_by_server(
        &ns.api::<ServiceAccount>().get("fetch-sa").await?.metadata
    ));
    assert!(owned_by_server(
        &ns.api::<Role>().get("fetch-proxy-runner").await?.metadata
    ));
    assert!(owned_by_server(
        &ns.api::<RoleBinding>()
            .get("fetch-proxy-runner")
            .await?
            .metadata
    ));
    let runconfig = ns.api::<ConfigMap>().get("fetch-runconfig").await?;
    assert!(owned_by_server(&runconfig.metadata));
    let json = runconfig
        .data
        .unwrap_or_default()
        .remove("runconfig.json")
        .unwrap_or_default();
    let parsed = runconfig::from_json(json.as_bytes())?;
    assert_eq!(parsed.proxy.tools.filter, ["fetch"]);
    assert!(!json.contains("first"), "no secret value in the RunConfig");
    assert!(runconfig::validate(&parsed).is_ok());
    ns.delete().await
}

#[tokio::test]
async fn spec_tool_config_and_secret_changes_roll_the_proxy() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-roll").await?;
    apply_yaml(&client, &ns.name, TOOLS).await?;
    apply_yaml(&client, &ns.name, SERVER).await?;
    let deployments = ns.api::<Deployment>();
    let first = wait_until(&deployments, "fetch", TIMEOUT, |d| {
        template_annotation(d, RUNCONFIG_CHECKSUM).is_some()
    })
    .await?;
    let (checksum, secrets) = (
        template_annotation(&first, RUNCONFIG_CHECKSUM),
        template_annotation(&first, SECRETS_CHECKSUM),
    );

    // A spec change: new RunConfig, new checksum, a rollout.
    apply_yaml(
        &client,
        &ns.name,
        &SERVER.replace("mcpPort: 8080", "mcpPort: 9090"),
    )
    .await?;
    let second = wait_until(&deployments, "fetch", TIMEOUT, |d| {
        template_annotation(d, RUNCONFIG_CHECKSUM) != checksum
    })
    .await?;
    let checksum = template_annotation(&second, RUNCONFIG_CHECKSUM);

    // A referenced MCPToolConfig change: the RunConfig follows.
    apply_yaml(
        &client,
        &ns.name,
        &TOOLS.replace("toolsFilter: [fetch]", "toolsFilter: [fetch, fetch_html]"),
    )
    .await?;
    wait_until(&ns.api::<ConfigMap>(), "fetch-runconfig", TIMEOUT, |m| {
        m.data
            .as_ref()
            .and_then(|d| d.get("runconfig.json"))
            .is_some_and(|j| j.contains("fetch_html"))
    })
    .await?;
    wait_until(&deployments, "fetch", TIMEOUT, |d| {
        template_annotation(d, RUNCONFIG_CHECKSUM) != checksum
    })
    .await?;

    // A referenced Secret change: the pods roll.
    apply_yaml(
        &client,
        &ns.name,
        &TOOLS.replace("token: first", "token: second"),
    )
    .await?;
    wait_until(&deployments, "fetch", TIMEOUT, |d| {
        template_annotation(d, SECRETS_CHECKSUM) != secrets
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn deleted_or_edited_objects_are_repaired() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-drift").await?;
    apply_yaml(&client, &ns.name, TOOLS).await?;
    apply_yaml(&client, &ns.name, SERVER).await?;
    let deployments = ns.api::<Deployment>();
    let original = wait_until(&deployments, "fetch", TIMEOUT, |_| true).await?;
    deployments
        .delete("fetch", &DeleteParams::foreground())
        .await?;
    wait_until(&deployments, "fetch", TIMEOUT, |d| {
        d.metadata.uid != original.metadata.uid
    })
    .await?;

    // A hand edit of an owned field is put back.
    let roles = ns.api::<Role>();
    let patch =
        serde_json::json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    roles
        .patch(
            "fetch-proxy-runner",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await?;
    wait_until(&roles, "fetch-proxy-runner", TIMEOUT, |r| {
        r.rules.as_ref().is_some_and(|rules| {
            rules
                .iter()
                .all(|rule| !rule.verbs.contains(&"*".to_owned()))
        })
    })
    .await?;

    // A hand edit of the Deployment's metadata does not move its generation (the
    // operator reads such a Deployment instead of applying it), and is put back too.
    let patch = serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/instance": null}}});
    deployments
        .patch(
            "fetch",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await?;
    wait_until(&deployments, "fetch", TIMEOUT, |d| {
        d.metadata.labels.as_ref().is_some_and(|labels| {
            labels.get("app.kubernetes.io/instance").map(String::as_str) == Some("fetch")
        })
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn invalid_spec_fails_with_event_and_creates_nothing() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-invalid").await?;
    let bad = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: bad}\nspec:\n  image: ghcr.io/org/server:1\n  authzConfig:\n    type: inline\n    inline:\n      policies: ['permit(principal, action == Action::\"drop_tables\", resource);']\n";
    apply_yaml(&client, &ns.name, bad).await?;
    let server = wait_until(&ns.api::<MCPServer>(), "bad", TIMEOUT, |s| {
        phase(s) == Some(MCPServerPhase::Failed)
    })
    .await?;
    assert_eq!(kstatus(&server), "Failed");
    let message = server.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains("spec.authzConfig.inline.policies[0]"),
        "{message}"
    );
    let events = wait_until_some(&ns.api::<Event>(), |e: &Event| {
        e.reason.as_deref() == Some("InvalidSpec")
    })
    .await?;
    assert_eq!(events.type_.as_deref(), Some("Warning"));
    assert!(
        ns.api::<Deployment>().get_opt("bad").await?.is_none(),
        "nothing created"
    );
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("bad-runconfig")
            .await?
            .is_none(),
        "nothing created"
    );
    ns.delete().await
}

#[tokio::test]
async fn missing_reference_waits_then_proceeds_when_it_appears() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-ref").await?;
    apply_yaml(
        &client,
        &ns.name,
        TOOLS.split("---").nth(1).unwrap_or_default(),
    )
    .await?;
    apply_yaml(&client, &ns.name, SERVER).await?;
    let servers = ns.api::<MCPServer>();
    let waiting = wait_until(&servers, "fetch", TIMEOUT, |s| {
        condition(s, "ToolConfigRefValidated").as_deref() == Some("False")
    })
    .await?;
    assert_eq!(kstatus(&waiting), "InProgress");
    assert!(
        ns.api::<Deployment>().get_opt("fetch").await?.is_none(),
        "not run without its tool filter"
    );
    apply_yaml(&client, &ns.name, TOOLS).await?;
    wait_until(&servers, "fetch", TIMEOUT, |s| {
        s.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await?;
    e2e::report_initialized(&servers, "fetch").await?;
    wait_until(&servers, "fetch", TIMEOUT, |s| {
        phase(s) == Some(MCPServerPhase::Ready)
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn deleting_the_server_collects_its_objects() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-gc").await?;
    apply_yaml(&client, &ns.name, TOOLS).await?;
    apply_yaml(&client, &ns.name, SERVER).await?;
    wait_until(&ns.api::<Deployment>(), "fetch", TIMEOUT, |_| true).await?;
    ns.api::<MCPServer>()
        .delete("fetch", &DeleteParams::background())
        .await?;
    wait_gone(&ns.api::<Deployment>(), "fetch", TIMEOUT).await?;
    wait_gone(&ns.api::<ConfigMap>(), "fetch-runconfig", TIMEOUT).await?;
    wait_gone(&ns.api::<Service>(), "mcp-fetch-proxy", TIMEOUT).await?;
    // The tool config is referenced, not owned: it stays.
    assert!(
        ns.api::<MCPToolConfig>()
            .get_opt("fetch-tools")
            .await?
            .is_some()
    );
    assert!(ns.api::<Secret>().get_opt("fetch-token").await?.is_some());
    ns.delete().await
}

/// Waits until some object in the list satisfies `matches`.
async fn wait_until_some<K>(api: &Api<K>, matches: impl Fn(&K) -> bool) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let start = std::time::Instant::now();
    while start.elapsed() < TIMEOUT {
        if let Some(found) = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|o| matches(o))
        {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("no matching object after {TIMEOUT:?}")
}

/// `spec.groupRef`: a server waits for its group like for any reference; the group's
/// status lists its members as the servers join and leave.
#[tokio::test]
async fn servers_and_remote_proxies_join_and_leave_a_group_and_wait_for_a_missing_one()
-> anyhow::Result<()> {
    let (client, ns, _operator) = setup("op-group").await?;
    let _groups = InProcess::mcpgroup(&client, &ns.name)?;
    let server = |name: &str, group: &str| {
        format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: {name}}}\nspec:\n  image: ghcr.io/stackloklabs/gofetch/server:1.0.1\n  groupRef: {{name: {group}}}\n"
        )
    };
    apply_yaml(&client, &ns.name, &server("alpha", "team")).await?;
    let servers = ns.api::<MCPServer>();
    let waiting = wait_until(&servers, "alpha", TIMEOUT, |s| {
        condition(s, "GroupRefValidated").as_deref() == Some("False")
    })
    .await?;
    assert_eq!(kstatus(&waiting), "InProgress");
    assert!(
        ns.api::<Deployment>().get_opt("alpha").await?.is_none(),
        "not run before its group exists"
    );

    let group = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPGroup\nmetadata: {name: team}\nspec: {description: the team's servers}\n";
    apply_yaml(&client, &ns.name, group).await?;
    apply_yaml(&client, &ns.name, &server("beta", "team")).await?;
    apply_yaml(&client, &ns.name, &server("gamma", "other")).await?;
    let remote = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata: {name: github}\nspec:\n  remoteUrl: https://mcp.example.com/mcp\n  groupRef: {name: team}\n";
    apply_yaml(&client, &ns.name, remote).await?;
    let groups = ns.api::<api::MCPGroup>();
    let members = |g: &api::MCPGroup| {
        g.status
            .as_ref()
            .map(|s| (s.server_count, s.servers.clone()))
    };
    let listed = wait_until(&groups, "team", TIMEOUT, |g| {
        members(g) == Some((2, vec!["alpha".to_owned(), "beta".to_owned()]))
            && g.status
                .as_ref()
                .is_some_and(|s| s.remote_proxy_count == Some(1) && s.remote_proxies == ["github"])
    })
    .await?;
    let status = listed.status.clone().unwrap_or_default();
    assert_eq!(status.phase, api::group::MCPGroupPhase::Ready);
    assert_eq!(status.observed_generation, listed.metadata.generation);
    wait_until(&servers, "alpha", TIMEOUT, |s| {
        condition(s, "GroupRefValidated").as_deref() == Some("True")
    })
    .await?;
    wait_until(&ns.api::<Deployment>(), "alpha", TIMEOUT, |_| true).await?;

    // Leaving: beta moves to another group, alpha is deleted.
    apply_yaml(&client, &ns.name, &server("beta", "other")).await?;
    servers.delete("alpha", &DeleteParams::background()).await?;
    ns.api::<api::MCPRemoteProxy>()
        .delete("github", &DeleteParams::background())
        .await?;
    wait_until(&groups, "team", TIMEOUT, |g| {
        members(g) == Some((0, Vec::new()))
            && g.status
                .as_ref()
                .is_some_and(|s| s.remote_proxy_count == Some(0) && s.remote_proxies.is_empty())
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn a_remote_proxy_does_not_take_over_an_mcpservers_objects() -> anyhow::Result<()> {
    let (client, ns, _servers) = setup("op-clash").await?;
    let _proxies = InProcess::mcpremoteproxy(&client, &ns.name)?;
    let server = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: clash}\nspec:\n  image: ghcr.io/stackloklabs/gofetch/server:1.0.1\n";
    apply_yaml(&client, &ns.name, server).await?;
    let deployments = ns.api::<Deployment>();
    wait_until(&deployments, "clash", TIMEOUT, |_| true).await?;
    // No webhook here (it would refuse the name): the operator must not flip the owner.
    let proxy = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata: {name: clash}\nspec:\n  remoteUrl: https://mcp.example.com/mcp\n";
    apply_yaml(&client, &ns.name, proxy).await?;
    let refused = wait_until(&ns.api::<api::MCPRemoteProxy>(), "clash", TIMEOUT, |p| {
        p.status.as_ref().and_then(|s| s.phase)
            == Some(api::remoteproxy::MCPRemoteProxyPhase::Failed)
    })
    .await?;
    let message = refused.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains("Deployment clash belongs to MCPServer clash"),
        "{message}"
    );
    let owner = deployments
        .get("clash")
        .await?
        .metadata
        .owner_references
        .unwrap_or_default();
    assert_eq!(owner.len(), 1);
    assert_eq!(
        owner[0].kind, "MCPServer",
        "the server keeps its Deployment"
    );
    ns.delete().await
}

#[tokio::test]
async fn a_remote_proxy_waits_for_a_missing_header_secret_naming_it() -> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, "op-rp-secret", &[]).await?;
    let _proxies = InProcess::mcpremoteproxy(&client, &ns.name)?;
    let proxy = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata: {name: keyed}\nspec:\n  remoteUrl: https://mcp.example.com/mcp\n  headerForward:\n    addHeadersFromSecret:\n      - headerName: X-API-Key\n        valueSecretRef: {name: api-key, key: token}\n";
    apply_yaml(&client, &ns.name, proxy).await?;
    let proxies = ns.api::<api::MCPRemoteProxy>();
    let waiting = wait_until(&proxies, "keyed", TIMEOUT, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("Secret api-key (key token)"))
    })
    .await?;
    let status = waiting.status.unwrap_or_default();
    assert_eq!(
        status.phase,
        Some(api::remoteproxy::MCPRemoteProxyPhase::Pending)
    );
    assert!(
        status.message.as_deref().is_some_and(
            |m| m.contains("spec.headerForward.addHeadersFromSecret[0].valueSecretRef")
        ),
        "{status:?}"
    );
    assert!(
        ns.api::<Deployment>().get_opt("keyed").await?.is_none(),
        "no proxy pod that would wait in CreateContainerConfigError"
    );
    apply_yaml(
        &client,
        &ns.name,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api-key}\nstringData: {token: k}\n",
    )
    .await?;
    wait_until(&ns.api::<Deployment>(), "keyed", TIMEOUT, |_| true).await?;
    ns.delete().await
}
