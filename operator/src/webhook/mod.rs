//! The validating admission webhook: refuses an invalid MCPServer, MCPToolConfig,
//! MCPOIDCConfig, MCPAuthzConfig, MCPTelemetryConfig or MCPRegistry at `kubectl apply`,
//! with every problem at its field path, by running `admission::check_manifest` (the code
//! behind `thv validate`) against the objects of the request's namespace.
//!
//! - [`handler`]: AdmissionReview in, AdmissionReview out (pure but for [`catalog`]).
//! - [`catalog`]: referenced objects from the API server, or from memory in tests.
//! - [`server`]: HTTPS with a hot-swappable certificate, limits, metrics.
//! - [`certs`]: the CA and serving certificate, issued and rotated by the operator
//!   (self-signed mode) or read from a mounted cert-manager Secret.
//! - [`config`]: the ValidatingWebhookConfiguration, kept pointing at this server and
//!   trusting its CA.
//!
//! [`Webhook::start`] wires them: certificates first, then the server, then the
//! configuration (so the API server is never sent to a server that is not listening),
//! then a task that rotates or re-reads certificates and re-applies the configuration.

pub mod catalog;
pub mod certs;
pub mod config;
pub mod handler;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::catalog::Catalogs;
use self::certs::{Bundle, CertError, CertResolver, Lifetimes};
use self::config::Registration;
use crate::metrics::Metrics;

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The API server refused or failed a request (Secret, configuration).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Certificates could not be made or read.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The TLS settings were refused.
    #[error("TLS settings: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// The listening socket.
    #[error("webhook listener: {0}")]
    Io(#[from] std::io::Error),
    /// Other replicas kept changing the certificate Secret under us.
    #[error("the certificate Secret {0} kept changing while being updated; retry")]
    Contention(String),
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum CertSource {
    /// The operator's own CA, kept in a Secret (created if missing, rotated before
    /// expiry); the configuration gets its `caBundle`.
    SelfSigned {
        /// Namespace of the Secret (the operator's).
        namespace: String,
        /// Name of the Secret.
        secret: String,
        /// Lifetimes of the CA and the serving certificate.
        lifetimes: Lifetimes,
    },
    /// `tls.crt` and `tls.key` in a directory (a cert-manager Secret mounted into the
    /// pod), re-read when they change; cert-manager injects the `caBundle`.
    Directory(PathBuf),
}

/// How the webhook runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The configuration to keep in place.
    pub registration: Registration,
    /// The certificates.
    pub certs: CertSource,
    /// Longest time from request to answer (the API server waits 5 s).
    pub request_timeout: Duration,
    /// How often certificates and the configuration are checked at the latest
    /// (rotation is also scheduled at its due time).
    pub resync: Duration,
}

