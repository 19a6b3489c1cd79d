//! The upstream MCP registry format: `server.json` entries (`name`, `description`,
//! `packages`, `remotes`, `_meta`), found as ToolHive publishes them
//! (`{"data": {"servers": […]}}`), as the registry API lists them (`{"servers":
//! [{"server": {…}}]}`) or as a plain list.
//!
//! An entry with a `remotes` list becomes a remote server (its first remote); one with a
//! single OCI package a container server. Entries the operator cannot run (npm or PyPI
//! packages only, several OCI packages, neither packages nor remotes) are skipped and
//! reported, as ToolHive skips them. ToolHive's fields (tier, status, tools, tags,
//! permissions, …) come from the publisher-provided `io.github.stacklok` extension.

use std::collections::BTreeMap;

use runconfig::FieldPath;
use serde_json::{Map, Value, json};

use super::check::Reader;
use super::{ImageServer, Labels, Registry, RemoteServer, Transports, labels, server_name};

const PUBLISHER_PROVIDED: &str = "io.modelcontextprotocol.registry/publisher-provided";
const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";
const TOOLHIVE_PUBLISHER: &str = "io.github.stacklok";
const ENTRIES: &str = "a list of server.json entries";

/// Reads an upstream document; problems go to `reader`. Returns the registry and the
/// skipped entries.
pub(super) fn read(reader: &mut Reader, value: &Value) -> (Registry, Vec<String>) {
    let root = FieldPath::root();
    let mut registry = Registry::default();
    let (list, path) = match value {
        Value::Array(_) => (Some(value), root.clone()),
        Value::Object(document) => {
            registry.version = reader.string(document, "version", &root, false, "a version string");
            if let Some(meta) = document.get("meta").and_then(Value::as_object) {
                registry.last_updated = reader.string(
                    meta,
                    "last_updated",
                    &root.key("meta"),
                    false,
                    "an RFC 3339 timestamp",
                );
            }
            match document.get("data") {
                Some(data) => {
                    let path = root.key("data");
                    let data = reader.object(data, &path, "an object with a servers list");
                    (data.and_then(|d| d.get("servers")), path.key("servers"))
                }
                None => (document.get("servers"), root.key("servers")),
            }
        }
        other => {
            reader.problem(
                &root,
                format!("{}; expected {ENTRIES}", super::check::kind_of(other)),
            );
            return (registry, Vec::new());
        }
    };
    let Some(list) = list else {
        reader.problem(&path, format!("missing; {ENTRIES}"));
        return (registry, Vec::new());
    };
    let Some(items) = reader.array(list, &path, ENTRIES) else {
        return (registry, Vec::new());
    };

    let mut chosen: BTreeMap<String, (bool, Entry)> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match entry(reader, item, &path.index(i)) {
            Some(Converted::Server(name, latest, entry)) => {
                // The registry API lists every version; keep the one marked latest,
                // otherwise the last one listed.
                let keep_old = chosen.get(&name).is_some_and(|(old, _)| *old && !latest);
                if !keep_old {
                    chosen.insert(name, (latest, entry));
                }
            }
            Some(Converted::Skipped(why)) => skipped.push(why),
            None => {}
        }
    }
    for (name, (_, entry)) in chosen {
        match entry {
            Entry::Image(server) => {
                registry.servers.insert(name, server);
            }
            Entry::Remote(server) => {
                registry.remote_servers.insert(name, server);
            }
        }
    }
    (registry, skipped)
}

enum Entry {
    Image(ImageServer),
    Remote(RemoteServer),
}

enum Converted {
    /// Name, whether marked latest, the server.
    Server(String, bool, Entry),
    /// Why the entry was skipped.
    Skipped(String),
}

