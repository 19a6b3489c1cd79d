//! The MCPRegistry controller. Each reconcile runs the stages in order:
//! [`validate`] (the admission rules, and the sync plan) → [`schedule`] (is a sync due?)
//! → [`source`] (dereference: read the document) → [`document`] and [`filter`] (pure:
//! parse, validate, normalise, filter) → [`build`] (pure: the output ConfigMap) →
//! [`apply`] (server-side apply, only when the document changed) → [`status`]
//! (kstatus-compatible, written only when it changed).
//!
//! A failed sync never touches the output ConfigMap: consumers keep the last good
//! catalogue while `Synced=False` says why it is stale.

pub mod apply;
pub mod build;
pub mod document;
pub mod failure;
pub mod filter;
pub mod schedule;
pub mod source;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::MCPRegistry;
use api::registry::RegistrySourceType;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::context::Context;
use crate::controllers::conditions::Reason;
use crate::controllers::{back_off, drain, name_of, namespace_of, scoped_api as api, triggers};
use crate::error::Error;
use failure::SyncError;
use schedule::{Decision, Facts, Trigger};
use status::Observed;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mcpregistry";
/// The action of this controller's events.
const EVENT_ACTION: &str = "Sync";

/// The controller's state: the shared context, the HTTP client of URL sources, and when
/// each registry was last fetched (so events do not re-fetch remote sources).
pub struct State {
    /// Shared operator context.
    pub ctx: Arc<Context>,
    http: reqwest::Client,
    attempts: Mutex<HashMap<String, Instant>>,
}

impl State {
    /// State over `ctx`.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, Error> {
        let http = source::http::client()
            .map_err(|e| Error::Registry(format!("building the HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            ctx,
            http,
            attempts: Mutex::new(HashMap::new()),
        }))
    }

    fn since_attempt(&self, uid: &str) -> Option<Duration> {
        let attempts = self.attempts.lock().ok()?;
        attempts.get(uid).map(Instant::elapsed)
    }

    fn record_attempt(&self, uid: &str) {
        if let Ok(mut attempts) = self.attempts.lock() {
            attempts.insert(uid.to_owned(), Instant::now());
        }
    }
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // One shutdown for the graceful stop and for `drain`'s deadline.
    let shutdown = futures::FutureExt::shared(shutdown);
    let state = match State::new(ctx) {
        Ok(state) => state,
        Err(error) => {
            tracing::error!(%error, "mcpregistry controller not started");
            return;
        }
    };
    let client = state.ctx.client.clone();
    let owned = watcher::Config::default()
        .labels("app.kubernetes.io/name=mcpregistry,app.kubernetes.io/managed-by=thv-operator");
    let (store, trigger) = triggers::reflected(
        api::<MCPRegistry>(&client, &namespace),
        watcher::Config::default(),
        |_| {},
    );
    let controller = Controller::for_stream(trigger, store.clone());
    let stream = controller
        .owns_stream(triggers::touched(
            api::<ConfigMap>(&client, &namespace),
            owned,
        ))
        .watches_stream(
            // Metadata only, and none the operator applies (one per MCPServer's
            // RunConfig): the name is all `reading` needs.
            state.ctx.feeds.referenced::<ConfigMap>(&namespace),
            reading(store),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, state);
    drain(CONTROLLER, stream, shutdown).await;
}

/// Maps a changed ConfigMap to the registries of its namespace that read it.
fn reading(
    store: Store<MCPRegistry>,
) -> impl Fn(PartialObjectMeta<ConfigMap>) -> Vec<ObjectRef<MCPRegistry>> + Send + Sync + 'static {
    move |map: PartialObjectMeta<ConfigMap>| {
        let Ok(name) = name_of(&map) else {
            return Vec::new();
        };
        store
            .state()
            .iter()
            .filter(|r| r.metadata.namespace == map.metadata.namespace && reads_config_map(r, name))
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect()
    }
}

