//! The dereference stage of the registry controller: reading the registry document from
//! its source (a ConfigMap in the registry's namespace, a file in a git repository, or
//! an HTTP(S) URL), with a size limit and a timeout for everything that leaves the cluster.

pub mod configmap;
pub mod git;
pub mod http;

use std::time::Duration;

use api::registry::{
    DEFAULT_GIT_BRANCH, DEFAULT_REGISTRY_FILE, RegistrySource, RegistrySourceType,
};
use kube::Client;

use super::failure::SyncError;

/// Largest registry document accepted (ToolHive's own catalogue is well under 1 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// How long a git fetch or HTTP download may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A registry document and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The document.
    pub bytes: Vec<u8>,
    /// Where it came from, for status messages (`ConfigMap team-catalog key registry.json`,
    /// `git https://… branch main commit 1a2b3c4d path registry.json`).
    pub origin: String,
}

/// What reading a source needs besides the spec.
pub struct Clients<'a> {
    /// For ConfigMap sources.
    pub kube: &'a Client,
    /// For URL sources.
    pub http: &'a reqwest::Client,
}

/// Reads the document `source` points at; `namespace` is the registry's.
pub async fn fetch(
    source: &RegistrySource,
    namespace: &str,
    clients: &Clients<'_>,
) -> Result<Fetched, SyncError> {
    let missing = |field: &str| {
        SyncError::InvalidSpec(format!(
            "spec.source.{field}: missing; required when spec.source.type is {}",
            describe(source.type_)
        ))
    };
    match source.type_ {
        RegistrySourceType::Configmap => {
            let map = source
                .config_map
                .as_ref()
                .ok_or_else(|| missing("configMap"))?;
            let key = map.key.as_deref().unwrap_or(DEFAULT_REGISTRY_FILE);
            configmap::fetch(clients.kube, namespace, &map.name, key).await
        }
        RegistrySourceType::Git => {
            let git = source.git.as_ref().ok_or_else(|| missing("git"))?;
            let request = git::Request {
                url: git.url.clone(),
                branch: git
                    .branch
                    .clone()
                    .unwrap_or_else(|| DEFAULT_GIT_BRANCH.to_owned()),
                path: git
                    .path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REGISTRY_FILE.to_owned()),
            };
            git::fetch(request, FETCH_TIMEOUT).await
        }
        RegistrySourceType::Url => {
            let url = source.url.as_ref().ok_or_else(|| missing("url"))?;
            http::fetch(clients.http, &url.url, FETCH_TIMEOUT).await
        }
    }
}

/// The `spec.source.type` value.
pub fn describe(kind: RegistrySourceType) -> &'static str {
    match kind {
        RegistrySourceType::Configmap => "configmap",
        RegistrySourceType::Git => "git",
        RegistrySourceType::Url => "url",
    }
}

/// The error for a document over [`MAX_DOCUMENT_BYTES`].
fn too_large(what: impl Into<String>, size: usize) -> SyncError {
    SyncError::TooLarge {
        what: what.into(),
        size,
        limit: MAX_DOCUMENT_BYTES,
    }
}
