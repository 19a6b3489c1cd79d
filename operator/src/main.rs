//! `thv-operator`: runs the MCPServer and MCPRegistry controllers (and, as they land, the
//! admission webhooks), with metrics, health endpoints, optional leader election and
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use operator::context::DEFAULT_PROXY_IMAGE;
use operator::http::Readiness;
use operator::metrics::Metrics;
use operator::{Context, OperatorConfig};
use tokio::sync::watch;

/// Kubernetes operator for MCP servers.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "THV_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Only one replica reconciles at a time, holding the Lease `thv-operator-leader`.
    #[arg(long, env = "THV_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader-election Lease; defaults to the pod's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_elect_namespace: String,
    /// Watch only this namespace (namespace-scoped install: needs only a Role).
    #[arg(long, env = "THV_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Image of the proxy runner the operator deploys.
    #[arg(long, env = "THV_PROXY_IMAGE", default_value = DEFAULT_PROXY_IMAGE)]
    proxy_image: String,
    /// Pull policy of the proxy runner image.
    #[arg(long, env = "THV_PROXY_IMAGE_PULL_POLICY")]
    proxy_image_pull_policy: Option<String>,
    /// Log format.
    #[arg(long, env = "THV_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let config = OperatorConfig {
        proxy_image: args.proxy_image.clone(),
        proxy_image_pull_policy: args.proxy_image_pull_policy.clone(),
    };
    let ctx = Context::new(client.clone(), metrics.clone(), config);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let readiness = Readiness::default();
    let http = tokio::spawn(operator::http::serve(
        args.metrics_addr,
        metrics,
        readiness.clone(),
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    if args.leader_elect {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("thv-operator-{}", std::process::id()));
        let leases =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "thv-operator-leader")
                .with_namespace(&args.leader_elect_namespace)
                .with_identity(identity)
                .build()
                .await
                .context("creating the leader-election lease manager")?;
        let (mut leader, _task) = leases.watch().await;
        tracing::info!(namespace = %args.leader_elect_namespace, "waiting to become leader");
        let mut stop = stop_rx.clone();
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = leader.changed() => changed.context("leader election stopped")?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        tracing::info!("became leader");
    }

    readiness.set_ready();
    tracing::info!(namespace = ?args.namespace, "controllers starting");
    tokio::join!(
        operator::controllers::mcpserver::run(
            ctx.clone(),
            args.namespace.clone(),
            stopped(stop_rx.clone()),
        ),
        operator::controllers::mcpregistry::run(ctx, args.namespace.clone(), stopped(stop_rx)),
    );
    http.await
        .context("metrics server task")?
        .context("metrics server")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
