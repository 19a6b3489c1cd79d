//! The dereference stage: fetch every object the MCPServer references, and hash what
//! must roll the pods when it changes (referenced specs, Secret values).

use api::mcpserver::{AuthzConfigSource, PermissionProfileType};
use api::{MCPAuthzConfig, MCPOIDCConfig, MCPServer, MCPTelemetryConfig, MCPToolConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Everything the MCPServer references, as found.
#[derive(Clone, Debug, Default)]
pub struct Dereferenced {
    /// `spec.toolConfigRef`.
    pub tool_config: Option<MCPToolConfig>,
    /// `spec.oidcConfigRef`.
    pub oidc_config: Option<MCPOIDCConfig>,
    /// `spec.authzConfigRef`.
    pub authz_config: Option<MCPAuthzConfig>,
    /// Content of the `spec.authzConfig.configMap` key.
    pub authz_config_map: Option<String>,
    /// `spec.telemetryConfigRef`.
    pub telemetry_config: Option<MCPTelemetryConfig>,
    /// Content of the permission-profile ConfigMap key.
    pub permission_profile_map: Option<String>,
    /// SHA-256 over the referenced Secret values (missing ones included as missing).
    pub secrets_checksum: String,
}

impl Dereferenced {
    /// The view `admission::from_mcpserver` takes.
    pub fn references(&self) -> admission::References<'_> {
        admission::References {
            tool_config: self.tool_config.as_ref(),
            oidc_config: self.oidc_config.as_ref(),
            authz_config: self.authz_config.as_ref(),
            authz_config_map: self.authz_config_map.as_deref(),
            telemetry_config: self.telemetry_config.as_ref(),
            permission_profile_map: self.permission_profile_map.as_deref(),
        }
    }

    /// The OIDC client secret reference, when the OIDC config has one.
    pub fn oidc_client_secret(&self) -> Option<&api::common::SecretKeyRef> {
        self.oidc_config
            .as_ref()?
            .spec
            .inline
            .as_ref()?
            .client_secret_ref
            .as_ref()
    }
}

/// Fetches the references of `server` from its namespace.
pub async fn fetch(server: &MCPServer, client: &Client) -> Result<Dereferenced, Error> {
    let namespace = server
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let spec = &server.spec;
    let mut found = Dereferenced::default();
    if let Some(r) = &spec.tool_config_ref {
        found.tool_config = Api::namespaced(client.clone(), namespace)
            .get_opt(&r.name)
            .await?;
    }
    if let Some(r) = &spec.oidc_config_ref {
        found.oidc_config = Api::namespaced(client.clone(), namespace)
            .get_opt(&r.name)
            .await?;
    }
    if let Some(r) = &spec.authz_config_ref {
        found.authz_config = Api::namespaced(client.clone(), namespace)
            .get_opt(&r.name)
            .await?;
    }
    if let Some(r) = &spec.telemetry_config_ref {
        found.telemetry_config = Api::namespaced(client.clone(), namespace)
            .get_opt(&r.name)
            .await?;
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    if let Some(authz) = spec
        .authz_config
        .as_ref()
        .filter(|a| a.type_ == AuthzConfigSource::ConfigMap)
        && let Some(map) = &authz.config_map
    {
        let key = map
            .key
            .as_deref()
            .unwrap_or(api::mcpserver::DEFAULT_AUTHZ_CONFIGMAP_KEY);
        found.authz_config_map = config_map_value(&maps, &map.name, key).await?;
    }
    if let Some(profile) = spec
        .permission_profile
        .as_ref()
        .filter(|p| p.type_ == PermissionProfileType::Configmap)
    {
        found.permission_profile_map = config_map_value(
            &maps,
            &profile.name,
            profile.key.as_deref().unwrap_or("permissions.json"),
        )
        .await?;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut wanted: Vec<(String, String)> = spec
        .secrets
        .iter()
        .map(|s| (s.name.clone(), s.key.clone()))
        .collect();
    if let Some(r) = found.oidc_client_secret() {
        wanted.push((r.name.clone(), r.key.clone()));
    }
    let mut hasher = Sha256::new();
    for (name, key) in wanted {
        let value = secrets
            .get_opt(&name)
            .await?
            .and_then(|s| s.data)
            .and_then(|d| d.get(&key).cloned());
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_bytes());
        hasher.update([0]);
        match value {
            Some(bytes) => hasher.update(&bytes.0),
            None => hasher.update(b"\xffmissing"),
        }
    }
    found.secrets_checksum = hex::encode(hasher.finalize());
    Ok(found)
}

async fn config_map_value(
    maps: &Api<ConfigMap>,
    name: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    Ok(maps
        .get_opt(name)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get(key).cloned()))
}

/// SHA-256 of a value's JSON form, hex-encoded.
pub fn hash<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_vec(value)
        .ok()
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
}
