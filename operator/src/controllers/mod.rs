//! The controllers: one module per kind, each split into its reconcile stages, and the
//! plumbing both share (object keys, status writes, events, the error policy, watches).

pub mod conditions;
pub mod feeds;
pub mod mcpgroup;
pub mod mcpregistry;
pub mod mcpremoteproxy;
pub mod mcpserver;
pub mod triggers;

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::Error;
use conditions::Reason;

/// An Api over one namespace (namespace-scoped install), or all of them.
pub(crate) fn scoped_api<K>(client: &kube::Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The object's name (every stored object has one).
pub(crate) fn name_of<K: Resource>(object: &K) -> Result<&str, Error> {
    object
        .meta()
        .name
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.name"))
}

/// The object's namespace (every stored object of our namespaced kinds has one).
pub(crate) fn namespace_of<K: Resource>(object: &K) -> Result<&str, Error> {
    object
        .meta()
        .namespace
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))
}

/// The controller owner reference to `object`: the garbage collector deletes what
/// carries it together with the object.
pub(crate) fn owner_reference<K: Resource<DynamicType = ()>>(
    object: &K,
) -> Result<OwnerReference, Error> {
    object
        .controller_owner_ref(&())
        .ok_or(Error::MissingObjectKey("metadata.uid"))
}

/// The answer to a write whose metadata is all the operator reads: the API server then
/// encodes a `PartialObjectMetadata` instead of the whole object (on the cores it shares
/// with everything else), and the operator decodes no more than the resourceVersion.
const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// What the operator reads of a write's answer.
#[derive(serde::Deserialize)]
struct Written {
    metadata: WrittenMetadata,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrittenMetadata {
    resource_version: Option<String>,
}

/// Sends `request`, a write built with [`kube::core::Request`], asking for its answer as
/// metadata only; returns the resourceVersion the API server stored.
pub(crate) async fn write(
    client: &kube::Client,
    mut request: http::Request<Vec<u8>>,
) -> Result<Option<String>, Error> {
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(METADATA_ONLY),
    );
    let written: Written = client.request(request).await?;
    Ok(written.metadata.resource_version)
}

/// Writes `status` into the status subresource of `object` (a merge patch).
pub(crate) async fn patch_status<K, S>(
    client: &kube::Client,
    object: &K,
    status: &S,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    S: Serialize,
{
    /// The merge patch's body.
    #[derive(Serialize)]
    struct StatusPatch<'a, S> {
        status: &'a S,
    }
    let patch = StatusPatch { status };
    let request = kube::core::Request::new(K::url_path(&(), Some(namespace_of(object)?)))
        .patch_subresource(
            "status",
            name_of(object)?,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .map_err(kube::Error::BuildRequest)?;
    write(client, request).await.map(|_| ())
}

/// Writes `status` like [`patch_status`], removing every top-level field the stored
/// status (`old`) has and `status` leaves out — a merge patch otherwise keeps them, e.g.
/// the hash of a reference the spec no longer has — except the fields in `keep`, which
/// another writer owns.
pub(crate) async fn replace_status<K, S>(
    client: &kube::Client,
    object: &K,
    old: Option<&S>,
    status: &S,
    keep: &[&str],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    let serialize = |source| Error::Serialize {
        what: "status",
        source,
    };
    let mut value = serde_json::to_value(status).map_err(serialize)?;
    let old = old
        .map(serde_json::to_value)
        .transpose()
        .map_err(serialize)?;
    if let (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) =
        (old, &mut value)
    {
        for key in old.keys() {
            if !new.contains_key(key) && !keep.contains(&key.as_str()) {
                new.insert(key.clone(), serde_json::Value::Null);
            }
        }
    }
    patch_status(client, object, &value).await
}

/// Publishes an event about `object`; a failure to publish is logged, never fatal.
pub(crate) async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: Reason,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.as_str().to_owned(),
        // The events API caps notes at 1 KiB.
        note: Some(note.chars().take(1000).collect()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, "publishing event");
    }
}

