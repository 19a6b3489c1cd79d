//! Reading manifests a user wrote: YAML into the typed kinds, with errors that name the
//! field that is wrong (`spec.transport: unknown variant ...`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::ApiResource;
use serde::de::DeserializeOwned;

use crate::{
    DEPRECATED_VERSION, GROUP, MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig,
    MCPRegistry, MCPRemoteProxy, MCPServer, MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig,
    VERSION,
};

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The document is not YAML, or a field has the wrong type or value.
    #[error("{path}: {message}")]
    Field {
        /// Dotted path of the offending field, e.g. `spec.proxyPort`; `.` for the document.
        path: String,
        /// What the parser found wrong.
        message: String,
    },
    /// `apiVersion`/`kind` name something this API group does not define.
    #[error("{api_version} {kind} is not a kind of {GROUP}; expected one of {}", KINDS.join(", "))]
    UnknownKind {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
}

/// The kinds [`Manifest`] reads.
pub const KINDS: &[&str] = &[
    "MCPServer",
    "MCPRegistry",
    "MCPToolConfig",
    "MCPOIDCConfig",
    "MCPAuthzConfig",
    "MCPTelemetryConfig",
    "MCPGroup",
    "MCPRemoteProxy",
    "MCPExternalAuthConfig",
    "MCPWebhookConfig",
];

/// One object of this API group, of any kind.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // read once per document; boxing buys nothing
pub enum Manifest {
    /// An MCPServer.
    MCPServer(MCPServer),
    /// An MCPRegistry.
    MCPRegistry(MCPRegistry),
    /// An MCPToolConfig.
    MCPToolConfig(MCPToolConfig),
    /// An MCPOIDCConfig.
    MCPOIDCConfig(MCPOIDCConfig),
    /// An MCPAuthzConfig.
    MCPAuthzConfig(MCPAuthzConfig),
    /// An MCPTelemetryConfig.
    MCPTelemetryConfig(MCPTelemetryConfig),
    /// An MCPGroup.
    MCPGroup(MCPGroup),
    /// An MCPRemoteProxy.
    MCPRemoteProxy(MCPRemoteProxy),
    /// An MCPExternalAuthConfig.
    MCPExternalAuthConfig(MCPExternalAuthConfig),
    /// An MCPWebhookConfig.
    MCPWebhookConfig(MCPWebhookConfig),
}

impl Manifest {
    /// Reads one YAML document; `apiVersion` must be `toolhive.stacklok.dev/v1beta1` or
    /// the deprecated `v1alpha1`.
    pub fn from_yaml(document: &str) -> Result<Self, ManifestError> {
        let value: serde_json::Value = from_yaml(document)?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default();
        let (api_version, kind) = (field("apiVersion").to_owned(), field("kind").to_owned());
        let known_version = [VERSION, DEPRECATED_VERSION]
            .iter()
            .any(|v| api_version == format!("{GROUP}/{v}"));
        if !known_version {
            return Err(ManifestError::UnknownKind { api_version, kind });
        }
        Self::from_value_of_kind(&api_version, &kind, value)
    }

    /// Reads `value` as `kind`, one of [`KINDS`] (the admission webhook knows the kind
    /// from the request, not from the object). Any other kind is an
    /// [`ManifestError::UnknownKind`] naming `api_version`.
    pub fn from_value_of_kind(
        api_version: &str,
        kind: &str,
        value: serde_json::Value,
    ) -> Result<Self, ManifestError> {
        Ok(match kind {
            "MCPServer" => Self::MCPServer(from_value(value)?),
            "MCPRegistry" => Self::MCPRegistry(from_value(value)?),
            "MCPToolConfig" => Self::MCPToolConfig(from_value(value)?),
            "MCPOIDCConfig" => Self::MCPOIDCConfig(from_value(value)?),
            "MCPAuthzConfig" => Self::MCPAuthzConfig(from_value(value)?),
            "MCPTelemetryConfig" => Self::MCPTelemetryConfig(from_value(value)?),
            "MCPGroup" => Self::MCPGroup(from_value(value)?),
            "MCPRemoteProxy" => Self::MCPRemoteProxy(from_value(value)?),
            "MCPExternalAuthConfig" => Self::MCPExternalAuthConfig(from_value(value)?),
            "MCPWebhookConfig" => Self::MCPWebhookConfig(from_value(value)?),
            _ => {
                return Err(ManifestError::UnknownKind {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                });
            }
        })
    }

