//! The MCPRegistry controller on the real control plane: syncs from a ConfigMap and from
//! a local git repository, filters, waits for a missing source, refuses a bad spec, and
//! keeps serving the last good catalogue when the source breaks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use api::MCPRegistry;
use api::registry::MCPRegistryPhase;
use e2e::controllers::InProcess;
use e2e::{TEST_MANAGER, TestNamespace, apply_yaml, client, wait_until};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::Client;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn setup(prefix: &str) -> anyhow::Result<(Client, TestNamespace, InProcess)> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, prefix, &[]).await?;
    let operator = InProcess::mcpregistry(&client, &ns.name)?;
    Ok((client, ns, operator))
}

/// Status and reason of a condition.
fn condition(registry: &MCPRegistry, type_: &str) -> Option<(String, String)> {
    registry
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn synced(registry: &MCPRegistry) -> Option<(String, String)> {
    condition(registry, "Synced")
}

fn is_synced_with(registry: &MCPRegistry, servers: i32) -> bool {
    synced(registry).is_some_and(|(s, _)| s == "True")
        && registry.status.as_ref().and_then(|s| s.server_count) == Some(servers)
        && registry.status.as_ref().and_then(|s| s.observed_generation)
            == registry.metadata.generation
}

fn failed_with(registry: &MCPRegistry, reason: &str) -> bool {
    synced(registry) == Some(("False".into(), reason.into()))
        && registry.status.as_ref().and_then(|s| s.observed_generation)
            == registry.metadata.generation
}

/// kstatus's verdict (observedGeneration, Stalled, Reconciling).
fn kstatus(registry: &MCPRegistry) -> &'static str {
    let Some(status) = &registry.status else {
        return "InProgress";
    };
    let is_true = |t: &str| condition(registry, t).is_some_and(|(s, _)| s == "True");
    if status.observed_generation != registry.metadata.generation {
        "InProgress"
    } else if is_true("Stalled") {
        "Failed"
    } else if is_true("Reconciling") {
        "InProgress"
    } else {
        "Current"
    }
}

/// The output ConfigMap's document, and the ConfigMap.
async fn output(ns: &TestNamespace, registry: &str) -> anyhow::Result<(Value, ConfigMap)> {
    let map = ns
        .api::<ConfigMap>()
        .get(&format!("{registry}-registry"))
        .await?;
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get("registry.json"))
        .context("output ConfigMap has registry.json")?;
    Ok((serde_json::from_str(text)?, map))
}

fn server_names(document: &Value, key: &str) -> Vec<String> {
    document[key]
        .as_object()
        .map(|servers| servers.keys().cloned().collect())
        .unwrap_or_default()
}

/// Server-side applies a ConfigMap with `registry.json` = `document`.
async fn put_source(ns: &TestNamespace, name: &str, document: &str) -> anyhow::Result<()> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"registry.json": document}
    });
    ns.api::<ConfigMap>()
        .patch(
            name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?;
    Ok(())
}

async fn warning_events(
    client: &Client,
    ns: &TestNamespace,
    reason: &str,
) -> anyhow::Result<usize> {
    let events: kube::Api<Event> = kube::Api::namespaced(client.clone(), &ns.name);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.type_.as_deref() == Some("Warning")
                && e.involved_object.kind.as_deref() == Some("MCPRegistry")
        })
        .count())
}

fn toolhive_document(extra_server: bool) -> String {
    let mut servers = json!({
        "fetch": {
            "description": "Fetches a URL and returns its content as markdown.",
            "image": "ghcr.io/stackloklabs/gofetch/server:1.0.1",
            "transport": "streamable-http",
            "tools": ["fetch"],
            "tags": ["web"]
        },
        "time": {
            "description": "Current time and timezone conversion.",
            "image": "docker.io/mcp/time:latest",
            "transport": "stdio",
            "tools": ["get_current_time"],
            "tags": ["time"]
        },
        "github-issues": {
            "description": "GitHub issues, still experimental.",
            "image": "ghcr.io/github/github-mcp-server:v0.19.1",
            "transport": "stdio",
            "tools": ["list_issues"],
            "tags": ["github", "experimental"]
        }
    });
    if extra_server {
        servers["github-pulls"] = json!({
            "description": "GitHub pull requests.",
            "image": "ghcr.io/github/github-mcp-server:v0.19.1",
            "transport": "stdio",
            "tools": ["list_pull_requests"],
            "tags": ["github"]
        });
    }
    json!({"version": "1.0.0", "last_updated": "2026-11-01T00:00:00Z", "servers": servers})
        .to_string()
}

const CONFIGMAP_REGISTRY: &str = "apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPRegistry
metadata: {name: team}
spec:
  source:
    type: configmap
    configMap: {name: team-catalog}
  syncPolicy: {automatic: true, interval: 1h}
  filter:
    tags: {exclude: [experimental]}
