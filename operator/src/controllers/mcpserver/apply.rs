//! The apply stage: server-side apply of every owned object with one field manager.
//! Applying with `force` also repairs hand edits of the fields the operator owns.
//!
//! A reconcile is triggered many times per object (its own status write, each owned
//! object's events, rollouts), and re-applying seven unchanged objects each time was most
//! of the API load at scale. [`Applied`] remembers what was applied and the
//! resourceVersion the API server answered; an unchanged body for an object nobody has
//! touched since is skipped. Every watch event of an owned object passes through
//! [`Applied::observe`], which forgets the entry when the resourceVersion moved (a hand
//! edit, a deletion, a status update), so drift is still repaired on the next reconcile.
//! A watch that lists anew forgets every entry of its kind ([`Applied::forget`]): a
//! deletion while a watch was down is never reported as an event.
//!
//! The status needs the Deployment's status. While its entry stands, the Deployment is
//! as the operator's own apply left it, so the apply's answer, kept slim with the entry,
//! stands in for a `get`: a reconcile that changes nothing (the periodic re-check, the
//! event of the operator's own status write) makes no request. A status step of a
//! rollout moves the resourceVersion but not the generation; the next reconcile then
//! reads the Deployment and keeps what it read, unless a hand edit removed a label,
//! annotation or owner reference the operator applied (then it applies again). A read
//! costs the API server a tenth of a server-side apply that changes nothing (0.7 ms of
//! CPU against 6.6-9.5 ms for a proxy Deployment, measured on the harness API server).
//! Keeping every Deployment in a watch store instead was
//! measured and not kept: the API server, which encodes every status step of every
//! Deployment in full for such a watch, converged no sooner, and the operator's peak RSS
//! rose by 5 MiB (docs/performance.md, row 1).
//!
//! Of the other objects' answers only the resourceVersion is read, so they are asked for
//! as metadata only; of the Deployment's, only what the status reads is decoded; and
//! every body is serialised once, straight from its typed object. Decoding whole answers
//! (managedFields as `serde_json::Value` trees above all) and building each body as a
//! `Value` took 15 % of the operator's CPU at scale (docs/performance.md, row 1).
//!
//! The objects a Deployment needs (ServiceAccounts, Role, ConfigMap, Service) are applied
//! concurrently, then the RoleBinding, then the Deployment. The RoleBinding waits for its
//! Role: an operator without cluster-admin (the chart's RBAC) may bind only a Role whose
//! rules it holds, which the API server checks by reading the Role; while the Role did
//! not exist yet the binding's apply failed with NotFound (observed in `make demo-check`),
//! the failure cancelled the Role's concurrent request, and every retry failed alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use api::MCPServer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus, StatefulSet};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{GetParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::build::{Isolation, Objects};
use crate::FIELD_MANAGER;
use crate::controllers::name_of;
use crate::error::Error;

/// Key of an applied object: kind, namespace, name.
type Key = (String, String, String);

/// SHA-256 of an applied body.
type Hash = [u8; 32];

/// What the operator last applied of one object.
#[derive(Debug)]
struct Entry {
    /// Hash of the applied body.
    hash: Hash,
    /// The resourceVersion the API server answered with.
    version: String,
    /// For the proxy Deployment: what the status reads of the API server's answer (or of
    /// the last read of it).
    deployment: Option<Box<Rollout>>,
    /// For the proxy Deployment: a watch event showed a new version at the same
    /// generation (a status step, or an edit of its metadata), so `deployment` is out of
    /// date; a read tells which.
    moved: bool,
}

/// What [`Applied`] knows of a proxy Deployment whose body has not changed.
enum Known {
    /// As the operator's last apply (or read) left it: no watch event has moved it.
    Current(Box<Deployment>),
    /// Moved at the generation the operator applied: its status, or its metadata.
    Moved,
    /// Not applied with this body, or changed since in its spec, or deleted.
    Unknown,
}

/// What the status reads of a Deployment: its generation, replicas and status counts (a
/// `Deployment` itself, pod template included, is kilobytes even when empty).
#[derive(Debug)]
struct Rollout {
    generation: Option<i64>,
    replicas: Option<i32>,
    status: Option<DeploymentStatus>,
}

impl Rollout {
    /// What the status reads of the API server's answer to applying a Deployment.
    fn of(answer: DeploymentAnswer) -> Self {
        Self {
            generation: answer.metadata.generation,
            replicas: answer.spec.and_then(|spec| spec.replicas),
            status: answer.status.map(|status| DeploymentStatus {
                // Nothing reads them; their messages are most of a status's size.
                conditions: None,
                ..status
            }),
        }
    }

