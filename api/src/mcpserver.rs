//! The `MCPServer` kind: one MCP server, run behind the ToolHive proxy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    EnvVar, LocalRef, ResourceRequirements, SessionStorageConfig, Volume, conditions_schema,
    preserve_unknown_object,
};

/// Default port of the proxy in front of the MCP server.
pub const DEFAULT_PROXY_PORT: i32 = 8080;
/// Port an `sse` or `streamable-http` server listens on when `mcpPort` is unset.
pub const DEFAULT_MCP_PORT: i32 = 8080;
/// Default key of an authorization ConfigMap.
pub const DEFAULT_AUTHZ_CONFIGMAP_KEY: &str = "authz.json";

/// Desired state of an MCP server and the proxy that fronts it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPServer",
    plural = "mcpservers",
    singular = "mcpserver",
    namespaced,
    status = "MCPServerStatus",
    shortname = "mcps",
    category = "toolhive",
    doc = "MCPServer runs one Model Context Protocol server behind the ToolHive proxy, which enforces authentication, Cedar authorization, audit, telemetry and tool filtering.",
    derive = "PartialEq",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        priority = 1
    ),
    printcolumn(name = "Tools", type_ = "integer", json_path = ".status.backend.tools"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[x_kube(
    validation = Rule::new("!(has(self.authzConfig) && has(self.authzConfigRef))").message("authzConfig and authzConfigRef are mutually exclusive; use authzConfigRef to reference a shared MCPAuthzConfig").field_path(".authzConfigRef"),
    validation = Rule::new("!has(self.rateLimiting) || (has(self.sessionStorage) && self.sessionStorage.provider == 'redis')").message("rateLimiting requires sessionStorage with provider 'redis'").field_path(".rateLimiting"),
    validation = Rule::new("!(has(self.rateLimiting) && has(self.rateLimiting.perUser)) || has(self.oidcConfigRef) || has(self.externalAuthConfigRef)").message("rateLimiting.perUser requires authentication (oidcConfigRef or externalAuthConfigRef)").field_path(".rateLimiting.perUser"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerSpec {
    /// Container image of the MCP server, e.g. `ghcr.io/stackloklabs/osv-mcp/server:0.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// How the MCP server itself speaks MCP: `stdio` (the proxy attaches to the
    /// container's stdin/stdout), `sse` (legacy HTTP+SSE) or `streamable-http`.
    #[serde(default)]
    pub transport: Transport,

    /// Transport the proxy exposes to clients when `transport` is `stdio`. Ignored for
    /// `sse` and `streamable-http` servers, which are exposed with their own transport.
    #[serde(default)]
    pub proxy_mode: ProxyMode,

    /// Port the proxy listens on; the Service `mcp-<name>-proxy` exposes the same port.
    #[serde(default = "default_proxy_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub proxy_port: i32,

    /// Port the MCP server listens on, for `sse` and `streamable-http` transports.
    /// Defaults to 8080 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub mcp_port: Option<i32>,

    /// Extra command-line arguments passed to the MCP server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub args: Vec<String>,

    /// Environment variables of the MCP server container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,

    /// Secrets exposed to the MCP server as environment variables. Values are read by
    /// the kubelet from the Secret (`secretKeyRef`); they never appear in the RunConfig.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into(), "key".into()]))]
    pub secrets: Vec<SecretRef>,

    /// Host-path volumes mounted into the MCP server container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub volumes: Vec<Volume>,

    /// Compute resources of the MCP server container (the `mcp` container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Compute resources of the proxy container. Additive to ToolHive, which shares one
    /// `resources` field between both containers. Defaults: requests 50m CPU / 64Mi,
    /// limits 500m CPU / 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_resources: Option<ResourceRequirements>,

    /// Name of an existing ServiceAccount for the MCP server pod. When unset, the
    /// operator creates `<name>-sa` with no permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// Permission profile that restricts what the MCP server may read, write and reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_profile: Option<PermissionProfileRef>,

    /// Pod template merged into the MCP server's pod, for anything the other fields do
    /// not cover (node selectors, tolerations, extra volumes, security context). Address
    /// the MCP server container by the name `mcp`. Unknown fields are preserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub pod_template_spec: Option<serde_json::Value>,

    /// Extra labels, annotations and environment for the objects the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_overrides: Option<ResourceOverrides>,

    /// Authenticate clients with OIDC using a shared MCPOIDCConfig in the same namespace;
    /// audience, scopes and resource URL are set here, per server. When unset, the proxy
    /// does not authenticate: every request that reaches it is served as a local anonymous user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_config_ref: Option<MCPOIDCConfigReference>,

    /// Cedar authorization policies for this server, inline or from a ConfigMap.
    /// Mutually exclusive with `authzConfigRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz_config: Option<AuthzConfigRef>,

    /// Authorization from a shared MCPAuthzConfig in the same namespace.
    /// Mutually exclusive with `authzConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz_config_ref: Option<LocalRef>,

    /// Audit logging of MCP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,

    /// Tool filtering and renaming from an MCPToolConfig in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config_ref: Option<LocalRef>,

    /// Telemetry (OpenTelemetry, Prometheus) from an MCPTelemetryConfig in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_config_ref: Option<MCPTelemetryConfigReference>,

    /// Outgoing authentication toward the MCP server: an MCPExternalAuthConfig in the same
    /// namespace — the caller's token exchanged for one of the server's audience, or a
    /// bearer token or header from a Secret. For servers on `sse` or `streamable-http`
    /// (a stdio server reads no headers). The server waits until it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth_config_ref: Option<LocalRef>,

    /// Request webhooks from an MCPWebhookConfig in the same namespace: mutating ones may
    /// change each MCP request, validating ones allow or deny it. Secrets reach the proxy
    /// by `secretKeyRef`. The server waits until it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_config_ref: Option<LocalRef>,

    /// An embedded OAuth 2.0 authorization server for MCP clients (ToolHive's
    /// `embeddedAuthServer`). Not supported yet: refused at apply time; authenticate
    /// clients with `oidcConfigRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_server_ref: Option<AuthServerRef>,

    /// A NetworkPolicy letting only this server's proxy reach the MCP server's pods (ours:
    /// ToolHive builds none). Unset: the operator's default (`--network-policies`, on in
    /// the Helm chart). Needs a network plugin that enforces NetworkPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyConfig>,

    /// The MCPGroup of this namespace the server belongs to; the group's status lists it.
    /// The server waits (condition `GroupRefValidated`) until the group exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_ref: Option<LocalRef>,

    /// Trust `X-Forwarded-Proto`, `-Host`, `-Port` and `-Prefix` from a reverse proxy when
    /// building endpoint URLs. Enable only behind an ingress that sets these headers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub trust_proxy_headers: bool,

    /// Path prefix prepended to the endpoint URLs the proxy advertises, for ingresses
    /// that strip a path prefix before forwarding, e.g. `/mcp/github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_prefix: Option<String>,

    /// Number of proxy pods. When unset, the operator leaves the Deployment's replica
    /// count alone so an HPA can own it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,

    /// Number of MCP server pods. A `stdio` server is capped at one. When unset, the
    /// replica count is left to an external controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub backend_replicas: Option<i32>,

    /// Whether the Service routes a client's repeated connections to the same proxy pod.
    /// MCP sessions are stateful, so `ClientIP` is the default.
    #[serde(default)]
    pub session_affinity: SessionAffinity,

    /// Where the proxy pods keep MCP sessions. With `replicas` above one and no Redis
    /// here, each session is known only to the proxy pod that created it: a request that
    /// reaches another pod is answered "session not found" (the `SessionStorageWarning`
    /// condition says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_storage: Option<SessionStorageConfig>,

    /// Rate limits of `tools/call`, in token buckets kept in the Redis of
    /// `sessionStorage` (required), so every proxy replica draws from the same buckets.
    /// A refused call is answered HTTP 429 with JSON-RPC error 429 and `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting: Option<crate::ratelimit::RateLimitConfig>,
}

fn default_proxy_port() -> i32 {
    DEFAULT_PROXY_PORT
}

/// How an MCP server speaks MCP.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Newline-delimited JSON-RPC on the container's stdin and stdout.
    #[default]
    #[serde(rename = "stdio")]
    Stdio,
    /// Legacy HTTP with Server-Sent Events (MCP 2024-11-05).
    #[serde(rename = "sse")]
    Sse,
    /// Streamable HTTP (MCP 2025-03-26 and later).
    #[serde(rename = "streamable-http")]
    StreamableHttp,
}

/// Transport the proxy exposes for a `stdio` server.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyMode {
    /// Legacy HTTP with Server-Sent Events.
    #[serde(rename = "sse")]
    Sse,
    /// Streamable HTTP.
    #[default]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
}

/// Service session affinity.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionAffinity {
    /// Route a client IP's connections to the same pod.
    #[default]
    ClientIP,
    /// No affinity.
    None,
}

/// A Secret key exposed to the MCP server as an environment variable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
    /// Environment variable that receives the value; defaults to `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_env_name: Option<String>,
}

