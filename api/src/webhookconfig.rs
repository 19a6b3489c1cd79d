//! The `MCPWebhookConfig` kind: HTTP webhooks the proxy calls for every MCP request of
//! the MCPServers that reference it through `spec.webhookConfigRef` — mutating ones may
//! change the request (a JSON Patch), validating ones allow or deny it. ToolHive's
//! protocol (`v0.1.0`): the request with the caller's identity is POSTed, optionally
//! HMAC-signed, over https with an optional client certificate.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConfigStatus, SecretKeyRef};

/// Request webhooks for MCPServers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPWebhookConfig",
    plural = "mcpwebhookconfigs",
    singular = "mcpwebhookconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "mwc",
    category = "toolhive",
    doc = "MCPWebhookConfig lists HTTP webhooks the proxy calls for each MCP request of the MCPServers referencing it: mutating webhooks may change the request, validating webhooks allow or deny it.",
    derive = "PartialEq",
    derive = "Default",
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
    validation = Rule::new("(has(self.validating) ? size(self.validating) : 0) + (has(self.mutating) ? size(self.mutating) : 0) > 0").message("at least one validating or mutating webhook must be defined"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPWebhookConfigSpec {
    /// Webhooks that allow or deny each MCP request, called in order after the mutating
    /// ones; the first denial refuses the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validating: Vec<WebhookSpec>,

    /// Webhooks that may change each MCP request (an RFC 6902 JSON Patch under
    /// `/mcp_request/`), called in order before the validating ones; each sees the
    /// previous one's result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mutating: Vec<WebhookSpec>,
}

/// One webhook.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// A name unique in its list; logs and the `toolhive_webhook_calls_total` metric
    /// name the webhook by it.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// The endpoint. https; http only with `tlsConfig.insecureSkipVerify` (development,
    /// or a webhook in the cluster).
    #[schemars(extend("format" = "uri"))]
    pub url: String,

    /// How long to wait for an answer: a duration from `1s` to `30s` (`10s` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "duration"))]
    pub timeout: Option<String>,

    /// What a webhook that fails (no answer in time, an error status, an answer that is
    /// not the protocol's) means: `fail` refuses the request, `ignore` lets it through
    /// unchanged. An answer of HTTP 422 is a denial under either.
    #[serde(default)]
    pub failure_policy: WebhookFailurePolicy,

    /// TLS toward the webhook: the CA its certificate is checked against, the proxy's
    /// client certificate (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<WebhookTlsConfig>,

    /// The Secret and key holding the HMAC-SHA256 key the payload is signed with
    /// (`X-ToolHive-Signature: sha256=<hex>` over `<X-ToolHive-Timestamp>.<body>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_ref: Option<SecretKeyRef>,
}

/// What a failing webhook means for the request.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum WebhookFailurePolicy {
    /// Refuse the request.
    #[default]
    Fail,
    /// Let the request through unchanged.
    Ignore,
}

impl WebhookFailurePolicy {
    /// The name as written in `failurePolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Ignore => "ignore",
        }
    }
}

/// TLS toward a webhook; each value comes from a Secret and reaches the proxy as an
/// environment variable, never through a ConfigMap.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTlsConfig {
    /// The Secret and key holding the PEM CA bundle the webhook's certificate is checked
    /// against (instead of the platform's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,

    /// The Secret and key holding the proxy's PEM client certificate (mTLS); with
    /// `clientKeySecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<SecretKeyRef>,

    /// The Secret and key holding the client certificate's PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret_ref: Option<SecretKeyRef>,

    /// Do not check the webhook's certificate, and allow an http `url`. Development
    /// only: anyone on the path can read and answer the requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(transform = crate::common::no_default)]
    pub insecure_skip_verify: bool,
}
