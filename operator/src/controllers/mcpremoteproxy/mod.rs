//! The MCPRemoteProxy controller: the MCPServer controller's stages for a proxy with no
//! MCP server to run. dereference (the config objects it references) → validate
//! (admission's own mapping, the remote server as the workload) → build (RunConfig
//! ConfigMap, proxy Deployment, Service `mcp-<name>-remote-proxy`, the proxy's
//! ServiceAccount, Role and RoleBinding) → apply → status, where `Ready` waits for the
//! proxy's report that the remote server answered `initialize` through it.

mod build;

use std::sync::Arc;
use std::time::Duration;

use api::MCPRemoteProxy;
use api::mcpserver::MCPServerPhase;
use api::remoteproxy::{MCPRemoteProxyPhase, MCPRemoteProxyStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::context::Context;
use crate::controllers::conditions::{Reason, keep_transition_times};
use crate::controllers::mcpserver::references::RefState;
use crate::controllers::mcpserver::status::{Observed, Summary, summarize};
use crate::controllers::mcpserver::validate::{Outcome, outcome};
use crate::controllers::mcpserver::{
    apply, build as server_build, controller_config, dereference, proxied_controller,
};
use crate::controllers::{back_off, drain, namespace_of};
use crate::error::Error;

pub use build::{objects, remote_proxy_service_account_name, url};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mcpremoteproxy";
/// Periodic re-check, for what no watch reports (e.g. a Secret behind an MCPOIDCConfig).
const RESYNC: Duration = Duration::from_secs(300);
/// Re-check of a proxy waiting for a referenced object (the watch usually comes first).
const WAIT_FOR_REFERENCE: Duration = Duration::from_secs(30);

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // One shutdown for the graceful stop and for `drain`'s deadline.
    let shutdown = futures::FutureExt::shared(shutdown);
    let stream = proxied_controller::<MCPRemoteProxy>(&ctx, &namespace)
        .with_config(controller_config())
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx);
    drain(CONTROLLER, stream, shutdown).await;
}

/// One reconcile of one MCPRemoteProxy.
pub async fn reconcile(proxy: Arc<MCPRemoteProxy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if proxy.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove every owned object.
        return Ok(Action::await_change());
    }
    let namespace = namespace_of(proxy.as_ref())?;
    if ctx.terminating.recently(namespace) {
        // Every create there would be refused; the proxy goes with its namespace.
        return Ok(Action::requeue(crate::controllers::Terminating::PAUSE));
    }
    // Header values from Secrets: a rotated Secret rolls the proxy pods.
    let secrets = proxy
        .spec
        .header_forward
        .iter()
        .flat_map(|f| f.add_headers_from_secret.iter())
        .map(|h| {
            (
                h.value_secret_ref.name.as_str(),
                h.value_secret_ref.key.as_str(),
            )
        });
    let refs = dereference::fetch_for(proxy.as_ref(), None, secrets, &ctx.client).await?;
    let ref_states = RefState::of(proxy.as_ref(), |kind| refs.found(kind));
    let checked = admission::map_and_validate_remote(&proxy, &refs.references());
    let outcome = match outcome(checked) {
        // A value the kubelet could not give the proxy: wait for it, naming it, rather
        // than roll out a pod stuck in CreateContainerConfigError.
        Outcome::Valid(_) if !refs.missing_secrets.is_empty() => {
            Outcome::Waiting(missing_secrets(&proxy, &refs))
        }
        decided => decided,
    };
    let (observed, action) = match outcome {
        Outcome::Invalid(findings) => {
            let note = join(findings.iter().map(ToString::to_string));
            warn(&ctx, &proxy, Reason::InvalidSpec, &note).await;
            (Stage::Invalid(findings), Action::await_change())
        }
        Outcome::Waiting(missing) => {
            let note = join(missing.iter().map(|m| {
                format!(
                    "{} {} referenced by {} does not exist",
                    m.kind, m.name, m.field
                )
            }));
            warn(&ctx, &proxy, Reason::ReferenceNotFound, &note).await;
            (Stage::Waiting(missing), Action::requeue(WAIT_FOR_REFERENCE))
        }
        Outcome::Valid(runconfig) => {
            let rendered = server_build::render(&runconfig);
            let inputs = server_build::Inputs::new(&rendered, &refs, &ctx.config);
            let objects = build::objects(&proxy, &inputs, inputs.external_auth)?;
            if let Some(owner) = taken(&ctx.client, namespace, &objects, &proxy).await? {
                let finding = admission::Finding::new(
                    "metadata.name",
                    runconfig::Reason::Conflict,
                    owner,
                    "another name for one of them",
                );
                warn(&ctx, &proxy, Reason::InvalidSpec, &finding.to_string()).await;
                // The other owner may go; its objects' deletion does not reach here.
                (
                    Stage::Invalid(vec![finding]),
                    Action::requeue(WAIT_FOR_REFERENCE),
                )
            } else {
                let deployment =
                    apply::apply(&ctx.client, namespace, &objects, &ctx.applied).await?;
                (
                    Stage::Applied(Box::new(deployment)),
                    Action::requeue(RESYNC),
                )
            }
        }
    };
    let status = desired(&proxy, &observed, &ref_states, &refs, Timestamp::now());
    write(&ctx.client, &proxy, status).await?;
    Ok(action)
}

