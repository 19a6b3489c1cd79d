//! The `MCPRemoteProxy` kind: the ToolHive proxy, with the same middleware as an
//! MCPServer's, in front of an MCP server that already runs elsewhere and is reached by
//! URL. The operator runs the proxy as a Deployment and exposes it as the Service
//! `mcp-<name>-remote-proxy`; nothing else is started.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    LocalRef, ResourceRequirements, SecretKeyRef, SessionStorageConfig, conditions_schema,
    preserve_unknown_object,
};
use crate::mcpserver::{
    AuditConfig, AuthServerRef, AuthzConfigRef, BackendStatus, MCPOIDCConfigReference,
    MCPTelemetryConfigReference, ResourceOverrides, SessionAffinity,
};

/// Desired state of a proxy in front of a remote MCP server.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPRemoteProxy",
    plural = "mcpremoteproxies",
    singular = "mcpremoteproxy",
    namespaced,
    status = "MCPRemoteProxyStatus",
    shortname = "rp",
    shortname = "mcprp",
    category = "toolhive",
    doc = "MCPRemoteProxy runs the ToolHive proxy in front of an MCP server reached by URL, applying the same authentication, Cedar authorization, audit, telemetry and tool filtering as for an MCPServer.",
    derive = "PartialEq",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Remote URL", type_ = "string", json_path = ".spec.remoteUrl"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(name = "Tools", type_ = "integer", json_path = ".status.backend.tools"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[x_kube(
    validation = Rule::new("!(has(self.authzConfig) && has(self.authzConfigRef))").message("authzConfig and authzConfigRef are mutually exclusive; use authzConfigRef to reference a shared MCPAuthzConfig").field_path(".authzConfigRef"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPRemoteProxySpec {
    /// URL of the remote MCP server's endpoint, `http://` or `https://`, e.g.
    /// `https://mcp.example.com/mcp`. An `https://` server is verified against the
    /// proxy image's CA certificates.
    #[schemars(regex(pattern = r"^https?://"))]
    pub remote_url: String,

    /// Port the proxy listens on; the Service `mcp-<name>-remote-proxy` exposes the same port.
    #[serde(default = "default_proxy_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub proxy_port: i32,

    /// How the remote server speaks MCP, which is also what the proxy exposes:
    /// `streamable-http` (default) or `sse` (legacy HTTP+SSE).
    #[serde(default)]
    pub transport: RemoteTransport,

    /// Authenticate clients with OIDC using a shared MCPOIDCConfig in the same namespace;
    /// audience, scopes and resource URL are set here. When unset, the proxy does not
    /// authenticate: every request that reaches it is forwarded to the remote server as a
    /// local anonymous user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_config_ref: Option<MCPOIDCConfigReference>,

    /// How the proxy authenticates to the remote server: an MCPExternalAuthConfig in the
    /// same namespace (the caller's token exchanged for one of the server's audience, or
    /// a bearer token or a header from a Secret). The proxy waits
    /// (condition `ExternalAuthConfigValidated`) until it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth_config_ref: Option<LocalRef>,

    /// Request webhooks from an MCPWebhookConfig in the same namespace: mutating ones may
    /// change each MCP request, validating ones allow or deny it (ours: ToolHive's
    /// MCPRemoteProxy has no such field). The proxy waits until it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_config_ref: Option<LocalRef>,

    /// An embedded OAuth 2.0 authorization server for MCP clients (ToolHive's
    /// `embeddedAuthServer`). Not supported yet: refused at apply time; authenticate
    /// clients with `oidcConfigRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_server_ref: Option<AuthServerRef>,

    /// Headers the proxy adds to every request it sends to the remote server, e.g. a
    /// tenant ID or an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_forward: Option<HeaderForwardConfig>,

    /// Cedar authorization policies, inline or from a ConfigMap.
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

    /// Compute resources of the proxy container. Defaults: requests 50m CPU / 64Mi,
    /// limits 500m CPU / 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Name of an existing ServiceAccount for the proxy pod. When unset, the operator
    /// creates `<name>-remote-proxy-runner`. Either way the operator binds it to a Role
    /// that lets the proxy report on this MCPRemoteProxy's status and nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// Pod template merged into the proxy's pod, for anything the other fields do not
    /// cover (node selectors, tolerations, security context). Address the proxy
    /// container by the name `toolhive`. Unknown fields are preserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub pod_template_spec: Option<serde_json::Value>,

    /// Trust `X-Forwarded-Proto`, `-Host`, `-Port` and `-Prefix` from a reverse proxy when
    /// building endpoint URLs. Enable only behind an ingress that sets these headers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub trust_proxy_headers: bool,

    /// Path prefix prepended to the endpoint URLs the proxy advertises, for ingresses
    /// that strip a path prefix before forwarding, e.g. `/mcp/github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_prefix: Option<String>,

    /// Extra labels, annotations and environment for the objects the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_overrides: Option<ResourceOverrides>,

    /// The MCPGroup of this namespace the proxy belongs to.
    /// The proxy waits (condition `GroupRefValidated`) until the group exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_ref: Option<LocalRef>,

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

    /// Number of proxy pods. When unset, the operator leaves the Deployment's replica
    /// count alone so an HPA can own it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
}

fn default_proxy_port() -> i32 {
    crate::mcpserver::DEFAULT_PROXY_PORT
}

/// How a remote MCP server speaks MCP.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RemoteTransport {
    /// Legacy HTTP with Server-Sent Events (MCP 2024-11-05).
    #[serde(rename = "sse")]
    Sse,
    /// Streamable HTTP (MCP 2025-03-26 and later).
    #[default]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
}

