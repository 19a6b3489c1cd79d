//! The MCPServer controller. Each reconcile runs the stages in order:
//! [`dereference`] (fetch referenced objects) → [`validate`] (the shared runconfig
//! validation) → [`build`] (pure: desired objects) → [`apply`] (server-side apply) →
//! [`status`] (kstatus-compatible, written only when it changes).

pub mod apply;
pub mod build;
pub mod dereference;
pub mod references;
pub mod status;
pub mod validate;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use admission::ConfigKind;
use api::MCPServer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::context::Context;
use crate::controllers::conditions::Reason;
use crate::controllers::{back_off, drain, name_of, namespace_of, scoped_api as api, triggers};
use crate::error::Error;
use crate::labels::Owner;
use references::{RefKind, RefState, Referencing};
use status::Observed;
use validate::Outcome;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mcpserver";
/// Periodic re-check, for what no watch reports (e.g. a Secret behind an MCPOIDCConfig).
const RESYNC: Duration = Duration::from_secs(300);
/// Re-check of a server waiting for a referenced object (the watch usually comes first).
const WAIT_FOR_REFERENCE: Duration = Duration::from_secs(30);
/// The action of this controller's events.
const EVENT_ACTION: &str = "Reconcile";

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // One shutdown for the graceful stop and for `drain`'s deadline.
    let shutdown = futures::FutureExt::shared(shutdown);
    let controller = proxied_controller::<MCPServer>(&ctx, &namespace);
    let stream = controller
        .with_config(controller_config())
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx);
    drain(CONTROLLER, stream, shutdown).await;
}

/// The controller of `R` (MCPServer or MCPRemoteProxy) with every watch both kinds
/// share: a store of the `R`s themselves (their managedFields, a JSON tree per field
/// manager that nothing reads, dropped on the way in), the objects the operator applies
/// for them, and every kind they reference (metadata only).
pub(crate) fn proxied_controller<R>(ctx: &Context, namespace: &Option<String>) -> Controller<R>
where
    R: Watched + Referencing + Owner + serde::de::DeserializeOwned,
{
    let client = &ctx.client;
    let (store, trigger) = triggers::reflected(
        api::<R>(client, namespace),
        watcher::Config::default(),
        |object: &mut R| object.managed_fields_mut().clear(),
    );
    let watches = Watches {
        feeds: &ctx.feeds,
        namespace,
        store: &store,
    };
    let controller = Controller::for_stream(trigger, store.clone());
    let controller = watches.owned::<Deployment>(controller);
    let controller = watches.owned::<Service>(controller);
    let controller = watches.owned::<ConfigMap>(controller);
    let controller = watches.owned::<ServiceAccount>(controller);
    let controller = watches.owned::<Role>(controller);
    let controller = watches.owned::<RoleBinding>(controller);
    let controller = watches.owned::<NetworkPolicy>(controller);
    let config = |kind| RefKind::Config(kind);
    let controller =
        watches.referenced::<api::MCPToolConfig>(controller, config(ConfigKind::ToolConfig));
    let controller =
        watches.referenced::<api::MCPOIDCConfig>(controller, config(ConfigKind::OidcConfig));
    let controller =
        watches.referenced::<api::MCPAuthzConfig>(controller, config(ConfigKind::AuthzConfig));
    let controller = watches
        .referenced::<api::MCPTelemetryConfig>(controller, config(ConfigKind::TelemetryConfig));
    let controller = watches.referenced::<api::MCPGroup>(controller, config(ConfigKind::Group));
    let controller = watches.referenced::<api::MCPExternalAuthConfig>(
        controller,
        config(ConfigKind::ExternalAuthConfig),
    );
    let controller =
        watches.referenced::<api::MCPWebhookConfig>(controller, config(ConfigKind::WebhookConfig));
    let controller = watches.referenced::<ConfigMap>(controller, RefKind::ConfigMap);
    watches.referenced::<Secret>(controller, RefKind::Secret)
}

/// A namespaced kind the controller watches (metadata only).
pub(crate) trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Send + Sync + 'static
{
}