/// An object this proxy would apply that something else controls — an MCPServer of the
/// same name, admitted while the webhook was not looking — described, so the proxy
/// stops rather than takes it over (one field manager applies both kinds' objects).
async fn taken(
    client: &Client,
    namespace: &str,
    objects: &server_build::Objects,
    proxy: &MCPRemoteProxy,
) -> Result<Option<String>, Error> {
    async fn owner<K: crate::controllers::mcpserver::Watched + serde::de::DeserializeOwned>(
        client: &Client,
        namespace: &str,
        object: &K,
        uid: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let name = crate::controllers::name_of(object)?;
        let api: kube::Api<K> = kube::Api::namespaced(client.clone(), namespace);
        let stored = api.get_metadata_opt(name).await?;
        let controller = stored
            .and_then(|s| s.metadata.owner_references)
            .into_iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        Ok(controller
            .filter(|o| Some(o.uid.as_str()) != uid)
            .map(|o| format!("{} {name} belongs to {} {}", K::kind(&()), o.kind, o.name)))
    }
    let uid = proxy.metadata.uid.as_deref();
    if let Some(found) = owner(client, namespace, &objects.deployment, uid).await? {
        return Ok(Some(found));
    }
    if let Some(found) = owner(client, namespace, &objects.service, uid).await? {
        return Ok(Some(found));
    }
    owner(client, namespace, &objects.runconfig, uid).await
}

/// The missing Secret keys, each at the field that references it.
fn missing_secrets(
    proxy: &MCPRemoteProxy,
    refs: &dereference::Dereferenced,
) -> Vec<admission::MissingReference> {
    let headers = proxy
        .spec
        .header_forward
        .iter()
        .flat_map(|f| f.add_headers_from_secret.iter())
        .enumerate()
        .map(|(i, h)| {
            (
                format!("spec.headerForward.addHeadersFromSecret[{i}].valueSecretRef"),
                &h.value_secret_ref,
            )
        });
    let external = refs
        .external_auth_secret()
        .map(|s| ("spec.externalAuthConfigRef".to_owned(), s));
    let oidc = refs
        .oidc_client_secret()
        .map(|s| ("spec.oidcConfigRef".to_owned(), s));
    let session = dereference::Dereferenced::session_password(proxy)
        .map(|s| ("spec.sessionStorage.passwordRef".to_owned(), s));
    let webhooks = refs
        .webhook_secrets()
        .into_iter()
        .map(|(_, s)| ("spec.webhookConfigRef".to_owned(), s));
    let referencing: Vec<_> = headers
        .chain(external)
        .chain(oidc)
        .chain(session)
        .chain(webhooks)
        .collect();
    refs.missing_secrets
        .iter()
        .map(|(name, key)| admission::MissingReference {
            field: referencing
                .iter()
                .find(|(_, s)| &s.name == name && &s.key == key)
                .map(|(field, _)| field.clone())
                .unwrap_or_else(|| "spec".to_owned()),
            kind: admission::ReferencedKind::Secret,
            name: format!("{name} (key {key})"),
        })
        .collect()
}

