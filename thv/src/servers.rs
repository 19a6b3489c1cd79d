//! `thv list`, `status`, `stop`, `start`, `restart` and `rm`: reading and changing
//! MCPServer objects as a GitOps user would, never their pods.

use anyhow::Context;
use api::MCPServer;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::json;

use crate::cluster::{
    CREATED_BY, Cluster, ClusterArgs, FIELD_MANAGER, created_by_thv, require_ours,
};
use crate::forward::{self, Forward};
use crate::wait::{describe, summary};

/// ToolHive's restart trigger: a new RFC 3339 time restarts the server's pods.
pub const RESTARTED_AT: &str = workload_k8s::names::RESTARTED_AT_ANNOTATION;
/// `spec.replicas` before `thv stop`, restored by `thv start` (empty: was unset).
const REPLICAS_BEFORE_STOP: &str = "toolhive.stacklok.dev/replicas-before-stop";

/// Arguments of `thv list`.
#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// List the MCPServers of every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
}

/// Arguments of the commands that act on one MCPServer.
#[derive(clap::Args)]
pub struct NameArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCPServer.
    name: String,
    /// Also act on an MCPServer `thv` did not create (a GitOps tool may undo it).
    #[arg(long)]
    force: bool,
}

/// One MCPServer, as `thv list -o json|yaml` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: String,
    namespace: String,
    phase: String,
    message: Option<String>,
    image: String,
    transport: String,
    tools: Option<i32>,
    url: Option<String>,
    local_url: Option<String>,
    created_by_thv: bool,
}

fn row(server: &MCPServer) -> Row {
    let name = server.metadata.name.clone().unwrap_or_default();
    let namespace = server.metadata.namespace.clone().unwrap_or_default();
    let status = server.status.clone().unwrap_or_default();
    Row {
        local_url: Forward::find(&namespace, &name).map(|f| f.url),
        name,
        namespace,
        phase: status
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "Pending".to_owned()),
        message: status.message,
        image: server.spec.image.clone(),
        transport: serde_json::to_value(server.spec.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        tools: status.backend.and_then(|b| b.tools),
        url: status.url,
        created_by_thv: created_by_thv(server),
    }
}

/// `thv list`.
pub async fn list(args: &ListArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let api: Api<MCPServer> = if args.all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        cluster.servers()
    };
    let servers = api.list(&ListParams::default()).await?.items;
    let rows: Vec<Row> = servers.iter().map(row).collect();
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Yaml => print!("{}", serde_yaml_ng::to_string(&rows)?),
        Format::Table if rows.is_empty() => {
            println!("no MCPServers in namespace {}", cluster.namespace)
        }
        Format::Table => {
            let mut table = vec![
                vec![
                    "NAMESPACE",
                    "NAME",
                    "STATUS",
                    "TRANSPORT",
                    "TOOLS",
                    "IMAGE",
                    "LOCAL URL",
                ]
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
            ];
            for r in &rows {
                table.push(vec![
                    r.namespace.clone(),
                    r.name.clone(),
                    r.phase.clone(),
                    r.transport.clone(),
                    r.tools
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".to_owned()),
                    r.image.clone(),
                    r.local_url.clone().unwrap_or_else(|| "-".to_owned()),
                ]);
            }
            if !args.all_namespaces {
                table.iter_mut().for_each(|r| {
                    r.remove(0);
                });
            }
            print_table(&table);
        }
    }
    Ok(())
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// `thv status NAME`.
pub async fn status(args: &NameArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    let r = row(&server);
    println!("Name:       {}", r.name);
    println!("Namespace:  {}", r.namespace);
    println!("Image:      {}", r.image);
    println!("Transport:  {}", r.transport);
    println!("Status:     {}", describe(&server));
    let said = summary(&server);
    if !said.is_empty() {
        println!("Server:     {said}");
    }
    if let Some(url) = &r.url {
        println!("URL:        {url} (in the cluster)");
    }
    match &r.local_url {
        Some(url) => println!("Local URL:  {url}"),
        None => println!("Local URL:  - (`thv proxy {}` forwards it)", r.name),
    }
    println!(
        "Created by: {}",
        if r.created_by_thv {
            "thv"
        } else {
            "another tool (not thv)"
        }
    );
    let conditions = server
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conditions.is_empty() {
        println!("Conditions:");
        for c in conditions {
            println!(
                "  {:<22} {:<6} {:<26} {}",
                c.type_, c.status, c.reason, c.message
            );
        }
    }
    Ok(())
}

