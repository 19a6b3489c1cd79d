//! The build stage: the output ConfigMap `<name>-registry` holding the normalised
//! document under `registry.json`, owned by the MCPRegistry (deleted with it). Pure.

use std::collections::BTreeMap;

use api::MCPRegistry;
use api::registry::RegistryFormat;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::document::format_name;
use crate::controllers::{name_of, namespace_of, owner_reference};
use crate::error::Error;

/// Key of the normalised document in the output ConfigMap.
pub const REGISTRY_KEY: &str = "registry.json";
/// Annotation with the SHA-256 of the document (also `status.lastSyncHash`).
pub const HASH_ANNOTATION: &str = "toolhive.stacklok.dev/registry-hash";
/// Annotation with the format the source was read as.
pub const FORMAT_ANNOTATION: &str = "toolhive.stacklok.dev/registry-source-format";

/// Name of the output ConfigMap of the registry called `registry`.
pub fn output_name(registry: &str) -> String {
    format!("{registry}-registry")
}

/// Labels of the output ConfigMap; `managed-by` lets the controller watch only its own.
pub fn labels(registry: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "mcpregistry"),
        ("app.kubernetes.io/instance", registry),
        ("app.kubernetes.io/managed-by", "thv-operator"),
        ("toolhive.stacklok.dev/registry", registry),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The output ConfigMap with `document` (whose SHA-256 is `hash`).
pub fn output(
    registry: &MCPRegistry,
    document: &str,
    hash: &str,
    format: RegistryFormat,
) -> Result<ConfigMap, Error> {
    let name = name_of(registry)?;
    let namespace = namespace_of(registry)?.to_owned();
    let owner = owner_reference(registry)?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(output_name(name)),
            namespace: Some(namespace),
            labels: Some(labels(name)),
            annotations: Some(
                [
                    (HASH_ANNOTATION.to_owned(), hash.to_owned()),
                    (FORMAT_ANNOTATION.to_owned(), format_name(format).to_owned()),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some([(REGISTRY_KEY.to_owned(), document.to_owned())].into()),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpregistry::tests::registry;

    #[test]
    fn output_is_owned_labelled_and_holds_the_document() {
        let r = registry("source: {type: configmap, configMap: {name: catalog}}");
        let map = output(&r, "{}\n", "abc", RegistryFormat::Upstream).expect("built");
        assert_eq!(map.metadata.name.as_deref(), Some("team-registry"));
        assert_eq!(map.metadata.namespace.as_deref(), Some("tools"));
        let owner = &map.metadata.owner_references.unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("MCPRegistry", Some(true))
        );
        assert_eq!(
            map.data
                .unwrap_or_default()
                .get(REGISTRY_KEY)
                .map(String::as_str),
            Some("{}\n")
        );
        let annotations = map.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get(HASH_ANNOTATION).map(String::as_str),
            Some("abc")
        );
        assert_eq!(
            annotations.get(FORMAT_ANNOTATION).map(String::as_str),
            Some("upstream")
        );
        assert_eq!(
            map.metadata
                .labels
                .unwrap_or_default()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("thv-operator")
        );
    }
}