fn join(notes: impl Iterator<Item = String>) -> String {
    notes.collect::<Vec<_>>().join("; ")
}

/// Where the reconcile ended.
enum Stage {
    Invalid(Vec<admission::Finding>),
    Waiting(Vec<admission::MissingReference>),
    Applied(Box<Deployment>),
}

/// The status `proxy` should have at `now`: the MCPServer's summary (rollout, the
/// proxy's report on the remote server, references), in ToolHive's MCPRemoteProxy phases.
fn desired(
    proxy: &MCPRemoteProxy,
    stage: &Stage,
    refs: &[RefState],
    found: &dereference::Dereferenced,
    now: Timestamp,
) -> MCPRemoteProxyStatus {
    let generation = proxy.metadata.generation;
    let previous = proxy.status.as_ref();
    let observed = match stage {
        Stage::Invalid(findings) => Observed::Invalid(findings),
        Stage::Waiting(missing) => Observed::Waiting(missing),
        Stage::Applied(deployment) => Observed::Applied(deployment),
    };
    let backend = previous.and_then(|s| s.backend.as_ref());
    let Summary {
        phase,
        message,
        mut conditions,
        ready_replicas,
    } = summarize(
        &observed,
        backend,
        previous.and_then(|s| s.ready_replicas),
        generation,
        now,
    );
    conditions.extend(refs.iter().map(|r| r.condition(generation, now)));
    let hashes = found.hashes();
    MCPRemoteProxyStatus {
        conditions: keep_transition_times(
            previous
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            conditions,
        ),
        observed_generation: generation,
        phase: Some(match phase {
            MCPServerPhase::Ready => MCPRemoteProxyPhase::Ready,
            MCPServerPhase::Failed => MCPRemoteProxyPhase::Failed,
            MCPServerPhase::Terminating => MCPRemoteProxyPhase::Terminating,
            // Scaled to zero: nothing serves, and the message says why.
            MCPServerPhase::Pending | MCPServerPhase::Stopped => MCPRemoteProxyPhase::Pending,
        }),
        message: Some(message),
        url: url(proxy).ok(),
        external_url: None,
        ready_replicas,
        tool_config_hash: hashes.tool_config,
        oidc_config_hash: hashes.oidc_config,
        authz_config_hash: hashes.authz_config,
        telemetry_config_hash: hashes.telemetry_config,
        external_auth_config_hash: hashes.external_auth_config,
        webhook_config_hash: hashes.webhook_config,
        secrets_hash: hashes.secrets,
        // The proxy's to write; kept as it is so an unchanged status compares equal.
        backend: backend.cloned(),
    }
}

/// Writes the status subresource when it changed, leaving `backend` to the proxy.
async fn write(
    client: &Client,
    proxy: &MCPRemoteProxy,
    status: MCPRemoteProxyStatus,
) -> Result<(), Error> {
    if proxy.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let status = MCPRemoteProxyStatus {
        backend: None,
        ..status
    };
    crate::controllers::replace_status(client, proxy, proxy.status.as_ref(), &status, &["backend"])
        .await
}

/// A Warning event about `proxy`.
async fn warn(ctx: &Context, proxy: &MCPRemoteProxy, reason: Reason, note: &str) {
    crate::controllers::publish(ctx, proxy, EventType::Warning, reason, "Reconcile", note).await;
}

/// Backs off on errors; every failure is counted by reason.
pub fn error_policy(proxy: Arc<MCPRemoteProxy>, error: &Error, ctx: Arc<Context>) -> Action {
    back_off(&ctx, CONTROLLER, proxy.as_ref(), error)
}
