//! `thv proxy NAME`: forward an MCPServer's proxy to a local port (for a server a GitOps
//! tool created as much as for one `thv run` created), and the forwarding step of
//! `thv run`.

use std::net::SocketAddr;

use api::MCPServer;

use crate::cluster::{Cluster, ClusterArgs};
use crate::forward;

/// Arguments of `thv proxy`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCPServer.
    name: String,
    /// Local port (default: any free port).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Forward in the background, like `thv run` does; `thv stop NAME` or
    /// `thv proxy NAME --stop` ends it.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Stop the background forwarder of NAME.
    #[arg(long, conflicts_with_all = ["port", "detach"])]
    stop: bool,
}

/// `thv proxy`.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster).await?;
    if args.stop {
        if !forward::stop(&cluster.namespace, &args.name) {
            println!("no forwarder runs for {}", args.name);
        }
        return Ok(());
    }
    cluster.require_crds().await?;
    let server = cluster.server(&args.name).await?;
    forward(&cluster, &args.cluster, &server, args.port, !args.detach).await
}

/// Forwards `server`'s proxy: until Ctrl-C when `foreground`, else by a background
/// forwarder whose URL is printed.
pub async fn forward(
    cluster: &Cluster,
    cluster_args: &ClusterArgs,
    server: &MCPServer,
    port: Option<u16>,
    foreground: bool,
) -> anyhow::Result<()> {
    let name = server.metadata.name.clone().unwrap_or_default();
    if foreground {
        return forward::serve(cluster, server, port.unwrap_or(0), |address: SocketAddr| {
            println!(
                "Forwarding {} to MCPServer {name} (Ctrl-C stops)",
                forward::local_url(server, address.port())
            );
        })
        .await;
    }
    let port = match port {
        Some(port) => port,
        None => forward::free_port()?,
    };
    let running = forward::spawn_detached(cluster_args, &cluster.namespace, server, port)?;
    println!("URL: {}", running.url);
    println!(
        "Forwarded in the background (pid {}, log {}); `thv proxy {name} --stop` ends it, \
         `thv client setup {name}` adds it to an MCP client",
        running.pid,
        running.log.display()
    );
    Ok(())
}
