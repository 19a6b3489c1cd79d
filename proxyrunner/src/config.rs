//! Loading the RunConfig: the file the operator mounts, or one given on the command line;
//! validated with `runconfig::validate` before anything binds a port.

use std::path::{Path, PathBuf};

use runconfig::ValidatedRunConfig;

/// Where the RunConfig is looked for when `--config` is not given.
pub const SEARCH_PATHS: &[&str] = &["/etc/runconfig/runconfig.json", "./runconfig.json"];

/// Why the proxy cannot start from a RunConfig.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file given and none found.
    #[error("no RunConfig found at {}; pass --config PATH", SEARCH_PATHS.join(" or "))]
    NotFound,
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a RunConfig.
    #[error("{path}: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        source: runconfig::LoadError,
    },
    /// A RunConfig with problems; every one, each with its field path.
    #[error("{path}: invalid RunConfig:\n{violations}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems.
        violations: runconfig::Violations,
    },
}

/// Reads and validates the RunConfig at `path`, or at the first search path that exists.
pub fn load(path: Option<&Path>) -> Result<(PathBuf, ValidatedRunConfig), ConfigError> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => SEARCH_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or(ConfigError::NotFound)?,
    };
    let bytes = std::fs::read(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let config = runconfig::from_json(&bytes).map_err(|source| ConfigError::Load {
        path: path.clone(),
        source,
    })?;
    let validated = runconfig::validate(&config).map_err(|violations| ConfigError::Invalid {
        path: path.clone(),
        violations,
    })?;
    Ok((path, validated))
}
