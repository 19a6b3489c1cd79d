//! Labels and annotations the operator sets, with ToolHive's names so users' selectors
//! and dashboards keep working.

use std::collections::BTreeMap;

/// Annotation carrying the SHA-256 of the RunConfig; on the pod template it rolls pods.
pub const RUNCONFIG_CHECKSUM: &str = "toolhive.stacklok.dev/runconfig-checksum";
/// Annotation carrying the SHA-256 of referenced Secret values; rolls pods on change.
pub const SECRETS_CHECKSUM: &str = "toolhive.stacklok.dev/secrets-checksum";

/// Labels the operator's watches find the objects of one kind's controller by
/// ([`proxied_selector`]): a user's `resourceOverrides` never replace them ([`overlay`]).
const OWNERSHIP: [&str; 2] = ["app.kubernetes.io/managed-by", "app.kubernetes.io/name"];

/// A kind whose controller owns proxy objects, and the `app.kubernetes.io/name` they carry.
pub trait Owner {
    /// The `app.kubernetes.io/name` of every object this kind's controller applies.
    const APP_NAME: &'static str;
}

impl Owner for api::MCPServer {
    const APP_NAME: &'static str = "mcpserver";
}

impl Owner for api::MCPRemoteProxy {
    const APP_NAME: &'static str = "mcpremoteproxy";
}

/// The label selector of every object no controller of this operator applies: the
/// watches of what users reference (ConfigMaps, Secrets, the config kinds) leave the
/// operator's own objects out, one RunConfig ConfigMap per MCPServer above all, so the
/// API server sends none of their events to be matched against every server.
pub const NOT_APPLIED: &str = "app.kubernetes.io/managed-by!=thv-operator";

/// The label selector of the objects the controllers of every [`Owner`] kind apply,
/// for the watches they share (`controllers::feeds`); each controller's mapper keeps
/// the objects its own kind owns.
pub fn proxied_selector() -> String {
    format!(
        "app.kubernetes.io/managed-by=thv-operator,app.kubernetes.io/name in ({},{})",
        <api::MCPServer as Owner>::APP_NAME,
        <api::MCPRemoteProxy as Owner>::APP_NAME
    )
}

/// Lays a user's labels over the operator's, keeping the ownership labels.
pub fn overlay(ours: &mut BTreeMap<String, String>, theirs: &BTreeMap<String, String>) {
    ours.extend(
        theirs
            .iter()
            .filter(|(key, _)| !OWNERSHIP.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone())),
    );
}

/// Labels of every object belonging to one MCPServer.
pub fn mcpserver(name: &str) -> BTreeMap<String, String> {
    [
        ("app", "mcpserver"),
        (
            "app.kubernetes.io/name",
            <api::MCPServer as Owner>::APP_NAME,
        ),
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
        (
            "app.kubernetes.io/name",
            <api::MCPRemoteProxy as Owner>::APP_NAME,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_labels_join_but_never_hide_an_object_from_its_controllers_watch() {
        let mut ours = mcpserver("fetch");
        let theirs = BTreeMap::from([
            ("team".to_owned(), "search".to_owned()),
            ("app".to_owned(), "fetcher".to_owned()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "argocd".to_owned(),
            ),
            ("app.kubernetes.io/name".to_owned(), "fetcher".to_owned()),
        ]);
        overlay(&mut ours, &theirs);
        assert_eq!(ours["team"], "search");
        assert_eq!(ours["app"], "fetcher");
        assert_eq!(ours["app.kubernetes.io/managed-by"], "thv-operator");
        assert_eq!(ours["app.kubernetes.io/name"], "mcpserver");
        // What the watch selects by is what every owned object of both kinds carries.
        assert_eq!(
            proxied_selector(),
            "app.kubernetes.io/managed-by=thv-operator,\
             app.kubernetes.io/name in (mcpserver,mcpremoteproxy)"
        );
        for labels in [ours, mcpremoteproxy("fetch")] {
            assert_eq!(labels["app.kubernetes.io/managed-by"], "thv-operator");
            assert!(["mcpserver", "mcpremoteproxy"].contains(&&*labels["app.kubernetes.io/name"]));
        }
    }
}
