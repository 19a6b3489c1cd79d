//! The RunConfig data: plain serde types, no behaviour. Everything a proxy needs to run
//! or reach one MCP server and to build its middleware chain, with every configuration
//! inline: no file paths (seed 004), no secret values (only references to them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema version this crate writes.
pub const SCHEMA_VERSION: &str = "v1";

/// One workload and the proxy in front of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Schema version of this document; see [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// Name of the workload (the MCPServer's name in Kubernetes).
    pub name: String,
    /// Group the workload belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Debug logging in proxy and workload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub debug: bool,
    /// What the proxy runs or reaches.
    pub workload: Workload,
    /// How the proxy serves clients and which middleware it applies.
    pub proxy: ProxyConfig,
}

/// What the proxy runs or reaches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(clippy::large_enum_variant)] // one per RunConfig; boxing would only add noise
pub enum Workload {
    /// An OCI container the platform runs (a StatefulSet in Kubernetes).
    Container(ContainerWorkload),
    /// An MCP server that already runs elsewhere, reached by URL.
    Remote(RemoteWorkload),
}

/// An MCP server run from an OCI image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContainerWorkload {
    /// OCI image reference.
    pub image: String,
    /// Arguments passed to the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// How the server speaks MCP: `stdio`, `sse` or `streamable-http`.
    pub transport: String,
    /// Host the server listens on, for HTTP transports (the Service name in Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_host: Option<String>,
    /// Port the server listens on, for HTTP transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<i64>,
    /// Literal environment variables, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Secrets exposed as environment variables; values are resolved by the platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// Host paths mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Labels of the container (pod labels in Kubernetes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes only: a PodTemplateSpec merged into the server's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_patch: Option<serde_json::Value>,
    /// Restrict the container's network to what the permission profile allows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate_network: bool,
    /// What the server may read, write and reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_profile: Option<PermissionProfile>,
    /// Headers the proxy adds to every request it sends to an HTTP server (sse,
    /// streamable-http), as toward a remote one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ForwardedHeader>,
    /// Kubernetes only: ServiceAccount of the server's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Kubernetes only: number of server pods; unset leaves it to an external controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

/// An MCP server reached by URL.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteWorkload {
    /// URL of the server's MCP endpoint.
    pub url: String,
    /// `sse` or `streamable-http`.
    pub transport: String,
    /// OAuth client settings the proxy uses to authenticate to the remote server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RemoteAuth>,
    /// Headers the proxy adds to every request it sends to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ForwardedHeader>,
}

/// A header added to every request toward a remote server: a literal value, or one the
/// platform puts in an environment variable (a Secret's, in Kubernetes), so that secret
/// values never enter the RunConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForwardedHeader {
    /// Header name, e.g. `X-API-Key`.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_env: Option<String>,
}

/// OAuth client settings toward a remote server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteAuth {
    /// Authorization server issuer.
    pub issuer: String,
    /// OAuth client ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Environment variable that holds the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes to request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// A literal environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A secret exposed to the workload as an environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Secret name (a Kubernetes Secret, or a secret of the CLI's secret provider).
    pub name: String,
    /// Key inside the secret; required in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Environment variable receiving the value; defaults to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_env: Option<String>,
}

/// A host path mounted into the container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// Volume name, when the front end has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path on the host.
    pub host_path: String,
    /// Absolute path in the container.
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A permission profile: a built-in one by name, or one written out in full.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PermissionProfile {
    /// `none` or `network`.
    Builtin(String),
    /// A complete profile.
    Inline(Profile),
}

/// What a workload may read, write and reach.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Paths the workload may read (`/host/path` or `/host/path:/container/path`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Paths the workload may write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// Network permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPermissions>,
    /// Run privileged. Refused in Kubernetes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

/// Network permissions of a profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkPermissions {
    /// Outbound connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundPermissions>,
}

/// Outbound network permissions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundPermissions {
    /// Allow every destination.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_allow_all: bool,
    /// Hosts that may be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_host: Vec<String>,
    /// Ports that may be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_port: Vec<i64>,
}

