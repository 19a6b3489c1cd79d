//! The apply stage: server-side apply of every owned object with one field manager.
//! Applying with `force` also repairs hand edits of the fields the operator owns.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::Objects;
use crate::FIELD_MANAGER;
use crate::error::Error;

/// Applies every object; returns the Deployment as the API server stored it.
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &Objects,
) -> Result<Deployment, Error> {
    for account in &objects.service_accounts {
        apply_one(client, namespace, account).await?;
    }
    apply_one(client, namespace, &objects.role).await?;
    apply_one(client, namespace, &objects.role_binding).await?;
    apply_one(client, namespace, &objects.runconfig).await?;
    apply_one(client, namespace, &objects.service).await?;
    apply_one(client, namespace, &objects.deployment).await
}

async fn apply_one<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = object
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    // SSA needs apiVersion and kind in the body; typed objects built in code lack them.
    let mut body = serde_json::to_value(object).map_err(|source| Error::Serialize {
        what: "owned object",
        source,
    })?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(body)).await?)
}
