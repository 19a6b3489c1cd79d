//! Support for end-to-end tests on a real API server: start or reuse the loopback
//! control plane (`e2e/cluster`), a fresh namespace per test, apply YAML, wait for a
//! condition with a helpful failure (the object and its recent events).
//!
//! With `THV_E2E_USE_EXISTING=1` the tests use the cluster `KUBECONFIG` points at
//! (kind, k3d, a real cluster) and never start or stop anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client, Discovery, Resource, ResourceExt};
use serde::de::DeserializeOwned;

pub mod bench;
pub mod chaos;
pub mod controllers;
pub mod curl;
pub mod issuer;
pub mod keycloak;
pub mod parity;
pub mod probe;
pub mod proxy;

/// Field manager of objects the tests apply.
pub const TEST_MANAGER: &str = "thv-e2e";

/// A Redis pod (Debian's redis-server, packed by `make images-test`) behind the Service
/// `redis`, its password (`e2e-sessions-pw`) from the Secret `redis`; restricted-PodSecurity
/// compliant. The harness runs no cluster DNS: MCPServers name it by its ClusterIP.
pub const REDIS_MANIFEST: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: redis}
stringData: {password: e2e-sessions-pw}
---
apiVersion: v1
kind: Pod
metadata: {name: redis, labels: {app: redis}}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: redis
    image: e2e.local/redis:e2e
    args: [--bind, 0.0.0.0, --port, "6379", --save, "", --appendonly, "no", --protected-mode, "no", --requirepass, $(REDIS_PASSWORD)]
    env:
    - name: REDIS_PASSWORD
      valueFrom: {secretKeyRef: {name: redis, key: password}}
    ports: [{containerPort: 6379}]
    readinessProbe: {tcpSocket: {port: 6379}, periodSeconds: 1}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  selector: {app: redis}
  ports: [{port: 6379}]
"#;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn use_existing() -> bool {
    std::env::var("THV_E2E_USE_EXISTING").is_ok_and(|v| v == "1")
}

/// Path of the kubeconfig the tests use.
pub fn kubeconfig_path() -> PathBuf {
    if use_existing() {
        if let Some(path) = std::env::var_os("KUBECONFIG") {
            return PathBuf::from(path);
        }
        return dirs_home().join(".kube/config");
    }
    let state = std::env::var_os("THV_E2E_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cluster"));
    state.join("kubeconfig")
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// Directory of kubectl and helm built by the harness.
pub fn bin_dir() -> PathBuf {
    let cache = std::env::var_os("THV_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs_home().join(".cache/thv-e2e"));
    cache.join("k8s-v1.36.3/bin")
}

/// `kubectl` from the harness cache, or from PATH when using an existing cluster.
pub fn kubectl() -> Command {
    let built = bin_dir().join("kubectl");
    let mut command = Command::new(if built.exists() {
        built.into_os_string()
    } else {
        "kubectl".into()
    });
    command.env("KUBECONFIG", kubeconfig_path());
    command
}

/// Runs kubectl, returning stdout, or failing with its stderr.
pub fn kubectl_ok(args: &[&str]) -> anyhow::Result<String> {
    let output = kubectl().args(args).output().context("running kubectl")?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

static STARTED: OnceLock<Result<(), String>> = OnceLock::new();

/// Makes sure a cluster is reachable: starts the loopback control plane (reusing a
/// running one) unless `THV_E2E_USE_EXISTING=1`. Blocking; call before any client use.
pub fn ensure_cluster() -> anyhow::Result<()> {
    let started = STARTED.get_or_init(|| {
        if use_existing() {
            return Ok(());
        }
        let script = repo_root().join("e2e/cluster/cluster.sh");
        let status = Command::new(&script)
            .arg("up")
            .status()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} up failed ({status}); see the component logs in .cluster/logs/",
                script.display()
            ))
        }
    });
    started.clone().map_err(anyhow::Error::msg)
}

/// A client for the test cluster.
pub async fn client() -> anyhow::Result<Client> {
    ensure_cluster()?;
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// A client that acts as `user` (impersonation by the admin client), e.g.
/// `system:serviceaccount:<ns>:<name>` to test that a ServiceAccount's RBAC suffices.
pub async fn client_as(user: &str, groups: &[&str]) -> anyhow::Result<Client> {
    ensure_cluster()?;
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Ok(Client::try_from(config)?)
}

/// `helm` from the harness cache, or from PATH when using an existing cluster.
pub fn helm() -> Command {
    let built = bin_dir().join("helm");
    let mut command = Command::new(if built.exists() {
        built.into_os_string()
    } else {
        "helm".into()
    });
    command.env("KUBECONFIG", kubeconfig_path());
    command
}

/// Installs (server-side apply) the CRDs generated from `api/` and waits until established.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let mut bodies = Vec::new();
    for crd in api::crds::all() {
        let mut body = serde_json::to_value(&crd)?;
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        bodies.push(body);
    }
    apply_crds(client, bodies).await
}

