//! ToolHive's registry JSON: `{"version", "last_updated", "servers": {name: {…}},
//! "remote_servers": {name: {…}}}`. `groups` is not carried into the normalised form.

use runconfig::FieldPath;
use serde_json::{Map, Value};

use super::check::Reader;
use super::{ImageServer, Registry, RemoteServer, Transport, Transports, labels, server_name};

const SERVERS: &str = "an object of servers keyed by name";

/// Reads a ToolHive registry document; problems go to `reader`.
pub(super) fn read(reader: &mut Reader, value: &Value) -> Registry {
    let root = FieldPath::root();
    let mut registry = Registry::default();
    let Some(document) = reader.object(value, &root, "a ToolHive registry object") else {
        return registry;
    };
    registry.version = reader.string(document, "version", &root, false, "a version string");
    registry.last_updated = reader.string(
        document,
        "last_updated",
        &root,
        false,
        "an RFC 3339 timestamp",
    );
    let servers = document.get("servers").filter(|v| !v.is_null());
    let remotes = document.get("remote_servers").filter(|v| !v.is_null());
    if servers.is_none() && remotes.is_none() {
        reader.problem(
            &root.key("servers"),
            format!("missing; {SERVERS} (or remote_servers)"),
        );
    }
    if let Some(servers) = servers {
        let path = root.key("servers");
        for (name, entry) in entries(reader, servers, &path) {
            let path = path.key(name);
            if let Some(server) = image_server(reader, entry, &path) {
                registry.servers.insert(name.clone(), server);
            }
        }
    }
    if let Some(remotes) = remotes {
        let path = root.key("remote_servers");
        for (name, entry) in entries(reader, remotes, &path) {
            let path = path.key(name);
            if let Some(server) = remote_server(reader, entry, &path) {
                registry.remote_servers.insert(name.clone(), server);
            }
        }
    }
    registry
}

/// The entries of a `servers`/`remote_servers` object whose names are valid.
fn entries<'a>(
    reader: &mut Reader,
    value: &'a Value,
    path: &FieldPath,
) -> Vec<(&'a String, &'a Value)> {
    let Some(map) = reader.object(value, path, SERVERS) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(name, _)| server_name(reader, name, &path.key(name.as_str())))
        .collect()
}

fn image_server(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<ImageServer> {
    let entry = reader.object(value, path, "a server object")?;
    let image = image(reader, entry, path);
    let base = base(
        reader,
        entry,
        path,
        &["image"],
        Transports::ALLOWED,
        Transports::parse,
    );
    Some(ImageServer {
        image: image?,
        common: base?,
    })
}

fn remote_server(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<RemoteServer> {
    let entry = reader.object(value, path, "a remote server object")?;
    let url = super::http_url(reader, entry, "url", path);
    let base = base(
        reader,
        entry,
        path,
        &["url"],
        Transports::ALLOWED_REMOTE,
        Transports::parse_remote,
    );
    Some(RemoteServer {
        url: url?,
        common: base?,
    })
}

/// An OCI image reference: non-empty, no whitespace.
fn image(reader: &mut Reader, entry: &Map<String, Value>, path: &FieldPath) -> Option<String> {
    const ALLOWED: &str = "an OCI image reference such as ghcr.io/org/server:1.0.0";
    let image = reader.string(entry, "image", path, true, ALLOWED)?;
    if image.chars().any(char::is_whitespace) {
        reader.problem(
            &path.key("image"),
            format!("{image:?} contains spaces; {ALLOWED}"),
        );
        return None;
    }
    Some(image)
}

/// Description, transport and labels of an entry; `None` when one of them is invalid.
fn base(
    reader: &mut Reader,
    entry: &Map<String, Value>,
    path: &FieldPath,
    consumed: &[&str],
    allowed_transports: &str,
    transport: impl Fn(&str) -> Option<Transport>,
) -> Option<super::Common> {
    let before = reader.problems.len();
    let description = reader.string(
        entry,
        "description",
        path,
        true,
        "a sentence saying what the server does",
    );
    let transport = reader.parsed(
        entry,
        "transport",
        path,
        true,
        allowed_transports,
        transport,
    );
    let mut consumed = consumed.to_vec();
    consumed.extend(["description", "transport"]);
    let (labels, extra) = labels(reader, entry, path, &consumed);
    if reader.problems.len() > before {
        return None;
    }
    Some(labels.into_common(description?, transport?, extra))
}
