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
//! A watch that lists anew ([`Applied::forget`]) and a skipped Deployment found gone
//! forget it too: a deletion while a watch was down is never reported as an event.
//!
//! The status needs the Deployment's status. While its entry stands, the Deployment is
//! as the operator's own apply left it, so the apply's answer, kept slim with the entry,
//! stands in for a `get`: a reconcile that changes nothing (the periodic re-check, the
//! event of the operator's own status write) makes no request. A status step of a
//! rollout moves the resourceVersion, so the next reconcile applies again and reads the
//! new status in the answer. Keeping every Deployment in a watch store instead was
//! measured and not kept: the API server, which encodes every status step of every
//! Deployment in full for such a watch, converged no sooner, and the operator's peak RSS
//! rose by 5 MiB (docs/performance.md, row 1).
//!
//! The objects a Deployment needs (ServiceAccounts, Role, ConfigMap, Service) are applied
//! concurrently, then the RoleBinding, then the Deployment. The RoleBinding waits for its
//! Role: an operator without cluster-admin (the chart's RBAC) may bind only a Role whose
//! rules it holds, which the API server checks by reading the Role; while the Role did
//! not exist yet the binding's apply failed with NotFound (observed in `make demo-check`),
//! the failure cancelled the Role's concurrent request, and every retry failed alike.

use std::collections::HashMap;
use std::sync::Mutex;

use api::MCPServer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus, StatefulSet};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
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
    /// For the proxy Deployment: what the status reads of the API server's answer. While
    /// the entry stands, no watch event has shown the Deployment changed.
    deployment: Option<Box<Rollout>>,
}

/// What the status reads of a Deployment: its generation, replicas and status counts (a
/// `Deployment` itself, pod template included, is kilobytes even when empty).
#[derive(Debug)]
struct Rollout {
    generation: Option<i64>,
    replicas: Option<i32>,
    status: Option<DeploymentStatus>,
}

/// What the operator last applied: per object, the body's hash and the resourceVersion
/// the API server answered with.
#[derive(Debug, Default)]
pub struct Applied(Mutex<HashMap<Key, Entry>>);

impl Applied {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map holds only hints; after a panic elsewhere it is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called with every watch event of an owned object: forgets the entry unless the
    /// event shows the very version the operator's own apply produced.
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

    /// The proxy Deployment as the operator's last apply of this body left it, if no
    /// watch event has shown it changed since.
    fn deployment(&self, key: &Key, hash: &Hash) -> Option<Deployment> {
        let entries = self.entries();
        let entry = entries.get(key).filter(|entry| entry.hash == *hash)?;
        let rollout = entry.deployment.as_ref()?;
        Some(Deployment {
            metadata: ObjectMeta {
                name: Some(key.2.clone()),
                namespace: Some(key.1.clone()),
                generation: rollout.generation,
                resource_version: Some(entry.version.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: rollout.replicas,
                ..DeploymentSpec::default()
            }),
            status: rollout.status.clone(),
        })
    }

    /// Keeps `stored`, the answer to applying the proxy Deployment, with its entry.
    fn keep(&self, key: &Key, stored: &Deployment) {
        if let Some(entry) = self.entries().get_mut(key)
            && stored.metadata.resource_version.as_ref() == Some(&entry.version)
        {
            entry.deployment = Some(Box::new(Rollout {
                generation: stored.metadata.generation,
                replicas: stored.spec.as_ref().and_then(|spec| spec.replicas),
                status: stored.status.as_ref().map(|status| DeploymentStatus {
                    // Nothing reads them; their messages are most of a status's size.
                    conditions: None,
                    ..status.clone()
                }),
            }));
        }
    }