/// Applies CRDs (as JSON) and waits until each is Established. Always the same field
/// manager: applying another set of CRDs of the same names (a benchmark swapping ours
/// and ToolHive's) removes what the previous set had and this one has not.
pub async fn apply_crds(client: &Client, bodies: Vec<serde_json::Value>) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(TEST_MANAGER).force();
    for body in bodies {
        let name = body
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .context("a CRD without metadata.name")?
            .to_owned();
        forget_dropped_versions(&crds, &name, &body).await?;
        crds.patch(&name, &params, &Patch::Apply(body))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
        wait_until(
            &crds,
            &name,
            Duration::from_secs(30),
            |crd: &CustomResourceDefinition| {
                crd.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            },
        )
        .await?;
    }
    Ok(())
}

/// Before `body` replaces the CRD `name`: the API server refuses a CRD that drops a
/// version its objects were once stored at (`status.storedVersions`), e.g. ours (serving
/// `v1beta1`) replaced by an older ToolHive's that only has `v1alpha1`. With no object of
/// the kind left, the old CRD is deleted first (its stored versions go with it); with
/// objects left, an error says so.
async fn forget_dropped_versions(
    crds: &Api<CustomResourceDefinition>,
    name: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let Some(existing) = crds.get_opt(name).await? else {
        return Ok(());
    };
    let versions = body
        .pointer("/spec/versions")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let stored = existing
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    let kept = |old: &String| {
        versions
            .iter()
            .any(|v| v.get("name").and_then(serde_json::Value::as_str) == Some(old))
    };
    if stored.iter().all(kept) {
        return Ok(());
    }
    // Any version the existing CRD serves lists every object of the kind.
    let spec = &existing.spec;
    let served = spec
        .versions
        .iter()
        .find(|v| v.served)
        .with_context(|| format!("CRD {name} serves no version"))?;
    let resource = ApiResource {
        group: spec.group.clone(),
        version: served.name.clone(),
        api_version: format!("{}/{}", spec.group, served.name),
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
    };
    let objects: Api<DynamicObject> = Api::all_with(crds.clone().into_client(), &resource);
    let left = objects
        .list_metadata(&ListParams::default().limit(1))
        .await?;
    if let Some(object) = left.items.first() {
        bail!(
            "CRD {name}: the new definition drops the stored version(s) {stored:?}, and {} \
             objects are left (e.g. {}/{}); delete them first",
            spec.names.kind,
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
    }
    crds.delete(name, &DeleteParams::default())
        .await
        .with_context(|| format!("deleting CRD {name}, which stored {stored:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while crds.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("CRD {name} was not deleted within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Namespace annotations that send its pods to the harness's real node (label
/// `type=real`, taint `thv-e2e/real-node=true:NoSchedule`; e2e/cluster/launcher/node.go).
pub const REAL_NODE_ANNOTATIONS: &[(&str, &str)] = &[
    ("scheduler.alpha.kubernetes.io/node-selector", "type=real"),
    (
        "scheduler.alpha.kubernetes.io/defaultTolerations",
        r#"[{"key":"thv-e2e/real-node","operator":"Equal","value":"true","effect":"NoSchedule"}]"#,
    ),
];

/// A namespace created for one test, deleted by [`TestNamespace::delete`].
pub struct TestNamespace {
    /// Its name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` with the given labels. Its pods run on kwok's fake
    /// nodes (object shapes, scale); see [`TestNamespace::on_real_node`] for real pods.
    pub async fn create(
        client: &Client,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::create_with(client, prefix, labels, &[]).await
    }

    /// Creates `<prefix>-<random>` whose pods run for real: on the harness's kubelet node
    /// (e2e/cluster), through the namespace's default node selector and toleration
    /// (admission plugins PodNodeSelector and PodTolerationRestriction). On a cluster of
    /// one's own (`THV_E2E_USE_EXISTING=1`, kind, k3d) the annotations do nothing and pods
    /// go wherever that cluster schedules them.
    pub async fn on_real_node(
        client: &Client,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::create_with(client, prefix, labels, REAL_NODE_ANNOTATIONS).await
    }

    async fn create_with(
        client: &Client,
        prefix: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let suffix: u32 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
            ^ std::process::id();
        let name = format!("{prefix}-{:x}", suffix % 0xfffff);
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(name.clone());
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        namespace.metadata.labels = Some(map(labels));
        namespace.metadata.annotations = Some(map(annotations));
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        wait_for_default_service_account(client, &name).await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// Deletes the namespace (and so everything in it).
    pub async fn delete(self) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await?;
        Ok(())
    }

    /// An Api for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The ClusterIP of Service `service` (the harness node has no cluster DNS, so
    /// tests and in-cluster clients reach Services by address).
    pub async fn cluster_ip(&self, service: &str) -> anyhow::Result<String> {
        use anyhow::Context as _;
        self.api::<k8s_openapi::api::core::v1::Service>()
            .get(service)
            .await?
            .spec
            .and_then(|s| s.cluster_ip)
            .with_context(|| format!("Service {service}'s ClusterIP"))
    }
}

async fn wait_for_default_service_account(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), namespace);
    wait_until(&accounts, "default", Duration::from_secs(30), |_| true)
        .await
        .map(|_| ())
}

/// Server-side applies every document of a YAML stream into `namespace` (cluster-scoped
/// kinds ignore it). Returns the applied objects.
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    yaml: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut applied = Vec::new();
    for document in api::manifest::split_documents(yaml) {
        let object: DynamicObject =
            serde_yaml_ng::from_str(document).context("parsing a YAML document")?;
        let types = object
            .types
            .clone()
            .context("document without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let (resource, caps): (ApiResource, ApiCapabilities) = discovery
            .resolve_gvk(&gvk)
            .with_context(|| format!("{gvk:?} is not served"))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let name = object.name_any();
        let params = PatchParams::apply(TEST_MANAGER).force();
        applied.push(
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .with_context(|| format!("applying {} {name}", gvk.kind))?,
        );
    }
    Ok(applied)
}

/// Whether a Deployment's rollout is complete: its controller saw the current spec, and
/// every replica runs the current template and is available (no old pod still serves
/// behind its Service).
pub fn rolled_out(deployment: &k8s_openapi::api::apps::v1::Deployment) -> bool {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    deployment.status.as_ref().is_some_and(|s| {
        s.observed_generation == deployment.metadata.generation
            && s.updated_replicas == Some(wanted)
            && s.available_replicas == Some(wanted)
            && s.replicas == Some(wanted)
    })
}

/// Waits until the only pods of `deployment` (by its selector) are its replicas, none
/// of them terminating.
pub async fn only_current_pods(
    ns: &TestNamespace,
    deployment: &k8s_openapi::api::apps::v1::Deployment,
    within: Duration,
) -> anyhow::Result<()> {
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .context("the Deployment's selector")?;
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let start = Instant::now();
    loop {
        let pods = ns
            .api::<k8s_openapi::api::core::v1::Pod>()
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        let current = pods
            .items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p));
        if current && pods.items.len() == usize::try_from(wanted).unwrap_or(1) {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < within,
            "pods of {selector} still rolling after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `name` exists and satisfies `ready`. On timeout, fails with the object
/// as last seen and the recent events of its namespace.
pub async fn wait_until<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    ready: impl Fn(&K) -> bool,
) -> anyhow::Result<K>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        if let Some(object) = api.get_opt(name).await? {
            if ready(&object) {
                return Ok(object);
            }
            last = Some(object);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shown = last
        .as_ref()
        .map(|o| serde_yaml_ng::to_string(o).unwrap_or_default())
        .unwrap_or_else(|| "(never existed)".to_owned());
    let namespace = last.as_ref().and_then(|o| o.meta().namespace.clone());
    let events = match namespace {
        Some(ns) => recent_events(api, &ns).await,
        None => String::new(),
    };
    bail!(
        "timed out after {timeout:?} waiting for {} {name}\n--- last seen ---\n{shown}--- recent events ---\n{events}",
        std::any::type_name::<K>()
            .rsplit("::")
            .next()
            .unwrap_or("object")
    )
}

/// On kwok's fake pods no proxy runs, so nothing reports the MCP server behind it: this
/// writes `status.backend` as a proxy whose server answered `initialize` would (the
/// operator's half of readiness is what such a test proves; the real node proves the
/// proxy's).
pub async fn report_initialized<K>(servers: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"status": {"backend": {
        "reason": "Initialized",
        "message": "stand-in report: no proxy runs on kwok",
        "serverName": "kwok-stand-in",
        "tools": 0,
    }}});
    servers
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await?;
    Ok(())
}

