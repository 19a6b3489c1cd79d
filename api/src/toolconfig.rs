//! The `MCPToolConfig` kind: which tools an MCP server exposes, and under what names.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::ConfigStatus;

/// Tool filtering and renaming, shared by the MCPServers that reference it through
/// `spec.toolConfigRef`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPToolConfig",
    plural = "mcptoolconfigs",
    singular = "mcptoolconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "tc",
    shortname = "toolconfig",
    category = "toolhive",
    doc = "MCPToolConfig filters and renames the tools of the MCPServers that reference it.",
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
#[serde(rename_all = "camelCase")]
pub struct MCPToolConfigSpec {
    /// Allow-list of tool names, as the MCP server names them. When set, every other
    /// tool is hidden from `tools/list` and calls to it are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub tools_filter: Vec<String>,
    /// Renames and re-describes tools, keyed by the name the MCP server uses. Clients
    /// see and call the new name; the proxy maps it back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools_override: BTreeMap<String, ToolOverride>,
}

/// How one tool is presented to clients.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ToolOverride {
    /// Name clients see; must not collide with another exposed tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Overrides of the tool's MCP annotations (hints to clients; not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotationsOverride>,
}

/// Overrides of MCP tool annotations.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotationsOverride {
    /// Human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeated calls with the same arguments have no additional effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool interacts with an open world of external entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}
