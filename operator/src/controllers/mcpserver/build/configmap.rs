//! `<name>-runconfig`: the RunConfig the proxy reads, with its checksum.

use std::collections::BTreeMap;

use api::MCPServer;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Inputs, name_of, owned_meta};
use crate::controllers::mcpserver::dereference::hash;
use crate::controllers::mcpserver::validate::ValidRunConfig;
use crate::error::Error;
use crate::labels::RUNCONFIG_CHECKSUM;

/// Key of the RunConfig in the ConfigMap.
pub const RUNCONFIG_KEY: &str = "runconfig.json";

/// `<name>-runconfig`.
pub fn runconfig_name(name: &str) -> String {
    format!("{name}-runconfig")
}

/// The RunConfig as the proxy reads it: its JSON text and that text's checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedRunConfig {
    /// The RunConfig JSON.
    pub json: String,
    /// SHA-256 of `json` (as a JSON string), rolling the proxy pods when it changes.
    pub checksum: String,
}

/// Serialises a validated RunConfig.
pub fn render(runconfig: &ValidRunConfig) -> RenderedRunConfig {
    let json = String::from_utf8_lossy(&runconfig::to_json(runconfig.config())).into_owned();
    let checksum = hash(&json).unwrap_or_default();
    RenderedRunConfig { json, checksum }
}

/// The ConfigMap holding the RunConfig. It never holds secret values: the RunConfig
/// carries only references to them.
pub fn runconfig_map(server: &MCPServer, inputs: &Inputs<'_>) -> Result<ConfigMap, Error> {
    Ok(runconfig_map_with(
        owned_meta(server, runconfig_name(name_of(server)?))?,
        inputs,
    ))
}

/// The RunConfig ConfigMap with `metadata` (any kind's).
pub(crate) fn runconfig_map_with(mut metadata: ObjectMeta, inputs: &Inputs<'_>) -> ConfigMap {
    metadata.annotations = Some(BTreeMap::from([(
        RUNCONFIG_CHECKSUM.to_owned(),
        inputs.runconfig.checksum.clone(),
    )]));
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            RUNCONFIG_KEY.to_owned(),
            inputs.runconfig.json.clone(),
        )])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OperatorConfig;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, inputs, server};

    #[test]
    fn holds_the_runconfig_and_its_checksum() {
        let config = OperatorConfig::default();
        let map = runconfig_map(&server(MINIMAL), &inputs(&config)).expect("builds");
        assert_eq!(map.metadata.name.as_deref(), Some("fetch-runconfig"));
        assert_eq!(
            map.data.unwrap_or_default()[RUNCONFIG_KEY],
            "{\"schema_version\":\"v1\"}"
        );
        assert_eq!(
            map.metadata.annotations.unwrap_or_default()[RUNCONFIG_CHECKSUM],
            "abc123"
        );
    }
}