/// Whether `registry` syncs from the ConfigMap called `name` (same namespace assumed).
pub fn reads_config_map(registry: &MCPRegistry, name: &str) -> bool {
    let source = &registry.spec.source;
    source.type_ == RegistrySourceType::Configmap
        && source.config_map.as_ref().is_some_and(|m| m.name == name)
}

/// One reconcile of one MCPRegistry.
pub async fn reconcile(registry: Arc<MCPRegistry>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if registry.metadata.deletion_timestamp.is_some() {
        // The owner reference lets the garbage collector delete the output ConfigMap.
        return Ok(Action::await_change());
    }
    let namespace = namespace_of(registry.as_ref())?;
    let uid = registry
        .uid()
        .ok_or(Error::MissingObjectKey("metadata.uid"))?;
    let now = Timestamp::now();

    let plan = match validate::check_spec(&registry) {
        Ok(plan) => plan,
        Err(problems) => {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let error = SyncError::InvalidSpec(problems.join("; "));
            report_failure(ctx, &registry, &error, now).await?;
            // Nothing to do until the spec changes.
            return Ok(Action::await_change());
        }
    };
    let output_name = build::output_name(&registry.name_any());
    let current = apply::Current::read(&ctx.client, namespace, &output_name).await?;
    let output_hash = current.hash();
    let facts = Facts {
        interval: plan.interval,
        output_hash: output_hash.as_deref(),
        now,
        since_attempt: state.since_attempt(&uid),
    };
    let trigger = match schedule::decide(&registry, &facts) {
        Decision::Sync(trigger) => trigger,
        Decision::Wait(Some(after)) => return Ok(Action::requeue(after)),
        Decision::Wait(None) => return Ok(Action::await_change()),
    };
    tracing::debug!(name = %registry.name_any(), %namespace, ?trigger, "syncing registry");

    let origin = describe_source(&registry);
    if trigger == Trigger::SpecChanged {
        let syncing = status::desired(&registry, &Observed::Syncing(&origin), now);
        status::write(&ctx.client, &registry, &syncing).await?;
    }
    if registry.spec.source.type_ != RegistrySourceType::Configmap {
        state.record_attempt(&uid);
    }
    let clients = source::Clients {
        kube: &ctx.client,
        http: &state.http,
    };
    let outcome = match sync(&registry, namespace, &clients, &current).await? {
        Ok(synced) => synced,
        Err(error) => {
            report_failure(ctx, &registry, &error, now).await?;
            return Ok(Action::requeue(schedule::RETRY));
        }
    };
    let changed = registry
        .status
        .as_ref()
        .and_then(|s| s.last_sync_hash.as_deref())
        != Some(outcome.hash.as_str());
    let observed = Observed::Synced {
        servers: outcome.servers,
        hash: &outcome.hash,
        confirmed: trigger != Trigger::SourceWatched,
        message: outcome.message.clone(),
    };
    let desired = status::desired(&registry, &observed, now);
    status::write(&ctx.client, &registry, &desired).await?;
    if changed {
        publish(
            ctx,
            &registry,
            EventType::Normal,
            Reason::Synced,
            &outcome.message,
        )
        .await;
    }
    Ok(match plan.interval {
        Some(interval) => Action::requeue(interval),
        None => Action::await_change(),
    })
}

/// A successful sync.
struct Synced {
    servers: usize,
    hash: String,
    message: String,
}

