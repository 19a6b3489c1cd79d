//! The dereference stage: fetch every object the MCPServer references, and hash what
//! must roll the pods when it changes (referenced specs, Secret values).

use admission::{
    ConfigKind, ConfigMapKey, Fronted, authz_config_map, permission_profile_config_map,
};
use api::MCPServer;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::status::Hashes;
use crate::error::Error;

/// Everything the MCPServer references, as found, and the checksum of the Secret values
/// it reads.
#[derive(Clone, Debug, Default)]
pub struct Dereferenced {
    /// The referenced objects and ConfigMap contents (admission's type: the webhook's
    /// check and this stage read the same things).
    pub referenced: admission::Referenced,
    /// SHA-256 over the referenced Secret values (missing ones included as missing).
    pub secrets_checksum: String,
    /// The referenced Secret keys that do not exist: (Secret, key).
    pub missing_secrets: Vec<(String, String)>,
}

impl Dereferenced {
    /// The view `admission::from_mcpserver` takes.
    pub fn references(&self) -> admission::References<'_> {
        self.referenced.references()
    }

    /// Whether the referenced `kind` object exists.
    pub fn found(&self, kind: ConfigKind) -> bool {
        self.referenced.found(kind)
    }

    /// Hashes of what was found, for the status (a change rolls the pods).
    pub fn hashes(&self) -> Hashes {
        let found = &self.referenced;
        Hashes {
            tool_config: found.tool_config.as_ref().and_then(|o| hash(&o.spec)),
            oidc_config: found.oidc_config.as_ref().and_then(|o| hash(&o.spec)),
            authz_config: found
                .authz_config
                .as_ref()
                .map(|o| hash(&o.spec))
                .unwrap_or_else(|| found.authz_config_map.as_ref().and_then(hash)),
            telemetry_config: found.telemetry_config.as_ref().and_then(|o| hash(&o.spec)),
            external_auth_config: found
                .external_auth_config
                .as_ref()
                .and_then(|o| hash(&o.spec)),
            webhook_config: found.webhook_config.as_ref().and_then(|o| hash(&o.spec)),
            secrets: Some(self.secrets_checksum.clone()),
        }
    }

    /// The Secret key an MCPExternalAuthConfig's token, header value or token exchange
    /// client secret is read from.
    pub fn external_auth_secret(&self) -> Option<&api::common::SecretKeyRef> {
        let spec = &self.referenced.external_auth_config.as_ref()?.spec;
        spec.bearer_token
            .as_ref()
            .map(|b| &b.token_secret_ref)
            .or(spec.header_injection.as_ref().map(|h| &h.value_secret_ref))
            .or(self.token_exchange_secret())
    }

    /// The Secret keys of the MCPWebhookConfig's HMAC keys and TLS material, each with
    /// the environment variable that carries it to the proxy.
    pub fn webhook_secrets(&self) -> Vec<(String, &api::common::SecretKeyRef)> {
        self.referenced
            .webhook_config
            .as_ref()
            .map(|w| admission::webhook_secrets(&w.spec))
            .unwrap_or_default()
    }

    /// The client secret of an MCPExternalAuthConfig's token exchange.
    pub fn token_exchange_secret(&self) -> Option<&api::common::SecretKeyRef> {
        let spec = &self.referenced.external_auth_config.as_ref()?.spec;
        if spec.type_ != api::externalauth::ExternalAuthType::TokenExchange {
            return None;
        }
        spec.token_exchange.as_ref()?.client_secret_ref.as_ref()
    }

    /// The Redis password of `spec.sessionStorage`, when Redis is the provider.
    pub fn session_password(object: &impl Fronted) -> Option<&api::common::SecretKeyRef> {
        object
            .front()
            .session_storage
            .filter(|s| s.provider == api::common::SessionStorageProvider::Redis)?
            .password_ref
            .as_ref()
    }

    /// The OIDC client secret reference, when the OIDC config has one.
    pub fn oidc_client_secret(&self) -> Option<&api::common::SecretKeyRef> {
        self.referenced
            .oidc_config
            .as_ref()?
            .spec
            .inline
            .as_ref()?
            .client_secret_ref
            .as_ref()
    }
}

