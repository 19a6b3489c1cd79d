//! MCPRegistry admission: the CRD rules, then what the sync needs: a source it can fetch
//! (`https://` or `file://` git repositories, http(s) documents, a ConfigMap), a sync
//! interval it can honour, and filter patterns that match something.

use std::time::Duration;

use api::MCPRegistry;
use api::registry::{DEFAULT_REGISTRY_FILE, IncludeExclude, RegistrySourceType};
use url::Url;

use super::{Catalog, Finding, Report, schema};
use runconfig::error::Reason;
use runconfig::path::FieldPath;

/// Shortest sync interval: more often would hammer git hosts and registries for a
/// catalogue that changes a few times a day.
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// Longest sync interval (7 days): a longer one means a catalogue nobody keeps fresh; use
/// `automatic: false` and sync on spec changes instead.
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

pub(super) fn check(registry: &MCPRegistry, catalog: &dyn Catalog, report: &mut Report) {
    let spec = &registry.spec;
    let source = FieldPath::parse("spec.source");
    match spec.source.type_ {
        RegistrySourceType::Git => {
            if let Some(git) = &spec.source.git {
                git_url(&git.url, &source.key("git").key("url"), report);
                if let Some(path) = &git.path {
                    repository_path(path, &source.key("git").key("path"), report);
                }
            }
        }
        RegistrySourceType::Url => {
            if let Some(url) = &spec.source.url {
                document_url(&url.url, &source.key("url").key("url"), report);
            }
        }
        RegistrySourceType::Configmap => {
            if let Some(map) = &spec.source.config_map {
                if registry
                    .metadata
                    .name
                    .as_ref()
                    .is_some_and(|name| map.name == output_name(name))
                {
                    report.error(Finding::new(
                        "spec.source.configMap.name",
                        Reason::Conflict,
                        format!(
                            "{} is the ConfigMap this registry writes its normalised output to",
                            map.name
                        ),
                        "store the source document in a ConfigMap with another name",
                    ));
                }
                let key = map.key.as_deref().unwrap_or(DEFAULT_REGISTRY_FILE);
                if catalog.config_map_data(&map.name, key).is_none() {
                    report.warn(Finding::new(
                        "spec.source.configMap",
                        Reason::UnknownReference,
                        format!("ConfigMap {} (key {key}) does not exist yet", map.name),
                        "the operator reports it in the MCPRegistry's status and syncs once it exists",
                    ));
                }
            }
        }
    }
    if let Some(policy) = &spec.sync_policy {
        interval(&policy.interval, report);
    }
    if let Some(filter) = &spec.filter {
        let base = FieldPath::parse("spec.filter");
        for (key, lists) in [("names", &filter.names), ("tags", &filter.tags)] {
            if let Some(lists) = lists {
                patterns(lists, &base.key(key), report);
            }
        }
    }
    match serde_json::to_value(registry) {
        Ok(object) => report.schema(schema::findings("MCPRegistry", &object)),
        Err(e) => report.error(Finding::new(
            ".",
            Reason::InvalidFormat,
            e,
            "an MCPRegistry",
        )),
    }
}

/// The ConfigMap a registry writes its normalised catalogue to: `<name>-registry`.
pub fn output_name(registry: &str) -> String {
    format!("{registry}-registry")
}

fn git_url(text: &str, path: &FieldPath, report: &mut Report) {
    let allowed = "an https:// repository URL (or file:// for testing)";
    if let Some(url) = source_url(text, path, allowed, report)
        && !matches!(url.scheme(), "https" | "file")
    {
        unsupported_scheme(&url, "git", path, allowed, report);
    }
}

/// Parses a source URL, reporting one that does not parse.
fn source_url(text: &str, path: &FieldPath, allowed: &str, report: &mut Report) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) => Some(url),
        Err(e) => {
            report.error(Finding::new(
                path,
                Reason::InvalidFormat,
                format!("{text:?} is not a URL: {e}"),
                allowed,
            ));
            None
        }
    }
}

fn unsupported_scheme(
    url: &Url,
    source: &str,
    path: &FieldPath,
    allowed: &str,
    report: &mut Report,
) {
    report.error(Finding::new(
        path,
        Reason::NotSupported,
        format!(
            "scheme {:?} is not supported for {source} sources",
            url.scheme()
        ),
        allowed,
    ));
}

fn repository_path(text: &str, path: &FieldPath, report: &mut Report) {
    let escapes = text.starts_with('/') || text.split('/').any(|part| part == "..");
    if text.trim().is_empty() || escapes {
        report.error(Finding::new(
            path,
            Reason::InvalidFormat,
            format!("{text:?} is not a path inside the repository"),
            "a relative path without '..', e.g. registry.json or catalog/registry.json",
        ));
    }
}

fn document_url(text: &str, path: &FieldPath, report: &mut Report) {
    let allowed = "an https:// URL of the registry document";
    match source_url(text, path, allowed, report) {
        Some(url) if url.scheme() == "http" => report.warn(Finding::new(
            path,
            Reason::InsecureUrl,
            "the registry document is fetched over plain http and could be altered in transit",
            allowed,
        )),
        Some(url) if url.scheme() != "https" => {
            unsupported_scheme(&url, "url", path, allowed, report)
        }
        _ => {}
    }
}

fn interval(text: &str, report: &mut Report) {
    let path = "spec.syncPolicy.interval";
    let allowed = "a Go duration from 1m to 168h, e.g. 30m, 1h30m or 24h";
    match go_duration(text) {
        Some(d) if (MIN_SYNC_INTERVAL..=MAX_SYNC_INTERVAL).contains(&d) => {}
        Some(_) => report.error(Finding::new(
            path,
            Reason::OutOfRange,
            format!("interval {text:?} is out of range"),
            allowed,
        )),
        None => report.error(Finding::new(
            path,
            Reason::InvalidFormat,
            format!("{text:?} is not a duration"),
            allowed,
        )),
    }
}

fn patterns(lists: &IncludeExclude, path: &FieldPath, report: &mut Report) {
    for (key, list) in [("include", &lists.include), ("exclude", &lists.exclude)] {
        for (i, pattern) in list.iter().enumerate() {
            if pattern.trim().is_empty() {
                report.error(Finding::new(
                    path.key(key).index(i),
                    Reason::Required,
                    "the pattern is empty",
                    "a name or glob pattern such as github-*",
                ));
            }
        }
    }
}

pub use runconfig::validate::go_duration;
