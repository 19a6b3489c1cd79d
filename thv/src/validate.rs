//! `thv validate`: runs the admission checks (`admission::check_manifest`, the code behind the
//! operator's webhook) on manifest files, without a cluster, so a bad configuration is
//! caught before a GitOps push rather than by `kubectl apply`.
//!
//! References resolve among all the given files, by namespace and name; ConfigMaps in
//! them provide authorization, permission-profile and registry data. Other kinds are
//! read for that and otherwise skipped.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use admission::{Finding, InMemoryCatalog, check_manifest, unknown_fields};
use anyhow::{Context, bail};
use api::Manifest;
use runconfig::Reason;
use serde::Serialize;
use serde_json::Value;

/// Arguments of `thv validate`, named as kubectl names them.
#[derive(clap::Args)]
pub struct Args {
    /// A manifest file, a directory of them (its *.yaml, *.yml and *.json files), or `-`
    /// for standard input. Repeat to check several together.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    files: Vec<PathBuf>,
    /// Also read the subdirectories of directories.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Output format: `text` (one line per finding) or `json` (an array).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Namespace of documents that set none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// One finding, as `-o json` prints it.
#[derive(Serialize)]
struct Record {
    /// Position of the document among all documents read, for ordering.
    #[serde(skip)]
    at: usize,
    file: String,
    document: usize,
    kind: Option<String>,
    name: Option<String>,
    path: String,
    message: String,
    reason: Reason,
    severity: Severity,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Error,
    Warning,
}

/// A document of our API group, waiting for the catalog to be complete.
struct Object {
    at: usize,
    manifest: Manifest,
    api_version: String,
    namespace: String,
    raw: Value,
}

/// Where a document came from, and what it is.
struct Source {
    file: String,
    document: usize,
    kind: Option<String>,
    name: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut run = Run::default();
    for file in files(args)? {
        let (label, text) = read(&file)?;
        for (i, document) in api::manifest::split_documents(&text)
            .into_iter()
            .enumerate()
        {
            run.read(&label, i + 1, document, &args.namespace);
        }
    }
    run.check();
    // Report in file order, whatever phase found the problem.
    let mut records = run.records;
    records.sort_by_key(|r| (r.at, r.severity == Severity::Warning));
    print(&records, args.output, run.sources.len())?;
    let failed = records.iter().any(|r| r.severity == Severity::Error);
    Ok(ExitCode::from(u8::from(failed)))
}

/// Everything read so far: where each document came from, the findings, our objects and,
/// per namespace, the catalog their references resolve in.
#[derive(Default)]
struct Run {
    sources: Vec<Source>,
    records: Vec<Record>,
    objects: Vec<Object>,
    catalogs: BTreeMap<String, InMemoryCatalog>,
    /// (namespace, kind, name) → the document that defined it first.
    defined: BTreeMap<(String, &'static str, String), usize>,
}

impl Run {
    /// Reads one document: ours are kept for checking, ConfigMaps feed the catalog,
    /// anything else is skipped.
    fn read(&mut self, file: &str, document: usize, text: &str, default_namespace: &str) {
        let at = self.sources.len();
        let raw = api::manifest::from_yaml::<Value>(text);
        let field = |name: &str| {
            let value = raw.as_ref().ok()?;
            match name {
                "name" | "namespace" => value.get("metadata")?.get(name)?.as_str(),
                _ => value.get(name)?.as_str(),
            }
            .map(str::to_owned)
        };
        let (kind, name) = (field("kind"), field("name"));
        let namespace = field("namespace").unwrap_or_else(|| default_namespace.to_owned());
        let api_version = field("apiVersion").unwrap_or_default();
        self.sources.push(Source {
            file: file.to_owned(),
            document,
            kind: kind.clone(),
            name: name.clone(),
        });
        let raw = match raw {
            Ok(raw) if raw.is_object() => raw,
            Ok(_) => {
                let finding = Finding::new(
                    ".",
                    Reason::InvalidFormat,
                    "the document is not an object",
                    "a Kubernetes object with apiVersion, kind and metadata",
                );
                return self.report(at, finding, Severity::Error);
            }
            Err(e) => return self.report(at, Finding::from(e), Severity::Error),
        };
        if api_version.starts_with(&format!("{}/", api::GROUP)) {
            match Manifest::from_yaml(text) {
                Ok(manifest) => self.add(Object {
                    at,
                    manifest,
                    api_version,
                    namespace,
                    raw,
                }),
                Err(e) => self.report(at, Finding::from(e), Severity::Error),
            }
        } else if api_version == "v1" && kind.as_deref() == Some("ConfigMap") {
            let data = raw
                .get("data")
                .cloned()
                .and_then(|d| serde_json::from_value(d).ok())
                .unwrap_or_default();
            self.catalogs
                .entry(namespace)
                .or_default()
                .add_config_map(&name.unwrap_or_default(), data);
        }
    }