/// Which permission profile applies to the MCP server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.type == 'configmap' || self.name in ['none', 'network']").message("a builtin permission profile name must be 'none' or 'network'").field_path(".name"))]
#[serde(rename_all = "camelCase")]
pub struct PermissionProfileRef {
    /// `builtin` for a profile shipped with ToolHive, `configmap` for a profile stored in a ConfigMap.
    #[serde(rename = "type", default)]
    pub type_: PermissionProfileType,
    /// For `builtin`: `none` (no network) or `network` (outbound network allowed).
    /// For `configmap`: the ConfigMap's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// For `configmap`: the key holding the profile JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Source of a permission profile.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PermissionProfileType {
    /// A profile shipped with ToolHive.
    #[default]
    Builtin,
    /// A profile stored in a ConfigMap.
    Configmap,
}

/// Overrides for the objects the operator creates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOverrides {
    /// Overrides for the proxy Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_deployment: Option<ProxyDeploymentOverrides>,
    /// Overrides for the proxy Service. Its labels `app.kubernetes.io/managed-by` and
    /// `app.kubernetes.io/name` keep the operator's values (its watches find the Service
    /// by them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_service: Option<ResourceMetadataOverrides>,
}

/// Overrides for the proxy Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDeploymentOverrides {
    /// Annotations added to the Deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels added to the Deployment. `app.kubernetes.io/managed-by` and
    /// `app.kubernetes.io/name` keep the operator's values (its watches find the
    /// Deployment by them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Labels and annotations added to the proxy pods. The labels of the Deployment's
    /// selector (`app.kubernetes.io/name`, `app.kubernetes.io/instance`, `toolhive-name`)
    /// and the operator's checksum annotations keep the operator's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_metadata_overrides: Option<ResourceMetadataOverrides>,
    /// Environment of the proxy container itself (not the MCP server), e.g. `TOOLHIVE_DEBUG=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,
    /// Image pull secrets for the proxy pods and their ServiceAccount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// Labels and annotations added to an object.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetadataOverrides {
    /// Annotations to add or override.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels to add or override.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Reference to a shared MCPOIDCConfig with this server's own token expectations.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MCPOIDCConfigReference {
    /// Name of the MCPOIDCConfig in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Audience (`aud` claim) a token must carry to be accepted by this server.
    #[schemars(length(min = 1))]
    pub audience: String,
    /// OAuth scopes advertised in the protected-resource metadata (RFC 9728).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub scopes: Vec<String>,
    /// Public URL of this server, advertised as `resource` in the protected-resource
    /// metadata (RFC 9728). Defaults to the server's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
}