impl<
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Send
        + Sync
        + 'static,
> Watched for K
{
}

/// What the metadata-only watches of a controller of `R` (MCPServer, MCPRemoteProxy) share.
pub(crate) struct Watches<'a, R: Watched> {
    pub feeds: &'a crate::controllers::feeds::Feeds,
    pub namespace: &'a Option<String>,
    pub store: &'a Store<R>,
}

impl<R: Watched + Referencing + Owner + serde::de::DeserializeOwned> Watches<'_, R> {
    /// Watches the `K` objects this operator applies for `R`s, mapped to their owner. The
    /// watch is shared with the other kind's controller; an object the other kind owns
    /// maps to nothing here.
    pub fn owned<K: Watched>(&self, controller: Controller<R>) -> Controller<R> {
        controller.watches_stream(self.feeds.owned::<K>(self.namespace), owner::<_, R>())
    }

    /// Watches every `K` object but the operator's own, mapped to the `R`s referencing it
    /// as `kind`.
    pub fn referenced<K: Watched>(
        &self,
        controller: Controller<R>,
        kind: RefKind,
    ) -> Controller<R> {
        controller.watches_stream(
            self.feeds.referenced::<K>(self.namespace),
            referencing(self.store.clone(), kind),
        )
    }
}

/// Maps an owned object's event to its `R` owner (what `Controller::owns` does);
/// [`apply::Applied`] was told of the event where the shared watch received it.
fn owner<K: Resource<DynamicType = ()>, R: Watched>()
-> impl Fn(K) -> Option<ObjectRef<R>> + Send + Sync + 'static {
    let owner_kind = R::kind(&()).into_owned();
    move |object: K| {
        let namespace = object.meta().namespace.clone()?;
        object
            .meta()
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| {
                o.controller == Some(true)
                    && o.kind == owner_kind
                    && o.api_version.starts_with(api::GROUP)
            })
            .map(|o| ObjectRef::new(&o.name).within(&namespace))
    }
}

/// Reconciles at most this many MCPServers at once: bounds memory and API load when a
/// thousand objects arrive together.
const CONCURRENCY: u16 = 16;
/// Triggers for one MCPServer within this window are coalesced into one reconcile: a
/// rollout updates the Deployment's status several times in a row.
const DEBOUNCE: Duration = Duration::from_millis(500);

pub(crate) fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default()
        .concurrency(CONCURRENCY)
        .debounce(DEBOUNCE)
}

/// Maps a changed object to the `R`s in its namespace that reference it.
fn referencing<K: Resource + 'static, R: Watched + Referencing>(
    store: Store<R>,
    kind: RefKind,
) -> impl Fn(K) -> Vec<ObjectRef<R>> + Send + Sync + 'static {
    move |object: K| {
        let Ok(name) = name_of(&object) else {
            return Vec::new();
        };
        let namespace = &object.meta().namespace;
        store
            .state()
            .iter()
            .filter(|s| &s.meta().namespace == namespace && s.references(kind, name))
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}

/// A Secret the proxy reads through its environment (`spec.sessionStorage.passwordRef`,
/// the token, header value or client secret of `spec.externalAuthConfigRef`, the HMAC keys
/// and TLS material of `spec.webhookConfigRef`), when it or its key
/// does not exist: the pod would stay in CreateContainerConfigError.
fn missing_proxy_secret(
    server: &MCPServer,
    refs: &dereference::Dereferenced,
) -> Option<admission::MissingReference> {
    let session = dereference::Dereferenced::session_password(server)
        .map(|s| ("spec.sessionStorage.passwordRef", s));
    let exchange = refs
        .external_auth_secret()
        .map(|s| ("spec.externalAuthConfigRef", s));
    let webhooks = refs
        .webhook_secrets()
        .into_iter()
        .map(|(_, s)| ("spec.webhookConfigRef", s));
    session
        .into_iter()
        .chain(exchange)
        .chain(webhooks)
        .find_map(|(field, secret)| {
            refs.missing_secrets
                .iter()
                .any(|(name, key)| *name == secret.name && *key == secret.key)
                .then(|| admission::MissingReference {
                    field: field.to_owned(),
                    kind: admission::ReferencedKind::Secret,
                    name: format!("{} (key {})", secret.name, secret.key),
                })
        })
}

