//! The `MCPAuthzConfig` kind: an authorization backend shared by several servers.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ConfigStatus;

/// Authorization shared by the MCPServers that reference it through `spec.authzConfigRef`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPAuthzConfig",
    plural = "mcpauthzconfigs",
    singular = "mcpauthzconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "authzcfg",
    category = "toolhive",
    doc = "MCPAuthzConfig is an authorization backend (Cedar policies or an HTTP decision service) shared by the MCPServers that reference it.",
    derive = "PartialEq",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
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
    validation = Rule::new("self.type != 'cedarv1' || (has(self.config.policies) && size(self.config.policies) > 0)").message("cedarv1 needs at least one policy in config.policies").field_path(".config.policies"),
    validation = Rule::new("self.type != 'httpv1' || has(self.config.http)").message("httpv1 needs config.http with the decision service URL").field_path(".config.http"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPAuthzConfigSpec {
    /// Authorizer backend: `cedarv1` evaluates Cedar policies in the proxy, `httpv1`
    /// asks an external decision service.
    #[serde(rename = "type")]
    pub type_: AuthzBackend,
    /// Backend configuration. Keys are snake_case, as in ToolHive's authorization file.
    pub config: AuthzBackendConfig,
}

/// Authorizer backend.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthzBackend {
    /// Cedar policies evaluated in the proxy.
    Cedarv1,
    /// An external HTTP decision service.
    Httpv1,
}

/// Configuration of an authorizer backend. `cedarv1` uses `policies`, `entities_json`
/// and the claim settings; `httpv1` uses `http`, `context` and `claim_mapping`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthzBackendConfig {
    /// Cedar policies, one per entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub policies: Vec<String>,
    /// Cedar entities as a JSON array; defaults to `[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities_json: Option<String>,
    /// JWT claim holding the caller's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_claim_name: Option<String>,
    /// JWT claim holding the caller's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_claim_name: Option<String>,
    /// Cedar entity type for groups and roles; defaults to `THVGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_entity_type: Option<String>,
    /// The decision service, for `httpv1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAuthzEndpoint>,
    /// What the proxy sends to the decision service, for `httpv1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<HttpAuthzContext>,
    /// How JWT claims are mapped into the decision request, for `httpv1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_mapping: Option<String>,
}

/// An HTTP decision service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpAuthzEndpoint {
    /// URL of the decision endpoint.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Request timeout as a duration, e.g. `2s`; defaults to `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Skip TLS verification of the decision service. For development only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// Request context sent to an HTTP decision service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpAuthzContext {
    /// Include the tool or prompt arguments.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_args: bool,
    /// Include the MCP operation (method and target).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_operation: bool,
}
