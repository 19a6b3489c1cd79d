//! Git sources, read with gitoxide (no git binary in the operator image):
//! - `https://…`: a shallow (depth 1) fetch of the one branch into a temporary bare
//!   repository, deleted afterwards; no checkout, the file is read from the commit's tree.
//! - `file://…` (for testing and air-gapped mirrors mounted into the pod): the repository
//!   is opened in place, read-only.
//!
//! gitoxide is blocking; it runs on the blocking pool and is interrupted on timeout.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Fetched, MAX_DOCUMENT_BYTES, too_large};
use crate::controllers::mcpregistry::failure::SyncError;

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Repository URL.
    pub url: String,
    /// Branch name.
    pub branch: String,
    /// Path of the document inside the repository.
    pub path: String,
}

/// Reads the document, giving up after `timeout`.
pub async fn fetch(request: Request, timeout: Duration) -> Result<Fetched, SyncError> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let url = request.url.clone();
    let task = tokio::task::spawn_blocking(move || fetch_blocking(&request, &flag));
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(SyncError::SourceUnreachable(format!(
            "git {url}: the fetch task failed: {join}"
        ))),
        Err(_) => {
            interrupt.store(true, Ordering::Relaxed);
            Err(SyncError::SourceUnreachable(format!(
                "git {url}: no result within {timeout:?}"
            )))
        }
    }
}

/// Reads the document on the current thread.
pub fn fetch_blocking(request: &Request, interrupt: &AtomicBool) -> Result<Fetched, SyncError> {
    let url = url::Url::parse(&request.url).map_err(|e| {
        SyncError::InvalidSpec(format!(
            "spec.source.git.url: {:?} is not a URL ({e}); an https:// repository URL (or file:// for testing)",
            request.url
        ))
    })?;
    match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|()| {
                SyncError::InvalidSpec(format!(
                    "spec.source.git.url: {:?} is not a local path; file:///absolute/path/to/repository",
                    request.url
                ))
            })?;
            read_in_place(&path, request)
        }
        "https" | "http" => {
            let scratch = tempfile::Builder::new()
                .prefix("thv-registry-")
                .tempdir()
                .map_err(|e| {
                    SyncError::SourceUnreachable(format!(
                        "git {}: creating a temporary directory: {e}",
                        request.url
                    ))
                })?;
            clone_and_read(scratch.path(), request, interrupt)
        }
        other => Err(SyncError::InvalidSpec(format!(
            "spec.source.git.url: scheme {other:?} is not supported; an https:// repository URL (or file:// for testing)"
        ))),
    }
}

/// Opens a local repository without cloning it.
fn read_in_place(path: &Path, request: &Request) -> Result<Fetched, SyncError> {
    let repo = gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
        SyncError::SourceNotFound {
            message: format!(
                "spec.source.git.url: no git repository at {}: {e}",
                path.display()
            ),
            waiting: false,
        }
    })?;
    let full = format!("refs/heads/{}", request.branch);
    let mut reference = repo
        .try_find_reference(full.as_str())
        .map_err(|e| unreachable(request, format!("reading {full}: {e}")))?
        .ok_or_else(|| branch_missing(request))?;
    let commit = reference
        .peel_to_commit()
        .map_err(|e| unreachable(request, format!("resolving {full}: {e}")))?;
    read_file(&repo, &commit, request)
}

/// A shallow fetch of the branch into `scratch`, then reads the file.
pub fn clone_and_read(
    scratch: &Path,
    request: &Request,
    interrupt: &AtomicBool,
) -> Result<Fetched, SyncError> {
    // gitoxide's https transport builds its reqwest client from the process provider.
    super::http::install_crypto_provider();
    let destination: PathBuf = scratch.join("repository.git");
    let depth = NonZeroU32::MIN;
    let mut prepare = gix::clone::PrepareFetch::new(
        request.url.as_str(),
        &destination,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        gix::open::Options::isolated(),
    )
    .map_err(|e| unreachable(request, format!("preparing the fetch: {e}")))?
    .with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth))
    .with_revision(Some(format!("refs/heads/{}", request.branch)))
    .map_err(|_| branch_missing(request))?;
    let (repo, _) = prepare
        .fetch_only(gix::progress::Discard, interrupt)
        .map_err(|e| {
            let text = e.to_string();
            match (e.is_not_found(), text.contains("requested revision")) {
                (true, true) => branch_missing(request),
                (true, false) => SyncError::SourceNotFound {
                    message: format!("spec.source.git.url: {}: {text}", request.url),
                    waiting: false,
                },
                _ => unreachable(request, text),
            }
        })?;
    let commit = repo
        .head_commit()
        .map_err(|e| unreachable(request, format!("reading the fetched commit: {e}")))?;
    read_file(&repo, &commit, request)
}

/// Reads `request.path` from the tree of `commit`.
fn read_file(
    repo: &gix::Repository,
    commit: &gix::Commit<'_>,
    request: &Request,
) -> Result<Fetched, SyncError> {
    let id = commit.id;
    let tree = commit
        .tree()
        .map_err(|e| unreachable(request, format!("reading the tree of {id}: {e}")))?;
    let not_found = |what: &str| SyncError::SourceNotFound {
        message: format!(
            "spec.source.git.path: {:?} {what} on branch {} of {} (commit {})",
            request.path,
            request.branch,
            request.url,
            short(&id.to_string())
        ),
        waiting: false,
    };
    let entry = tree
        .lookup_entry_by_path(&request.path)
        .map_err(|e| unreachable(request, format!("looking up {}: {e}", request.path)))?
        .ok_or_else(|| not_found("does not exist"))?;
    if !entry.mode().is_blob() {
        return Err(not_found("is not a file"));
    }
    let origin = format!(
        "git {} branch {} commit {} path {}",
        request.url,
        request.branch,
        short(&id.to_string()),
        request.path
    );
    let size = repo
        .find_header(entry.object_id())
        .map_err(|e| unreachable(request, format!("reading {}: {e}", request.path)))?
        .size();
    if size > MAX_DOCUMENT_BYTES as u64 {
        return Err(too_large(
            origin,
            usize::try_from(size).unwrap_or(usize::MAX),
        ));
    }
    let blob = entry
        .object()
        .map_err(|e| unreachable(request, format!("reading {}: {e}", request.path)))?;
    Ok(Fetched {
        bytes: blob.data.clone(),
        origin,
    })
}

fn unreachable(request: &Request, text: String) -> SyncError {
    SyncError::SourceUnreachable(format!("git {}: {text}", request.url))
}

fn branch_missing(request: &Request) -> SyncError {
    SyncError::SourceNotFound {
        message: format!(
            "spec.source.git.branch: branch {:?} does not exist in {}",
            request.branch, request.url
        ),
        waiting: false,
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
pub(crate) mod tests;
