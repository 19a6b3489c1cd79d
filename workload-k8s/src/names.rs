//! Names, labels and annotations of the built objects, with ToolHive's spellings, and the
//! Kubernetes name rules they must satisfy.

use std::collections::BTreeMap;

/// The MCP server's container; the proxy attaches to it (stdio) and patches match it.
pub const CONTAINER: &str = "mcp";
/// Pod-template annotation: checksum of the rest of the template.
pub const CHECKSUM_ANNOTATION: &str = "toolhive.stacklok.dev/pod-template-checksum";
/// Pod-template annotation: checksum of the referenced Secrets' values.
pub const SECRETS_CHECKSUM_ANNOTATION: &str = "toolhive.stacklok.dev/secrets-checksum";
/// Environment variable of the proxy runner carrying that checksum from the operator.
pub const SECRETS_CHECKSUM_ENV: &str = "THV_SECRETS_CHECKSUM";
/// MCPServer and pod-template annotation: ToolHive's restart trigger (an RFC 3339 time).
pub const RESTARTED_AT_ANNOTATION: &str = "mcpserver.toolhive.stacklok.dev/restarted-at";
/// Environment variable of the proxy runner carrying that time from the operator.
pub const RESTARTED_AT_ENV: &str = "THV_RESTARTED_AT";
/// StatefulSet annotation: the MCPServer generation it was built from.
pub const GENERATION_ANNOTATION: &str = "toolhive.stacklok.dev/mcpserver-generation";
/// Longest server name whose StatefulSet can create pods: they carry the label
/// `controller-revision-hash: <name>-<10 characters>`, and label values stop at 63.
pub const MAX_NAME: usize = 52;
/// Longest name of an HTTP server: `mcp-<name>-headless` must be a 63-character label.
pub const MAX_HTTP_NAME: usize = 63 - "mcp--headless".len();

/// `mcp-<name>-headless`, ToolHive's name for the server's headless Service.
pub fn headless_service_name(name: &str) -> String {
    format!("mcp-{name}-headless")
}

/// What the StatefulSet and the Services select: `app: <name>`.
pub fn selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), name.to_owned())])
}

/// Labels every server pod and object carries, over any the user sets: ToolHive's
/// operator finds the StatefulSet by `toolhive=true` and maps it back by `toolhive-name`.
pub fn required_labels(name: &str) -> BTreeMap<String, String> {
    let mut labels = selector(name);
    labels.insert("toolhive".to_owned(), "true".to_owned());
    labels.insert("toolhive-name".to_owned(), name.to_owned());
    labels
}

/// RFC 1123 label: lowercase alphanumerics and '-', at most 63.
pub(crate) fn is_dns_label(name: &str) -> bool {
    runconfig::validate::is_dns_label(name)
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 (Secret and ServiceAccount names).
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63: a label value (non-empty) or
/// the name part of a label key.
fn is_qualified_part(text: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.len() <= 63
        && edge(text.chars().next())
        && edge(text.chars().last())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A label key: `[prefix/]name`, prefix a DNS subdomain.
pub(crate) fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_part(name),
        None => is_qualified_part(key),
    }
}

/// A label value: empty, or a qualified name part.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_part(value)
}

/// A key inside a Secret or ConfigMap: `[-._a-zA-Z0-9]+`, at most 253.
pub(crate) fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// An environment variable name as the API server accepts it since 1.34: printable
/// ASCII without '='.
pub(crate) fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_name_leaves_room_for_the_longest_http_name() {
        assert_eq!(MAX_HTTP_NAME, 50);
        assert_eq!(headless_service_name(&"a".repeat(MAX_HTTP_NAME)).len(), 63);
    }

    #[test]
    fn label_keys_and_values_follow_the_api_rules() {
        assert!(is_label_key("app.kubernetes.io/part-of"));
        assert!(is_label_key("team"));
        assert!(!is_label_key("Team/x"));
        assert!(!is_label_key("-x"));
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_3"));
        assert!(!is_label_value("a b"));
    }
}