/// Reference to a shared MCPTelemetryConfig.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MCPTelemetryConfigReference {
    /// Name of the MCPTelemetryConfig in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// OpenTelemetry `service.name` for this server; defaults to the MCPServer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// Authorization configuration of one server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("self.type == 'configMap' ? has(self.configMap) : !has(self.configMap)").message("configMap must be set when type is 'configMap', and must not be set otherwise"),
    validation = Rule::new("self.type == 'inline' ? has(self.inline) : !has(self.inline)").message("inline must be set when type is 'inline', and must not be set otherwise"),
)]
#[serde(rename_all = "camelCase")]
pub struct AuthzConfigRef {
    /// `inline` for policies written in this object, `configMap` for a ToolHive
    /// authorization file stored in a ConfigMap.
    #[serde(rename = "type", default)]
    pub type_: AuthzConfigSource,
    /// The ConfigMap holding the authorization file (key defaults to `authz.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = authz_key_default)]
    pub config_map: Option<crate::common::ConfigMapKeyRef>,
    /// Cedar policies written in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineAuthzConfig>,
    /// JWT claim holding the caller's groups; defaults to `groups`, `roles` or `cognito:groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group_claim_name: Option<String>,
    /// JWT claim holding the caller's roles, mapped like groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub role_claim_name: Option<String>,
    /// Cedar entity type of the caller's groups and roles; defaults to `THVGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub group_entity_type: Option<String>,
}

/// Where authorization policies come from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthzConfigSource {
    /// A ConfigMap holding a ToolHive authorization file.
    #[default]
    #[serde(rename = "configMap")]
    ConfigMap,
    /// Policies written in this object.
    #[serde(rename = "inline")]
    Inline,
}

