//! The `MCPRegistry` kind: a catalogue of MCP servers synced from a ConfigMap, git or a URL.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::conditions_schema;

/// Default key (ConfigMap) or path (git) of the registry document.
pub const DEFAULT_REGISTRY_FILE: &str = "registry.json";
/// Default git branch.
pub const DEFAULT_GIT_BRANCH: &str = "main";

/// A registry of MCP servers. The operator fetches the registry document from its
/// source, validates it, and writes the normalised result to the ConfigMap
/// `<name>-registry`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPRegistry",
    plural = "mcpregistries",
    singular = "mcpregistry",
    namespaced,
    status = "MCPRegistryStatus",
    shortname = "mcpreg",
    category = "toolhive",
    doc = "MCPRegistry syncs a catalogue of MCP servers from a ConfigMap, a git repository or a URL into the ConfigMap <name>-registry.",
    derive = "PartialEq",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Synced')].status"
    ),
    printcolumn(name = "Servers", type_ = "integer", json_path = ".status.serverCount"),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[serde(rename_all = "camelCase")]
pub struct MCPRegistrySpec {
    /// Human-readable name shown by tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Where the registry document comes from.
    pub source: RegistrySource,
    /// When to sync. Without it, the registry syncs once and again on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    /// Keep only some servers of the document, by name and tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RegistryFilter>,
}

/// Where a registry document comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("self.type == 'configmap' ? has(self.configMap) : !has(self.configMap)").message("configMap must be set when type is 'configmap', and must not be set otherwise"),
    validation = Rule::new("self.type == 'git' ? has(self.git) : !has(self.git)").message("git must be set when type is 'git', and must not be set otherwise"),
    validation = Rule::new("self.type == 'url' ? has(self.url) : !has(self.url)").message("url must be set when type is 'url', and must not be set otherwise"),
)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySource {
    /// `configmap`, `git` or `url`.
    #[serde(rename = "type")]
    pub type_: RegistrySourceType,
    /// Document format; detected from the content when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<RegistryFormat>,
    /// A ConfigMap in the same namespace; the key defaults to `registry.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<crate::common::ConfigMapKeyRef>,
    /// A file in a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// A document served over HTTP(S).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlSource>,
}

/// Kind of registry source.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrySourceType {
    /// A ConfigMap in the same namespace.
    Configmap,
    /// A file in a git repository.
    Git,
    /// A document served over HTTP(S).
    Url,
}

/// Registry document format.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistryFormat {
    /// ToolHive's registry JSON (`servers` keyed by name).
    Toolhive,
    /// The upstream MCP registry format (a list of `server.json` entries).
    Upstream,
}

/// A file in a git repository.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Repository URL: `https://…` or, for testing, `file://…`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Branch to read; defaults to `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Path of the document inside the repository; defaults to `registry.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A document served over HTTP(S).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    /// URL of the registry document.
    #[schemars(length(min = 1))]
    pub url: String,
}

/// When a registry syncs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Sync periodically, every `interval`. When false, only spec changes trigger a sync.
    #[serde(default = "default_true")]
    pub automatic: bool,
    /// Time between syncs as a Go-style duration, e.g. `30m` or `1h`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub interval: String,
}

fn default_true() -> bool {
    true
}

/// Which servers of a registry document are kept.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryFilter {
    /// Filter by server name (glob patterns such as `github-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<IncludeExclude>,
    /// Filter by tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<IncludeExclude>,
}

/// An include and an exclude list; exclude wins.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IncludeExclude {
    /// Keep only entries matching one of these; everything when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub include: Vec<String>,
    /// Drop entries matching one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub exclude: Vec<String>,
}

/// Observed state of an MCPRegistry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MCPRegistryStatus {
    /// Latest observations; `Synced` tells whether the last sync succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase, for humans; tools should read the `Synced` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MCPRegistryPhase>,
    /// What the phase means right now, e.g. why the last sync failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Number of servers in the synced (filtered) registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub server_count: Option<i32>,
    /// When the registry data last changed or was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// SHA-256 of the last synced document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_hash: Option<String>,
}

/// Lifecycle phase of an MCPRegistry.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MCPRegistryPhase {
    /// Not synced yet.
    Pending,
    /// A sync is running.
    Syncing,
    /// Synced.
    Ready,
    /// The last sync failed; the previous data is kept.
    Failed,
    /// Being deleted.
    Terminating,
}