fn entry(reader: &mut Reader, item: &Value, path: &FieldPath) -> Option<Converted> {
    let object = reader.object(item, path, "a server.json object")?;
    // The registry API wraps each entry: {"server": {…}, "_meta": {…}}.
    let (server, path, wrapper_meta) = match object.get("server") {
        Some(inner) if !object.contains_key("name") => {
            let path = path.key("server");
            (
                reader.object(inner, &path, "a server.json object")?,
                path,
                object.get("_meta"),
            )
        }
        _ => (object, path.clone(), None),
    };
    let before = reader.problems.len();
    let name = reader.string(
        server,
        "name",
        &path,
        true,
        "a reverse-DNS name such as io.github.org/server",
    );
    let name = name.filter(|n| upstream_name(reader, n, &path.key("name")));
    let description = reader.string(
        server,
        "description",
        &path,
        true,
        "a sentence saying what the server does",
    );
    reader.string(server, "version", &path, false, "a version string");
    let mut extra = Map::new();
    if let Some(title) = reader.string(server, "title", &path, false, "a display name") {
        extra.insert("title".into(), title.into());
    }
    if let Some(repository) = server.get("repository").and_then(Value::as_object)
        && let Some(url) = reader.string(repository, "url", &path.key("repository"), false, "a URL")
    {
        extra.insert("repository_url".into(), url.into());
    }
    let latest = [wrapper_meta, server.get("_meta")]
        .into_iter()
        .flatten()
        .any(|meta| {
            meta.pointer(&format!("/{}/isLatest", OFFICIAL.replace('/', "~1")))
                == Some(&Value::Bool(true))
        });

    let remotes = list(reader, server, "remotes", &path);
    let packages = list(reader, server, "packages", &path);
    if reader.problems.len() > before {
        return None;
    }
    let (name, description) = (name?, description?);

    if let Some(remote) = remotes.first() {
        let remote_path = path.key("remotes").index(0);
        let remote = reader.object(remote, &remote_path, "a remote object with type and url")?;
        let transport = reader.parsed(
            remote,
            "type",
            &remote_path,
            true,
            Transports::ALLOWED_REMOTE,
            Transports::parse_remote,
        );
        let url = super::http_url(reader, remote, "url", &remote_path);
        if let Some(headers) = remote.get("headers") {
            extra.insert(
                "headers".into(),
                inputs(reader, headers, &remote_path.key("headers"), true),
            );
        }
        let url = url?;
        let (labels, ext_extra) = extension(reader, server, &url, &path);
        let common = labels?.into_common(description, transport?, merged(extra, ext_extra));
        return Some(Converted::Server(
            name,
            latest,
            Entry::Remote(RemoteServer { url, common }),
        ));
    }

    let oci: Vec<(usize, &Map<String, Value>)> = packages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_object().map(|p| (i, p)))
        .filter(|(_, p)| p.get("registryType").and_then(Value::as_str) == Some("oci"))
        .collect();
    if oci.len() != 1 {
        let why = if packages.is_empty() {
            "has neither packages nor remotes".to_owned()
        } else if oci.is_empty() {
            let kinds: Vec<&str> = packages
                .iter()
                .filter_map(|p| p.get("registryType").and_then(Value::as_str))
                .collect();
            format!(
                "has no OCI package (found {}); the operator runs container images only",
                kinds.join(", ")
            )
        } else {
            format!("has {} OCI packages; expected one", oci.len())
        };
        return Some(Converted::Skipped(format!("{name} {why}")));
    }
    let (index, package) = oci[0];
    let package_path = path.key("packages").index(index);
    let image = image_reference(reader, package, &package_path);
    let transport_path = package_path.key("transport");
    let transport = package
        .get("transport")
        .and_then(|t| reader.object(t, &transport_path, "an object with a type"));
    let transport = match transport {
        Some(t) => {
            if let Some(port) = target_port(reader, t, &transport_path) {
                extra.insert("target_port".into(), port.into());
            }
            reader.parsed(
                t,
                "type",
                &transport_path,
                true,
                Transports::ALLOWED,
                Transports::parse,
            )
        }
        None => {
            reader.problem(
                &transport_path,
                format!("missing; an object whose type is {}", Transports::ALLOWED),
            );
            None
        }
    };
    if let Some(env) = package.get("environmentVariables") {
        extra.insert(
            "env_vars".into(),
            inputs(
                reader,
                env,
                &package_path.key("environmentVariables"),
                false,
            ),
        );
    }
    let args = arguments(package);
    if !args.is_empty() {
        extra.insert("args".into(), args.into());
    }
    let image = image?;
    let (labels, ext_extra) = extension(reader, server, &image, &path);
    let common = labels?.into_common(description, transport?, merged(extra, ext_extra));
    Some(Converted::Server(
        name,
        latest,
        Entry::Image(ImageServer { image, common }),
    ))
}

/// Upstream names are `<reverse-DNS namespace>/<name>`.
fn upstream_name(reader: &mut Reader, name: &str, path: &FieldPath) -> bool {
    let valid = name.split_once('/').is_some_and(|(namespace, rest)| {
        !namespace.is_empty()
            && !rest.is_empty()
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    if !valid {
        reader.problem(
            path,
            format!("{name:?} is not an upstream server name; <reverse-DNS namespace>/<name>, e.g. io.github.org/server"),
        );
        return false;
    }
    server_name(reader, name, path)
}

/// The list at `key` (empty when absent).
fn list<'a>(
    reader: &mut Reader,
    object: &'a Map<String, Value>,
    key: &str,
    path: &FieldPath,
) -> &'a [Value] {
    match object.get(key).filter(|v| !v.is_null()) {
        Some(value) => reader
            .array(value, &path.key(key), "a list")
            .unwrap_or_default(),
        None => &[],
    }
}

