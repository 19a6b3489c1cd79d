//! The cluster `thv` drives: the current kube context or the one the flags name, and the
//! errors a user sees when it cannot be reached or does not serve our CRDs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use api::MCPServer;
use kube::Api;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Label `thv run` puts on what it creates: `thv` refuses to overwrite or delete an
/// MCPServer without it (one a GitOps tool or a colleague applied) unless told to.
pub const CREATED_BY: &str = "toolhive.stacklok.dev/created-by";
/// Field manager of `thv`'s server-side applies.
pub const FIELD_MANAGER: &str = "thv";

/// Where to find the cluster, named as kubectl names it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kube context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, then `default`).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// The same flags as command-line arguments, for the background forwarder; the
    /// namespace is the one resolved, so a changed context cannot move it.
    pub fn to_args(&self, namespace: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--namespace".into(), namespace.into()];
        if let Some(path) = &self.kubeconfig {
            args.extend(["--kubeconfig".into(), path.clone().into_os_string()]);
        }
        if let Some(context) = &self.context {
            args.extend(["--context".into(), context.into()]);
        }
        args
    }
}

/// A reachable cluster and the namespace the command works in.
pub struct Cluster {
    /// Client of the API server.
    pub client: kube::Client,
    /// Namespace from `-n`, the context, or `default`.
    pub namespace: String,
}

impl Cluster {
    /// Connects and checks the API server answers; a command that needs our CRDs calls
    /// [`Cluster::require_crds`] next.
    pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Self> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &args.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        };
        let mut config = config.context(
            "no usable kube context: point --kubeconfig or $KUBECONFIG at a cluster's \
             kubeconfig, or pick one with --context",
        )?;
        // An unreachable cluster should say so in seconds, not after TCP's minutes.
        config.connect_timeout = Some(Duration::from_secs(5));
        let url = config.cluster_url.clone();
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).context("building the kube client")?;
        client
            .apiserver_version()
            .await
            .with_context(|| format!("cannot reach the cluster's API server at {url}"))?;
        Ok(Self { client, namespace })
    }

    /// Fails with what to do when the MCPServer CRD is not served.
    pub async fn require_crds(&self) -> anyhow::Result<()> {
        match self.servers().list(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => bail!(
                "this cluster does not serve MCPServer ({}/{}): install ToolHive first \
                 with `thv setup` or `helm install toolhive charts/toolhive`",
                api::GROUP,
                api::VERSION
            ),
            Err(e) => Err(e).context("listing MCPServers"),
        }
    }

    /// MCPServers of the namespace.
    pub fn servers(&self) -> Api<MCPServer> {
        self.api()
    }

    /// Any namespaced kind in the namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The MCPServer `name`, or an error that names it and the namespace.
    pub async fn server(&self, name: &str) -> anyhow::Result<MCPServer> {
        match self.servers().get_opt(name).await? {
            Some(server) => Ok(server),
            None => bail!(
                "no MCPServer {name:?} in namespace {:?} (`thv list` shows them)",
                self.namespace
            ),
        }
    }
}

/// Labels as `key=value,…` for a list selector.
pub fn selector(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The label selector of MCPServer `name`'s proxy pods: its proxy Service's, which says
/// which pods serve.
pub async fn proxy_pods_selector(
    services: &Api<k8s_openapi::api::core::v1::Service>,
    name: &str,
) -> anyhow::Result<String> {
    let service = admission::proxy_service_name(name);
    let labels = services
        .get_opt(&service)
        .await?
        .and_then(|s| s.spec?.selector)
        .with_context(|| format!("the proxy Service {service} does not exist (yet)"))?;
    Ok(selector(&labels))
}

/// Whether `thv run` created `server`.
pub fn created_by_thv(server: &MCPServer) -> bool {
    server
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CREATED_BY))
        .is_some_and(|v| v == FIELD_MANAGER)
}

/// Refuses to change `server` when `thv` did not create it, unless `force`.
pub fn require_ours(server: &MCPServer, force: bool, verb: &str) -> anyhow::Result<()> {
    if force || created_by_thv(server) {
        return Ok(());
    }
    let name = server.metadata.name.as_deref().unwrap_or_default();
    bail!(
        "MCPServer {name:?} was not created by thv (it has no label {CREATED_BY}={FIELD_MANAGER}); \
         whoever applied it (a GitOps tool?) would put it back. Pass --force to {verb} it anyway"
    )
}