/// The running webhook: its server and its certificate task.
pub struct Webhook {
    addr: SocketAddr,
    resolver: Arc<CertResolver>,
    stop: watch::Sender<bool>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Webhook {
    /// Prepares certificates, starts serving on `listener`, applies the configuration
    /// and keeps both current until [`Webhook::stop`].
    pub async fn start<C: Catalogs>(
        client: Client,
        settings: Settings,
        catalogs: Arc<C>,
        metrics: Arc<Metrics>,
        listener: TcpListener,
    ) -> Result<Self, WebhookError> {
        let addr = listener.local_addr()?;
        let names = settings.registration.target.certificate_names();
        let (initial, ca_bundle, state) = match &settings.certs {
            CertSource::SelfSigned {
                namespace,
                secret,
                lifetimes,
            } => {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let bundle = ensure_bundle(&secrets, secret, namespace, &names, *lifetimes).await?;
                let key = bundle.certified_key()?;
                let ca = Some(bundle.ca_bundle.clone());
                (key, ca, Served::Bundle(bundle))
            }
            CertSource::Directory(dir) => {
                let (key, raw) = certs::read_dir(dir)?;
                (key, None, Served::Files(raw))
            }
        };
        let resolver = CertResolver::new(initial);
        let tls = server::tls_config(resolver.clone())?;
        let (stop, stopped) = watch::channel(false);
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let serving = tokio::spawn(server::serve(
            listener,
            tls,
            catalogs,
            metrics,
            settings.request_timeout,
            stopped.clone(),
            draining.clone(),
        ));
        let configuration = config::build(&settings.registration, ca_bundle.as_deref());
        config::apply(&client, &configuration).await?;
        tracing::info!(%addr, configuration = %settings.registration.name, "webhook serving");
        let keeper = Keeper {
            client,
            settings,
            names,
            resolver: resolver.clone(),
            served: state,
        };
        let keeping = tokio::spawn(keeper.run(stopped));
        Ok(Self {
            addr,
            resolver,
            stop,
            draining,
            tasks: vec![serving, keeping],
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The leaf certificate being served (DER).
    pub fn serving_certificate(&self) -> Option<Vec<u8>> {
        self.resolver.leaf()
    }

    /// From now on every answer closes its connection (the process is stopping): the
    /// API server's next review goes to another replica.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops serving (the port closes) and stops the certificate task. The
    /// configuration stays: with `failurePolicy: Fail` the API server then refuses our
    /// kinds until a webhook serves again, which is the point.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What the server presents, to tell when a re-read brings something new.
enum Served {
    Bundle(Bundle),
    Files(Vec<u8>),
}

/// Keeps the certificates and the configuration current.
struct Keeper {
    client: Client,
    settings: Settings,
    names: Vec<String>,
    resolver: Arc<CertResolver>,
    served: Served,
}

impl Keeper {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let wait = self.next_check();
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = self.check().await {
                tracing::warn!(error = %e, "webhook: keeping certificates and configuration current");
            }
        }
    }

    /// Until the next rotation is due, at most the resync interval.
    fn next_check(&self) -> Duration {
        let resync = self.settings.resync;
        match &self.served {
            Served::Bundle(bundle) => bundle
                .next_rotation()
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .clamp(Duration::from_millis(200), resync),
            Served::Files(_) => resync,
        }
    }

    async fn check(&mut self) -> Result<(), WebhookError> {
        match &self.settings.certs {
            CertSource::SelfSigned {
                namespace,
                secret,
                lifetimes,
            } => {
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                let bundle =
                    ensure_bundle(&secrets, secret, namespace, &self.names, *lifetimes).await?;
                // Re-applied every time: repairs a configuration someone edited or
                // deleted, and publishes a new CA before it is served.
                let configuration =
                    config::build(&self.settings.registration, Some(&bundle.ca_bundle));
                config::apply(&self.client, &configuration).await?;
                let Served::Bundle(served) = &self.served else {
                    return Ok(());
                };
                if served.cert == bundle.cert {
                    return Ok(());
                }
                if served.ca_cert != bundle.ca_cert {
                    // A new CA: give the API server a moment to load the new caBundle,
                    // while the current certificate (signed by the previous CA, still
                    // trusted) remains valid.
                    let left = served
                        .cert_expires
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    tokio::time::sleep((left / 2).min(CA_PROPAGATION)).await;
                }
                self.resolver.set(bundle.certified_key()?);
                tracing::info!(
                    expires = %humantime::format_rfc3339_seconds(bundle.cert_expires),
                    "webhook: serving a new certificate"
                );
                self.served = Served::Bundle(bundle);
            }
            CertSource::Directory(dir) => {
                let configuration = config::build(&self.settings.registration, None);
                config::apply(&self.client, &configuration).await?;
                let (key, raw) = certs::read_dir(dir)?;
                if matches!(&self.served, Served::Files(old) if *old == raw) {
                    return Ok(());
                }
                self.resolver.set(key);
                tracing::info!(dir = %dir.display(), "webhook: serving the renewed certificate");
                self.served = Served::Files(raw);
            }
        }
        Ok(())
    }
}

/// How long a new CA is published before certificates it signed are served.
const CA_PROPAGATION: Duration = Duration::from_secs(5);

/// The certificate bundle in the Secret, created or rotated as needed. Replicas race
/// safely: creation and updates are conditional, and the loser uses the winner's.
async fn ensure_bundle(
    secrets: &Api<Secret>,
    name: &str,
    namespace: &str,
    names: &[String],
    lifetimes: Lifetimes,
) -> Result<Bundle, WebhookError> {
    for _ in 0..5 {
        let now = SystemTime::now();
        let Some(current) = secrets.get_opt(name).await? else {
            let bundle = Bundle::issue(names, lifetimes, now)?;
            match secrets
                .create(&PostParams::default(), &bundle.to_secret(name, namespace))
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %name, %namespace, "webhook: issued a CA and serving certificate");
                    return Ok(bundle);
                }
                Err(kube::Error::Api(status)) if status.is_already_exists() => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let placeholder = current
            .data
            .as_ref()
            .is_none_or(|d| d.get("ca-signer.key").is_none_or(|k| k.0.is_empty()));
        let next = match Bundle::from_secret(&current) {
            Ok(bundle) => match bundle.renewed(names, lifetimes, now)? {
                None => return Ok(bundle),
                Some(next) => next,
            },
            // The chart declares the Secret empty (so `helm uninstall` removes it).
            Err(_) if placeholder => Bundle::issue(names, lifetimes, now)?,
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "webhook: the certificate Secret is unusable; issuing new certificates");
                Bundle::issue(names, lifetimes, now)?
            }
        };
        let mut updated = next.to_secret(name, namespace);
        updated.metadata.resource_version = current.metadata.resource_version.clone();
        // Labels and annotations of others (Helm's release metadata) stay.
        for (ours, theirs) in [
            (&mut updated.metadata.labels, &current.metadata.labels),
            (
                &mut updated.metadata.annotations,
                &current.metadata.annotations,
            ),
        ] {
            let mut merged = theirs.clone().unwrap_or_default();
            merged.extend(ours.take().unwrap_or_default());
            *ours = Some(merged);
        }
        updated.metadata.owner_references = current.metadata.owner_references.clone();
        match secrets
            .replace(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                tracing::info!(secret = %name, expires = %humantime::format_rfc3339_seconds(next.cert_expires), "webhook: rotated certificates");
                return Ok(next);
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WebhookError::Contention(format!("{namespace}/{name}")))
}