/// How the proxy serves clients and what it enforces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address to bind, e.g. `0.0.0.0`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port to listen on.
    #[serde(default = "default_port")]
    pub port: i64,
    /// Client-facing transport for a stdio workload: `sse` or `streamable-http`.
    #[serde(default = "default_proxy_mode")]
    pub mode: String,
    /// Trust `X-Forwarded-*` headers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trust_proxy_headers: bool,
    /// Path prefix of advertised endpoint URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_prefix: Option<String>,
    /// Origins allowed to call the proxy from a browser (DNS-rebinding protection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Client authentication; anonymous when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// Authorization; every authenticated request is allowed when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz: Option<AuthzConfig>,
    /// Audit events; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
    /// Telemetry; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
    /// Tool filtering and renaming.
    #[serde(default, skip_serializing_if = "ToolsConfig::is_empty")]
    pub tools: ToolsConfig,
    /// Redis the proxy replicas share their MCP sessions in; each replica knows only its
    /// own sessions when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_redis: Option<SessionRedis>,
    /// Rate limits of `tools/call`, kept in `session_redis`; none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// RFC 8693 token exchange: the caller's token traded for one the server accepts,
    /// sent to the server instead of it; none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchange>,
    /// HTTP webhooks that may change each MCP request before it is checked, in order;
    /// none when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mutating_webhooks: Vec<Webhook>,
    /// HTTP webhooks that allow or deny each MCP request, in order; none when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validating_webhooks: Vec<Webhook>,
}

/// One HTTP request webhook (ToolHive's protocol `v0.1.0`): the proxy POSTs each MCP
/// request with the caller's identity to `url` and follows the answer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Unique among the webhooks of its list; logs and metrics name it.
    pub name: String,
    /// The endpoint: https, or http with `tls.insecure_skip_verify`.
    pub url: String,
    /// How long to wait for an answer, a Go duration between `1s` and `30s`; `10s`
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What a webhook that fails (no answer, an error status, nonsense) means: `fail`
    /// refuses the request (the default), `ignore` lets it through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<String>,
    /// Environment variable holding the HMAC-SHA256 key the payload is signed with
    /// (`X-ToolHive-Signature`, `X-ToolHive-Timestamp`); unsigned when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_env: Option<String>,
    /// TLS toward the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<WebhookTls>,
}

/// TLS toward a webhook: the CA its certificate is checked against and the proxy's
/// client certificate (mTLS), each a PEM value in an environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookTls {
    /// Environment variable holding the PEM CA bundle; the platform's roots when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_env: Option<String>,
    /// Environment variable holding the PEM client certificate (with `client_key_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_env: Option<String>,
    /// Environment variable holding the PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_env: Option<String>,
    /// Skip checking the webhook's certificate, and allow `http`: development only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// The environment variable the token exchange's client secret is given in, ToolHive's
/// name for it.
pub const TOKEN_EXCHANGE_CLIENT_SECRET_ENV: &str = "TOOLHIVE_TOKEN_EXCHANGE_CLIENT_SECRET";

/// RFC 8693 token exchange toward the MCP server: the proxy posts the caller's validated
/// bearer token to `token_url` and sends the token it gets back to the server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenExchange {
    /// The authorization server's token endpoint.
    pub token_url: String,
    /// The proxy's client ID at the authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Environment variable holding the client secret; with `client_id`, the proxy
    /// authenticates with HTTP Basic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The audience asked for: the MCP server's identifier at the authorization server.
    pub audience: String,
    /// Scopes asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// What the caller's token is: `access_token` (the default), `id_token`, `jwt`, or
    /// the RFC 8693 URN of one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_token_type: Option<String>,
    /// Header the exchanged token is sent in (`Bearer <token>`), beside the
    /// `Authorization` header; `Authorization` itself when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
}

/// Token buckets on `tools/call`: a call takes a token from every bucket that applies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// One bucket for every caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<RateLimitBucket>,
    /// One bucket per authenticated caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<RateLimitBucket>,
    /// Buckets of single tools, by the name clients call them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolRateLimit>,
}

/// A token bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBucket {
    /// Capacity (the burst).
    pub max_tokens: i64,
    /// Time to refill it from empty, a Go duration (`1m0s`, `30s`).
    pub refill_period: String,
}

/// The buckets of one tool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ToolRateLimit {
    /// Tool name, as clients call it.
    pub name: String,
    /// One bucket for every caller of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<RateLimitBucket>,
    /// One bucket per authenticated caller of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<RateLimitBucket>,
}

/// The environment variable the session Redis password is given in, ToolHive's name for
/// it (its proxy reads no other).
pub const SESSION_REDIS_PASSWORD_ENV: &str = "THV_SESSION_REDIS_PASSWORD";

