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
    assert_eq!(
        error.map_err(|e| e.reason().as_str()),
        Err("SourceNotFound")
    );
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
    assert_eq!(error.map_err(|e| e.reason().as_str()), Err("InvalidSpec"));
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

/// A smart-HTTP git server on 127.0.0.1: each request is handed to `git http-backend`
/// (CGI), so the fetch goes through gitoxide's HTTP transport (reqwest) exactly as for an
/// https:// repository, without a network.
mod smart_http {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    /// Serves the repositories under `root`; returns the base URL.
    pub fn serve(root: PathBuf) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &root);
                });
            }
        });
        format!("http://{address}")
    }

    fn handle(stream: TcpStream, root: &std::path::Path) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut body = Vec::new();
        if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Ok(length) = header("content-length").parse::<usize>() {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut child = Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REQUEST_METHOD", &method)
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("GIT_PROTOCOL", header("git-protocol"))
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&body)?;
        }
        let output = child.wait_with_output()?;
        let split = output
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| {
                output
                    .stdout
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, 2))
            })
            .unwrap_or((output.stdout.len(), 0));
        let cgi_headers = String::from_utf8_lossy(&output.stdout[..split.0]).into_owned();
        let payload = &output.stdout[split.0 + split.1..];
        let mut status = "200 OK".to_owned();
        let mut response = Vec::new();
        for header in cgi_headers.lines().filter(|l| !l.is_empty()) {
            match header.strip_prefix("Status:") {
                Some(s) => status = s.trim().to_owned(),
                None => response.extend_from_slice(format!("{header}\r\n").as_bytes()),
            }
        }
        let mut stream = stream;
        stream.write_all(format!("HTTP/1.1 {status}\r\n").as_bytes())?;
        stream.write_all(&response)?;
        stream.write_all(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            )
            .as_bytes(),
        )?;
        stream.write_all(payload)?;
        stream.flush()
    }
}

#[test]
fn shallow_fetch_over_http_uses_the_reqwest_transport() {
    let repo = repository("{\"servers\":{}}");
    let base = smart_http::serve(repo.path().parent().expect("parent").to_path_buf());
    let name = repo
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let request = Request {
        url: format!("{base}/{name}/.git"),
        branch: "main".into(),
        path: "registry.json".into(),
    };
    let scratch = tempfile::tempdir().expect("temp dir");
    let fetched = clone_and_read(scratch.path(), &request, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("fetch over http: {e}"));
    assert_eq!(fetched.bytes, b"{\"servers\":{}}");

    let missing = Request {
        branch: "gone".into(),
        ..request
    };
    let scratch = tempfile::tempdir().expect("temp dir");
    let error = clone_and_read(scratch.path(), &missing, &AtomicBool::new(false));
    assert!(
        matches!(&error, Err(SyncError::SourceNotFound { .. })),
        "{error:?}"
    );
}