    fn record(&self, key: Key, hash: Hash, version: Option<String>) {
        match version {
            Some(version) => {
                let entry = Entry {
                    hash,
                    version,
                    deployment: None,
                };
                self.entries().insert(key, entry);
            }
            None => {
                self.entries().remove(&key);
            }
        }
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
    let deployment = &objects.deployment;
    let (key, hash, body) = prepare(namespace, deployment)?;
    // Unchanged and untouched since the operator applied it: its answer then is current.
    if let Some(known) = applied.deployment(&key, &hash) {
        return Ok(known);
    }
    if applied.unchanged(&key, &hash) {
        // Unchanged and untouched, its answer not kept: read its status.
        let api = Api::<Deployment>::namespaced(client.clone(), namespace);
        if let Some(stored) = api.get_opt(&key.2).await? {
            return Ok(stored);
        }
        // Deleted, and no event of that seen (its watch was down): apply it again.
    }
    let stored = apply_now(client, key.clone(), hash, body, applied).await?;
    applied.keep(&key, &stored);
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
            applied.record(key, ABSENT, Some(String::new()));
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
    apply_now(client, key, hash, body, applied).await.map(Some)
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

/// Server-side applies `body` (of the object `key` names) and records it in [`Applied`].
async fn apply_now<K>(
    client: &Client,
    key: Key,
    hash: Hash,
    body: serde_json::Value,
    applied: &Applied,
) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &key.1);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let stored = api.patch(&key.2, &params, &Patch::Apply(body)).await?;
    applied.record(key, hash, stored.resource_version());
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    /// `tools/fetch-runconfig` as the API server stores it at `version`.
    fn stored(version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("fetch-runconfig".to_owned()),
                namespace: Some("tools".to_owned()),
                resource_version: Some(version.to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn an_object_is_applied_again_once_anything_moved_its_version_or_its_watch_listed_anew() {
        let applied = Applied::default();
        let (key, hash, _) = prepare("tools", &stored("")).expect("prepared");
        applied.record(key.clone(), hash, Some("10".to_owned()));
        applied.observe(&stored("10"));
        assert!(applied.unchanged(&key, &hash), "its own apply's version");
        assert!(!applied.unchanged(&key, &[0; 32]), "another body");
        applied.observe(&stored("11"));
        assert!(!applied.unchanged(&key, &hash), "a version moved");
        applied.record(key.clone(), hash, Some("11".to_owned()));
        applied.forget::<Deployment>();
        assert!(
            applied.unchanged(&key, &hash),
            "another kind's watch listed anew"
        );
        applied.forget::<ConfigMap>();
        assert!(!applied.unchanged(&key, &hash), "its watch listed anew");
    }

    #[test]
    fn the_deployment_the_apply_answered_stands_in_for_a_get_until_an_event_moves_it() {
        let answer = |version: &str| Deployment {
            metadata: ObjectMeta {
                name: Some("fetch".to_owned()),
                namespace: Some("tools".to_owned()),
                resource_version: Some(version.to_owned()),
                generation: Some(2),
                ..ObjectMeta::default()
            },
            status: Some(DeploymentStatus {
                available_replicas: Some(1),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        let applied = Applied::default();
        let (key, hash, _) = prepare("tools", &answer("")).expect("prepared");
        applied.record(key.clone(), hash, Some("10".to_owned()));
        applied.keep(&key, &answer("10"));
        let known = applied.deployment(&key, &hash).expect("kept");
        assert_eq!(known.metadata.generation, Some(2));
        assert_eq!(known.status.and_then(|s| s.available_replicas), Some(1));
        assert!(applied.deployment(&key, &[0; 32]).is_none(), "another body");
        applied.observe(&answer("10"));
        assert!(
            applied.deployment(&key, &hash).is_some(),
            "its own apply's event"
        );
        applied.observe(&answer("11"));
        assert!(applied.deployment(&key, &hash).is_none(), "a status step");
        applied.record(key.clone(), hash, Some("12".to_owned()));
        applied.keep(&key, &answer("11"));
        assert!(
            applied.deployment(&key, &hash).is_none(),
            "an answer older than the entry"
        );
        applied.keep(&key, &answer("12"));
        applied.forget::<Deployment>();
        assert!(
            applied.deployment(&key, &hash).is_none(),
            "its watch listed anew"
        );
    }
}
