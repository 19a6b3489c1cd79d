//! `thv-operator`: runs the MCPServer and MCPRegistry controllers and (with `--webhook`)
//! the validating admission webhook, with metrics, health endpoints, optional leader
//! election and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use operator::context::DEFAULT_PROXY_IMAGE;
use operator::http::Readiness;
use operator::metrics::Metrics;
use operator::webhook::catalog::ApiCatalogs;
use operator::webhook::certs::Lifetimes;
use operator::webhook::config::{FailurePolicy, Registration, Target};
use operator::webhook::{CertSource, Settings, Webhook};
use operator::{Context, OperatorConfig};
use tokio::sync::watch;

/// Kubernetes operator for MCP servers.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "THV_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Only one replica reconciles at a time, holding the Lease `thv-operator-leader`;
    /// every replica serves the webhook and reports ready.
    #[arg(long, env = "THV_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader-election Lease; defaults to the pod's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_elect_namespace: String,
    /// How long the Lease is valid without renewal: the longest a crashed leader's
    /// controllers stay unowned before a follower takes over. The leader renews it when
    /// half of it is left; a leader that sees another holder, or cannot renew before three
    /// quarters of it have passed, exits.
    #[arg(
        long,
        env = "THV_LEADER_ELECT_LEASE_DURATION",
        value_parser = lease_seconds,
        default_value = "10s"
    )]
    leader_elect_lease_duration: u64,
    /// Watch only this namespace (namespace-scoped install: needs only a Role).
    #[arg(long, env = "THV_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Image of the proxy runner the operator deploys.
    #[arg(long, env = "THV_PROXY_IMAGE", default_value = DEFAULT_PROXY_IMAGE)]
    proxy_image: String,
    /// Pull policy of the proxy runner image.
    #[arg(long, env = "THV_PROXY_IMAGE_PULL_POLICY")]
    proxy_image_pull_policy: Option<String>,
    /// Give every MCPServer a NetworkPolicy that lets only its proxy reach the MCP
    /// server's pods, unless its `spec.networkPolicy` says otherwise (needs a network
    /// plugin that enforces NetworkPolicy; the Helm chart turns it on).
    #[arg(long, env = "THV_NETWORK_POLICIES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    network_policies: bool,
    /// Log format.
    #[arg(long, env = "THV_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    webhook: WebhookArgs,
}

/// The validating admission webhook. Off unless `--webhook`: it registers a
/// cluster-wide ValidatingWebhookConfiguration, which a process started for a test or a
/// benchmark must not do by accident (the Helm chart turns it on).
#[derive(clap::Args, Debug)]
struct WebhookArgs {
    /// Serve the validating admission webhook and keep its configuration in place.
    #[arg(long = "webhook", env = "THV_WEBHOOK")]
    enabled: bool,
    /// Address of the webhook's HTTPS server.
    #[arg(
        long = "webhook-addr",
        env = "THV_WEBHOOK_ADDR",
        default_value = "0.0.0.0:9443"
    )]
    addr: SocketAddr,
    /// `self-signed`: the operator issues and rotates its own CA and certificate, kept in
    /// the Secret --webhook-secret. `cert-manager`: read tls.crt/tls.key from
    /// --webhook-cert-dir (re-read when they change); cert-manager injects the caBundle.
    #[arg(long = "webhook-cert-mode", env = "THV_WEBHOOK_CERT_MODE", value_enum, default_value_t = CertMode::SelfSigned)]
    cert_mode: CertMode,
    /// Directory of tls.crt and tls.key in cert-manager mode.
    #[arg(
        long = "webhook-cert-dir",
        env = "THV_WEBHOOK_CERT_DIR",
        default_value = "/tmp/k8s-webhook-server/serving-certs"
    )]
    cert_dir: PathBuf,
    /// Secret (in --webhook-namespace) holding the CA and serving certificate in
    /// self-signed mode.
    #[arg(
        long = "webhook-secret",
        env = "THV_WEBHOOK_SECRET",
        default_value = "thv-operator-webhook-tls"
    )]
    secret: String,
    /// Namespace of the Secret and the Service: the operator's own.
    #[arg(
        long = "webhook-namespace",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    own_namespace: String,
    /// Name of the ValidatingWebhookConfiguration the operator keeps in place.
    #[arg(
        long = "webhook-configuration-name",
        env = "THV_WEBHOOK_CONFIGURATION_NAME",
        default_value = "thv-operator"
    )]
    configuration_name: String,
    /// Service the API server sends reviews to.
    #[arg(
        long = "webhook-service-name",
        env = "THV_WEBHOOK_SERVICE_NAME",
        default_value = "thv-operator-webhook"
    )]
    service_name: String,
    /// Port of that Service.
    #[arg(
        long = "webhook-service-port",
        env = "THV_WEBHOOK_SERVICE_PORT",
        default_value_t = 443
    )]
    service_port: i32,
    /// Send reviews to this URL base (`https://127.0.0.1:9443`) instead of the Service:
    /// for an operator running outside the cluster (development, tests).
    #[arg(long = "webhook-url-base", env = "THV_WEBHOOK_URL_BASE")]
    url_base: Option<url::Url>,
    /// What the API server does when the webhook is unreachable: Fail (refuse; the
    /// default) or Ignore (admit unchecked; the CRDs' CEL rules still apply).
    #[arg(long = "webhook-failure-policy", env = "THV_WEBHOOK_FAILURE_POLICY", value_enum, default_value_t = FailurePolicy::Fail)]
    failure_policy: FailurePolicy,
    /// Validate only in namespaces matching this label selector (JSON, e.g.
    /// `{"matchLabels":{"mcp":"enabled"}}`). Defaults to every namespace, or to the
    /// watched namespace with --namespace.
    #[arg(
        long = "webhook-namespace-selector",
        env = "THV_WEBHOOK_NAMESPACE_SELECTOR"
    )]
    namespace_selector: Option<String>,
    /// Lifetime of the self-signed CA (rotated at two thirds).
    #[arg(long = "webhook-ca-lifetime", env = "THV_WEBHOOK_CA_LIFETIME", value_parser = humantime::parse_duration, default_value = "3650days")]
    ca_lifetime: Duration,
    /// Lifetime of the serving certificate (rotated at two thirds).
    #[arg(long = "webhook-cert-lifetime", env = "THV_WEBHOOK_CERT_LIFETIME", value_parser = humantime::parse_duration, default_value = "90days")]
    cert_lifetime: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CertMode {
    SelfSigned,
    CertManager,
}