";

#[tokio::test]
async fn syncs_from_a_config_map_and_keeps_the_last_good_data_when_it_breaks() -> anyhow::Result<()>
{
    let (client, ns, _operator) = setup("reg-cm").await?;
    let registries = ns.api::<MCPRegistry>();
    put_source(&ns, "team-catalog", &toolhive_document(false)).await?;
    apply_yaml(&client, &ns.name, CONFIGMAP_REGISTRY).await?;

    let registry = wait_until(&registries, "team", TIMEOUT, |r| is_synced_with(r, 2)).await?;
    assert_eq!(kstatus(&registry), "Current");
    let status = registry.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(MCPRegistryPhase::Ready));
    assert!(status.last_sync_time.is_some());
    let (document, map) = output(&ns, "team").await?;
    assert_eq!(
        server_names(&document, "servers"),
        ["fetch", "time"],
        "experimental filtered out"
    );
    let owner = map.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.uid.clone()), registry.metadata.uid);
    let annotations = map.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("toolhive.stacklok.dev/registry-hash"),
        status.last_sync_hash.as_ref()
    );
    let good = map.data.clone();

    // A broken document: Synced=False, the output keeps the last good catalogue.
    put_source(&ns, "team-catalog", "{\"servers\": {").await?;
    let registry = wait_until(&registries, "team", TIMEOUT, |r| {
        failed_with(r, "InvalidDocument")
    })
    .await?;
    assert_eq!(kstatus(&registry), "Failed");
    let status = registry.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(MCPRegistryPhase::Failed));
    assert_eq!(status.server_count, Some(2), "still serving two servers");
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("not valid JSON")
    );
    assert_eq!(
        output(&ns, "team").await?.1.data,
        good,
        "last good data kept"
    );
    assert!(warning_events(&client, &ns, "SyncFailed").await? >= 1);

    // Fixed, with one more server: synced again, output updated.
    put_source(&ns, "team-catalog", &toolhive_document(true)).await?;
    let registry = wait_until(&registries, "team", TIMEOUT, |r| is_synced_with(r, 3)).await?;
    assert_eq!(kstatus(&registry), "Current");
    let (document, _) = output(&ns, "team").await?;
    assert_eq!(
        server_names(&document, "servers"),
        ["fetch", "github-pulls", "time"]
    );
    ns.delete().await
}

#[tokio::test]
async fn waits_for_a_source_config_map_created_later() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("reg-wait").await?;
    let registries = ns.api::<MCPRegistry>();
    apply_yaml(&client, &ns.name, CONFIGMAP_REGISTRY).await?;
    let registry = wait_until(&registries, "team", TIMEOUT, |r| {
        failed_with(r, "SourceNotFound")
    })
    .await?;
    assert_eq!(
        registry.status.as_ref().and_then(|s| s.phase),
        Some(MCPRegistryPhase::Pending)
    );
    assert_eq!(kstatus(&registry), "InProgress", "waiting, not stalled");
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("team-registry")
            .await?
            .is_none()
    );

    put_source(&ns, "team-catalog", &toolhive_document(false)).await?;
    wait_until(&registries, "team", TIMEOUT, |r| is_synced_with(r, 2)).await?;
    ns.delete().await
}

#[tokio::test]
async fn refuses_a_sync_interval_it_cannot_honour() -> anyhow::Result<()> {
    let (client, ns, _operator) = setup("reg-spec").await?;
    put_source(&ns, "team-catalog", &toolhive_document(false)).await?;
    let yaml = CONFIGMAP_REGISTRY.replace("interval: 1h", "interval: 10s");
    apply_yaml(&client, &ns.name, &yaml).await?;
    let registry = wait_until(&ns.api::<MCPRegistry>(), "team", TIMEOUT, |r| {
        failed_with(r, "InvalidSpec")
    })
    .await?;
    assert_eq!(kstatus(&registry), "Failed");
    let message = registry.status.and_then(|s| s.message).unwrap_or_default();
    assert!(message.contains("spec.syncPolicy.interval"), "{message}");
    ns.delete().await
}

/// A git repository in a fresh temporary directory, removed on drop.
struct Repository {
    dir: PathBuf,
}

