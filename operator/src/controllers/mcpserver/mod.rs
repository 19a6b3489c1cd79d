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

use std::sync::Arc;
use std::time::Duration;

use api::MCPServer;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use crate::context::Context;
use crate::controllers::scoped_api as api;
use crate::error::Error;
use references::RefKind;
use status::{Hashes, Observed};
use validate::Outcome;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mcpserver";
/// Periodic re-check, for what no watch reports (e.g. a Secret behind an MCPOIDCConfig).
const RESYNC: Duration = Duration::from_secs(300);
/// Re-check of a server waiting for a referenced object (the watch usually comes first).
const WAIT_FOR_REFERENCE: Duration = Duration::from_secs(30);

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let cfg = watcher::Config::default();
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=thv-operator");
    // The store keeps every MCPServer; their managedFields (a JSON tree per field
    // manager) are never read, so they are dropped on the way in.
    let (store, writer) = reflector::store::<MCPServer>();
    let trigger = reflector(
        writer,
        watcher(api::<MCPServer>(&client, &namespace), cfg.clone())
            .modify(|server| server.managed_fields_mut().clear()),
    )
    .applied_objects();
    let controller = Controller::for_stream(trigger, store.clone());
    controller
        .watches(
            api::<PartialObjectMeta<Deployment>>(&client, &namespace),
            owned.clone(),
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<Service>>(&client, &namespace),
            owned.clone(),
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<ConfigMap>>(&client, &namespace),
            owned.clone(),
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<ServiceAccount>>(&client, &namespace),
            owned.clone(),
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<Role>>(&client, &namespace),
            owned.clone(),
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<RoleBinding>>(&client, &namespace),
            owned,
            owner(ctx.applied.clone()),
        )
        .watches(
            api::<PartialObjectMeta<api::MCPToolConfig>>(&client, &namespace),
            cfg.clone(),
            referencing(store.clone(), RefKind::ToolConfig),
        )
        .watches(
            api::<PartialObjectMeta<api::MCPOIDCConfig>>(&client, &namespace),
            cfg.clone(),
            referencing(store.clone(), RefKind::OidcConfig),
        )
        .watches(
            api::<PartialObjectMeta<api::MCPAuthzConfig>>(&client, &namespace),
            cfg.clone(),
            referencing(store.clone(), RefKind::AuthzConfig),
        )
        .watches(
            api::<PartialObjectMeta<api::MCPTelemetryConfig>>(&client, &namespace),
            cfg.clone(),
            referencing(store.clone(), RefKind::TelemetryConfig),
        )
        .watches(
            api::<PartialObjectMeta<ConfigMap>>(&client, &namespace),
            cfg.clone(),
            referencing(store.clone(), RefKind::ConfigMap),
        )
        .watches(
            api::<PartialObjectMeta<Secret>>(&client, &namespace),
            cfg,
            referencing(store, RefKind::Secret),
        )
        .with_config(controller_config())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "mcpserver reconcile stream");
            }
        })
        .await;
}

/// Maps an owned object's event to its MCPServer (what `Controller::owns` does), telling
/// [`apply::Applied`] first so a changed object is applied again.
fn owner<K: Resource<DynamicType = ()>>(
    applied: Arc<apply::Applied>,
) -> impl Fn(K) -> Option<ObjectRef<MCPServer>> + Send + Sync + 'static {
    move |object: K| {
        applied.observe(&object);
        let namespace = object.meta().namespace.clone()?;
        object
            .meta()
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| {
                o.controller == Some(true)
                    && o.kind == "MCPServer"
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

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default()
        .concurrency(CONCURRENCY)
        .debounce(DEBOUNCE)
}

/// Maps a changed object to the MCPServers in its namespace that reference it.
fn referencing<K: Resource + 'static>(
    store: Store<MCPServer>,
    kind: RefKind,
) -> impl Fn(K) -> Vec<ObjectRef<MCPServer>> + Send + Sync + 'static {
    move |object: K| {
        let (Some(name), namespace) = (object.meta().name.clone(), object.meta().namespace.clone())
        else {
            return Vec::new();
        };
        store
            .state()
            .iter()
            .filter(|s| s.metadata.namespace == namespace && references::references(s, kind, &name))
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}

