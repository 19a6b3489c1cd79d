//! The apply stage: server-side apply of every owned object with one field manager.
//! Applying with `force` also repairs hand edits of the fields the operator owns.
//!
//! A reconcile is triggered many times per object (its own status write, each owned
//! object's events, rollouts), and re-applying seven unchanged objects each time was most
//! of the API load at scale. [`Applied`] remembers what was applied and the
//! resourceVersion the API server answered; an unchanged body for an object nobody has
//! touched since is skipped. Every watch event of an owned object passes through
//! [`Applied::observe`], which forgets the entry when the resourceVersion moved (a hand
//! edit, a deletion), so drift is still repaired on the next reconcile.
//!
//! The proxy Deployment is the exception: the Deployment controller updates its status at
//! every step of a rollout, and each update used to cost a re-apply and a `get` of it (at
//! 1,000 servers, two thirds of the requests once they were created). Its watch keeps a
//! store of what the status needs ([`Applied::track`]); an unchanged body is skipped while
//! the stored Deployment is the one applied (uid), at the generation applied (a spec edit
//! moves it, a status update does not) and still carries the operator's labels,
//! annotations and owner, and the status is read from the store.
//!
//! The objects a Deployment needs (ServiceAccounts, Role, ConfigMap, Service) are applied
//! concurrently, then the RoleBinding, then the Deployment. The RoleBinding waits for its
//! Role: an operator without cluster-admin (the chart's RBAC) may bind only a Role whose
//! rules it holds, which the API server checks by reading the Role; while the Role did
//! not exist yet the binding's apply failed with NotFound (observed in `make demo-check`),
//! the failure cancelled the Role's concurrent request, and every retry failed alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use api::MCPServer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    /// The object's uid and generation as the apply left them.
    uid: Option<String>,
    generation: Option<i64>,
}

/// What the operator last applied: per object, the body's hash and the object as the API
/// server answered; and the stores of the proxy Deployments' watches.
#[derive(Debug, Default)]
pub struct Applied {
    entries: Mutex<HashMap<Key, Entry>>,
    deployments: RwLock<Vec<Store<Deployment>>>,
}

impl Applied {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map holds only hints; after a panic elsewhere it is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads Deployments from `store` (a controller's watch of the proxy Deployments it
    /// owns) when deciding whether one must be applied again.
    pub fn track(&self, store: Store<Deployment>) {
        self.deployments
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(store);
    }

    /// Called with every watch event of an owned object but the Deployments: forgets the
    /// entry unless the event shows the very version the operator's own apply produced.
    pub fn observe<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let key = (
            K::kind(&()).into_owned(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        );
        let mut entries = self.entries();
        if entries
            .get(&key)
            .is_some_and(|entry| Some(&entry.version) != object.resource_version().as_ref())
        {
            entries.remove(&key);
        }
    }

    /// Forgets every `K` applied: its watch listed them anew, and one deleted while the
    /// watch was down would otherwise never be applied again.
    pub fn forget<K: Resource<DynamicType = ()>>(&self) {
        let kind = K::kind(&());
        self.entries().retain(|(k, _, _), _| *k != kind);
    }

    fn unchanged(&self, key: &Key, hash: &Hash) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|entry| entry.hash == *hash)
    }

    fn record(&self, key: Key, hash: Hash, stored: &ObjectMeta) {
        match &stored.resource_version {
            Some(version) => {
                let entry = Entry {
                    hash,
                    version: version.clone(),
                    uid: stored.uid.clone(),
                    generation: stored.generation,
                };
                self.entries().insert(key, entry);
            }
            None => {
                self.entries().remove(&key);
            }
        }
    }

    /// The Deployment `desired` as the watch last saw it, if the operator's last apply of
    /// this body (`hash`) is still in place; `None` when it must be applied.
    fn deployment_in_place(
        &self,
        key: &Key,
        hash: &Hash,
        desired: &Deployment,
    ) -> Option<Deployment> {
        let (uid, generation) = {
            let entries = self.entries();
            let entry = entries.get(key).filter(|entry| entry.hash == *hash)?;
            (entry.uid.clone(), entry.generation)
        };
        let reference = ObjectRef::<Deployment>::new(&key.2).within(&key.1);
        let stored = self
            .deployments
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .find_map(|store| store.get(&reference))?;
        let in_place = stored.metadata.uid == uid
            && stored.metadata.generation == generation
            && carries(&stored.metadata, &desired.metadata);
        in_place.then(|| stored.as_ref().clone())
    }
}