/// How long a controller may take to finish its reconciles once shutdown began.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs a controller's reconcile stream to its end (shutdown), logging what it reports,
/// for at most [`SHUTDOWN_GRACE`] once `shutdown` resolved (give it the future that
/// started the controller's graceful shutdown). kube-runtime holds a controller's runner
/// until its store has listed once; a controller told to stop during that first list
/// (a replica that became leader and got SIGTERM within the same second) has its
/// watches dropped, so the store never lists and its stream never ended: the process
/// hung, still holding the leader Lease (seen in the `leader` e2e test).
pub(crate) async fn drain<T, E: std::fmt::Display>(
    controller: &'static str,
    stream: impl futures::Stream<Item = Result<T, E>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let drained = stream.for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "{controller} reconcile stream");
        }
    });
    tokio::select! {
        () = drained => {}
        () = async {
            shutdown.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(
                controller,
                "still running {SHUTDOWN_GRACE:?} after shutdown began (reconciles in flight, or a first list never finished); stopping it"
            );
        }
    }
}

/// Namespaces the API server said are being deleted, and when it last said so. While a
/// namespace of 1,000 MCPServers was deleted, the garbage collector's deletion of each
/// owned object triggered a reconcile that applied it again, and the API server refused
/// each apply: 8,800 refused requests and as many warnings in 40 s, on an API server busy
/// deleting. The reconciles of a namespace noted here make no request for a while.
#[derive(Debug, Default)]
pub struct Terminating(std::sync::Mutex<std::collections::HashMap<String, Instant>>);

impl Terminating {
    /// How long a namespace found being deleted is left alone; a namespace being deleted
    /// is deleted in the end, so this only bounds how often that is checked again.
    pub const PAUSE: Duration = Duration::from_secs(30);

    fn entries(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Instant>> {
        // Only hints; after a panic elsewhere still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that `namespace` is being deleted.
    pub fn note(&self, namespace: &str) {
        self.entries().insert(namespace.to_owned(), Instant::now());
    }

    /// Whether `namespace` was found being deleted less than [`Self::PAUSE`] ago.
    pub fn recently(&self, namespace: &str) -> bool {
        let mut entries = self.entries();
        entries.retain(|_, noted| noted.elapsed() < Self::PAUSE);
        entries.contains_key(namespace)
    }
}

/// Backs off on errors; every failure is counted by reason. A write refused because the
/// namespace is being deleted is no warning: the object goes with its namespace.
pub(crate) fn back_off<K: Resource>(
    ctx: &Context,
    controller: &'static str,
    object: &K,
    error: &Error,
) -> Action {
    ctx.metrics.error(controller, error.metric_label());
    if error.namespace_terminating()
        && let Some(namespace) = object.namespace()
    {
        ctx.terminating.note(&namespace);
        tracing::debug!(name = %object.name_any(), %namespace, "namespace being deleted; left alone for {:?}", Terminating::PAUSE);
        return Action::requeue(Terminating::PAUSE);
    }
    tracing::warn!(name = %object.name_any(), namespace = ?object.namespace(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::{Context, OperatorConfig};

    #[test]
    fn a_namespace_found_being_deleted_is_left_alone_for_a_while() {
        let terminating = super::Terminating::default();
        assert!(!terminating.recently("tools"));
        terminating.note("tools");
        assert!(terminating.recently("tools"));
        assert!(!terminating.recently("other"));
    }

    /// A controller told to stop before its store ever listed (here: no API server at
    /// all, and the stop already given) used to wait for ever; it now ends once
    /// [`super::SHUTDOWN_GRACE`] has passed.
    #[tokio::test]
    async fn a_controller_stopped_before_its_first_list_still_ends() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("URL"));
        let client = kube::Client::try_from(config).expect("client");
        let metrics = Arc::new(crate::metrics::Metrics::new().expect("metrics"));
        let ctx = Context::new(client, metrics, OperatorConfig::default());
        let started = Instant::now();
        let ended = tokio::time::timeout(
            super::SHUTDOWN_GRACE + Duration::from_secs(20),
            super::mcpserver::run(ctx, Some("ns".to_owned()), async {}),
        )
        .await;
        assert!(
            ended.is_ok(),
            "still running {:?} after shutdown",
            started.elapsed()
        );
    }
}