/// Fetches the references of `server` from its namespace. Names and ConfigMap keys come
/// from admission's lookups, so this stage reads exactly what the webhook checks.
pub async fn fetch(server: &MCPServer, client: &Client) -> Result<Dereferenced, Error> {
    let secrets = server
        .spec
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.key.as_str()));
    fetch_for(
        server,
        permission_profile_config_map(server),
        secrets,
        client,
    )
    .await
}

/// Fetches the references of `object` (an MCPServer or an MCPRemoteProxy): the config
/// objects and authorization ConfigMap both kinds reference, `permission_profile`, and
/// the `secrets` besides the OIDC client secret whose values roll the pods.
pub async fn fetch_for<'a, O>(
    object: &O,
    permission_profile: Option<ConfigMapKey>,
    secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    client: &Client,
) -> Result<Dereferenced, Error>
where
    O: Fronted + kube::Resource,
{
    let namespace = crate::controllers::namespace_of(object)?;
    let lookup = Lookup {
        client,
        namespace,
        object,
    };
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let oidc_config = lookup.config(ConfigKind::OidcConfig).await?;
    let oidc_ca_bundle = config_map_value(
        &maps,
        oidc_config
            .as_ref()
            .and_then(admission::oidc_ca_bundle_map)
            .map(|(map, _)| map),
    )
    .await?;
    let telemetry_config = lookup.config(ConfigKind::TelemetryConfig).await?;
    let telemetry_ca_bundle = config_map_value(
        &maps,
        telemetry_config
            .as_ref()
            .and_then(admission::telemetry_ca_bundle_map)
            .map(|(map, _)| map),
    )
    .await?;
    let mut found = Dereferenced {
        referenced: admission::Referenced {
            tool_config: lookup.config(ConfigKind::ToolConfig).await?,
            oidc_config,
            oidc_ca_bundle,
            authz_config: lookup.config(ConfigKind::AuthzConfig).await?,
            telemetry_config,
            telemetry_ca_bundle,
            group: lookup.config(ConfigKind::Group).await?,
            external_auth_config: lookup.config(ConfigKind::ExternalAuthConfig).await?,
            webhook_config: lookup.config(ConfigKind::WebhookConfig).await?,
            authz_config_map: config_map_value(&maps, authz_config_map(object)).await?,
            permission_profile_map: config_map_value(&maps, permission_profile).await?,
        },
        ..Dereferenced::default()
    };
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut wanted: Vec<(String, String)> = secrets
        .into_iter()
        .map(|(name, key)| (name.to_owned(), key.to_owned()))
        .collect();
    wanted.extend(
        found
            .oidc_client_secret()
            .into_iter()
            .chain(found.external_auth_secret())
            .chain(Dereferenced::session_password(object))
            .chain(found.webhook_secrets().into_iter().map(|(_, r)| r))
            .map(|r| (r.name.clone(), r.key.clone())),
    );
    let mut hasher = Sha256::new();
    let mut missing = Vec::new();
    for (name, key) in wanted {
        let value = secrets_api
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
            None => {
                hasher.update(b"\xffmissing");
                missing.push((name, key));
            }
        }
    }
    found.secrets_checksum = hex::encode(hasher.finalize());
    found.missing_secrets = missing;
    Ok(found)
}

/// Where the references of one object are looked up.
struct Lookup<'a, O> {
    client: &'a Client,
    namespace: &'a str,
    object: &'a O,
}

impl<O: Fronted> Lookup<'_, O> {
    /// The `kind` object the object references, when it references one and it exists.
    async fn config<K>(&self, kind: ConfigKind) -> Result<Option<K>, Error>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let Some(name) = kind.referenced_by(self.object) else {
            return Ok(None);
        };
        Ok(Api::namespaced(self.client.clone(), self.namespace)
            .get_opt(name)
            .await?)
    }
}

async fn config_map_value(
    maps: &Api<ConfigMap>,
    key: Option<ConfigMapKey>,
) -> Result<Option<String>, Error> {
    let Some(ConfigMapKey { name, key, .. }) = key else {
        return Ok(None);
    };
    Ok(maps
        .get_opt(&name)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get(&key).cloned()))
}

/// SHA-256 of a value's JSON form, hex-encoded.
pub fn hash<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_vec(value)
        .ok()
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
}
