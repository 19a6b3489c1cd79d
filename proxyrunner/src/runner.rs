//! Assembling the proxy from a `ValidatedRunConfig` (the only input the middleware
//! constructors accept) and serving it.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use runconfig::ValidatedRunConfig;
use runconfig::validate::{HeaderValueSource, ProxyMode, Transport, ValidatedWorkload};
use tokio::net::TcpListener;

use crate::backend::bridge::{Bridge, Handshake};
use crate::backend::http::{HostHeader, Upstream};
use crate::backend::kubernetes;
use crate::backend::process::LocalProcess;
use crate::backend::report::{self, Inputs};
use crate::backend::{pods, probe};
use crate::middleware::chain::{self, Chain};
use crate::middleware::origin::OriginGuard;
use crate::middleware::telemetry::Metrics;
use crate::middleware::{audit, metrics_export};
use crate::proxy::{Backend, Proxy};
use crate::reply;
use crate::transport::{sse::Sse, streamable::Streamable};

/// Settings that are not part of the RunConfig (they belong to where the proxy runs).
#[derive(Clone)]
pub struct Options {
    /// Run the MCP server as this local command instead of the image (program, args).
    pub command: Vec<String>,
    /// Which `Host` an HTTP upstream receives; `None` picks per workload.
    pub host_header: Option<HostHeader>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Hosts accepted in `Host` besides loopback names and the allowed origins.
    pub allowed_hosts: Vec<String>,
    /// Overrides the RunConfig's listen address.
    pub listen: Option<SocketAddr>,
    /// Where `/metrics` is served when Prometheus is enabled.
    pub metrics_listen: SocketAddr,
    /// Where audit events go; stdout when `None`.
    pub audit_sink: Option<audit::Sink>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("command", &self.command)
            .field("host_header", &self.host_header)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("audit_sink", &self.audit_sink.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Why the proxy cannot be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting that cannot work here.
    #[error("{0}")]
    Setting(String),
}

/// Builds the proxy (and starts its workload).
pub fn build(config: &ValidatedRunConfig, options: &Options) -> Result<Proxy, BuildError> {
    let proxy = &config.proxy;
    // Metrics are kept when Prometheus serves them or OTLP receives them.
    let metrics = match &proxy.telemetry {
        Some(t) if t.prometheus_enabled || (t.metrics_enabled && t.endpoint.is_some()) => {
            let transport = transport_label(config);
            let metrics = Arc::new(
                Metrics::new(&config.source.name, transport)
                    .map_err(|e| BuildError::Setting(format!("metrics: {e}")))?,
            );
            Some(metrics)
        }
        _ => None,
    };
    let metrics_export = match (&metrics, &proxy.telemetry) {
        (Some(metrics), Some(t)) => metrics_export::Exporter::new(metrics.clone(), t),
        _ => None,
    };
    if let Some(exporter) = &metrics_export {
        exporter.spawn(metrics_export::interval_from_env());
    }
    let prefix = proxy.endpoint_prefix.clone().unwrap_or_default();
    let (backend, mode) = backend(config, options, &prefix, metrics.clone())?;
    let chain = Chain::build(&chain::BuildContext {
        config,
        mode,
        metrics: metrics.clone(),
        audit_sink: options.audit_sink.clone(),
    })?;
    Ok(Proxy {
        origin: OriginGuard::new(&proxy.host, &proxy.allowed_origins, &options.allowed_hosts),
        max_body_bytes: options.max_body_bytes,
        chain: Arc::new(chain),
        metrics,
        metrics_export,
        backend,
        draining: Default::default(),
    })
}

fn transport_label(config: &ValidatedRunConfig) -> &'static str {
    match &config.workload {
        ValidatedWorkload::Container(c) if c.transport == Transport::Stdio => {
            match config.proxy.mode {
                ProxyMode::Sse => "sse",
                ProxyMode::StreamableHttp => "streamable-http",
            }
        }
        ValidatedWorkload::Container(c) => transport_name(c.transport),
        ValidatedWorkload::Remote(r) => transport_name(r.transport),
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Stdio => "stdio",
        Transport::Sse => "sse",
        Transport::StreamableHttp => "streamable-http",
    }
}

