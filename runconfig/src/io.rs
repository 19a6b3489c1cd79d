//! Bytes in, bytes out: reading a RunConfig of any supported schema version, writing the
//! current one. No I/O of its own beyond the caller's reader.

use std::io::Read;

use serde_json::Value;

use crate::config::{AuthzConfig, RunConfig, SCHEMA_VERSION};
use crate::error::LoadError;
use crate::migrate;
use crate::path::FieldPath;

/// Every schema version [`from_json`] reads.
pub const SUPPORTED_VERSIONS: &[&str] = &[SCHEMA_VERSION, migrate::toolhive::SCHEMA_VERSION];

/// Reads a RunConfig from JSON bytes, migrating older schema versions (including
/// ToolHive's `v0.1.0`) to the current one.
pub fn from_json(bytes: &[u8]) -> Result<RunConfig, LoadError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| LoadError::Syntax {
        path: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })?;
    from_value(value)
}

/// Reads a RunConfig from a reader; see [`from_json`].
pub fn from_reader(mut reader: impl Read) -> Result<RunConfig, LoadError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    from_json(&bytes)
}

/// Reads a RunConfig from an already-parsed JSON value; see [`from_json`].
pub fn from_value(value: Value) -> Result<RunConfig, LoadError> {
    let version = match value.get("schema_version") {
        None | Some(Value::Null) => return Err(LoadError::MissingVersion),
        Some(Value::String(v)) => v.clone(),
        Some(other) => other.to_string(),
    };
    let current = match version.as_str() {
        SCHEMA_VERSION => value,
        migrate::toolhive::SCHEMA_VERSION => {
            migrate::toolhive::to_current(&value).map_err(LoadError::Migration)?
        }
        _ => {
            return Err(LoadError::UnsupportedVersion {
                found: version,
                supported: SUPPORTED_VERSIONS.join(", "),
            });
        }
    };
    serde_path_to_error::deserialize(current).map_err(|e| LoadError::Syntax {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Reads an authorization config as ToolHive's CLI takes it from `--authz-config`
/// (`{version, type: cedarv1, cedar: {policies, entities_json}}`, or `httpv1` with `http`),
/// or in this crate's own form (`{type: cedarv1, policies, …}`).
pub fn authz_from_value(value: Value) -> Result<AuthzConfig, LoadError> {
    let toolhive_form = value.get("cedar").is_some() || value.get("http").is_some();
    let current = if toolhive_form {
        let mut problems = crate::error::Violations::default();
        let current = migrate::toolhive::authz_config(&value, &FieldPath::root(), &mut problems);
        if !problems.is_empty() {
            return Err(LoadError::Migration(problems));
        }
        current
    } else {
        value
    };
    serde_path_to_error::deserialize(current).map_err(|e| LoadError::Syntax {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Writes a RunConfig in ToolHive's schema (`v0.1.0`), for ToolHive's own CLI, with the
/// paths of the settings that schema cannot carry.
pub fn to_toolhive_json(config: &RunConfig) -> (Vec<u8>, Vec<String>) {
    let (value, lost) = migrate::to_toolhive::from_current(config);
    // A JSON value with string keys only: serialising cannot fail.
    (serde_json::to_vec_pretty(&value).unwrap_or_default(), lost)
}

/// Writes a RunConfig as pretty JSON (current schema version as stored in the value).
pub fn to_json(config: &RunConfig) -> Vec<u8> {
    // Serialising these plain types cannot fail: every map key is a string.
    serde_json::to_vec_pretty(config).unwrap_or_default()
}
