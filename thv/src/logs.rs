//! `thv logs NAME`: the MCP server's output (its `mcp` container), or with `--proxy` the
//! proxy's, read through the API server; `-f` follows. Lines of several pods are
//! prefixed with the pod's name.

use anyhow::Context;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ListParams, LogParams};

use crate::cluster::{Cluster, ClusterArgs};
use crate::cluster::{proxy_pods_selector, selector};

/// Arguments of `thv logs`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCPServer.
    name: String,
    /// The proxy's logs instead of the MCP server's.
    #[arg(long)]
    proxy: bool,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines of each pod.
    #[arg(long, value_name = "N")]
    tail: Option<i64>,
}

/// `thv logs`.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    cluster.server(&args.name).await?;
    let labels = if args.proxy {
        proxy_pods_selector(&cluster.api::<Service>(), &args.name).await?
    } else {
        selector(&workload_k8s::names::selector(&args.name))
    };
    let pods = cluster.api::<Pod>();
    let names: Vec<String> = pods
        .list(&ListParams::default().labels(&labels))
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    if names.is_empty() {
        anyhow::bail!(
            "{} of {} has no pods (`thv status {}` says why)",
            if args.proxy {
                "the proxy"
            } else {
                "the MCP server"
            },
            args.name,
            args.name
        );
    }
    let params = LogParams {
        container: (!args.proxy).then(|| workload_k8s::names::CONTAINER.to_owned()),
        follow: args.follow,
        tail_lines: args.tail,
        ..LogParams::default()
    };
    let prefix = names.len() > 1;
    let mut streams = Vec::new();
    for pod in names {
        let reader = pods
            .log_stream(&pod, &params)
            .await
            .with_context(|| format!("reading the logs of pod {pod}"))?;
        let label = pod.clone();
        streams.push(
            reader
                .lines()
                .map_ok(move |line| {
                    if prefix {
                        format!("[{label}] {line}")
                    } else {
                        line
                    }
                })
                .boxed(),
        );
    }
    let mut all = futures::stream::select_all(streams);
    while let Some(line) = all.next().await {
        println!("{}", line.context("reading logs")?);
    }
    Ok(())
}