/// The image of an OCI package: `identifier`, with `version` appended as a tag when the
/// identifier has neither tag nor digest (older server.json schemas split them).
fn image_reference(
    reader: &mut Reader,
    package: &Map<String, Value>,
    path: &FieldPath,
) -> Option<String> {
    const ALLOWED: &str = "an OCI image reference such as ghcr.io/org/server:1.0.0";
    let identifier = reader.string(package, "identifier", path, true, ALLOWED)?;
    if identifier.chars().any(char::is_whitespace) {
        reader.problem(
            &path.key("identifier"),
            format!("{identifier:?} contains spaces; {ALLOWED}"),
        );
        return None;
    }
    let last = identifier.rsplit('/').next().unwrap_or(&identifier);
    let tagged = last.contains(':') || identifier.contains('@');
    match package.get("version").and_then(Value::as_str) {
        Some(version) if !tagged && !version.is_empty() => Some(format!("{identifier}:{version}")),
        _ => Some(identifier),
    }
}

/// The port of the transport URL (`http://localhost:8080/mcp` → 8080): the port the
/// server listens on in its container.
fn target_port(
    reader: &mut Reader,
    transport: &Map<String, Value>,
    path: &FieldPath,
) -> Option<u16> {
    let text = transport.get("url")?.as_str()?;
    // Templates such as http://localhost:{port}/mcp carry no fixed port.
    if text.contains('{') {
        return None;
    }
    match url::Url::parse(text) {
        Ok(url) => url.port(),
        Err(e) => {
            reader.problem(
                &path.key("url"),
                format!("{text:?} is not a URL ({e}); a URL such as http://localhost:8080/mcp"),
            );
            None
        }
    }
}

/// Environment variables or headers in ToolHive's shape:
/// `{name, description, required, secret, default[, choices]}`.
fn inputs(reader: &mut Reader, value: &Value, path: &FieldPath, with_choices: bool) -> Value {
    let Some(items) = reader.array(value, path, "a list of objects with a name") else {
        return Value::Array(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = path.index(i);
        let Some(input) = reader.object(item, &path, "an object with a name") else {
            continue;
        };
        let Some(name) = reader.string(input, "name", &path, true, "a variable or header name")
        else {
            continue;
        };
        let flag = |key: &str| input.get(key).and_then(Value::as_bool).unwrap_or(false);
        let mut entry = json!({
            "name": name,
            "description": input.get("description").and_then(Value::as_str).unwrap_or_default(),
            "required": flag("isRequired"),
            "secret": flag("isSecret"),
        });
        if let Some(default) = input.get("default").and_then(Value::as_str) {
            entry["default"] = default.into();
        }
        if with_choices && let Some(choices) = input.get("choices").filter(|c| c.is_array()) {
            entry["choices"] = choices.clone();
        }
        out.push(entry);
    }
    Value::Array(out)
}

/// Container arguments from `packageArguments`: positional values, and named ones as
/// `--name value` (or `--name` alone for flags).
fn arguments(package: &Map<String, Value>) -> Vec<String> {
    let Some(items) = package.get("packageArguments").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut args = Vec::new();
    for item in items {
        let value = item
            .get("value")
            .or_else(|| item.get("default"))
            .and_then(Value::as_str);
        match item.get("type").and_then(Value::as_str) {
            Some("named") => {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    args.push(name.to_owned());
                    args.extend(value.map(str::to_owned));
                }
            }
            _ => args.extend(value.map(str::to_owned)),
        }
    }
    args
}

/// ToolHive's publisher-provided extension of an entry: the object keyed by `key` (the
/// image or URL), else the only one. Gives the labels and the other extension fields.
fn extension(
    reader: &mut Reader,
    server: &Map<String, Value>,
    key: &str,
    path: &FieldPath,
) -> (Option<Labels>, Map<String, Value>) {
    let Some(publisher) = server
        .get("_meta")
        .and_then(|m| m.get(PUBLISHER_PROVIDED))
        .and_then(|p| p.get(TOOLHIVE_PUBLISHER))
        .and_then(Value::as_object)
    else {
        return (Some(Labels::default()), Map::new());
    };
    let chosen = publisher.get_key_value(key).or_else(|| {
        (publisher.len() == 1)
            .then(|| publisher.iter().next())
            .flatten()
    });
    let Some((ext_key, value)) = chosen else {
        return (Some(Labels::default()), Map::new());
    };
    let path = path
        .key("_meta")
        .key(PUBLISHER_PROVIDED)
        .key(TOOLHIVE_PUBLISHER)
        .key(ext_key.as_str());
    let Some(object) = reader.object(value, &path, "an object of ToolHive fields") else {
        return (None, Map::new());
    };
    let before = reader.problems.len();
    let (labels, extra) = labels(reader, object, &path, &[]);
    ((reader.problems.len() == before).then_some(labels), extra)
}

/// Converted fields win over extension fields of the same name.
fn merged(mut converted: Map<String, Value>, extension: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in extension {
        converted.entry(key).or_insert(value);
    }
    match super::check::sorted(Value::Object(converted)) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
