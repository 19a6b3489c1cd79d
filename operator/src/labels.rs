//! Labels and annotations the operator sets, with ToolHive's names so users' selectors
//! and dashboards keep working.

use std::collections::BTreeMap;

/// Annotation carrying the SHA-256 of the RunConfig; on the pod template it rolls pods.
pub const RUNCONFIG_CHECKSUM: &str = "toolhive.stacklok.dev/runconfig-checksum";
/// Annotation carrying the SHA-256 of referenced Secret values; rolls pods on change.
pub const SECRETS_CHECKSUM: &str = "toolhive.stacklok.dev/secrets-checksum";

/// Labels of every object belonging to one MCPServer.
pub fn mcpserver(name: &str) -> BTreeMap<String, String> {
    [
        ("app", "mcpserver"),
        ("app.kubernetes.io/name", "mcpserver"),
        ("app.kubernetes.io/instance", name),
        ("app.kubernetes.io/managed-by", "thv-operator"),
        ("toolhive", "true"),
        ("toolhive-name", name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Labels selecting the proxy pods of one MCPServer (a stable subset of [`mcpserver`]).
pub fn proxy_selector(name: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "mcpserver"),
        ("app.kubernetes.io/instance", name),
        ("toolhive-name", name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Labels of every object belonging to one MCPRemoteProxy.
pub fn mcpremoteproxy(name: &str) -> BTreeMap<String, String> {
    [
        ("app", "mcpremoteproxy"),
        ("app.kubernetes.io/name", "mcpremoteproxy"),
        ("app.kubernetes.io/instance", name),
        ("app.kubernetes.io/managed-by", "thv-operator"),
        ("toolhive", "true"),
        ("toolhive-name", name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Labels selecting the proxy pods of one MCPRemoteProxy.
pub fn remote_proxy_selector(name: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "mcpremoteproxy"),
        ("app.kubernetes.io/instance", name),
        ("toolhive-name", name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
