//! `thv run NAME` for a server of an MCPRegistry's catalogue: the normalised document
//! the operator keeps in ConfigMap `<registry>-registry` (ToolHive's registry JSON)
//! gives its image, transport, port, arguments and environment defaults.

use anyhow::Context;
use api::MCPRegistry;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use serde::Deserialize;

use crate::cluster::Cluster;

/// The registry's output key (the operator's `REGISTRY_KEY`).
const REGISTRY_KEY: &str = "registry.json";

/// One container server of a catalogue.
#[derive(Deserialize, Clone, Debug)]
pub struct Entry {
    /// OCI image.
    pub image: String,
    /// `stdio`, `sse` or `streamable-http`.
    pub transport: String,
    /// Default arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment the server reads.
    #[serde(default)]
    pub env_vars: Vec<EnvSpec>,
    /// Port of an HTTP server.
    #[serde(default)]
    pub target_port: Option<u16>,
}

/// An environment variable a catalogue entry declares.
#[derive(Deserialize, Clone, Debug)]
pub struct EnvSpec {
    /// Its name.
    pub name: String,
    /// The server needs it.
    #[serde(default)]
    pub required: bool,
    /// Its value is a secret (pass it with `--secret`).
    #[serde(default)]
    pub secret: bool,
    /// Value used when none is given.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    servers: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Whether `source` names an image rather than a catalogue entry: a registry host, a
/// path, a tag or a digest.
pub fn is_image_reference(source: &str) -> bool {
    source.contains(['/', ':', '@'])
}

/// The entry `name` of the first MCPRegistry of the namespace that lists it, with the
/// registry's name; an error that says where it looked when none does.
pub async fn find(cluster: &Cluster, name: &str) -> anyhow::Result<(String, Entry)> {
    let registries = match cluster
        .api::<MCPRegistry>()
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(e) => return Err(e).context("listing MCPRegistries"),
    };
    let mut searched = Vec::new();
    for registry in &registries {
        let registry_name = registry.metadata.name.clone().unwrap_or_default();
        let map = cluster
            .api::<ConfigMap>()
            .get_opt(&format!("{registry_name}-registry"))
            .await?;
        let Some(json) = map
            .and_then(|m| m.data)
            .and_then(|mut d| d.remove(REGISTRY_KEY))
        else {
            continue;
        };
        searched.push(registry_name.clone());
        let document: Document = serde_json::from_str(&json)
            .with_context(|| format!("MCPRegistry {registry_name}'s catalogue is not readable"))?;
        if let Some(entry) = document.servers.get(name) {
            let entry: Entry = serde_json::from_value(entry.clone()).with_context(|| {
                format!(
                    "server {name} of MCPRegistry {registry_name} has no usable image and transport"
                )
            })?;
            return Ok((registry_name, entry));
        }
    }
    let hint = format!("to run an image, give its reference (e.g. ghcr.io/org/{name}:1.0)");
    if searched.is_empty() {
        anyhow::bail!(crate::usage(format!(
            "{name:?} is not an image reference and namespace {:?} has no synced MCPRegistry to look it up in; {hint}",
            cluster.namespace
        )))
    }
    anyhow::bail!(crate::usage(format!(
        "no server {name:?} in the MCPRegistries of namespace {:?} ({}); {hint}",
        cluster.namespace,
        searched.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_told_from_catalogue_names() {
        assert!(is_image_reference("ghcr.io/org/fetch:1"));
        assert!(is_image_reference("fetch:latest"));
        assert!(is_image_reference("org/fetch"));
        assert!(!is_image_reference("fetch"));
    }

    #[test]
    fn a_normalised_entry_reads() {
        let entry: Entry = serde_json::from_str(
            r#"{"image": "docker.io/mcp/time:latest", "description": "d", "transport": "stdio",
                "tags": ["time"], "env_vars": [{"name": "TZ", "required": true, "default": "UTC"}]}"#,
        )
        .expect("reads");
        assert_eq!(entry.env_vars[0].default.as_deref(), Some("UTC"));
        assert_eq!(entry.target_port, None);
    }
}