/// Whether `stored` still has the labels, annotations and owner references of `desired`
/// (a hand edit of them moves no generation).
fn carries(stored: &ObjectMeta, desired: &ObjectMeta) -> bool {
    fn within(
        desired: &Option<BTreeMap<String, String>>,
        stored: &Option<BTreeMap<String, String>>,
    ) -> bool {
        desired
            .iter()
            .flatten()
            .all(|(key, value)| stored.as_ref().and_then(|s| s.get(key)) == Some(value))
    }
    within(&desired.labels, &stored.labels)
        && within(&desired.annotations, &stored.annotations)
        && desired.owner_references.iter().flatten().all(|owner| {
            stored
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == owner.uid && o.controller == owner.controller)
        })
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
    let desired = &objects.deployment;
    let (key, hash, body) = prepare(namespace, desired)?;
    if let Some(in_place) = applied.deployment_in_place(&key, &hash, desired) {
        return Ok(in_place);
    }
    let stored: Deployment = server_side_apply(client, namespace, &key.2, body).await?;
    applied.record(key, hash, &stored.metadata);
    Ok(stored)
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
        Isolation::Apply(policy) => apply_one(client, namespace, policy.as_ref(), applied)
            .await
            .map(|_| ()),
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
            let absent = ObjectMeta {
                resource_version: Some(String::new()),
                ..ObjectMeta::default()
            };
            applied.record(key, ABSENT, &absent);
            Ok(())
        }
    }
}

/// Server-side applies `object` unless [`Applied`] knows it is already in place; returns
/// the stored object when it applied.
async fn apply_one<K>(
    client: &Client,
    namespace: &str,
    object: &K,
    applied: &Applied,
) -> Result<Option<K>, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let (key, hash, body) = prepare(namespace, object)?;
    if applied.unchanged(&key, &hash) {
        return Ok(None);
    }
    let stored: K = server_side_apply(client, namespace, &key.2, body).await?;
    applied.record(key, hash, stored.meta());
    Ok(Some(stored))
}

/// The body to apply for `object`, its [`Applied`] key and the body's hash.
fn prepare<K>(namespace: &str, object: &K) -> Result<(Key, Hash, serde_json::Value), Error>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let name = name_of(object)?;
    // SSA needs apiVersion and kind in the body; typed objects built in code lack them.
    let mut body = serde_json::to_value(object).map_err(|source| Error::Serialize {
        what: "owned object",
        source,
    })?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let hash: Hash = Sha256::digest(body.to_string()).into();
    let key: Key = (
        K::kind(&()).into_owned(),
        namespace.to_owned(),
        name.to_owned(),
    );
    Ok((key, hash, body))
}