fn backend(
    config: &ValidatedRunConfig,
    options: &Options,
    prefix: &str,
    metrics: Option<Arc<Metrics>>,
) -> Result<(Backend, ProxyMode), BuildError> {
    let trust = config.proxy.trust_proxy_headers;
    let http_mode = |t: Transport| match t {
        Transport::Sse => (ProxyMode::Sse, "/sse"),
        _ => (ProxyMode::StreamableHttp, "/mcp"),
    };
    if config.proxy.session_redis.is_some() {
        match &config.workload {
            ValidatedWorkload::Remote(_) => tracing::info!(
                "session storage: a remote server keeps its own sessions and this proxy holds no state for them; no session is written to Redis"
            ),
            ValidatedWorkload::Container(c) if c.transport == Transport::Stdio => tracing::info!(
                "session storage: a stdio server has one proxy replica, which holds its sessions; no session is written to Redis"
            ),
            ValidatedWorkload::Container(_)
                if !kubernetes::in_cluster() || !options.command.is_empty() =>
            {
                tracing::info!(
                    "session storage: the server is not a StatefulSet in a cluster (one upstream, no pods to route to); no session is written to Redis"
                )
            }
            ValidatedWorkload::Container(_) => {}
        }
    }
    match &config.workload {
        ValidatedWorkload::Remote(remote) => {
            let (mode, path) = http_mode(remote.transport);
            let upstream = Upstream::new(
                &remote.url,
                path,
                options.host_header.unwrap_or(HostHeader::Upstream),
                trust,
            )
            .map_err(BuildError::Setting)?
            .with_endpoint_prefix(prefix)
            .with_headers(forwarded_headers(
                &remote.headers,
                "workload.remote.headers",
            )?);
            if kubernetes::in_cluster()
                && report::SubjectKind::from_env() == report::SubjectKind::RemoteProxy
            {
                report_remote(
                    &config.source.name,
                    remote.url.as_str(),
                    &upstream,
                    remote.transport,
                );
            }
            Ok((Backend::Http(upstream), mode))
        }
        ValidatedWorkload::Container(container) => {
            let source = match &config.source.workload {
                runconfig::config::Workload::Container(c) => c,
                runconfig::config::Workload::Remote(_) => {
                    return Err(BuildError::Setting(
                        "container workload without its source".to_owned(),
                    ));
                }
            };
            let local = local_process(options, source);
            if container.transport == Transport::Stdio {
                let bridge = match local {
                    Some(process) => Bridge::start(Arc::new(process)),
                    None if kubernetes::in_cluster() => {
                        let pod = kubernetes::AttachedPod::new(
                            kubernetes::ServerObjects::build(&config.source)
                                .map_err(|e| BuildError::Setting(e.to_string()))?,
                        );
                        let inputs = pod.inputs();
                        // The proxy initialises the server itself: ready means answered.
                        let bridge = Bridge::start_with(Arc::new(pod), Handshake::Eager);
                        kubernetes::follow(&bridge, inputs);
                        bridge
                    }
                    None => {
                        return Err(BuildError::Setting(format!(
                            "workload.image {}: outside a cluster a stdio server runs as a local command: pass it after `--`",
                            source.image
                        )));
                    }
                };
                return Ok(match config.proxy.mode {
                    ProxyMode::StreamableHttp => (
                        Backend::Streamable(Streamable::new(bridge, metrics)),
                        ProxyMode::StreamableHttp,
                    ),
                    ProxyMode::Sse => (
                        Backend::Sse(Sse::new(bridge, prefix, metrics)),
                        ProxyMode::Sse,
                    ),
                });
            }
            if let Some(process) = local {
                spawn_http_server(process);
            }
            let (mode, path) = http_mode(container.transport);
            let host = source.target_host.as_deref().unwrap_or("127.0.0.1");
            let port = container.target_port.unwrap_or(8080);
            let url = url::Url::parse(&format!("http://{host}:{port}{path}"))
                .map_err(|e| BuildError::Setting(format!("workload.target_host {host:?}: {e}")))?;
            let mut upstream = Upstream::new(
                &url,
                path,
                options.host_header.unwrap_or(HostHeader::Preserve),
                trust,
            )
            .map_err(BuildError::Setting)?
            .with_endpoint_prefix(prefix)
            .with_headers(forwarded_headers(
                &container.headers,
                "workload.container.headers",
            )?);
            if options.command.is_empty() && kubernetes::in_cluster() {
                // The server runs as the StatefulSet's pods; each session goes to its own.
                let objects = kubernetes::ServerObjects::build(&config.source)
                    .map_err(|e| BuildError::Setting(e.to_string()))?;
                let shared = match &config.proxy.session_redis {
                    Some(redis) => Some(Arc::new(
                        pods::shared::SharedSessions::from_env(
                            redis,
                            &objects.namespace,
                            &objects.name,
                            pods::SESSION_IDLE,
                        )
                        .map_err(|e| BuildError::Setting(e.to_string()))?,
                    )),
                    None => None,
                };
                let inputs = tokio::sync::watch::Sender::new(Inputs::default());
                let router = pods::discovery::start(objects, port, inputs.clone());
                if let Some(shared) = shared {
                    router.share_sessions(shared.clone());
                    tokio::spawn(async move { shared.ping().await });
                }
                let dialect = match container.transport {
                    Transport::Sse => probe::Dialect::Sse(path.to_owned()),
                    _ => probe::Dialect::Streamable(path.to_owned()),
                };
                // Ready once a pod answered the proxy's own initialize.
                probe::keep_probing(router.clone(), dialect, upstream.headers(), inputs);
                upstream = upstream.with_pods(router);
            }
            Ok((Backend::Http(upstream), mode))
        }
    }
}