    /// The Deployment `key` names at `version`, as far as the status reads it.
    fn deployment(&self, key: &Key, version: Option<&str>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(key.2.clone()),
                namespace: Some(key.1.clone()),
                generation: self.generation,
                resource_version: version.map(str::to_owned),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: self.replicas,
                ..DeploymentSpec::default()
            }),
            status: self.status.clone(),
        }
    }
}

/// What the operator decodes of a Deployment the API server answers with, to an apply or
/// a read (the rest, its pod template and managedFields above all, is skipped unread).
#[derive(Deserialize)]
struct DeploymentAnswer {
    metadata: AnswerMetadata,
    spec: Option<AnswerSpec>,
    status: Option<DeploymentStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerMetadata {
    resource_version: Option<String>,
    generation: Option<i64>,
    /// Read to tell whether a hand edit removed what the operator applied.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<OwnerReference>,
}

impl AnswerMetadata {
    /// Whether every label, annotation and owner reference of `applied` is still here
    /// as applied (others' additions, such as the Deployment controller's revision
    /// annotation, do not count).
    fn keeps(&self, applied: &ObjectMeta) -> bool {
        let kept = |mine: &Option<BTreeMap<String, String>>, here: &BTreeMap<String, String>| {
            mine.iter()
                .flatten()
                .all(|(key, value)| here.get(key) == Some(value))
        };
        kept(&applied.labels, &self.labels)
            && kept(&applied.annotations, &self.annotations)
            && applied
                .owner_references
                .iter()
                .flatten()
                .all(|mine| self.owner_references.contains(mine))
    }
}

#[derive(Deserialize)]
struct AnswerSpec {
    replicas: Option<i32>,
}

/// What the operator last applied: per object, the body's hash and the resourceVersion
/// the API server answered with.
#[derive(Debug, Default)]
pub struct Applied(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// The operator's own requests in flight ([`Flight`]), per object: the versions its
    /// watch events showed meanwhile.
    flights: HashMap<Key, Vec<String>>,
}

/// The operator's own apply or read of one object, from before it is sent until its
/// answer is recorded ([`Flight::land`]). A watch event in between (another
/// controller's write right after the operator's) would otherwise be overwritten by the
/// older answer recorded after it, and the object taken as unchanged, its status
/// stale, until its next event.
struct Flight<'a> {
    applied: &'a Applied,
    key: Key,
}

impl Applied {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The map holds only hints; after a panic elsewhere it is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the deletion of `key` as done, under `hash` and the empty resourceVersion
    /// that no watch event carries.
    fn deleted(&self, key: Key, hash: Hash) {
        let entry = Entry {
            hash,
            version: String::new(),
            deployment: None,
            moved: false,
        };
        self.state().entries.insert(key, entry);
    }

    /// Starts the operator's own request for `key`.
    fn begin(&self, key: Key) -> Flight<'_> {
        self.state().flights.insert(key.clone(), Vec::new());
        Flight { applied: self, key }
    }

    /// Called with every watch event of an owned object: forgets the entry unless the
    /// event shows the very version the operator's own apply produced. A proxy
    /// Deployment moved at the generation the operator applied is only marked
    /// [`Known::Moved`]: its rollout's status steps are most of its events, and reading
    /// one costs the API server a tenth of what applying the Deployment again costs.
    pub fn observe<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let key = (
            K::kind(&()).into_owned(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        );
        let mut state = self.state();
        if let Some(seen) = state.flights.get_mut(&key) {
            seen.push(object.resource_version().unwrap_or_default());
        }
        let Some(entry) = state.entries.get_mut(&key) else {
            return;
        };
        if Some(&entry.version) == object.resource_version().as_ref() {
            return;
        }
        match &entry.deployment {
            Some(rollout) if rollout.generation == object.meta().generation => {
                entry.moved = true;
            }
            _ => {
                state.entries.remove(&key);
            }
        }
    }

    /// Forgets every `K` applied: its watch listed them anew, and one deleted while the
    /// watch was down would otherwise never be applied again.
    pub fn forget<K: Resource<DynamicType = ()>>(&self) {
        let kind = K::kind(&());
        self.state().entries.retain(|(k, _, _), _| *k != kind);
    }

    fn unchanged(&self, key: &Key, hash: &Hash) -> bool {
        self.state()
            .entries
            .get(key)
            .is_some_and(|entry| entry.hash == *hash)
    }

    /// What is known of the proxy Deployment the operator applied with this body.
    fn deployment(&self, key: &Key, hash: &Hash) -> Known {
        let state = self.state();
        let Some((entry, rollout)) = state
            .entries
            .get(key)
            .filter(|entry| entry.hash == *hash)
            .and_then(|entry| Some((entry, entry.deployment.as_ref()?)))
        else {
            return Known::Unknown;
        };
        if entry.moved {
            Known::Moved
        } else {
            Known::Current(Box::new(rollout.deployment(key, Some(&entry.version))))
        }
    }

    /// The generation the operator applied the proxy Deployment at, while it is
    /// [`Known::Moved`].
    fn applied_generation(&self, key: &Key) -> Option<i64> {
        self.state()
            .entries
            .get(key)
            .and_then(|entry| entry.deployment.as_ref())
            .and_then(|rollout| rollout.generation)
    }
}

