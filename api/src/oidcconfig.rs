//! The `MCPOIDCConfig` kind: how the proxy validates client tokens, shared by servers.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CABundleSource, ConfigStatus, SecretKeyRef};

/// Default issuer of Kubernetes service-account tokens.
pub const DEFAULT_KUBERNETES_ISSUER: &str = "https://kubernetes.default.svc";

/// The identity provider settings shared by the MCPServers that reference it through
/// `spec.oidcConfigRef`. Audience, scopes and resource URL are per server and live in
/// the reference.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPOIDCConfig",
    plural = "mcpoidcconfigs",
    singular = "mcpoidcconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "mcpoidc",
    category = "toolhive",
    doc = "MCPOIDCConfig describes how the ToolHive proxy validates client tokens (OIDC/JWT), shared by the MCPServers that reference it.",
    derive = "PartialEq",
    printcolumn(name = "Source", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Valid')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[x_kube(
    validation = Rule::new("self.type == 'kubernetesServiceAccount' ? has(self.kubernetesServiceAccount) : !has(self.kubernetesServiceAccount)").message("kubernetesServiceAccount must be set when type is 'kubernetesServiceAccount', and must not be set otherwise"),
    validation = Rule::new("self.type == 'inline' ? has(self.inline) : !has(self.inline)").message("inline must be set when type is 'inline', and must not be set otherwise"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPOIDCConfigSpec {
    /// `kubernetesServiceAccount` to accept the cluster's own service-account tokens,
    /// `inline` for an external OIDC provider described here.
    #[serde(rename = "type")]
    pub type_: OIDCConfigSource,
    /// Settings for `kubernetesServiceAccount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account: Option<KubernetesServiceAccountOIDCConfig>,
    /// Settings for `inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineOIDCConfig>,
}

/// Kind of token issuer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum OIDCConfigSource {
    /// Kubernetes service-account tokens issued by this cluster.
    KubernetesServiceAccount,
    /// An external OIDC provider.
    Inline,
}

/// Accept tokens of Kubernetes service accounts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServiceAccountOIDCConfig {
    /// Only accept tokens of this service account; any service account when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Namespace of that service account; defaults to the MCPServer's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Token issuer; defaults to `https://kubernetes.default.svc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_KUBERNETES_ISSUER))]
    pub issuer: Option<String>,
    /// JWKS endpoint; defaults to the API server's `/openid/v1/jwks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Token introspection endpoint, when tokens are opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// Use the pod's own service-account credentials and cluster CA to fetch the JWKS.
    /// Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cluster_auth: Option<bool>,
}

/// An external OIDC provider.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InlineOIDCConfig {
    /// Issuer URL (`iss` claim), e.g. `https://accounts.example.com`. Must be https unless
    /// `insecureAllowHTTP` is set.
    #[schemars(length(min = 1))]
    pub issuer: String,
    /// JWKS endpoint; discovered from the issuer's `.well-known/openid-configuration` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Token introspection endpoint (RFC 7662), for opaque tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// OAuth client ID, used for token introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Secret key holding the OAuth client secret, used for token introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// CA bundle to trust when talking to the provider (its issuer, JWKS and
    /// introspection URLs), besides the public CAs: a ConfigMap key holding PEM
    /// certificates (`ca.crt` by default), copied into the proxy's RunConfig. A change of
    /// the ConfigMap reaches the proxies at the operator's next resync (within 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CABundleSource>,
    /// Allow the JWKS URL to resolve to a private IP address (in-cluster providers).
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        rename = "jwksAllowPrivateIP"
    )]
    #[schemars(extend("default" = false))]
    pub jwks_allow_private_ip: bool,
    /// Allow the protected-resource URL to be a private IP address. Accepted for
    /// ToolHive compatibility: this proxy never refuses a private resource URL.
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        rename = "protectedResourceAllowPrivateIP"
    )]
    #[schemars(extend("default" = false))]
    pub protected_resource_allow_private_ip: bool,
    /// Allow `http://` issuer, JWKS and introspection URLs. For development only: tokens
    /// and keys then travel unencrypted.
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        rename = "insecureAllowHTTP"
    )]
    #[schemars(extend("default" = false))]
    pub insecure_allow_http: bool,
}
