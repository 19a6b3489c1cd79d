//! Git sources against repositories made with the git CLI in a temporary directory.

use std::path::Path;
use std::process::Command;

use super::*;

/// Runs git in `dir` with a fixed identity (no user configuration needed).
pub(crate) fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A repository whose `main` holds `registry.json` = `content` and a `catalog/` folder.
pub(crate) fn repository(content: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("registry.json"), content).expect("write");
    std::fs::create_dir(dir.path().join("catalog")).expect("mkdir");
    std::fs::write(dir.path().join("catalog/other.json"), "{}").expect("write");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "registry"]);
    dir
}

fn request(dir: &Path, branch: &str, path: &str) -> Request {
    Request {
        url: format!("file://{}", dir.display()),
        branch: branch.into(),
        path: path.into(),
    }
}

#[test]
fn reads_a_file_of_a_local_repository_in_place() {
    let repo = repository("{\"servers\":{}}");
    let fetched = fetch_blocking(
        &request(repo.path(), "main", "registry.json"),
        &AtomicBool::new(false),
    )
    .expect("read");
    assert_eq!(fetched.bytes, b"{\"servers\":{}}");
    assert!(
        fetched.origin.contains("branch main commit "),
        "{}",
        fetched.origin
    );
}

#[test]
fn reads_the_latest_commit_of_the_branch() {
    let repo = repository("first");
    std::fs::write(repo.path().join("registry.json"), "second").expect("write");
    git(repo.path(), &["commit", "-q", "-am", "update"]);
    let fetched = fetch_blocking(
        &request(repo.path(), "main", "registry.json"),
        &AtomicBool::new(false),
    )
    .expect("read");
    assert_eq!(fetched.bytes, b"second");
}

#[test]
fn missing_branch_path_and_directory_are_source_not_found() {
    let repo = repository("{}");
    for (branch, path, field) in [
        ("release", "registry.json", "spec.source.git.branch"),
        ("main", "nope.json", "spec.source.git.path"),
        ("main", "catalog", "spec.source.git.path"),
    ] {
        let error = fetch_blocking(&request(repo.path(), branch, path), &AtomicBool::new(false));
        match error {
            Err(e @ SyncError::SourceNotFound { .. }) => {
                assert!(e.to_string().starts_with(field), "{e}");
            }
            other => panic!("{branch}:{path}: {other:?}"),
        }
    }
}

#[test]
fn a_directory_without_a_repository_is_source_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = fetch_blocking(
        &request(dir.path(), "main", "registry.json"),
        &AtomicBool::new(false),
    );
    assert_eq!(error.map_err(|e| e.reason()), Err("SourceNotFound"));
}

#[test]
fn unsupported_schemes_are_invalid_specs() {
    let error = fetch_blocking(
        &Request {
            url: "ssh://git@example.com/org/repo.git".into(),
            branch: "main".into(),
            path: "registry.json".into(),
        },
        &AtomicBool::new(false),
    );
    assert_eq!(error.map_err(|e| e.reason()), Err("InvalidSpec"));
}

/// The https code path (shallow fetch into a scratch repository), driven over the file
/// protocol so it runs offline.
#[test]
fn shallow_fetch_reads_the_file_of_the_branch() {
    let repo = repository("{\"servers\":{}}");
    git(repo.path(), &["checkout", "-q", "-b", "release"]);
    std::fs::write(repo.path().join("registry.json"), "release").expect("write");
    git(repo.path(), &["commit", "-q", "-am", "release"]);
    let scratch = tempfile::tempdir().expect("temp dir");
    let fetched = clone_and_read(
        scratch.path(),
        &request(repo.path(), "release", "registry.json"),
        &AtomicBool::new(false),
    )
    .expect("fetch");
    assert_eq!(fetched.bytes, b"release");

    let scratch = tempfile::tempdir().expect("temp dir");
    let error = clone_and_read(
        scratch.path(),
        &request(repo.path(), "gone", "registry.json"),
        &AtomicBool::new(false),
    );
    assert!(
        matches!(&error, Err(SyncError::SourceNotFound { .. })),
        "{error:?}"
    );
}