impl WebhookArgs {
    fn settings(&self, watch_namespace: Option<&str>) -> anyhow::Result<Settings> {
        let namespace_selector = match (&self.namespace_selector, watch_namespace) {
            (Some(json), _) => Some(
                serde_json::from_str(json)
                    .context("--webhook-namespace-selector must be a JSON label selector")?,
            ),
            (None, Some(watched)) => Some(
                serde_json::from_value(serde_json::json!({
                    "matchLabels": {"kubernetes.io/metadata.name": watched}
                }))
                .context("building the namespace selector")?,
            ),
            (None, None) => None,
        };
        let target = match &self.url_base {
            Some(url) => Target::Url(url.clone()),
            None => Target::Service {
                namespace: self.own_namespace.clone(),
                name: self.service_name.clone(),
                port: self.service_port,
            },
        };
        let certs = match self.cert_mode {
            CertMode::SelfSigned => CertSource::SelfSigned {
                namespace: self.own_namespace.clone(),
                secret: self.secret.clone(),
                lifetimes: Lifetimes {
                    ca: self.ca_lifetime,
                    serving: self.cert_lifetime,
                },
            },
            CertMode::CertManager => CertSource::Directory(self.cert_dir.clone()),
        };
        Ok(Settings {
            registration: Registration {
                name: self.configuration_name.clone(),
                target,
                failure_policy: self.failure_policy,
                namespace_selector,
                timeout_seconds: 5,
            },
            certs,
            request_timeout: Duration::from_secs(4),
            resync: (self.cert_lifetime / 6).clamp(Duration::from_secs(1), Duration::from_secs(60)),
        })
    }
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
    let kube_config = kube::Config::infer()
        .await
        .context("reading the Kubernetes API's address (in-cluster config or KUBECONFIG)")?;
    let client = operator::controllers::triggers::client(kube_config)
        .context("building the Kubernetes API client")?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let config = OperatorConfig {
        proxy_image: args.proxy_image.clone(),
        proxy_image_pull_policy: args.proxy_image_pull_policy.clone(),
        network_policies: args.network_policies,
    };
    let ctx = Context::new(client.clone(), metrics.clone(), config);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let readiness = Readiness::default();
    let http = tokio::spawn(operator::http::serve(
        args.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        stopped(stop_rx.clone()),
    ));
    // Every replica serves the webhook, leader or not: admission must not wait for an
    // election.
    let webhook = if args.webhook.enabled {
        let settings = args.webhook.settings(args.namespace.as_deref())?;
        let listener = tokio::net::TcpListener::bind(args.webhook.addr)
            .await
            .with_context(|| format!("binding the webhook to {}", args.webhook.addr))?;
        let catalogs = Arc::new(ApiCatalogs::new(
            client.clone(),
            tokio::runtime::Handle::current(),
        ));
        Some(
            Webhook::start(
                client.clone(),
                settings,
                catalogs,
                metrics.clone(),
                listener,
            )
            .await
            .context("starting the admission webhook")?,
        )
    } else {
        None
    };
    // Ready as soon as the webhook serves: readiness gates Service traffic (admission
    // reviews, scrapes), not leadership.
    readiness.set_ready();
    let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<tokio::time::Instant>();
    let unready = readiness.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        // Readiness fails first, so the webhook Service stops sending reviews here
        // while this replica still answers them (see WEBHOOK_DRAIN).
        unready.set_unready();
        let _ = signalled_tx.send(tokio::time::Instant::now());
        let _ = stop_tx.send(true);
    });

    let mut lease = None;
    if args.leader_elect {
        // `<pod>_<random>`, new at each start (client-go's rule): a container restarted
        // after a crash is a new candidate, not the old leader resuming a Lease that
        // the other replicas are waiting out.
        let identity = format!(
            "{}_{:016x}",
            std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("thv-operator-{}", std::process::id())),
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8)
        );
        let elector = operator::leader::Elector::new(
            client.clone(),
            &args.leader_elect_namespace,
            "thv-operator-leader",
            identity,
            std::time::Duration::from_secs(args.leader_elect_lease_duration),
        );
        let (mut leader, task) = elector.run();
        tracing::info!(namespace = %args.leader_elect_namespace, "waiting to become leader");
        let mut stop = stop_rx.clone();
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = leader.changed() => changed.context("leader election stopped")?,
                _ = stop.wait_for(|s| *s) => {
                    // A follower stops without leading, but its webhook drains like
                    // the leader's: it serves reviews too.
                    drop((leader, task));
                    drain_webhook(webhook, signalled).await;
                    return http
                        .await
                        .context("metrics server task")?
                        .context("metrics server");
                }
            }
        }
        tracing::info!("became leader");
        // Two leaders must never reconcile at once: a replica that loses the Lease exits
        // and is restarted as a follower.
        let mut watch_loss = leader.clone();
        let monitor = tokio::spawn(async move {
            while watch_loss.changed().await.is_ok() {
                if !*watch_loss.borrow_and_update() {
                    tracing::error!("lost the leader-election Lease; exiting");
                    std::process::exit(1);
                }
            }
        });
        lease = Some((leader, task, monitor));
    }

    metrics.set_leader();
    tracing::info!(namespace = ?args.namespace, "controllers starting");
    tokio::join!(
        operator::controllers::mcpserver::run(
            ctx.clone(),
            args.namespace.clone(),
            stopped(stop_rx.clone()),
        ),
        operator::controllers::mcpgroup::run(
            ctx.clone(),
            args.namespace.clone(),
            stopped(stop_rx.clone()),
        ),
        operator::controllers::mcpremoteproxy::run(
            ctx.clone(),
            args.namespace.clone(),
            stopped(stop_rx.clone()),
        ),
        operator::controllers::mcpregistry::run(ctx, args.namespace.clone(), stopped(stop_rx)),
    );
    if let Some((leader, task, monitor)) = lease {
        // Hand the Lease over now rather than let the next leader wait for it to expire.
        monitor.abort();
        drop(leader);
        if let Ok(mut elector) = task.await {
            match elector.release().await {
                Ok(()) => tracing::info!("released the leader-election Lease"),
                Err(error) => tracing::warn!(%error, "releasing the leader-election Lease"),
            }
        }
    }
    drain_webhook(webhook, signalled).await;
    http.await
        .context("metrics server task")?
        .context("metrics server")?;
    Ok(())
}

