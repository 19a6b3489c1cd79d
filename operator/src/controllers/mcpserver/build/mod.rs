//! The build stage: pure functions from an MCPServer (and what was dereferenced and
//! validated) to the objects the operator owns. No client here; every function is
//! unit-tested from YAML fixtures.
//!
//! The StatefulSet running the MCP server itself is created by the proxy runner, not
//! here; when the proxy's Kubernetes backend lands, the operator adopts and repairs it
//! through an extra object in [`Objects`].

mod configmap;
pub(crate) mod deployment;
pub(crate) mod network_policy;
mod rbac;
mod service;

use api::MCPServer;
use api::common::SecretKeyRef;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) use configmap::runconfig_map_with;
pub use configmap::{RUNCONFIG_KEY, RenderedRunConfig, render, runconfig_map, runconfig_name};
pub use deployment::{
    DEFAULT_PROXY_LIMITS, DEFAULT_PROXY_REQUESTS, RUNCONFIG_MOUNT_PATH, deployment,
};
pub(crate) use deployment::{ProxyPod, proxy_deployment, restarted_at};
pub use rbac::{
    mcp_service_account_name, proxy_role, proxy_role_binding, proxy_service_account_name,
    service_accounts,
};
pub(crate) use service::proxy_service;
pub use service::{service, url};

use crate::OperatorConfig;
pub(crate) use crate::controllers::name_of;
use crate::controllers::{namespace_of, owner_reference};
use crate::error::Error;

/// What the build stage needs besides the MCPServer.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The validated RunConfig, serialised.
    pub runconfig: &'a RenderedRunConfig,
    /// SHA-256 of the referenced Secret values.
    pub secrets_checksum: &'a str,
    /// The OIDC client secret, passed to the proxy as an environment variable.
    pub oidc_client_secret: Option<&'a SecretKeyRef>,
    /// The token exchange client secret of an MCPExternalAuthConfig, passed to the
    /// proxy as an environment variable.
    pub token_exchange_secret: Option<&'a SecretKeyRef>,
    /// The referenced MCPExternalAuthConfig (its bearer token or header arrive as
    /// environment variables).
    pub external_auth: Option<&'a api::externalauth::MCPExternalAuthConfigSpec>,
    /// The referenced MCPWebhookConfig (its HMAC keys and TLS material arrive as
    /// environment variables).
    pub webhooks: Option<&'a api::MCPWebhookConfigSpec>,
    /// Operator settings.
    pub config: &'a OperatorConfig,
}

impl<'a> Inputs<'a> {
    /// The inputs of a build from what the dereference stage found.
    pub fn new(
        runconfig: &'a RenderedRunConfig,
        refs: &'a super::dereference::Dereferenced,
        config: &'a OperatorConfig,
    ) -> Self {
        Self {
            runconfig,
            secrets_checksum: &refs.secrets_checksum,
            oidc_client_secret: refs.oidc_client_secret(),
            token_exchange_secret: refs.token_exchange_secret(),
            external_auth: refs
                .referenced
                .external_auth_config
                .as_ref()
                .map(|e| &e.spec),
            webhooks: refs.referenced.webhook_config.as_ref().map(|w| &w.spec),
            config,
        }
    }
}

/// Every object one MCPServer owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Objects {
    /// ServiceAccount of the proxy, and of the MCP server pod unless `spec.serviceAccount` is set.
    pub service_accounts: Vec<ServiceAccount>,
    /// What the proxy may do in the namespace.
    pub role: Role,
    /// Binds the role to the proxy's ServiceAccount.
    pub role_binding: RoleBinding,
    /// `<name>-runconfig`.
    pub runconfig: ConfigMap,
    /// The proxy Deployment `<name>`.
    pub deployment: Deployment,
    /// `mcp-<name>-proxy`.
    pub service: Service,
    /// `mcp-<name>-ingress`, the MCP server pods' isolation.
    pub network_policy: Isolation,
}

/// What becomes of the server's NetworkPolicy.
#[derive(Clone, Debug, PartialEq)]
pub enum Isolation {
    /// Apply it.
    Apply(Box<NetworkPolicy>),
    /// None may be left (`spec.networkPolicy.enabled: false`, or unset while the
    /// operator's default is off but it manages policies): delete the one named, if any.
    Remove(String),
    /// Not the operator's business: policies are off by default and the spec says
    /// nothing, so none was ever made for this server.
    Unmanaged,
}

fn isolation(server: &MCPServer, config: &OperatorConfig) -> Result<Isolation, Error> {
    let default = config.network_policies;
    Ok(if network_policy::wanted(server, default) {
        Isolation::Apply(Box::new(network_policy::network_policy(server)?))
    } else if default || server.spec.network_policy.is_some() {
        Isolation::Remove(network_policy::network_policy_name(name_of(server)?))
    } else {
        Isolation::Unmanaged
    })
}

/// Builds every owned object.
pub fn objects(server: &MCPServer, inputs: &Inputs<'_>) -> Result<Objects, Error> {
    Ok(Objects {
        service_accounts: service_accounts(server)?,
        role: proxy_role(server)?,
        role_binding: proxy_role_binding(server)?,
        runconfig: runconfig_map(server, inputs)?,
        deployment: deployment(server, inputs)?,
        service: service(server)?,
        network_policy: isolation(server, inputs.config)?,
    })
}

/// Metadata of an owned object: name, namespace, labels, and the controller owner
/// reference that lets the garbage collector delete it with the MCPServer.
pub(crate) fn owned_meta(server: &MCPServer, name: String) -> Result<ObjectMeta, Error> {
    owned_meta_with(server, name, crate::labels::mcpserver(name_of(server)?))
}

/// [`owned_meta`] for an object of any kind, with its `labels`.
pub(crate) fn owned_meta_with<K: kube::Resource<DynamicType = ()>>(
    owner: &K,
    name: String,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<ObjectMeta, Error> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(namespace_of(owner)?.to_owned()),
        labels: Some(labels),
        owner_references: Some(vec![owner_reference(owner)?]),
        ..ObjectMeta::default()
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    use std::sync::LazyLock;

    use api::MCPServer;

    /// Parses an MCPServer manifest and gives it the fields the API server sets.
    pub fn server(yaml: &str) -> MCPServer {
        let mut server: MCPServer = api::manifest::from_yaml(yaml).expect("fixture parses");
        server
            .metadata
            .namespace
            .get_or_insert_with(|| "team".to_owned());
        server.metadata.uid = Some("0000-1111".to_owned());
        server.metadata.generation = Some(1);
        server
    }

    pub const MINIMAL: &str = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec: {image: ghcr.io/stackloklabs/gofetch/server:1.0.1}\n";

    static RUNCONFIG: LazyLock<super::RenderedRunConfig> =
        LazyLock::new(|| super::RenderedRunConfig {
            json: "{\"schema_version\":\"v1\"}".to_owned(),
            checksum: "abc123".to_owned(),
        });

    pub fn inputs(config: &crate::OperatorConfig) -> super::Inputs<'_> {
        super::Inputs {
            runconfig: &RUNCONFIG,
            secrets_checksum: "def456",
            oidc_client_secret: None,
            token_exchange_secret: None,
            external_auth: None,
            webhooks: None,
            config,
        }
    }
}