impl Repository {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("thv-e2e-registry-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let repo = Self { dir };
        repo.git(&["init", "-q", "-b", "main"])?;
        Ok(repo)
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn git(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=e2e",
                "-c",
                "user.email=e2e@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .context("running git (needed to build the test repository)")?;
        if !output.status.success() {
            bail!("git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    fn commit(&self, path: &str, content: &str) -> anyhow::Result<()> {
        let file: &Path = &self.dir.join(path);
        std::fs::write(file, content)?;
        self.git(&["add", path])?;
        self.git(&["commit", "-q", "-m", &format!("update {path}")])
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn upstream_document() -> String {
    let server = |name: &str, image: &str| {
        json!({
            "name": name,
            "description": format!("{name} server"),
            "version": "1.0.0",
            "packages": [{"registryType": "oci", "identifier": image, "transport": {"type": "stdio"}}]
        })
    };
    json!({
        "version": "1.0.0",
        "meta": {"last_updated": "2026-11-01T00:00:00Z"},
        "data": {"servers": [
            server("io.github.stacklok/fetch", "ghcr.io/stackloklabs/gofetch/server:1.0.1"),
            server("io.github.stacklok/time", "docker.io/mcp/time:latest"),
            server("com.example/internal", "registry.example.com/internal:1"),
            {"name": "com.notion/mcp", "description": "Notion.", "version": "1.0.0",
             "remotes": [{"type": "streamable-http", "url": "https://mcp.notion.com/mcp"}]}
        ]}
    })
    .to_string()
}

fn git_registry(url: &str, branch: &str, path: &str) -> String {
    format!(
        "apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPRegistry
metadata: {{name: upstream}}
spec:
  source:
    type: git
    git: {{url: '{url}', branch: {branch}, path: {path}}}
  filter:
    names: {{include: ['io.github.stacklok/*', 'com.notion/*']}}
"
    )
}

#[tokio::test]
async fn syncs_from_a_local_git_repository_and_keeps_the_last_good_data() -> anyhow::Result<()> {
    let repo = Repository::new()?;
    repo.commit("registry.json", &upstream_document())?;
    repo.git(&["checkout", "-q", "-b", "broken"])?;
    repo.commit(
        "registry.json",
        "{\"data\": {\"servers\": [{\"name\": 7}]}}",
    )?;
    repo.git(&["checkout", "-q", "main"])?;

    let (client, ns, _operator) = setup("reg-git").await?;
    let registries = ns.api::<MCPRegistry>();
    apply_yaml(
        &client,
        &ns.name,
        &git_registry(&repo.url(), "main", "registry.json"),
    )
    .await?;
    let registry = wait_until(&registries, "upstream", TIMEOUT, |r| is_synced_with(r, 3)).await?;
    assert_eq!(kstatus(&registry), "Current");
    let (document, map) = output(&ns, "upstream").await?;
    assert_eq!(
        server_names(&document, "servers"),
        ["io.github.stacklok/fetch", "io.github.stacklok/time"],
        "com.example/internal filtered out"
    );
    assert_eq!(
        server_names(&document, "remote_servers"),
        ["com.notion/mcp"]
    );
    assert_eq!(
        map.metadata
            .annotations
            .unwrap_or_default()
            .get("toolhive.stacklok.dev/registry-source-format")
            .map(String::as_str),
        Some("upstream")
    );
    let good = map.data;

    // A commit with a broken document.
    apply_yaml(
        &client,
        &ns.name,
        &git_registry(&repo.url(), "broken", "registry.json"),
    )
    .await?;
    let registry = wait_until(&registries, "upstream", TIMEOUT, |r| {
        failed_with(r, "InvalidDocument")
    })
    .await?;
    let message = registry
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(message.contains("data.servers[0].name"), "{message}");
    assert_eq!(
        registry.status.as_ref().and_then(|s| s.server_count),
        Some(3)
    );
    assert_eq!(
        output(&ns, "upstream").await?.1.data,
        good,
        "last good data kept"
    );

    // A path that does not exist.
    apply_yaml(
        &client,
        &ns.name,
        &git_registry(&repo.url(), "main", "missing.json"),
    )
    .await?;
    let registry = wait_until(&registries, "upstream", TIMEOUT, |r| {
        failed_with(r, "SourceNotFound")
    })
    .await?;
    assert_eq!(kstatus(&registry), "Failed");
    assert_eq!(
        output(&ns, "upstream").await?.1.data,
        good,
        "last good data kept"
    );

    // Back to a good source; a deleted output is restored.
    apply_yaml(
        &client,
        &ns.name,
        &git_registry(&repo.url(), "main", "registry.json"),
    )
    .await?;
    wait_until(&registries, "upstream", TIMEOUT, |r| is_synced_with(r, 3)).await?;
    ns.api::<ConfigMap>()
        .delete("upstream-registry", &DeleteParams::default())
        .await?;
    let restored = wait_until(&ns.api::<ConfigMap>(), "upstream-registry", TIMEOUT, |m| {
        m.metadata.deletion_timestamp.is_none() && m.data == good
    })
    .await?;
    assert_eq!(restored.data, good);
    ns.delete().await
}
