//! The `MCPExternalAuthConfig` kind: how the proxy authenticates to the MCP server behind
//! it (outgoing authentication), shared by the MCPRemoteProxies that reference it
//! through `spec.externalAuthConfigRef`.
//!
//! Supported here: `tokenExchange` (RFC 8693: the caller's token traded for one the server
//! accepts), `bearerToken` and `headerInjection` (a value from a Secret, sent in a
//! header) and `unauthenticated`. ToolHive's other types are in the schema, so their
//! manifests are read, and refused at apply time as not supported yet, naming the type.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConfigStatus, SecretKeyRef, preserve_unknown_object};

/// Outgoing authentication toward an MCP server.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPExternalAuthConfig",
    plural = "mcpexternalauthconfigs",
    singular = "mcpexternalauthconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "extauth",
    shortname = "mcpextauth",
    category = "toolhive",
    doc = "MCPExternalAuthConfig says how the proxy authenticates to the MCP server behind it: the caller's token exchanged for one the server accepts (RFC 8693), a bearer token or a header from a Secret, or no authentication.",
    derive = "PartialEq",
    derive = "Default",
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
    validation = Rule::new("self.type == 'tokenExchange' ? has(self.tokenExchange) : !has(self.tokenExchange)").message("tokenExchange configuration must be set if and only if type is 'tokenExchange'"),
    validation = Rule::new("self.type == 'headerInjection' ? has(self.headerInjection) : !has(self.headerInjection)").message("headerInjection configuration must be set if and only if type is 'headerInjection'"),
    validation = Rule::new("self.type == 'bearerToken' ? has(self.bearerToken) : !has(self.bearerToken)").message("bearerToken configuration must be set if and only if type is 'bearerToken'"),
    validation = Rule::new("self.type == 'embeddedAuthServer' ? has(self.embeddedAuthServer) : !has(self.embeddedAuthServer)").message("embeddedAuthServer configuration must be set if and only if type is 'embeddedAuthServer'"),
    validation = Rule::new("self.type == 'awsSts' ? has(self.awsSts) : !has(self.awsSts)").message("awsSts configuration must be set if and only if type is 'awsSts'"),
    validation = Rule::new("self.type == 'upstreamInject' ? has(self.upstreamInject) : !has(self.upstreamInject)").message("upstreamInject configuration must be set if and only if type is 'upstreamInject'"),
    validation = Rule::new("self.type == 'obo' ? has(self.obo) : !has(self.obo)").message("obo configuration must be set if and only if type is 'obo'"),
    validation = Rule::new("self.type == 'xaa' ? has(self.xaa) : !has(self.xaa)").message("xaa configuration must be set if and only if type is 'xaa'"),
    validation = Rule::new("self.type == 'unauthenticated' ? (!has(self.tokenExchange) && !has(self.headerInjection) && !has(self.bearerToken) && !has(self.embeddedAuthServer) && !has(self.awsSts) && !has(self.upstreamInject) && !has(self.obo) && !has(self.xaa)) : true").message("no configuration must be set when type is 'unauthenticated'"),
)]
#[serde(rename_all = "camelCase")]
pub struct MCPExternalAuthConfigSpec {
    /// How the proxy authenticates: `tokenExchange`, `bearerToken`, `headerInjection` or
    /// `unauthenticated`. ToolHive's `embeddedAuthServer`, `awsSts`, `upstreamInject`,
    /// `obo` and `xaa` are refused at apply time as not supported yet.
    #[serde(rename = "type")]
    pub type_: ExternalAuthType,

    /// `Authorization: Bearer <token>`, the token from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<BearerTokenConfig>,

    /// A header of your choice, its value from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_injection: Option<HeaderInjectionConfig>,

    /// RFC 8693 token exchange: the caller's validated token is traded at the
    /// authorization server for one whose audience is the MCP server. Needs
    /// authentication (`oidcConfigRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchangeConfig>,

    /// An embedded OAuth 2.0 authorization server (ToolHive's). Not supported yet:
    /// refused at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub embedded_auth_server: Option<serde_json::Value>,

    /// AWS STS credentials (ToolHive's). Not supported yet: refused at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub aws_sts: Option<serde_json::Value>,

    /// An upstream provider's token (ToolHive's). Not supported yet: refused at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub upstream_inject: Option<serde_json::Value>,

    /// Entra ID on-behalf-of (ToolHive's). Not supported yet: refused at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub obo: Option<serde_json::Value>,

    /// Cross-app access (ToolHive's). Not supported yet: refused at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub xaa: Option<serde_json::Value>,
}

/// The kinds of outgoing authentication (ToolHive's names).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ExternalAuthType {
    /// RFC 8693 token exchange.
    TokenExchange,
    /// A header with a value from a Secret.
    HeaderInjection,
    /// `Authorization: Bearer` with a token from a Secret.
    BearerToken,
    /// No authentication toward the server.
    #[default]
    Unauthenticated,
    /// An embedded authorization server: not supported yet.
    EmbeddedAuthServer,
    /// AWS STS: not supported yet.
    AwsSts,
    /// An upstream provider's token: not supported yet.
    UpstreamInject,
    /// Entra ID on-behalf-of: not supported yet.
    Obo,
    /// Cross-app access: not supported yet.
    Xaa,
}

impl ExternalAuthType {
    /// The name as written in `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenExchange => "tokenExchange",
            Self::HeaderInjection => "headerInjection",
            Self::BearerToken => "bearerToken",
            Self::Unauthenticated => "unauthenticated",
            Self::EmbeddedAuthServer => "embeddedAuthServer",
            Self::AwsSts => "awsSts",
            Self::UpstreamInject => "upstreamInject",
            Self::Obo => "obo",
            Self::Xaa => "xaa",
        }
    }
}

/// RFC 8693 token exchange (ToolHive's fields).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenExchangeConfig {
    /// The authorization server's token endpoint. https, or http to loopback or an
    /// in-cluster Service name (the request carries the caller's token and the secret).
    #[schemars(length(min = 1))]
    pub token_url: String,

    /// The proxy's client ID at the authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// The Secret and key holding the client secret; with `clientId`, the proxy
    /// authenticates with HTTP Basic. It reaches the proxy as an environment variable,
    /// never through the RunConfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,

    /// The audience asked for: the MCP server's identifier at the authorization server.
    #[schemars(length(min = 1))]
    pub audience: String,

    /// OAuth scopes asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub scopes: Vec<String>,

    /// What the caller's token is: `access_token` (the default), `id_token` or `jwt`, or
    /// the `urn:ietf:params:oauth:token-type:` URN of one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(access_token|id_token|jwt|urn:ietf:params:oauth:token-type:(access_token|id_token|jwt))?$"
    ))]
    pub subject_token_type: Option<String>,

    /// A header to send the exchanged token in (`Bearer <token>`), e.g.
    /// `X-Upstream-Token`; it replaces `Authorization` when unset. The caller's own token
    /// is never passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_token_header_name: Option<String>,

    /// ToolHive's: an embedded authorization server's upstream provider whose token is
    /// exchanged. Not supported yet (no embedded authorization server): refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_provider_name: Option<String>,
}

/// A bearer token from a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BearerTokenConfig {
    /// The Secret and key holding the token (without the `Bearer ` prefix).
    pub token_secret_ref: SecretKeyRef,
}

/// A header whose value is one key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderInjectionConfig {
    /// The HTTP header name, e.g. `X-API-Key`.
    #[schemars(length(min = 1))]
    pub header_name: String,
    /// The Secret and key holding the value.
    pub value_secret_ref: SecretKeyRef,
}
