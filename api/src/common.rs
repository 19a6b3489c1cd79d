//! Small types shared by several kinds: secret and config-map references, env vars,
//! volumes, resource requirements, and the status conditions every kind reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// Reference to one key of a Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the referencing object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret whose value is used.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Where the proxy keeps its MCP sessions, so that with more than one proxy pod any pod
/// serves any session (and a session outlives the proxy pod that created it).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.provider == 'redis' ? has(self.address) : true").message("address is required").field_path(".address"),
)]
pub struct SessionStorageConfig {
    /// `memory`: each proxy pod knows the sessions created through it (the default when
    /// unset). `redis`: the proxy pods share their sessions in Redis at `address`.
    pub provider: SessionStorageProvider,
    /// Redis address, `host:port` (required when `provider` is `redis`), e.g.
    /// `redis.toolhive-system.svc:6379`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub address: Option<String>,
    /// Redis database number.
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    pub db: i32,
    /// Prefix of every Redis key the proxy writes, to share one Redis between
    /// installations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// The Secret key holding the Redis password (given to the proxy as an environment
    /// variable, never written to its RunConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ref: Option<SecretKeyRef>,
}

/// A session storage backend.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SessionStorageProvider {
    /// In the proxy pod's memory.
    #[default]
    Memory,
    /// In Redis, shared by the proxy pods.
    Redis,
}

/// Reference to one key of a ConfigMap in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the same namespace as the referencing object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the ConfigMap. When omitted, the default named by the referencing field applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Reference to one key of a ConfigMap in the same namespace, which may be optional.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OptionalConfigMapKeyRef {
    /// Name of the ConfigMap, in the same namespace as the referencing object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the ConfigMap. When omitted, the default named by the referencing field applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When true, a missing ConfigMap or key is not an error: the referencing field
    /// then behaves as if it were unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A reference to another object of this API group by name, in the same namespace.
/// Cross-namespace references are not supported, for isolation between tenants.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An environment variable with a literal value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name of the environment variable, e.g. `LOG_LEVEL`. Letters, digits and `_`,
    /// not starting with a digit.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Literal value; empty when omitted. For sensitive values use `secrets` instead,
    /// so the value never appears in a ConfigMap.
    #[serde(default)]
    #[schemars(transform = no_default)]
    pub value: String,
}

/// A host path mounted into the MCP server container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Name of the volume; unique within the MCPServer.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Path on the node to mount. Prefer `podTemplateSpec` volumes for anything but
    /// development clusters: host paths are refused by the `restricted` Pod Security level.
    pub host_path: String,
    /// Absolute path inside the container where the volume is mounted.
    pub mount_path: String,
    /// Mount the volume read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub read_only: bool,
}

/// CPU and memory quantities, in Kubernetes quantity syntax.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceList {
    /// CPU in cores, e.g. `500m` for half a core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory in bytes, e.g. `128Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Compute resource requests and limits of one container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    /// The most the container may use; it is throttled (CPU) or killed (memory) beyond this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
    /// What the scheduler reserves for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
}

/// A CA certificate bundle read from a ConfigMap.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CABundleSource {
    /// ConfigMap holding the PEM bundle; the key defaults to `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<OptionalConfigMapKeyRef>,
}

/// Status shared by the configuration kinds (MCPToolConfig, MCPOIDCConfig,
/// MCPAuthzConfig, MCPTelemetryConfig).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// Latest observations. `Valid` tells whether the configuration passed validation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Hash of the current spec; referencing MCPServers record it to detect changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

/// Schema of a `conditions` list: metav1 Conditions, a list-type map keyed by `type`,
/// so server-side apply merges conditions by type.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    if let Some(status) = schema.pointer_mut("/items/properties/status") {
        status["enum"] = serde_json::json!(["True", "False", "Unknown"]);
    }
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// Drops the `default` schemars derives from `#[serde(default)]`, where the API server
/// should not write the default into stored objects.
pub fn no_default(schema: &mut Schema) {
    schema.remove("default");
}

/// Schema of a free-form object whose unknown fields the API server must keep
/// (embedded pod templates, backend-specific configuration).
pub fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