impl Flight<'_> {
    /// Records what the API server answered: `version` of the object with this body.
    /// An event of another version while the request was in flight leaves a proxy
    /// Deployment [`Known::Moved`] (to be read) and any other object forgotten (to be
    /// applied again); so does an older event arriving late, which costs one request.
    fn land(self, hash: Hash, version: Option<String>, deployment: Option<Box<Rollout>>) {
        let mut state = self.applied.state();
        let seen = state.flights.remove(&self.key).unwrap_or_default();
        let Some(version) = version else {
            state.entries.remove(&self.key);
            return;
        };
        let moved = seen.iter().any(|seen| *seen != version);
        if moved && deployment.is_none() {
            state.entries.remove(&self.key);
            return;
        }
        let entry = Entry {
            hash,
            version,
            deployment,
            moved,
        };
        state.entries.insert(self.key.clone(), entry);
    }
}

impl Drop for Flight<'_> {
    /// A request that failed or was cancelled records nothing.
    fn drop(&mut self) {
        self.applied.state().flights.remove(&self.key);
    }
}

/// Applies every object; returns the Deployment as the API server stored it.
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &Objects,
    applied: &Applied,
) -> Result<Deployment, Error> {
    let accounts = futures::future::try_join_all(
        objects
            .service_accounts
            .iter()
            .map(|account| apply_one(client, namespace, account, applied)),
    );
    futures::try_join!(
        accounts,
        apply_one(client, namespace, &objects.role, applied),
        apply_one(client, namespace, &objects.runconfig, applied),
        apply_one(client, namespace, &objects.service, applied),
        isolate(client, namespace, &objects.network_policy, applied),
    )?;
    apply_one(client, namespace, &objects.role_binding, applied).await?;
    let Prepared { key, hash, body } = prepare(namespace, &objects.deployment)?;
    match applied.deployment(&key, &hash) {
        // Unchanged and untouched since the operator applied it: its answer then is
        // current.
        Known::Current(deployment) => return Ok(*deployment),
        Known::Moved => {
            if let Some(deployment) =
                read_back(client, key.clone(), hash, &objects.deployment, applied).await?
            {
                return Ok(deployment);
            }
        }
        Known::Unknown => {}
    }
    // The whole answer: the status reads the Deployment's status in it.
    let request = apply_request::<Deployment>(&key, &body)?;
    let flight = applied.begin(key);
    let answer: DeploymentAnswer = client.request(request).await?;
    Ok(keep(flight, hash, answer))
}