    /// Reads every document of a multi-document YAML stream, skipping empty ones.
    pub fn all_from_yaml(stream: &str) -> Vec<Result<Self, ManifestError>> {
        split_documents(stream)
            .into_iter()
            .map(Self::from_yaml)
            .collect()
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::MCPServer(o) => &o.metadata,
            Self::MCPRegistry(o) => &o.metadata,
            Self::MCPToolConfig(o) => &o.metadata,
            Self::MCPOIDCConfig(o) => &o.metadata,
            Self::MCPAuthzConfig(o) => &o.metadata,
            Self::MCPTelemetryConfig(o) => &o.metadata,
            Self::MCPGroup(o) => &o.metadata,
            Self::MCPRemoteProxy(o) => &o.metadata,
            Self::MCPExternalAuthConfig(o) => &o.metadata,
            Self::MCPWebhookConfig(o) => &o.metadata,
        }
    }

    /// The object's metadata, to set its namespace or labels.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::MCPServer(o) => &mut o.metadata,
            Self::MCPRegistry(o) => &mut o.metadata,
            Self::MCPToolConfig(o) => &mut o.metadata,
            Self::MCPOIDCConfig(o) => &mut o.metadata,
            Self::MCPAuthzConfig(o) => &mut o.metadata,
            Self::MCPTelemetryConfig(o) => &mut o.metadata,
            Self::MCPGroup(o) => &mut o.metadata,
            Self::MCPRemoteProxy(o) => &mut o.metadata,
            Self::MCPExternalAuthConfig(o) => &mut o.metadata,
            Self::MCPWebhookConfig(o) => &mut o.metadata,
        }
    }

    /// Group, version, kind and plural of the object's kind, for a dynamic client.
    pub fn api_resource(&self) -> ApiResource {
        match self {
            Self::MCPServer(_) => ApiResource::erase::<MCPServer>(&()),
            Self::MCPRegistry(_) => ApiResource::erase::<MCPRegistry>(&()),
            Self::MCPToolConfig(_) => ApiResource::erase::<MCPToolConfig>(&()),
            Self::MCPOIDCConfig(_) => ApiResource::erase::<MCPOIDCConfig>(&()),
            Self::MCPAuthzConfig(_) => ApiResource::erase::<MCPAuthzConfig>(&()),
            Self::MCPTelemetryConfig(_) => ApiResource::erase::<MCPTelemetryConfig>(&()),
            Self::MCPGroup(_) => ApiResource::erase::<MCPGroup>(&()),
            Self::MCPRemoteProxy(_) => ApiResource::erase::<MCPRemoteProxy>(&()),
            Self::MCPExternalAuthConfig(_) => ApiResource::erase::<MCPExternalAuthConfig>(&()),
            Self::MCPWebhookConfig(_) => ApiResource::erase::<MCPWebhookConfig>(&()),
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Self::MCPServer(o) => serde_json::to_value(o),
            Self::MCPRegistry(o) => serde_json::to_value(o),
            Self::MCPToolConfig(o) => serde_json::to_value(o),
            Self::MCPOIDCConfig(o) => serde_json::to_value(o),
            Self::MCPAuthzConfig(o) => serde_json::to_value(o),
            Self::MCPTelemetryConfig(o) => serde_json::to_value(o),
            Self::MCPGroup(o) => serde_json::to_value(o),
            Self::MCPRemoteProxy(o) => serde_json::to_value(o),
            Self::MCPExternalAuthConfig(o) => serde_json::to_value(o),
            Self::MCPWebhookConfig(o) => serde_json::to_value(o),
        };
        // These derived types serialise to JSON objects; no map has a non-string key.
        value.unwrap_or_default()
    }

    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MCPServer(_) => "MCPServer",
            Self::MCPRegistry(_) => "MCPRegistry",
            Self::MCPToolConfig(_) => "MCPToolConfig",
            Self::MCPOIDCConfig(_) => "MCPOIDCConfig",
            Self::MCPAuthzConfig(_) => "MCPAuthzConfig",
            Self::MCPTelemetryConfig(_) => "MCPTelemetryConfig",
            Self::MCPGroup(_) => "MCPGroup",
            Self::MCPRemoteProxy(_) => "MCPRemoteProxy",
            Self::MCPExternalAuthConfig(_) => "MCPExternalAuthConfig",
            Self::MCPWebhookConfig(_) => "MCPWebhookConfig",
        }
    }
}

/// Splits a YAML stream into its non-empty documents, at `---` and `...` lines.
///
/// Written here rather than iterating `serde_yaml_ng::Deserializer::from_str`: that
/// iterator stops at the first document with a syntax error, so one broken document would
/// hide the findings of the ones after it, and its line numbers count from the top of the
/// stream. Split first, each document is read (and reported) on its own.
pub fn split_documents(stream: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in stream.split_inclusive('\n') {
        let marker = line.trim_end();
        if marker == "---" || marker == "..." || line.starts_with("--- ") {
            documents.push(&stream[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&stream[start..]);
    documents
        .into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Deserialises YAML into `T`, naming the offending field on error.
pub fn from_yaml<T: DeserializeOwned>(document: &str) -> Result<T, ManifestError> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(document);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        ManifestError::Field {
            path,
            message: strip_location(&e.into_inner().to_string()),
        }
    })
}

/// Converts a JSON value into `T`, naming the offending field on error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| ManifestError::Field {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// serde_yaml_ng appends " at line L column C"; keep it, it helps, but drop the
/// redundant field prefix some messages carry.
fn strip_location(message: &str) -> String {
    message.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::split_documents;

    #[test]
    fn documents_split_at_markers_and_empty_or_comment_only_ones_are_dropped() {
        let stream = "# a comment\n---\nkind: A\n--- # second\nkind: B\n...\n---\n# only a comment\n---\nkind: C\ndata: |\n  --- not a marker\n";
        let documents = split_documents(stream);
        assert_eq!(
            documents,
            [
                "kind: A\n",
                "kind: B\n",
                "kind: C\ndata: |\n  --- not a marker\n"
            ]
        );
    }
}