/// Redis shared by the proxy replicas for their MCP sessions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionRedis {
    /// `host:port` of the Redis server.
    pub address: String,
    /// Database number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub db: i64,
    /// Prefix of every key the proxy writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Environment variable holding the password; no password when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn default_host() -> String {
    "0.0.0.0".to_owned()
}

fn default_port() -> i64 {
    8080
}

fn default_proxy_mode() -> String {
    "streamable-http".to_owned()
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            mode: default_proxy_mode(),
            trust_proxy_headers: false,
            endpoint_prefix: None,
            allowed_origins: Vec::new(),
            oidc: None,
            authz: None,
            audit: None,
            telemetry: None,
            tools: ToolsConfig::default(),
            session_redis: None,
            rate_limit: None,
            token_exchange: None,
            mutating_webhooks: Vec::new(),
            validating_webhooks: Vec::new(),
        }
    }
}

/// Client authentication with OIDC/JWT.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Accept this cluster's service-account tokens; fills in the issuer and JWKS
    /// defaults of the in-cluster API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account: Option<KubernetesServiceAccount>,
    /// Expected `iss`. Required unless `kubernetes_service_account` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Expected `aud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// JWKS endpoint; discovered from the issuer when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Token introspection endpoint, for opaque tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// OAuth client ID (introspection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Environment variable holding the OAuth client secret (introspection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes advertised in the protected-resource metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `resource` advertised in the protected-resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    /// PEM CA bundle to trust for the provider, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Allow the JWKS URL to resolve to a private address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private_ip: bool,
    /// Allow `http://` provider URLs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_allow_http: bool,
}

/// Service-account token settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesServiceAccount {
    /// Only this service account's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Namespace of that service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Fetch the JWKS with the pod's own credentials and the cluster CA (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cluster_auth: Option<bool>,
}

/// Authorization backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum AuthzConfig {
    /// Cedar policies evaluated in the proxy.
    #[serde(rename = "cedarv1")]
    Cedar(CedarConfig),
    /// An external decision service.
    #[serde(rename = "httpv1")]
    Http(HttpAuthzConfig),
}

/// Cedar authorization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CedarConfig {
    /// Cedar policies, one per entry.
    pub policies: Vec<String>,
    /// Cedar entities as a JSON array.
    #[serde(default = "empty_entities")]
    pub entities_json: String,
    /// JWT claim with the caller's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_claim_name: Option<String>,
    /// JWT claim with the caller's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_claim_name: Option<String>,
    /// Cedar entity type of groups; `THVGroup` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_entity_type: Option<String>,
}

fn empty_entities() -> String {
    "[]".to_owned()
}

/// Authorization by an external HTTP decision service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HttpAuthzConfig {
    /// Decision endpoint.
    pub url: String,
    /// Request timeout, e.g. `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Send tool arguments.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_args: bool,
    /// Send the MCP operation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_operation: bool,
    /// Claim mapping name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_mapping: Option<String>,
}

/// Audit events.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Component name in events; defaults to the workload's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Only these event types; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Never these event types (wins over `event_types`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_event_types: Vec<String>,
    /// Include request bodies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_request_data: bool,
    /// Include response bodies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_response_data: bool,
    /// Largest body excerpt in an event, in bytes; 1024 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_data_size: Option<i64>,
}

/// Telemetry export.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP endpoint (`host:port` or URL); no OTLP export when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// OpenTelemetry `service.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// OpenTelemetry `service.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    /// Export traces.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracing_enabled: bool,
    /// Export metrics over OTLP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metrics_enabled: bool,
    /// Trace sampling rate 0–1, as a number or ToolHive's string form (`"0.05"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<SamplingRate>,
    /// Headers sent with each export.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Export without TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Serve Prometheus `/metrics`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prometheus_enabled: bool,
    /// Extra resource attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<String, String>,
    /// Emit ToolHive's legacy attribute names too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_legacy_attributes: bool,
    /// PEM CA bundle to trust for the collector, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

/// A sampling rate as written: a JSON number or a string (ToolHive's CRD form).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum SamplingRate {
    /// `0.05`
    Number(f64),
    /// `"0.05"`
    Text(String),
}

/// Tool filtering and renaming.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Allow-list of the server's tool names; all tools when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<String>,
    /// Renames and descriptions, keyed by the server's tool name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ToolOverride>,
}

impl ToolsConfig {
    /// No filter and no override.
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty() && self.overrides.is_empty()
    }
}

/// How one tool is presented.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// Name clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
