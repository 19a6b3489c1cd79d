//! The `MCPGroup` kind: a named set of MCPServers and MCPRemoteProxies in one namespace,
//! which clients and tooling address together. Members join with `spec.groupRef`; the
//! group's status lists them.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::conditions_schema;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A group of MCPServers in this namespace. Membership is declared by each server
/// (`spec.groupRef`), not listed here.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPGroup",
    plural = "mcpgroups",
    singular = "mcpgroup",
    namespaced,
    status = "MCPGroupStatus",
    shortname = "mcpg",
    shortname = "mcpgroup",
    category = "toolhive",
    doc = "MCPGroup names a set of MCPServers of one namespace; each server joins through spec.groupRef.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Servers", type_ = "integer", json_path = ".status.serverCount"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Checked",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='MCPServersChecked')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[serde(rename_all = "camelCase")]
pub struct MCPGroupSpec {
    /// What the group is for, for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where the group stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MCPGroupPhase {
    /// Not yet checked by the operator.
    #[default]
    Pending,
    /// Its members are listed.
    Ready,
    /// Its members could not be listed.
    Failed,
}

/// The group's members, as the operator last listed them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MCPGroupStatus {
    /// `MCPServersChecked`: whether the members could be listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Pending` until the operator has listed the members, then `Ready` (or `Failed`).
    #[serde(default)]
    pub phase: MCPGroupPhase,
    /// Names of the MCPServers whose `spec.groupRef` names this group, sorted.
    // Always written: the status is a merge patch, where an omitted list would keep the
    // members that left.
    #[serde(default)]
    #[schemars(transform = crate::common::no_default)]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub servers: Vec<String>,
    /// How many MCPServers are in the group.
    #[serde(default)]
    #[schemars(transform = crate::common::no_default)]
    pub server_count: i32,
    /// Names of the MCPRemoteProxies whose `spec.groupRef` names this group, sorted.
    // Always written, as `servers`.
    #[serde(default)]
    #[schemars(transform = crate::common::no_default)]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub remote_proxies: Vec<String>,
    /// How many MCPRemoteProxies are in the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_proxy_count: Option<i32>,
    /// Names of the MCPServerEntries in the group (not served yet: always empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub entries: Vec<String>,
    /// How many MCPServerEntries are in the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_count: Option<i32>,
}