/// The headers added toward the server (the RunConfig's list at `path`), their values
/// read now: a literal, or an environment variable the platform set (from a Secret, in
/// Kubernetes).
fn forwarded_headers(
    headers: &[runconfig::validate::ForwardedHeader],
    path: &str,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, BuildError> {
    headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let at = format!("{path}[{i}]");
            let name = http::HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|e| BuildError::Setting(format!("{at}.name {:?}: {e}", header.name)))?;
            let text = match &header.value {
                HeaderValueSource::Literal(value) => value.clone(),
                HeaderValueSource::Env(env) => std::env::var(env).map_err(|_| {
                    BuildError::Setting(format!(
                        "{at}.value_env: the environment variable {env} is not set (or not UTF-8)"
                    ))
                })?,
            };
            let mut value = http::HeaderValue::from_str(text.trim()).map_err(|_| {
                BuildError::Setting(format!(
                    "{at}: the value of {} is not a valid header value (a line break?)",
                    header.name
                ))
            })?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

/// An MCPRemoteProxy's proxy: shakes hands with the remote server now and then and
/// writes what it found into the MCPRemoteProxy's `status.backend`, which the operator
/// reads into `Ready`.
fn report_remote(name: &str, url: &str, upstream: &Upstream, transport: Transport) {
    let (target, host, path) = upstream.probe_target();
    let dialect = match transport {
        Transport::Sse => probe::Dialect::Sse(path),
        _ => probe::Dialect::Streamable(path),
    };
    let inputs = tokio::sync::watch::Sender::new(Inputs {
        remote: Some(url.to_owned()),
        ..Inputs::default()
    });
    // Subscribed before the probe starts: it stops once nobody receives.
    let receiver = inputs.subscribe();
    probe::keep_probing_remote(target, host, dialect, url.to_owned(), inputs);
    let subject = report::Subject {
        kind: report::SubjectKind::RemoteProxy,
        name: name.to_owned(),
        namespace: std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".to_owned()),
        uid: std::env::var("THV_OWNER_UID")
            .ok()
            .filter(|uid| !uid.is_empty()),
    };
    tokio::spawn(async move {
        match kube_connect::infer().await {
            Ok(client) => report::spawn(client, subject, receiver),
            Err(error) => {
                tracing::warn!(%error, "no Kubernetes client: the remote server's state is not reported");
            }
        }
    });
}

fn local_process(
    options: &Options,
    source: &runconfig::config::ContainerWorkload,
) -> Option<LocalProcess> {
    let (program, args) = options.command.split_first()?;
    Some(LocalProcess {
        program: program.clone(),
        args: args.iter().chain(&source.args).cloned().collect(),
        env: source
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
    })
}

/// Runs a local HTTP MCP server for the proxy's lifetime, restarting it when it exits.
fn spawn_http_server(process: LocalProcess) {
    use crate::backend::Workload;
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            match process.start().await {
                Ok(attached) => {
                    if let Some(stderr) = attached.stderr {
                        let name = process.describe();
                        tokio::spawn(async move {
                            use tokio::io::AsyncBufReadExt;
                            let mut lines = tokio::io::BufReader::new(stderr).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                tracing::info!(target: "mcp_server", workload = %name, "{line}");
                            }
                        });
                    }
                    let _stdin = attached.stdin;
                    let _stdout = attached.stdout;
                    let why = attached.exited.await;
                    tracing::warn!(workload = %process.describe(), why = %why, "MCP server ended; restarting");
                }
                Err(e) => {
                    tracing::error!(workload = %process.describe(), error = %e, "MCP server could not be started")
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(30));
        }
    });
}