    /// Adds an object of ours to its namespace's catalog; a second definition of the same
    /// object is a warning (the later one wins, as when both are applied).
    fn add(&mut self, object: Object) {
        let kind = object.manifest.kind();
        let name = self.sources[object.at].name.clone().unwrap_or_default();
        let identity = (object.namespace.clone(), kind, name.clone());
        if let Some(first) = self.defined.insert(identity, object.at) {
            let first = &self.sources[first];
            let finding = Finding::new(
                "metadata.name",
                Reason::Duplicate,
                format!(
                    "{kind} {name} is also defined at {}:{}",
                    first.file, first.document
                ),
                "one definition per namespace, kind and name; the later one wins when applied",
            );
            self.report(object.at, finding, Severity::Warning);
        }
        self.catalogs
            .entry(object.namespace.clone())
            .or_default()
            .add(object.manifest.clone());
        self.objects.push(object);
    }

    /// Checks every object of ours against the catalog of its namespace.
    fn check(&mut self) {
        let empty = InMemoryCatalog::default();
        let mut found = Vec::new();
        for object in &self.objects {
            let catalog = self.catalogs.get(&object.namespace).unwrap_or(&empty);
            let report = check_manifest(&object.manifest, &object.api_version, catalog);
            for finding in unknown_fields(&object.raw).into_iter().chain(report.errors) {
                found.push((object.at, finding, Severity::Error));
            }
            for finding in report.warnings {
                found.push((object.at, finding, Severity::Warning));
            }
        }
        for (at, finding, severity) in found {
            self.report(at, finding, severity);
        }
    }

    fn report(&mut self, at: usize, finding: Finding, severity: Severity) {
        let source = &self.sources[at];
        self.records.push(Record {
            at,
            file: source.file.clone(),
            document: source.document,
            kind: source.kind.clone(),
            name: source.name.clone(),
            path: finding.path,
            message: finding.message,
            reason: finding.reason,
            severity,
        });
    }
}

/// The files to read: each file argument as given, each directory's manifest files
/// (sorted; subdirectories too with `-R`).
fn files(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in &args.files {
        if path.as_os_str() == "-" || !path.is_dir() {
            found.push(path.clone());
        } else {
            directory(path, args.recursive, &mut found)?;
        }
    }
    Ok(found)
}

fn directory(dir: &Path, recursive: bool, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                directory(&entry, recursive, found)?;
            }
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            found.push(entry);
        }
    }
    Ok(())
}

/// The file's label for output, and its text.
fn read(path: &Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(("<stdin>".to_owned(), text));
    }
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

fn print(records: &[Record], format: Format, documents: usize) -> anyhow::Result<()> {
    let mut out = String::new();
    match format {
        Format::Json => {
            out = serde_json::to_string_pretty(records)?;
            out.push('\n');
        }
        Format::Text => {
            for r in records {
                let severity = if r.severity == Severity::Warning {
                    "warning: "
                } else {
                    ""
                };
                out.push_str(&format!(
                    "{}:{}: {severity}{}: {}\n",
                    r.file, r.document, r.path, r.message
                ));
            }
        }
    }
    match io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the report");
        }
        _ => {}
    }
    let count = |severity| records.iter().filter(|r| r.severity == severity).count();
    eprintln!(
        "thv validate: {} error(s), {} warning(s) in {documents} document(s)",
        count(Severity::Error),
        count(Severity::Warning)
    );
    Ok(())
}
