//! The apply stage: server-side apply of every owned object with one field manager.
//! Applying with `force` also repairs hand edits of the fields the operator owns.
//!
//! A reconcile is triggered many times per object (its own status write, each owned
//! object's events, rollouts), and re-applying seven unchanged objects each time was most
//! of the API load at scale. [`Applied`] remembers what was applied and what the API
//! server answered; an unchanged body for an object nobody has touched since is skipped.
//! Every watch event of an owned object passes through [`Applied::observe`], which
//! forgets the entry when someone else changed the object (a hand edit, a deletion), so
//! drift is still repaired on the next reconcile. A status update (a Deployment's
//! rollout, its pods becoming ready) is not such a change: it moves the resourceVersion
//! but neither the generation nor any other writer's managed fields outside `status`.
//!
//! The objects a Deployment needs (ServiceAccounts, Role, RoleBinding, ConfigMap,
//! Service) are applied concurrently, then the Deployment: at scale a reconcile was
//! mostly waiting for these round trips one after the other (the Service's alone takes
//! a ClusterIP allocation, about a quarter of a second on a busy API server).

use std::collections::HashMap;
use std::sync::Mutex;

use api::MCPServer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::build::Objects;
use crate::FIELD_MANAGER;
use crate::controllers::name_of;
use crate::error::Error;

/// Key of an applied object: kind, namespace, name.
type Key = (String, String, String);

/// What an apply left on the API server.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    /// Hash of the applied body.
    hash: String,
    /// The resourceVersion, generation and other writers' fields it answered with.
    version: String,
    generation: Option<i64>,
    others: String,
}

/// What the operator last applied, per object.
#[derive(Debug, Default)]
pub struct Applied(Mutex<HashMap<Key, Record>>);

/// Who else manages fields of an object outside its status, and when each last did: a
/// hand edit (kubectl edit, apply, label, scale) changes this, a controller's status
/// update does not.
fn other_writers(meta: &ObjectMeta) -> String {
    let mut writers: Vec<String> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER))
        .filter(|m| m.subresource.as_deref() != Some("status"))
        .map(|m| {
            format!(
                "{}/{}/{}/{}",
                m.manager.as_deref().unwrap_or_default(),
                m.operation.as_deref().unwrap_or_default(),
                m.subresource.as_deref().unwrap_or_default(),
                m.time.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
            )
        })
        .collect();
    writers.sort();
    writers.join(",")
}

impl Applied {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        // The map holds only hints; after a panic elsewhere it is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called with every watch event of an owned object: forgets the entry unless the
    /// event shows the version the operator's own apply produced, or a later one that
    /// differs from it only in status.
    pub fn observe<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let key = (
            K::kind(&()).into_owned(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        );
        let meta = object.meta();
        let mut entries = self.entries();
        let changed = entries.get(&key).is_some_and(|record| {
            meta.resource_version.as_ref() != Some(&record.version)
                && (meta.generation != record.generation || other_writers(meta) != record.others)
        });
        if changed {
            entries.remove(&key);
        }
    }

    fn unchanged(&self, key: &Key, hash: &str) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|record| record.hash == hash)
    }

    fn record(&self, key: Key, hash: String, stored: &ObjectMeta) {
        match &stored.resource_version {
            Some(version) => {
                let record = Record {
                    hash,
                    version: version.clone(),
                    generation: stored.generation,
                    others: other_writers(stored),
                };
                self.entries().insert(key, record);
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
        apply_one(client, namespace, &objects.role_binding, applied),
        apply_one(client, namespace, &objects.runconfig, applied),
        apply_one(client, namespace, &objects.service, applied),
    )?;
    match apply_one(client, namespace, &objects.deployment, applied).await? {
        Some(deployment) => Ok(deployment),
        // Unchanged and untouched: read its status.
        None => {
            let name = name_of(&objects.deployment)?;
            Ok(Api::<Deployment>::namespaced(client.clone(), namespace)
                .get(name)
                .await?)
        }
    }
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
    let name = name_of(object)?;
    // SSA needs apiVersion and kind in the body; typed objects built in code lack them.
    let mut body = serde_json::to_value(object).map_err(|source| Error::Serialize {
        what: "owned object",
        source,
    })?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let hash = hex::encode(Sha256::digest(body.to_string()));
    let key: Key = (
        K::kind(&()).into_owned(),
        namespace.to_owned(),
        name.to_owned(),
    );
    if applied.unchanged(&key, &hash) {
        return Ok(None);
    }
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let stored = api.patch(name, &params, &Patch::Apply(body)).await?;
    applied.record(key, hash, stored.meta());
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
    use kube::core::PartialObjectMeta;

    use super::*;

    fn writer(manager: &str, subresource: Option<&str>, second: i64) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some("Update".to_owned()),
            subresource: subresource.map(str::to_owned),
            time: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(second).expect("a valid time"),
            )),
            ..ManagedFieldsEntry::default()
        }
    }

    fn deployment(
        version: &str,
        generation: i64,
        writers: Vec<ManagedFieldsEntry>,
    ) -> PartialObjectMeta<Deployment> {
        PartialObjectMeta::<Deployment> {
            metadata: ObjectMeta {
                name: Some("fetch".to_owned()),
                namespace: Some("tools".to_owned()),
                resource_version: Some(version.to_owned()),
                generation: Some(generation),
                managed_fields: Some(writers),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        }
    }

    fn key() -> Key {
        (
            "Deployment".to_owned(),
            "tools".to_owned(),
            "fetch".to_owned(),
        )
    }

    /// What the operator's apply answered with: version 10, generation 2, the
    /// deployment controller's status written once.
    fn applied() -> Applied {
        let applied = Applied::default();
        let stored = deployment(
            "10",
            2,
            vec![
                writer(FIELD_MANAGER, None, 1),
                writer("kube-controller-manager", Some("status"), 1),
            ],
        );
        applied.record(key(), "hash".to_owned(), &stored.metadata);
        applied
    }

    #[test]
    fn a_status_update_keeps_what_was_applied() {
        let applied = applied();
        let rollout = deployment(
            "11",
            2,
            vec![
                writer(FIELD_MANAGER, None, 1),
                writer("kube-controller-manager", Some("status"), 5),
            ],
        );
        applied.observe(&rollout);
        assert!(applied.unchanged(&key(), "hash"));
    }

    #[test]
    fn a_spec_edit_is_applied_again() {
        let applied = applied();
        let edited = deployment(
            "11",
            3,
            vec![
                writer(FIELD_MANAGER, None, 1),
                writer("kubectl-edit", None, 5),
            ],
        );
        applied.observe(&edited);
        assert!(!applied.unchanged(&key(), "hash"));
    }

    #[test]
    fn a_metadata_edit_is_applied_again() {
        // A label or annotation changes no generation, but its writer's entry shows it.
        let applied = applied();
        let labelled = deployment(
            "11",
            2,
            vec![
                writer(FIELD_MANAGER, None, 1),
                writer("kubectl-label", None, 5),
            ],
        );
        applied.observe(&labelled);
        assert!(!applied.unchanged(&key(), "hash"));
    }

    #[test]
    fn a_changed_body_is_applied() {
        let applied = applied();
        assert!(!applied.unchanged(&key(), "another hash"));
    }
}