/// Stops the webhook once [`WEBHOOK_DRAIN`] has passed since the shutdown signal (at
/// once when the process stops for another reason). Reviews keep being answered, each
/// with `Connection: close`, until the endpoints have caught up with the terminating
/// pod; a review refused at the door would fail someone's apply.
async fn drain_webhook(
    webhook: Option<Webhook>,
    mut signalled: tokio::sync::oneshot::Receiver<tokio::time::Instant>,
) {
    let Some(webhook) = webhook else {
        return;
    };
    if let Ok(at) = signalled.try_recv() {
        webhook.start_draining();
        tokio::time::sleep_until(at + WEBHOOK_DRAIN).await;
    }
    webhook.stop().await;
}

/// How long the webhook keeps serving after SIGTERM: the pod is already terminating
/// (not ready in its EndpointSlice), kube-proxy follows within about a second; the
/// margin covers a loaded node.
const WEBHOOK_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// `--leader-elect-lease-duration`: whole seconds, at least 3 (the leader must be able to
/// renew before the Lease expires).
fn lease_seconds(value: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if duration.subsec_nanos() != 0 || duration.as_secs() < 3 {
        return Err("must be a whole number of seconds, at least 3s (e.g. 10s)".to_owned());
    }
    Ok(duration.as_secs())
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

#[cfg(test)]
mod tests {
    use super::lease_seconds;

    #[test]
    fn the_lease_duration_is_whole_seconds_and_leaves_time_to_renew() {
        assert_eq!(lease_seconds("10s"), Ok(10));
        assert_eq!(lease_seconds("1m"), Ok(60));
        for bad in ["2s", "1500ms", "ten", ""] {
            assert!(lease_seconds(bad).is_err(), "{bad}");
        }
    }
}