/// Reads the proxy Deployment that moved at the generation the operator applied. It is
/// returned (and kept) when it is still as applied: same generation, and its metadata
/// keeps every label, annotation and owner reference of `desired`'s. Otherwise (a hand
/// edit, or deleted) it must be applied again: `None`.
async fn read_back(
    client: &Client,
    key: Key,
    hash: Hash,
    desired: &Deployment,
    applied: &Applied,
) -> Result<Option<Deployment>, Error> {
    let request = kube::core::Request::new(Deployment::url_path(&(), Some(&key.1)))
        .get(&key.2, &GetParams::default())
        .map_err(kube::Error::BuildRequest)?;
    let flight = applied.begin(key.clone());
    let answer: DeploymentAnswer = match client.request(request).await {
        Ok(answer) => answer,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let as_applied = answer.metadata.generation == applied.applied_generation(&key)
        && answer.metadata.keeps(&desired.metadata);
    Ok(as_applied.then(|| keep(flight, hash, answer)))
}

/// Records the Deployment the API server answered with and returns it, as far as the
/// status reads it.
fn keep(flight: Flight<'_>, hash: Hash, mut answer: DeploymentAnswer) -> Deployment {
    let version = answer.metadata.resource_version.take();
    let rollout = Rollout::of(answer);
    let deployment = rollout.deployment(&flight.key, version.as_deref());
    flight.land(hash, version, Some(Box::new(rollout)));
    deployment
}

/// `spec.replicas: 0` stops the MCP server too, not only its proxy: once no proxy pod is
/// left (a running proxy would apply its StatefulSet again), the server's StatefulSet,
/// which the proxy applies and nobody else scales, is scaled to zero. The proxy scales it
/// back when it starts (`thv start`, or any `replicas` above zero).
pub async fn stop_server(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
    deployment: &Deployment,
) -> Result<(), Error> {
    let proxies = deployment
        .status
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    if server.spec.replicas != Some(0) || proxies > 0 {
        return Ok(());
    }
    let name = name_of(server)?;
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let running = api
        .get_opt(name)
        .await?
        .and_then(|s| s.spec)
        .is_some_and(|s| s.replicas != Some(0));
    if running {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = serde_json::json!({"spec": {"replicas": 0}});
        api.patch(name, &params, &Patch::Merge(patch)).await?;
    }
    Ok(())
}

/// Applies the MCP server pods' NetworkPolicy, or deletes it. A deletion is recorded as
/// done (the empty resourceVersion no watch event carries), so it is not repeated on
/// every reconcile; a policy appearing under that name later (any watch event) makes the
/// next reconcile delete it again.
async fn isolate(
    client: &Client,
    namespace: &str,
    isolation: &Isolation,
    applied: &Applied,
) -> Result<(), Error> {
    /// The hash recorded for a deletion: no body hashes to all zeros.
    const ABSENT: Hash = [0; 32];
    match isolation {
        Isolation::Unmanaged => Ok(()),
        Isolation::Apply(policy) => apply_one(client, namespace, policy.as_ref(), applied).await,
        Isolation::Remove(name) => {
            let key: Key = (
                <NetworkPolicy as k8s_openapi::Resource>::KIND.to_owned(),
                namespace.to_owned(),
                name.clone(),
            );
            if applied.unchanged(&key, &ABSENT) {
                return Ok(());
            }
            let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
            match api.delete(name, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            applied.deleted(key, ABSENT);
            Ok(())
        }
    }
}

/// Server-side applies `object` unless [`Applied`] knows it is already in place.
async fn apply_one<K>(
    client: &Client,
    namespace: &str,
    object: &K,
    applied: &Applied,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize,
{
    let Prepared { key, hash, body } = prepare(namespace, object)?;
    if applied.unchanged(&key, &hash) {
        return Ok(());
    }
    let request = apply_request::<K>(&key, &body)?;
    let flight = applied.begin(key);
    let version = crate::controllers::write(client, request).await?;
    flight.land(hash, version, None);
    Ok(())
}

/// An object's body as it is applied, its [`Applied`] key and the body's hash.
struct Prepared {
    key: Key,
    hash: Hash,
    body: Box<RawValue>,
}

/// Serialises `object` for its apply. The typed objects of k8s-openapi write their
/// apiVersion and kind, which server-side apply needs; the body is written once, hashed
/// and sent as it is (no `serde_json::Value` in between).
fn prepare<K>(namespace: &str, object: &K) -> Result<Prepared, Error>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let name = name_of(object)?;
    let body = serde_json::value::to_raw_value(object).map_err(|source| Error::Serialize {
        what: "owned object",
        source,
    })?;
    let hash: Hash = Sha256::digest(body.get()).into();
    let key: Key = (
        K::kind(&()).into_owned(),
        namespace.to_owned(),
        name.to_owned(),
    );
    Ok(Prepared { key, hash, body })
}

/// The server-side apply (forced, the operator's field manager) of `body`, the object of
/// kind `K` that `key` names.
fn apply_request<K>(key: &Key, body: &RawValue) -> Result<http::Request<Vec<u8>>, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    kube::core::Request::new(K::url_path(&(), Some(&key.1)))
        .patch(&key.2, &params, &Patch::Apply(body))
        .map_err(|e| kube::Error::BuildRequest(e).into())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

    use super::*;

    /// The metadata of `tools/<name>` as the API server stores it at `version`.
    fn meta(name: &str, version: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("tools".to_owned()),
            resource_version: Some(version.to_owned()),
            ..ObjectMeta::default()
        }
    }

    /// `tools/fetch-runconfig` as the API server stores it at `version`.
    fn stored(version: &str) -> ConfigMap {
        ConfigMap {
            metadata: meta("fetch-runconfig", version),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn an_object_is_applied_again_once_anything_moved_its_version_or_its_watch_listed_anew() {
        let applied = Applied::default();
        let Prepared { key, hash, .. } = prepare("tools", &stored("")).expect("prepared");
        applied
            .begin(key.clone())
            .land(hash, Some("10".to_owned()), None);
        applied.observe(&stored("10"));
        assert!(applied.unchanged(&key, &hash), "its own apply's version");
        assert!(!applied.unchanged(&key, &[0; 32]), "another body");
        applied.observe(&stored("11"));
        assert!(!applied.unchanged(&key, &hash), "a version moved");
        applied
            .begin(key.clone())
            .land(hash, Some("11".to_owned()), None);
        applied.forget::<Deployment>();
        assert!(
            applied.unchanged(&key, &hash),
            "another kind's watch listed anew"
        );
        applied.forget::<ConfigMap>();
        assert!(!applied.unchanged(&key, &hash), "its watch listed anew");
    }

    /// Server-side apply refuses a body without apiVersion and kind.
    #[test]
    fn every_applied_body_names_its_api_version_and_kind() {
        fn check<K: Resource<DynamicType = ()> + Serialize + Default>() {
            let mut object = K::default();
            object.meta_mut().name = Some("fetch".to_owned());
            let Prepared { body, .. } = prepare("tools", &object).expect("prepared");
            let body: serde_json::Value = serde_json::from_str(body.get()).expect("JSON");
            assert_eq!(body["apiVersion"], *K::api_version(&()), "{body}");
            assert_eq!(body["kind"], *K::kind(&()), "{body}");
            assert_eq!(body["metadata"]["name"], "fetch", "{body}");
        }
        check::<ServiceAccount>();
        check::<Role>();
        check::<RoleBinding>();
        check::<ConfigMap>();
        check::<Service>();
        check::<NetworkPolicy>();
        check::<Deployment>();
    }

    /// An answer as the API server writes it: the pod template, managedFields and the
    /// status conditions are not kept.
    const ANSWER: &str = r#"{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "fetch", "namespace": "tools", "resourceVersion": "10",
            "generation": 2, "managedFields": [{"manager": "thv-operator",
            "operation": "Apply", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fetch"}},
            "template": {"spec": {"containers": [{"name": "proxy", "image": "p"}]}}},
        "status": {"observedGeneration": 2, "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True",
                "message": "Deployment has minimum availability."}]}
    }"#;

    /// The proxy Deployment `tools/fetch` as a watch event shows it at `version` and
    /// `generation`.
    fn event(version: &str, generation: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..meta("fetch", version)
            },
            ..Deployment::default()
        }
    }

    fn current(known: Known) -> Option<Deployment> {
        match known {
            Known::Current(deployment) => Some(*deployment),
            Known::Moved | Known::Unknown => None,
        }
    }

    #[test]
    fn the_deployment_the_apply_answered_stands_in_for_a_get_until_an_event_moves_it() {
        let mut answer: DeploymentAnswer = serde_json::from_str(ANSWER).expect("answer");
        let version = answer.metadata.resource_version.take();
        assert_eq!(version.as_deref(), Some("10"));
        let applied = Applied::default();
        let Prepared { key, hash, .. } = prepare("tools", &event("", 0)).expect("prepared");
        let rollout = Rollout::of(answer);
        applied
            .begin(key.clone())
            .land(hash, version, Some(Box::new(rollout)));
        let known = current(applied.deployment(&key, &hash)).expect("kept");
        assert_eq!(known.metadata.name.as_deref(), Some("fetch"));
        assert_eq!(known.metadata.generation, Some(2));
        assert_eq!(known.metadata.resource_version.as_deref(), Some("10"));
        assert_eq!(known.spec.and_then(|s| s.replicas), Some(1));
        let status = known.status.expect("status");
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.conditions, None);
        assert!(
            matches!(applied.deployment(&key, &[0; 32]), Known::Unknown),
            "another body"
        );
        applied.observe(&event("10", 2));
        assert!(
            current(applied.deployment(&key, &hash)).is_some(),
            "its own apply's event"
        );
        applied.observe(&event("11", 2));
        assert!(
            matches!(applied.deployment(&key, &hash), Known::Moved),
            "a status step: read it"
        );
        assert_eq!(applied.applied_generation(&key), Some(2));
        let read: DeploymentAnswer = serde_json::from_str(ANSWER).expect("answer");
        keep(applied.begin(key.clone()), hash, read);
        assert!(current(applied.deployment(&key, &hash)).is_some(), "read");
        applied.observe(&event("12", 3));
        assert!(
            matches!(applied.deployment(&key, &hash), Known::Unknown),
            "its spec edited: apply it again"
        );
        let answer: DeploymentAnswer = serde_json::from_str(ANSWER).expect("answer");
        keep(applied.begin(key.clone()), hash, answer);
        applied.forget::<Deployment>();
        assert!(
            matches!(applied.deployment(&key, &hash), Known::Unknown),
            "its watch listed anew"
        );
    }

    #[test]
    fn an_event_while_the_operators_own_request_is_in_flight_is_not_overwritten_by_its_answer() {
        let applied = Applied::default();
        let Prepared { key, hash, .. } = prepare("tools", &event("", 0)).expect("prepared");
        let answer = || serde_json::from_str::<DeploymentAnswer>(ANSWER).expect("answer");

        // Its own write's event before the answer is recorded: nothing moved.
        let flight = applied.begin(key.clone());
        applied.observe(&event("10", 2));
        keep(flight, hash, answer());
        assert!(
            current(applied.deployment(&key, &hash)).is_some(),
            "own event"
        );

        // Another controller's status step (version 11) before the answer (version 10).
        let flight = applied.begin(key.clone());
        applied.observe(&event("11", 2));
        keep(flight, hash, answer());
        assert!(
            matches!(applied.deployment(&key, &hash), Known::Moved),
            "a status step in flight: read it"
        );

        // Any other object is applied again.
        let Prepared { key, hash, .. } = prepare("tools", &stored("")).expect("prepared");
        let flight = applied.begin(key.clone());
        applied.observe(&stored("11"));
        flight.land(hash, Some("10".to_owned()), None);
        assert!(!applied.unchanged(&key, &hash), "moved in flight");

        // A request that failed records nothing and leaves nothing behind.
        let flight = applied.begin(key.clone());
        drop(flight);
        assert!(applied.state().flights.is_empty());
    }

    #[test]
    fn a_read_deployment_is_as_applied_while_it_keeps_the_operators_metadata() {
        let owner = OwnerReference {
            api_version: "toolhive.stacklok.dev/v1beta1".to_owned(),
            kind: "MCPServer".to_owned(),
            name: "fetch".to_owned(),
            uid: "u1".to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let mine = ObjectMeta {
            labels: Some([("app".to_owned(), "fetch".to_owned())].into()),
            annotations: Some([("a".to_owned(), "1".to_owned())].into()),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        };
        let read =
            |labels: &[(&str, &str)], annotations: &[(&str, &str)], owners: Vec<OwnerReference>| {
                let pairs = |p: &[(&str, &str)]| {
                    p.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect()
                };
                AnswerMetadata {
                    resource_version: None,
                    generation: Some(2),
                    labels: pairs(labels),
                    annotations: pairs(annotations),
                    owner_references: owners,
                }
            };
        let revision = ("deployment.kubernetes.io/revision", "3");
        assert!(
            read(
                &[("app", "fetch"), ("x", "y")],
                &[("a", "1"), revision],
                vec![owner.clone()]
            )
            .keeps(&mine)
        );
        assert!(
            !read(&[], &[("a", "1")], vec![owner.clone()]).keeps(&mine),
            "a label removed"
        );
        assert!(
            !read(&[("app", "other")], &[("a", "1")], vec![owner.clone()]).keeps(&mine),
            "a label changed"
        );
        assert!(
            !read(&[("app", "fetch")], &[revision], vec![owner]).keeps(&mine),
            "an annotation removed"
        );
        assert!(
            !read(&[("app", "fetch")], &[("a", "1")], vec![]).keeps(&mine),
            "its owner removed"
        );
        let decoded: DeploymentAnswer = serde_json::from_str(ANSWER).expect("answer");
        assert!(
            decoded.metadata.labels.is_empty(),
            "absent maps decode empty"
        );
    }
}