/// Fetches, parses, filters and writes the registry; the outer error is a reconcile
/// error (API server), the inner one a failed sync reported in the status.
async fn sync(
    registry: &MCPRegistry,
    namespace: &str,
    clients: &source::Clients<'_>,
    current: &apply::Current,
) -> Result<Result<Synced, SyncError>, Error> {
    let spec = &registry.spec;
    let fetched = match source::fetch(&spec.source, namespace, clients).await {
        Ok(fetched) => fetched,
        Err(error) => return Ok(Err(error)),
    };
    let parsed = match document::parse(&fetched.bytes, spec.source.format) {
        Ok(parsed) => parsed,
        Err(invalid) => return Ok(Err(SyncError::InvalidDocument(invalid))),
    };
    let total = parsed.registry.len();
    let filtered = filter::apply(parsed.registry, spec.filter.as_ref());
    let document::Rendered { text, hash } =
        document::render(&filtered).map_err(|source| Error::Serialize {
            what: "registry document",
            source,
        })?;
    // A ConfigMap holds at most 1 MiB; leave room for metadata.
    const MAX_OUTPUT: usize = 1000 * 1024;
    if text.len() > MAX_OUTPUT {
        return Ok(Err(SyncError::TooLarge {
            what: format!(
                "the normalised registry ({} servers; use spec.filter to keep fewer)",
                filtered.len()
            ),
            size: text.len(),
            limit: MAX_OUTPUT,
        }));
    }
    let desired = build::output(registry, &text, &hash, parsed.format)?;
    let uid = registry.uid().unwrap_or_default();
    if let Err(conflict) = apply::apply(clients.kube, current, &desired, &hash, &uid).await? {
        return Ok(Err(conflict));
    }
    let mut message = format!(
        "synced {} of {} servers from {} ({} format)",
        filtered.len(),
        total,
        fetched.origin,
        document::format_name(parsed.format)
    );
    if !parsed.skipped.is_empty() {
        message.push_str(&format!(
            "; skipped {} entries the operator cannot run: {}",
            parsed.skipped.len(),
            parsed
                .skipped
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(Ok(Synced {
        servers: filtered.len(),
        hash,
        message,
    }))
}

/// Writes the failed status, and on a new failure a Warning event and the error counter.
async fn report_failure(
    ctx: &Context,
    registry: &MCPRegistry,
    error: &SyncError,
    now: Timestamp,
) -> Result<(), Error> {
    let desired = status::desired(registry, &Observed::Failed(error), now);
    let repeated = registry.status.as_ref().is_some_and(|s| {
        s.observed_generation == desired.observed_generation && s.message == desired.message
    });
    if !repeated {
        ctx.metrics.error(CONTROLLER, error.metric_label());
        let reason = if error.waiting() {
            Reason::WaitingForSource
        } else {
            Reason::SyncFailed
        };
        publish(
            ctx,
            registry,
            EventType::Warning,
            reason,
            &error.to_string(),
        )
        .await;
    }
    status::write(&ctx.client, registry, &desired).await
}

/// Where the registry reads from, for messages.
fn describe_source(registry: &MCPRegistry) -> String {
    let source = &registry.spec.source;
    match source.type_ {
        RegistrySourceType::Configmap => source
            .config_map
            .as_ref()
            .map(|m| format!("ConfigMap {}", m.name)),
        RegistrySourceType::Git => source.git.as_ref().map(|g| format!("git {}", g.url)),
        RegistrySourceType::Url => source.url.as_ref().map(|u| format!("URL {}", u.url)),
    }
    .unwrap_or_else(|| format!("a {} source", source::describe(source.type_)))
}

/// An event about `registry`.
async fn publish(
    ctx: &Context,
    registry: &MCPRegistry,
    type_: EventType,
    reason: Reason,
    note: &str,
) {
    crate::controllers::publish(ctx, registry, type_, reason, EVENT_ACTION, note).await;
}

/// Backs off on errors; every failure is counted by reason.
pub fn error_policy(registry: Arc<MCPRegistry>, error: &Error, state: Arc<State>) -> Action {
    back_off(&state.ctx, CONTROLLER, registry.as_ref(), error)
}

#[cfg(test)]
pub(crate) mod tests {
    use api::MCPRegistry;

    /// An MCPRegistry `team` in namespace `tools` with the given spec (YAML, flow style
    /// welcome), as the API server would store it.
    pub fn registry(spec: &str) -> MCPRegistry {
        let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
        let yaml = format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRegistry\nmetadata: {{name: team, namespace: tools, uid: u-1, generation: 1}}\nspec:\n{indented}"
        );
        api::manifest::from_yaml(&yaml).expect("fixture parses")
    }
}
