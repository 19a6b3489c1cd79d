//! The images `make images` builds (scripts/images.sh, no container engine) are the
//! images the Dockerfile describes: same entrypoint, user, working directory,
//! environment, ports and labels; minimal (no shell), non-root, tagged with the crate
//! version. Reads the archives in target/images (`make e2e` builds them first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

const IMAGES: &[(&str, &str)] = &[
    ("operator", "thv-operator"),
    ("proxyrunner", "thv-proxyrunner"),
    ("mcp-fixture", "mcp-fixture"),
];

fn archive(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("THV_E2E_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e::repo_root().join("target/images"));
    let path = dir.join(format!("{name}.tar"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `make images` (or `make images-test`)",
        path.display()
    );
    Ok(path)
}

/// One member of a tar archive, read with the system's tar.
fn tar_member(archive: &Path, member: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tar -xOf {} {member}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

struct Image {
    tags: Vec<String>,
    config: Value,
    /// `tar -tvz` lines of the single layer.
    files: Vec<String>,
}

fn read_image(name: &str) -> anyhow::Result<Image> {
    let path = archive(name)?;
    let manifest: Value = serde_json::from_slice(&tar_member(&path, "manifest.json")?)?;
    let entry = &manifest[0];
    let config: Value = serde_json::from_slice(&tar_member(
        &path,
        entry["Config"].as_str().context("manifest has no Config")?,
    )?)?;
    let layers = entry["Layers"]
        .as_array()
        .context("manifest has no Layers")?;
    anyhow::ensure!(layers.len() == 1, "{name}: one layer, got {}", layers.len());
    let layer = tar_member(&path, layers[0].as_str().context("layer name")?)?;
    let mut list = Command::new("tar")
        .args(["-tvz", "--numeric-owner"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = list.stdin.take().context("tar stdin")?;
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &layer));
    let out = list.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    anyhow::ensure!(out.status.success(), "{name}: layer is not a gzip tar");
    Ok(Image {
        tags: entry["RepoTags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        config,
        files: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    })
}

/// What a Dockerfile stage declares, in image-config terms.
#[derive(Debug, Default, PartialEq)]
struct Declared {
    entrypoint: Vec<String>,
    user: String,
    workdir: String,
    env: Vec<String>,
    ports: Vec<String>,
    labels: BTreeMap<String, String>,
}

/// Parses the instructions of `FROM scratch AS <stage>` (continuation lines joined),
/// with `${VERSION}` and `${REVISION}` replaced by the given values.
fn dockerfile_stage(stage: &str, version: &str, revision: &str) -> anyhow::Result<Declared> {
    let text = std::fs::read_to_string(e2e::repo_root().join("Dockerfile"))?;
    let joined = text.replace("\\\n", " ");
    let mut lines = joined.lines().map(str::trim);
    lines
        .by_ref()
        .find(|l| *l == format!("FROM scratch AS {stage}"))
        .with_context(|| format!("Dockerfile has no stage `FROM scratch AS {stage}`"))?;
    let mut d = Declared::default();
    for line in lines.take_while(|l| !l.starts_with("FROM ")) {
        let line = line
            .replace("${VERSION}", version)
            .replace("${REVISION}", revision);
        let Some((instruction, rest)) = line.split_once(' ') else {
            continue;
        };
        match instruction {
            "ENTRYPOINT" => d.entrypoint = serde_json::from_str(rest)?,
            "USER" => d.user = rest.to_owned(),
            "WORKDIR" => d.workdir = rest.to_owned(),
            "ENV" => d.env = rest.split_whitespace().map(str::to_owned).collect(),
            "EXPOSE" => d.ports = rest.split_whitespace().map(str::to_owned).collect(),
            "LABEL" => d.labels = labels(rest),
            _ => {}
        }
    }
    d.ports.sort();
    Ok(d)
}

/// `key="value" key2="value 2"` pairs of a LABEL instruction.
fn labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while let Some((key, after)) = rest.trim_start().split_once("=\"") {
        let Some((value, tail)) = after.split_once('"') else {
            break;
        };
        out.insert(key.trim().to_owned(), value.to_owned());
        rest = tail;
    }
    out
}

fn built(config: &Value) -> Declared {
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut ports: Vec<String> = c["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ports.sort();
    Declared {
        entrypoint: strings(&c["Entrypoint"]),
        user: c["User"].as_str().unwrap_or_default().to_owned(),
        workdir: c["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        env: strings(&c["Env"]),
        ports,
        labels: c["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[test]
fn make_images_builds_what_the_dockerfile_describes() -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    for (name, binary) in IMAGES {
        let image = read_image(name)?;
        let built = built(&image.config);
        let revision = built
            .labels
            .get("org.opencontainers.image.revision")
            .cloned()
            .unwrap_or_default();
        let declared = dockerfile_stage(name, version, &revision)?;
        assert_eq!(built, declared, "{name}: make images vs the Dockerfile");
        assert_eq!(
            image.tags,
            [format!("ghcr.io/stacklok/toolhive-rs/{name}:{version}")],
            "{name}: tagged with the crate version"
        );
        assert_eq!(built.entrypoint, [format!("/usr/local/bin/{binary}")]);
        assert_eq!(image.config["architecture"], "amd64");
    }
    Ok(())
}

#[test]
fn images_are_minimal_and_run_as_nonroot() -> anyhow::Result<()> {
    for (name, binary) in IMAGES {
        let image = read_image(name)?;
        assert_eq!(built(&image.config).user, "65532:65532", "{name}");
        let path_of = |line: &String| {
            line.split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned()
        };
        let paths: Vec<String> = image.files.iter().map(path_of).collect();
        assert!(
            paths.contains(&format!("usr/local/bin/{binary}")),
            "{name}: {paths:?}"
        );
        for shell in ["bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"] {
            assert!(!paths.iter().any(|p| p == shell), "{name} contains {shell}");
        }
        for line in &image.files {
            assert!(
                line.split_whitespace().nth(1) == Some("0/0"),
                "{name}: every file is owned by root: {line}"
            );
        }
        assert!(
            paths.iter().any(|p| p == "etc/passwd"),
            "{name}: /etc/passwd names the nonroot user"
        );
    }
    Ok(())
}