/// One reconcile of one MCPServer.
pub async fn reconcile(server: Arc<MCPServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if server.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove every owned object.
        return Ok(Action::await_change());
    }
    let namespace = server
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let refs = dereference::fetch(&server, &ctx.client).await?;
    let ref_states = ref_states(&server, &refs);
    let hashes = Hashes {
        tool_config: refs
            .tool_config
            .as_ref()
            .and_then(|o| dereference::hash(&o.spec)),
        oidc_config: refs
            .oidc_config
            .as_ref()
            .and_then(|o| dereference::hash(&o.spec)),
        authz_config: refs
            .authz_config
            .as_ref()
            .map(|o| dereference::hash(&o.spec))
            .unwrap_or_else(|| refs.authz_config_map.as_ref().and_then(dereference::hash)),
        telemetry_config: refs
            .telemetry_config
            .as_ref()
            .and_then(|o| dereference::hash(&o.spec)),
        secrets: Some(refs.secrets_checksum.clone()),
    };
    let url = build::url(&server).ok();
    match validate::check(&server, &refs) {
        Outcome::Invalid(messages) => {
            let first_time = server.status.as_ref().and_then(|s| s.observed_generation)
                != server.metadata.generation
                || server.status.as_ref().and_then(|s| s.phase)
                    != Some(api::mcpserver::MCPServerPhase::Failed);
            if first_time {
                publish(
                    &ctx,
                    &server,
                    EventType::Warning,
                    "InvalidSpec",
                    &messages.join("; "),
                )
                .await;
            }
            let desired = status::desired(
                &server,
                &Observed::Invalid(&messages),
                &ref_states,
                url,
                &hashes,
            );
            status::write(&ctx.client, &server, desired).await?;
            // Nothing to do until the spec or a reference changes; the watches bring that.
            Ok(Action::await_change())
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
            publish(
                &ctx,
                &server,
                EventType::Warning,
                "ReferenceNotFound",
                &note,
            )
            .await;
            let desired = status::desired(
                &server,
                &Observed::Waiting(&missing),
                &ref_states,
                url,
                &hashes,
            );
            status::write(&ctx.client, &server, desired).await?;
            Ok(Action::requeue(WAIT_FOR_REFERENCE))
        }
        Outcome::Valid {
            runconfig_json,
            checksum,
        } => {
            let inputs = build::Inputs {
                runconfig_json: &runconfig_json,
                runconfig_checksum: &checksum,
                secrets_checksum: &refs.secrets_checksum,
                oidc_client_secret: refs.oidc_client_secret(),
                config: &ctx.config,
            };
            let objects = build::objects(&server, &inputs)?;
            let deployment = apply::apply(&ctx.client, &namespace, &objects, &ctx.applied).await?;
            let desired = status::desired(
                &server,
                &Observed::Applied(&deployment),
                &ref_states,
                url,
                &hashes,
            );
            status::write(&ctx.client, &server, desired).await?;
            Ok(Action::requeue(RESYNC))
        }
    }
}

fn ref_states(server: &MCPServer, refs: &dereference::Dereferenced) -> status::RefStates {
    let spec = &server.spec;
    let mut states = Vec::new();
    if let Some(r) = &spec.tool_config_ref {
        states.push((
            "ToolConfigRefValidated",
            "MCPToolConfig",
            r.name.clone(),
            refs.tool_config.is_some(),
        ));
    }
    if let Some(r) = &spec.oidc_config_ref {
        states.push((
            "OIDCConfigRefValidated",
            "MCPOIDCConfig",
            r.name.clone(),
            refs.oidc_config.is_some(),
        ));
    }
    if let Some(r) = &spec.authz_config_ref {
        states.push((
            "AuthzConfigRefValidated",
            "MCPAuthzConfig",
            r.name.clone(),
            refs.authz_config.is_some(),
        ));
    }
    if let Some(r) = &spec.telemetry_config_ref {
        states.push((
            "TelemetryConfigRefValidated",
            "MCPTelemetryConfig",
            r.name.clone(),
            refs.telemetry_config.is_some(),
        ));
    }
    states
}

async fn publish(ctx: &Context, server: &MCPServer, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        // The events API caps notes at 1 KiB.
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &server.object_ref(&())).await {
        tracing::warn!(%error, "publishing event");
    }
}

/// Backs off on errors; every failure is counted by reason.
pub fn error_policy(server: Arc<MCPServer>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER, error.metric_label());
    tracing::warn!(name = %server.name_any(), namespace = ?server.namespace(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}