/// Merge-patches MCPServer `name` (thv's field manager); refuses a server thv did not
/// create unless `force`.
async fn patch(
    cluster: &Cluster,
    args: &NameArgs,
    verb: &str,
    patch: serde_json::Value,
) -> anyhow::Result<MCPServer> {
    let server = cluster.server(&args.name).await?;
    require_ours(&server, args.force, verb)?;
    cluster
        .servers()
        .patch(
            &args.name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(patch),
        )
        .await
        .with_context(|| format!("{verb} MCPServer {}", args.name))
}

/// `thv stop NAME`: the proxy and the MCP server scaled to zero (`spec.replicas: 0`, which
/// the operator applies to both); the object and its configuration stay.
pub async fn stop(args: &NameArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    let stopped = forward::stop(&cluster.namespace, &args.name);
    if server.spec.replicas == Some(0) {
        println!("MCPServer {} is already stopped", args.name);
        return Ok(());
    }
    let before = server
        .spec
        .replicas
        .map(|r| r.to_string())
        .unwrap_or_default();
    patch(
        &cluster,
        args,
        "stop",
        json!({"metadata": {"annotations": {REPLICAS_BEFORE_STOP: before}}, "spec": {"replicas": 0}}),
    )
    .await?;
    println!(
        "MCPServer {} stopped (scaled to zero{}); `thv start {}` starts it again",
        args.name,
        if stopped {
            ", local forwarder ended"
        } else {
            ""
        },
        args.name
    );
    Ok(())
}

/// `thv start NAME`: undoes `thv stop`, restoring the replicas it recorded.
pub async fn start(args: &NameArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    if server.spec.replicas != Some(0) {
        println!("MCPServer {} is not stopped", args.name);
        return Ok(());
    }
    let before = server
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REPLICAS_BEFORE_STOP))
        .and_then(|r| r.parse::<i32>().ok())
        .filter(|r| *r > 0);
    patch(
        &cluster,
        args,
        "start",
        json!({"metadata": {"annotations": {REPLICAS_BEFORE_STOP: null}}, "spec": {"replicas": before}}),
    )
    .await?;
    println!(
        "MCPServer {} started; `thv status {}` shows when it is Ready, `thv proxy {} -d` forwards it",
        args.name, args.name, args.name
    );
    Ok(())
}

/// `thv restart NAME`: ToolHive's restart annotation, which the operator turns into a
/// rolling restart of the proxy and the MCP server pods.
pub async fn restart(args: &NameArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    // RFC 3339 in UTC, as ToolHive's operator expects.
    let now = Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)?
        .to_string();
    patch(
        &cluster,
        args,
        "restart",
        json!({"metadata": {"annotations": {RESTARTED_AT: now}}}),
    )
    .await?;
    println!("MCPServer {} restarting ({RESTARTED_AT}={now})", args.name);
    Ok(())
}

/// `thv rm NAME`: deletes the MCPServer (its proxy, server pods and generated objects go
/// with it) and the config objects `thv run` created for it, and ends its forwarder.
pub async fn rm(args: &NameArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    require_ours(&server, args.force, "remove")?;
    forward::stop(&cluster.namespace, &args.name);
    cluster
        .servers()
        .delete(&args.name, &DeleteParams::foreground())
        .await
        .with_context(|| format!("deleting MCPServer {}", args.name))?;
    let selector = ListParams::default().labels(&format!("{CREATED_BY}={FIELD_MANAGER}"));
    let deleted = delete_config(&cluster.api::<api::MCPToolConfig>(), &args.name, &selector)
        .await?
        + delete_config(&cluster.api::<api::MCPOIDCConfig>(), &args.name, &selector).await?
        + delete_config(
            &cluster.api::<api::MCPTelemetryConfig>(),
            &args.name,
            &selector,
        )
        .await?;
    println!(
        "MCPServer {} deleted{}",
        args.name,
        if deleted > 0 {
            format!(", with the {deleted} config objects thv created for it")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Deletes the objects `<name>-…` that `thv run` created for server `name`; how many.
async fn delete_config<K>(api: &Api<K>, name: &str, selector: &ListParams) -> anyhow::Result<usize>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let prefix = format!("{name}-");
    let mut deleted = 0;
    for object in api.list(selector).await?.items {
        let object_name = object.meta().name.clone().unwrap_or_default();
        let suffix = object_name.strip_prefix(&prefix);
        if matches!(suffix, Some("tools" | "oidc" | "telemetry")) {
            api.delete(&object_name, &DeleteParams::default()).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
