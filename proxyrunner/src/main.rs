//! `thv-proxyrunner`: runs the proxy for one MCP server from a RunConfig.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use proxyrunner::backend::http::HostHeader;
use proxyrunner::backend::kubernetes;
use proxyrunner::middleware::body_limit::DEFAULT_MAX_BODY_BYTES;
use proxyrunner::{config, runner};

/// Proxy runner for one MCP server: validates a RunConfig and proxies MCP traffic
/// through the middleware chain (authn, authz, audit, telemetry, tool filtering).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the RunConfig and serve.
    Run(RunArgs),
    /// Validate the RunConfig and exit (0 when valid).
    Check {
        /// RunConfig file; default /etc/runconfig/runconfig.json, then ./runconfig.json.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// RunConfig file; default /etc/runconfig/runconfig.json, then ./runconfig.json.
    #[arg(long, env = "THV_RUNCONFIG")]
    config: Option<PathBuf>,
    /// Listen address, overriding the RunConfig's proxy host and port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the Prometheus /metrics endpoint (when telemetry enables Prometheus).
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Host names accepted in the Host header besides loopback names and the allowed
    /// origins' hosts (DNS-rebinding protection). Repeatable.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Host header an HTTP upstream receives: the client's (`preserve`, default for
    /// container workloads) or the upstream's (`upstream`, default for remote URLs).
    #[arg(long, value_enum)]
    host_header: Option<HostHeader>,
    /// On SIGTERM, how long to keep serving while readiness fails, so that the pod
    /// leaves its Service's endpoints before it stops accepting; default 5s in a
    /// cluster, 0s elsewhere.
    #[arg(long, env = "THV_DRAIN_DELAY", value_parser = humantime::parse_duration)]
    drain_delay: Option<std::time::Duration>,
    /// After the drain delay, how long requests in flight may take to finish before
    /// the proxy exits (open event streams are cut then); default 20s in a cluster
    /// (delay + timeout stay under the pod's 30 s termination grace period), 2s
    /// elsewhere. A second SIGTERM or Ctrl-C exits at once.
    #[arg(long, env = "THV_DRAIN_TIMEOUT", value_parser = humantime::parse_duration)]
    drain_timeout: Option<std::time::Duration>,
    /// Run the MCP server as this local command (instead of the image); the RunConfig's
    /// args are appended.
    #[arg(last = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Args::parse().command {
        Command::Check { config } => {
            let (path, _) = config::load(config.as_deref())?;
            println!("{}: valid", path.display());
            Ok(())
        }
        Command::Run(args) => {
            // Validation happens before the runtime starts or any port is bound.
            let (path, validated) = config::load(args.config.as_deref())?;
            tracing::info!(config = %path.display(), "RunConfig valid");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(run(args, validated))
        }
    }
}

async fn run(args: RunArgs, validated: runconfig::ValidatedRunConfig) -> anyhow::Result<()> {
    let options = runner::Options {
        command: args.command,
        host_header: args.host_header,
        max_body_bytes: args.max_body_bytes,
        allowed_hosts: args.allowed_hosts,
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        audit_sink: None,
    };
    let listen = match options.listen {
        Some(listen) => listen,
        None => format!(
            "{}:{}",
            bracket(&validated.proxy.host),
            validated.proxy.port
        )
        .parse()
        .with_context(|| format!("proxy.host {:?} is not an IP address", validated.proxy.host))?,
    };
    let proxy = Arc::new(runner::build(&validated, &options)?);
    let prometheus = validated
        .proxy
        .telemetry
        .as_ref()
        .is_some_and(|t| t.prometheus_enabled);
    if let Some(metrics) = proxy.metrics.clone().filter(|_| prometheus) {
        let listener = tokio::net::TcpListener::bind(options.metrics_listen)
            .await
            .with_context(|| format!("binding metrics on {}", options.metrics_listen))?;
        tracing::info!(address = %listener.local_addr()?, "metrics on /metrics");
        tokio::spawn(runner::serve_metrics(metrics, listener));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    // Tests and scripts read the bound address from this line (port 0 picks one).
    println!("listening on http://{}", listener.local_addr()?);
    let exporter = proxy.metrics_export.clone();
    let in_cluster = kubernetes::in_cluster();
    let drain_timeout = args.drain_timeout.unwrap_or(if in_cluster {
        DRAIN_TIMEOUT_IN_CLUSTER
    } else {
        DRAIN_TIMEOUT_ELSEWHERE
    });
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let server = runner::serve_until(proxy.clone(), listener, stopping, drain_timeout);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => {
            // Serving failed: what was audited so far still reaches stdout.
            flush_audit().await;
            return result.context("serving");
        }
        _ = shutdown() => {}
    }
    // Graceful drain: readiness fails and responses close their connections while the
    // endpoints catch up; then no new connections, and what is in flight finishes.
    let delay = args.drain_delay.unwrap_or(if in_cluster {
        DRAIN_DELAY_IN_CLUSTER
    } else {
        std::time::Duration::ZERO
    });
    tracing::info!(?delay, timeout = ?drain_timeout, "shutting down: draining");
    proxy.start_draining();
    let drained = async {
        tokio::select! {
            result = &mut server => return result,
            _ = tokio::time::sleep(delay) => {}
        }
        let _ = stop.send(true);
        server.await
    };
    let served = tokio::select! {
        result = drained => result.map(|()| tracing::info!("drained")),
        _ = shutdown() => {
            tracing::warn!("asked again to stop; exiting without waiting");
            Ok(())
        }
    };
    if let Some(exporter) = exporter {
        // The last numbers, so a short-lived proxy's are not lost.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), exporter.push()).await;
    }
    flush_audit().await;
    served.context("serving")
}

/// Waits (at most 3 s) for the audit events still queued to reach stdout; they are
/// written by a thread of their own.
async fn flush_audit() {
    tokio::task::spawn_blocking(|| {
        proxyrunner::middleware::audit::drain_stdout(std::time::Duration::from_secs(3))
    })
    .await
    .ok();
}

/// How long a proxy in a pod keeps serving after SIGTERM while it leaves its Service's
/// endpoints: the readiness probe runs every 2 s, then the endpoints and kube-proxy follow.
const DRAIN_DELAY_IN_CLUSTER: std::time::Duration = std::time::Duration::from_secs(5);
/// Default `--drain-timeout` in a cluster.
const DRAIN_TIMEOUT_IN_CLUSTER: std::time::Duration = std::time::Duration::from_secs(20);
/// Default `--drain-timeout` elsewhere (`thv proxy`, a terminal): an open event stream
/// does not keep Ctrl-C waiting.
const DRAIN_TIMEOUT_ELSEWHERE: std::time::Duration = std::time::Duration::from_secs(2);

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