async fn server_side_apply<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    body: serde_json::Value,
) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(name, &params, &Patch::Apply(body)).await?)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    use super::*;

    const NAMESPACE: &str = "tools";

    /// The proxy Deployment as the operator builds it.
    fn desired() -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("fetch".to_owned()),
                namespace: Some(NAMESPACE.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/instance".to_owned(),
                    "fetch".to_owned(),
                )])),
                annotations: Some(BTreeMap::from([(
                    "toolhive.stacklok.dev/note".to_owned(),
                    "x".to_owned(),
                )])),
                owner_references: Some(vec![OwnerReference {
                    uid: "server-uid".to_owned(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        }
    }

    /// `desired` as the API server stores it at `generation` and `version`, with
    /// `available` proxy pods.
    fn stored(generation: i64, version: &str, available: i32) -> Deployment {
        let mut deployment = desired();
        deployment.metadata.uid = Some("deployment-uid".to_owned());
        deployment.metadata.generation = Some(generation);
        deployment.metadata.resource_version = Some(version.to_owned());
        deployment.status = Some(DeploymentStatus {
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        });
        deployment
    }

    /// An [`Applied`] that applied `desired` (answered with generation 1, version 10), and
    /// whose Deployment watch then saw `seen`.
    fn applied_then_seen(seen: Option<Deployment>) -> (Applied, Key, Hash) {
        let applied = Applied::default();
        let (key, hash, _) = prepare(NAMESPACE, &desired()).expect("prepared");
        applied.record(key.clone(), hash, &stored(1, "10", 0).metadata);
        let (reader, mut writer) = store::<Deployment>();
        if let Some(seen) = seen {
            writer.apply_watcher_event(&Event::Apply(seen));
        }
        applied.track(reader);
        (applied, key, hash)
    }

    #[test]
    fn a_rollout_step_reads_the_status_from_the_watch_without_applying_again() {
        let mut seen = stored(1, "14", 1);
        seen.metadata.annotations.get_or_insert_default().insert(
            "deployment.kubernetes.io/revision".to_owned(),
            "1".to_owned(),
        );
        let (applied, key, hash) = applied_then_seen(Some(seen));
        let in_place = applied
            .deployment_in_place(&key, &hash, &desired())
            .expect("still in place");
        let available = in_place.status.and_then(|s| s.available_replicas);
        assert_eq!(available, Some(1));
    }

    #[test]
    fn a_deployment_is_applied_again_when_anything_of_the_operators_moved() {
        let desired = desired();
        let mut relabelled = stored(1, "14", 1);
        relabelled.metadata.labels = None;
        let mut annotated = stored(1, "14", 1);
        annotated.metadata.annotations = Some(BTreeMap::from([(
            "toolhive.stacklok.dev/note".to_owned(),
            "y".to_owned(),
        )]));
        let mut orphaned = stored(1, "14", 1);
        orphaned.metadata.owner_references = None;
        let mut recreated = stored(1, "20", 0);
        recreated.metadata.uid = Some("another".to_owned());
        let cases = [
            ("a spec edit", Some(stored(2, "14", 1))),
            ("a label removed", Some(relabelled)),
            ("an annotation changed", Some(annotated)),
            ("the owner removed", Some(orphaned)),
            ("deleted and created again", Some(recreated)),
            ("deleted, or not seen yet", None),
        ];
        for (case, seen) in cases {
            let (applied, key, hash) = applied_then_seen(seen);
            assert!(
                applied.deployment_in_place(&key, &hash, &desired).is_none(),
                "{case}"
            );
        }
        let (applied, key, _) = applied_then_seen(Some(stored(1, "14", 1)));
        assert!(
            applied
                .deployment_in_place(&key, &[1; 32], &desired)
                .is_none(),
            "a changed body"
        );
    }

    #[test]
    fn other_objects_are_applied_again_after_any_change_of_their_version() {
        let applied = Applied::default();
        let (key, hash, _) = prepare(NAMESPACE, &desired()).expect("prepared");
        applied.record(key.clone(), hash, &stored(1, "10", 0).metadata);
        applied.observe(&stored(1, "10", 0));
        assert!(applied.unchanged(&key, &hash), "its own apply's version");
        applied.observe(&stored(1, "11", 0));
        assert!(!applied.unchanged(&key, &hash), "a version moved");
        applied.record(key.clone(), hash, &stored(1, "11", 0).metadata);
        applied.forget::<Deployment>();
        assert!(!applied.unchanged(&key, &hash), "its watch listed anew");
    }
}
