//! ConfigMap sources: one key of a ConfigMap in the registry's namespace. A missing
//! ConfigMap is waited for (the controller watches ConfigMaps); a missing key is not.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::{Fetched, MAX_DOCUMENT_BYTES, too_large};
use crate::controllers::mcpregistry::failure::SyncError;

/// Reads `key` of ConfigMap `name`.
pub async fn fetch(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Fetched, SyncError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = api
        .get_opt(name)
        .await
        .map_err(|e| SyncError::SourceUnreachable(format!("reading ConfigMap {name}: {e}")))?;
    let map = map.ok_or_else(|| SyncError::SourceNotFound {
        message: format!(
            "spec.source.configMap.name: ConfigMap {name} does not exist in namespace {namespace}; the registry syncs once it is created"
        ),
        waiting: true,
    })?;
    extract(&map, name, key)
}

/// The document under `key`, from `data` or (UTF-8) `binaryData`.
pub fn extract(map: &ConfigMap, name: &str, key: &str) -> Result<Fetched, SyncError> {
    let origin = format!("ConfigMap {name} key {key}");
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|t| t.as_bytes().to_vec());
    let binary = map
        .binary_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone());
    let Some(bytes) = text.or(binary) else {
        let mut keys: Vec<&str> = map
            .data
            .iter()
            .flat_map(|d| d.keys())
            .chain(map.binary_data.iter().flat_map(|d| d.keys()))
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let found = if keys.is_empty() {
            "it has no keys".to_owned()
        } else {
            format!("its keys are {}", keys.join(", "))
        };
        return Err(SyncError::SourceNotFound {
            message: format!(
                "spec.source.configMap.key: ConfigMap {name} has no key {key:?}; {found}"
            ),
            waiting: false,
        });
    };
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(origin, bytes.len()));
    }
    Ok(Fetched { bytes, origin })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn reads_the_named_key() {
        let fetched = extract(&map(&[("registry.json", "{}")]), "catalog", "registry.json");
        assert_eq!(
            fetched,
            Ok(Fetched {
                bytes: b"{}".to_vec(),
                origin: "ConfigMap catalog key registry.json".into()
            })
        );
    }

    #[test]
    fn missing_key_lists_the_keys_there_are() {
        let error = extract(
            &map(&[("a.json", "{}"), ("b.json", "{}")]),
            "catalog",
            "registry.json",
        );
        let Err(error) = error else {
            panic!("a missing key is an error")
        };
        assert!(!error.waiting());
        assert_eq!(
            error.to_string(),
            "spec.source.configMap.key: ConfigMap catalog has no key \"registry.json\"; its keys are a.json, b.json"
        );
    }
}