/// The next connection. Accepting fails for reasons that pass (out of file descriptors
/// under load, a connection reset before it was accepted): the error is logged and
/// accepting resumes shortly, rather than the proxy stopping.
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long a client has to send a request's head once the proxy waits for one: a slow
/// client ("slowloris") cannot hold a connection, and its task, for ever. hyper starts
/// this timer whenever it waits for the next request, so an idle keep-alive connection
/// is closed after it too (as Go's `IdleTimeout` would); a client's pool then opens a
/// new connection. Event streams and slow calls are not affected: no head is awaited
/// while a response is being written.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the proxy on `listener` for as long as the process runs.
pub async fn serve(proxy: Arc<Proxy>, listener: TcpListener) -> std::io::Result<()> {
    let (_keep, stop) = tokio::sync::watch::channel(false);
    serve_until(proxy, listener, stop, std::time::Duration::ZERO).await
}

/// Serves the proxy on `listener` until `stop` turns true, then stops accepting and lets
/// every open connection finish the request it is serving (hyper closes it after that
/// response); returns when all have closed, or after `deadline` (an open event stream
/// never finishes by itself).
pub async fn serve_until(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
    deadline: std::time::Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        // The request's future is boxed: hyper keeps room for the service's future in
        // every connection for as long as it is open, and the proxy's is several KiB
        // (the largest path, an HTTP upstream's TLS connect, sets its size), which an
        // idle session's connection would hold for nothing.
        let service = service_fn(move |request| {
            let proxy = proxy.clone();
            let handled = Box::pin(async move { proxy.handle(request, peer).await });
            async move { Ok::<_, std::convert::Infallible>(handled.await) }
        });
        let connection = graceful.watch(
            http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service),
        );
        tokio::spawn(async move {
            let dedicated = crate::backend::http::Dedicated::default();
            if let Err(e) = crate::backend::http::DEDICATED
                .scope(dedicated, connection)
                .await
            {
                tracing::debug!(error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?deadline,
            "connections still open when the drain deadline passed; closing them"
        );
    }
    Ok(())
}

/// Serves `/metrics` on its own listener.
pub async fn serve_metrics(metrics: Arc<Metrics>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = accept(&listener).await;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        reply::with_body(
                            http::StatusCode::OK,
                            "text/plain; version=0.0.4",
                            metrics.render(),
                        )
                    } else {
                        reply::error(http::StatusCode::NOT_FOUND, "not found")
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