/// Cedar policies written in place.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InlineAuthzConfig {
    /// Cedar policies, one per entry. Principals are `Client::"<sub>"`, actions
    /// `Action::"call_tool"`, `"get_prompt"`, `"read_resource"`, `"list_tools"`, …,
    /// resources `Tool::"<name>"`, `Prompt::"<name>"`, `Resource::"<uri>"`.
    #[schemars(length(min = 1))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub policies: Vec<String>,
    /// Cedar entities as a JSON array, for policies that need a static entity store.
    #[serde(default = "empty_entities")]
    pub entities_json: String,
    /// The upstream identity provider of an embedded authorization server whose token
    /// claims Cedar evaluates. Has no effect on an MCPServer, which runs no embedded
    /// authorization server (as in ToolHive); `kubectl apply` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub primary_upstream_provider: Option<String>,
}

/// Whether the operator isolates the MCP server's pods with a NetworkPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyConfig {
    /// `true`: only the proxy's pods may connect to the MCP server's pods (a stdio
    /// server, reached through the kubelet, accepts no connection at all); egress is not
    /// restricted. `false`: no policy (one the operator made earlier is deleted).
    pub enabled: bool,
}

/// A reference to the object configuring an embedded authorization server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthServerRef {
    /// Kind of the referenced object.
    #[serde(default)]
    pub kind: AuthServerKind,
    /// Name of the referenced object in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Kinds that can configure an embedded authorization server.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthServerKind {
    /// An MCPExternalAuthConfig of type `embeddedAuthServer`.
    #[default]
    MCPExternalAuthConfig,
}

fn empty_entities() -> String {
    "[]".to_owned()
}

/// Audit logging of MCP requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditConfig {
    /// Write one JSON audit event per MCP request to the proxy's log.
    #[serde(default)]
    pub enabled: bool,
}

/// Observed state of an MCPServer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerStatus {
    /// Latest observations: `Ready`, and one `…RefValidated` condition per reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase, for humans; tools should read the `Ready` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MCPServerPhase>,
    /// What the phase means right now, e.g. the validation errors of a `Failed` server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// In-cluster URL clients use to reach the server through its proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Number of proxy pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Hash of the referenced MCPToolConfig's spec at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config_hash: Option<String>,
    /// Hash of the referenced MCPOIDCConfig's spec at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_config_hash: Option<String>,
    /// Hash of the referenced MCPAuthzConfig's spec (or authorization ConfigMap) at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz_config_hash: Option<String>,
    /// Hash of the referenced MCPTelemetryConfig's spec at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_config_hash: Option<String>,
    /// Hash of the referenced MCPExternalAuthConfig's spec at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth_config_hash: Option<String>,
    /// Hash of the referenced MCPWebhookConfig's spec at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_config_hash: Option<String>,
    /// Hash of the referenced Secrets' data; a change rolls the proxy and server pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
    /// What the proxy found behind it: the MCP server's pods and its answer to
    /// `initialize`. Written by the proxy runner (field manager `thv-proxyrunner`), not
    /// by the operator, which reads it into the `BackendReady` and `Ready` conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendStatus>,
}

/// The MCP server behind the proxy, as the proxy last saw it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackendStatus {
    /// Why the server is or is not serving: `Initialized` when it answered `initialize`;
    /// otherwise what stands in the way (`Starting`, `ImagePullFailed`, `CrashLoop`,
    /// `PodCreateFailed`, `Unschedulable`, `PodFailed`, `AttachFailed`, `NoEndpoints`, `InitializeFailed`,
    /// `ApplyFailed`).
    pub reason: String,
    /// The detail, e.g. the image pull error or the container's last termination
    /// message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `serverInfo.name` from the server's `initialize` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// `serverInfo.version` from the server's `initialize` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The MCP protocol version the server agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// How many tools the server lists (`tools/list`, every page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<i32>,
}

/// Lifecycle phase of an MCPServer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MCPServerPhase {
    /// Objects are being created or rolled out.
    Pending,
    /// The proxy is serving.
    Ready,
    /// The spec is invalid or a rollout failed; see `message` and the conditions.
    Failed,
    /// The MCPServer is being deleted.
    Terminating,
    /// Scaled to zero.
    Stopped,
}

/// `key` of `spec.authzConfig.configMap` defaults to `authz.json` in the schema, as in
/// ToolHive's CRD, so the stored object says which key is read.
fn authz_key_default(schema: &mut schemars::Schema) {
    if let Some(key) = schema.pointer_mut("/properties/key") {
        key["default"] = DEFAULT_AUTHZ_CONFIGMAP_KEY.into();
    }
}