/// One reconcile of one MCPServer.
pub async fn reconcile(server: Arc<MCPServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if server.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove every owned object.
        return Ok(Action::await_change());
    }
    let namespace = namespace_of(server.as_ref())?;
    if ctx.terminating.recently(namespace) {
        // Every create there would be refused; the server goes with its namespace.
        return Ok(Action::requeue(crate::controllers::Terminating::PAUSE));
    }
    let refs = dereference::fetch(&server, &ctx.client).await?;
    let ref_states = RefState::of(server.as_ref(), |kind| refs.found(kind));
    let hashes = refs.hashes();
    let url = build::url(&server).ok();
    let outcome = match validate::check(&server, &refs) {
        // The proxy's Redis password: without it the proxy pod would stay in
        // CreateContainerConfigError; wait for the Secret, naming it.
        Outcome::Valid(_) if let Some(missing) = missing_proxy_secret(&server, &refs) => {
            Outcome::Waiting(vec![missing])
        }
        decided => decided,
    };
    let (observed, action) = match outcome {
        Outcome::Invalid(findings) => {
            let first_time = server.status.as_ref().and_then(|s| s.observed_generation)
                != server.metadata.generation
                || server.status.as_ref().and_then(|s| s.phase)
                    != Some(api::mcpserver::MCPServerPhase::Failed);
            if first_time {
                let note = findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                publish(&ctx, &server, Reason::InvalidSpec, &note).await;
            }
            // Nothing to do until the spec or a reference changes; the watches bring that.
            (Stage::Invalid(findings), Action::await_change())
        }
        Outcome::Waiting(missing) => {
            let note = missing
                .iter()
                .map(|m| {
                    format!(
                        "{} {} referenced by {} does not exist",
                        m.kind, m.name, m.field
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            publish(&ctx, &server, Reason::ReferenceNotFound, &note).await;
            (Stage::Waiting(missing), Action::requeue(WAIT_FOR_REFERENCE))
        }
        Outcome::Valid(runconfig) => {
            let rendered = build::render(&runconfig);
            let inputs = build::Inputs::new(&rendered, &refs, &ctx.config);
            let objects = build::objects(&server, &inputs)?;
            let deployment = apply::apply(&ctx.client, namespace, &objects, &ctx.applied).await?;
            apply::stop_server(&ctx.client, namespace, &server, &deployment).await?;
            (
                Stage::Applied(Box::new(deployment)),
                Action::requeue(RESYNC),
            )
        }
    };
    let desired = status::desired(
        &server,
        &observed.observed(),
        &ref_states,
        url,
        &hashes,
        Timestamp::now(),
    );
    status::write(&ctx.client, &server, desired).await?;
    Ok(action)
}

/// Where the reconcile ended, owning what the status is computed from.
enum Stage {
    Invalid(Vec<admission::Finding>),
    Waiting(Vec<admission::MissingReference>),
    Applied(Box<Deployment>),
}

impl Stage {
    fn observed(&self) -> Observed<'_> {
        match self {
            Self::Invalid(findings) => Observed::Invalid(findings),
            Self::Waiting(missing) => Observed::Waiting(missing),
            Self::Applied(deployment) => Observed::Applied(deployment),
        }
    }
}

/// A Warning event about `server`.
async fn publish(ctx: &Context, server: &MCPServer, reason: Reason, note: &str) {
    crate::controllers::publish(ctx, server, EventType::Warning, reason, EVENT_ACTION, note).await;
}

/// Backs off on errors; every failure is counted by reason.
pub fn error_policy(server: Arc<MCPServer>, error: &Error, ctx: Arc<Context>) -> Action {
    back_off(&ctx, CONTROLLER, server.as_ref(), error)
}
