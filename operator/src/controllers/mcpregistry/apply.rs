//! The apply stage: reading the output ConfigMap as it is, and writing it (server-side
//! apply, the operator's field manager) only when its document changed. A ConfigMap of
//! that name that this registry does not control is never overwritten.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use super::build::REGISTRY_KEY;
use super::failure::SyncError;
use crate::FIELD_MANAGER;
use crate::controllers::{name_of, namespace_of};
use crate::error::Error;

/// The output ConfigMap as stored, if any.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The stored object.
    pub map: Option<ConfigMap>,
}

impl Current {
    /// Reads `name` in `namespace`.
    pub async fn read(client: &Client, namespace: &str, name: &str) -> Result<Self, Error> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        Ok(Self {
            map: api.get_opt(name).await?,
        })
    }

    /// SHA-256 of the stored document; `None` when there is none.
    pub fn hash(&self) -> Option<String> {
        let document = self.map.as_ref()?.data.as_ref()?.get(REGISTRY_KEY)?;
        Some(hex::encode(Sha256::digest(document.as_bytes())))
    }

    /// Whether the stored ConfigMap is controlled by the object with `uid`.
    fn controlled_by(&self, uid: &str) -> bool {
        self.map.as_ref().is_none_or(|map| {
            map.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
    }
}

/// Writes `desired` unless the stored ConfigMap already holds the same document with the
/// same owner. Returns whether it wrote.
pub async fn apply(
    client: &Client,
    current: &Current,
    desired: &ConfigMap,
    hash: &str,
    owner_uid: &str,
) -> Result<Result<bool, SyncError>, Error> {
    let name = name_of(desired)?;
    let namespace = namespace_of(desired)?;
    if !current.controlled_by(owner_uid) {
        return Ok(Err(SyncError::OutputConflict(format!(
            "ConfigMap {name} exists and is not controlled by this MCPRegistry; the registry writes its output there: delete or rename that ConfigMap"
        ))));
    }
    if current.map.is_some() && current.hash().as_deref() == Some(hash) {
        return Ok(Ok(false));
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut body = serde_json::to_value(desired).map_err(|source| Error::Serialize {
        what: "registry ConfigMap",
        source,
    })?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "ConfigMap".into();
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(Ok(true))
}
