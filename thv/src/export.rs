//! `thv export NAME`: what runs on the cluster as a RunConfig (the one the operator
//! generated and the proxy loads, which `thv run --from-config` takes back) or as the
//! MCPServer manifest with the config objects it references, ready for Git.
//! `thv convert FILE`: RunConfig JSON ⇄ MCPServer YAML, offline.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use api::{MCPServer, Manifest};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::cluster::{Cluster, ClusterArgs};

/// Arguments of `thv export`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCPServer.
    name: String,
    /// Write here instead of standard output.
    file: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum, default_value_t = ExportFormat::Runconfig)]
    format: ExportFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// The RunConfig JSON the proxy runs.
    Runconfig,
    /// The same RunConfig in ToolHive's schema (`v0.1.0`), for ToolHive's own CLI;
    /// settings it cannot carry are named in warnings.
    Toolhive,
    /// The MCPServer and the config objects it references, as YAML.
    Mcpserver,
}

/// The operator writes the RunConfig under this key of ConfigMap `<name>-runconfig`.
const RUNCONFIG_KEY: &str = "runconfig.json";

/// `thv export`.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    let text = match args.format {
        ExportFormat::Runconfig => {
            let config = runconfig(&cluster, &args.name).await?;
            let mut text = String::from_utf8(runconfig::to_json(&config))?;
            text.push('\n');
            text
        }
        ExportFormat::Toolhive => {
            let config = runconfig(&cluster, &args.name).await?;
            let (bytes, lost) = runconfig::to_toolhive_json(&config);
            for path in lost {
                eprintln!("warning: {path} has no counterpart in ToolHive's RunConfig; left out");
            }
            let mut text = String::from_utf8(bytes)?;
            text.push('\n');
            text
        }
        ExportFormat::Mcpserver => manifests(&cluster, &server).await?,
    };
    write(args.file.as_ref(), &text)
}

/// Writes `text` to `file` or standard output.
pub fn write(file: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match file {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => Ok(std::io::stdout().write_all(text.as_bytes())?),
    }
}

async fn runconfig(cluster: &Cluster, name: &str) -> anyhow::Result<runconfig::RunConfig> {
    let map_name = format!("{name}-runconfig");
    let map = cluster.api::<ConfigMap>().get_opt(&map_name).await?;
    let Some(json) = map
        .and_then(|m| m.data)
        .and_then(|mut d| d.remove(RUNCONFIG_KEY))
    else {
        bail!(
            "MCPServer {name} has no RunConfig yet (ConfigMap {map_name}): the operator writes \
             it once the spec is valid (`thv status {name}`)"
        );
    };
    // Re-read: the output is this version's schema whatever the operator's was.
    runconfig::from_json(json.as_bytes())
        .with_context(|| format!("ConfigMap {map_name} holds no readable RunConfig"))
}

/// The server and the config objects it references (in its namespace), as a YAML
/// stream without the fields the cluster sets.
async fn manifests(cluster: &Cluster, server: &MCPServer) -> anyhow::Result<String> {
    let mut objects = vec![Manifest::MCPServer(server.clone())];
    let api_version = format!("{}/{}", api::GROUP, api::VERSION);
    for kind in admission::ConfigKind::ALL {
        let Some(name) = kind.referenced_by(server) else {
            continue;
        };
        let gvk = GroupVersionKind::gvk(api::GROUP, api::VERSION, kind.kind());
        let objects_of_kind: Api<DynamicObject> = Api::namespaced_with(
            cluster.client.clone(),
            &cluster.namespace,
            &ApiResource::from_gvk(&gvk),
        );
        if let Some(object) = objects_of_kind.get_opt(name).await? {
            let value = serde_json::to_value(object)?;
            objects.push(Manifest::from_value_of_kind(
                &api_version,
                kind.kind(),
                value,
            )?);
        }
    }
    to_yaml(&mut objects)
}

/// A YAML stream of `objects`, with only the metadata a user writes.
pub fn to_yaml(objects: &mut [Manifest]) -> anyhow::Result<String> {
    let mut text = String::new();
    for object in objects.iter_mut() {
        let meta = object.meta_mut();
        *meta = ObjectMeta {
            name: meta.name.take(),
            namespace: meta.namespace.take(),
            labels: meta.labels.take(),
            annotations: meta
                .annotations
                .take()
                .map(|mut a| {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                    a
                })
                .filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        };
        let mut value = object.to_value();
        if let Some(map) = value.as_object_mut() {
            map.remove("status");
        }
        text.push_str("---\n");
        text.push_str(&serde_yaml_ng::to_string(&value)?);
    }
    Ok(text)
}