/// Waits until `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration) -> anyhow::Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if api.get_opt(name).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("timed out after {timeout:?} waiting for {name} to be deleted")
}

async fn recent_events<K: Resource>(api: &Api<K>, namespace: &str) -> String {
    let _ = api;
    let client = match client().await {
        Ok(c) => c,
        Err(e) => return format!("(no client: {e})"),
    };
    let events: Api<Event> = Api::namespaced(client, namespace);
    match events.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .rev()
            .take(20)
            .map(|e| {
                format!(
                    "{} {} {}: {}\n",
                    e.type_.clone().unwrap_or_default(),
                    e.involved_object.kind.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default()
                )
            })
            .collect(),
        Err(e) => format!("(listing events: {e})"),
    }
}

/// Prints how long each phase of a long end-to-end test took (`cargo test` shows it when
/// the test fails, or always with `--nocapture`), so a slow step is named, not guessed.
pub struct Stopwatch {
    test: &'static str,
    start: std::time::Instant,
}

impl Stopwatch {
    /// Starts timing `test`.
    pub fn start(test: &'static str) -> Self {
        Self {
            test,
            start: std::time::Instant::now(),
        }
    }

    /// Records that `phase` is done.
    pub fn lap(&self, phase: &str) {
        eprintln!(
            "[{} +{:.1}s] {phase}",
            self.test,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// Runs `command`; its stdout, or an error with `what` and both outputs when it fails.
pub fn run_ok(mut command: Command, what: &str) -> anyhow::Result<String> {
    let output = command.output().with_context(|| what.to_owned())?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether `pod` is Ready and not being deleted.
pub fn pod_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Ready" && c.status == "True")
}