/// Headers added to every request sent to the remote server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderForwardConfig {
    /// Header names and literal values. They are visible to anyone who can read this
    /// object: put credentials in `addHeadersFromSecret`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add_plaintext_headers: BTreeMap<String, String>,
    /// Headers whose values are read from Secrets (by the kubelet, into the proxy's
    /// environment); the values never appear in the RunConfig.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["headerName".into()]))]
    pub add_headers_from_secret: Vec<HeaderFromSecret>,
}

/// A header whose value is one key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderFromSecret {
    /// The HTTP header name, e.g. `X-API-Key`.
    #[schemars(length(min = 1, max = 255))]
    pub header_name: String,
    /// The Secret and key holding the value.
    pub value_secret_ref: SecretKeyRef,
}

/// Lifecycle phase of an MCPRemoteProxy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MCPRemoteProxyPhase {
    /// Objects are being created or rolled out, or the remote server has not answered yet.
    Pending,
    /// The remote server answered the proxy's own `initialize`.
    Ready,
    /// The spec is invalid, or the remote server cannot be used; see `message`.
    Failed,
    /// The MCPRemoteProxy is being deleted.
    Terminating,
}

/// Observed state of an MCPRemoteProxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MCPRemoteProxyStatus {
    /// Latest observations: `Ready`, `BackendReady`, and one `…RefValidated` condition per reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase, for humans; tools should read the `Ready` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MCPRemoteProxyPhase>,
    /// What the phase means right now, e.g. the validation errors of a `Failed` proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// In-cluster URL clients use to reach the remote server through the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL from outside the cluster, when something exposes the proxy. The operator
    /// creates no Ingress or Gateway route, so it leaves this unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
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
    /// Hash of the referenced MCPWebhookConfig's spec at the last reconcile (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_config_hash: Option<String>,
    /// Hash of the referenced Secrets' data; a change rolls the proxy pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
    /// What the proxy found behind it: the remote server's answer to `initialize`, or
    /// why there was none. Written by the proxy runner (field manager
    /// `thv-proxyrunner`), not by the operator, which reads it into the `BackendReady`
    /// and `Ready` conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendStatus>,
}
