//! Registry documents: parsing ToolHive's registry JSON or the upstream MCP registry
//! format, validating every server, and the one normalised form the operator writes.
//!
//! The normalised form is ToolHive's registry JSON (servers keyed by name, container
//! servers under `servers`, remote ones under `remote_servers`), with keys sorted so the
//! same catalogue always has the same bytes and the same hash. See `docs/registry.md`.

mod check;
mod toolhive;
mod upstream;

use std::collections::BTreeMap;
use std::fmt;

use api::registry::RegistryFormat;
use runconfig::FieldPath;
pub use runconfig::validate::Transport;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use check::Problem;
use check::Reader;

/// A validated, normalised registry.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Registry {
    /// Version of the catalogue, as the source states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the source says the catalogue last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Servers run from a container image, by name.
    pub servers: BTreeMap<String, ImageServer>,
    /// Servers reached at a URL, by name.
    pub remote_servers: BTreeMap<String, RemoteServer>,
}

impl Registry {
    /// Number of servers of both kinds.
    pub fn len(&self) -> usize {
        self.servers.len() + self.remote_servers.len()
    }

    /// Whether the registry has no server.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A server run from a container image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageServer {
    /// OCI image reference.
    pub image: String,
    /// What every server has.
    #[serde(flatten)]
    pub common: Common,
}

/// A server reached at a URL.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteServer {
    /// Endpoint of the server.
    pub url: String,
    /// What every server has.
    #[serde(flatten)]
    pub common: Common,
}

/// Fields of every server. Fields the operator does not interpret (permissions, env_vars,
/// provenance, …) are carried in `extra` unchanged, so no information of the source is lost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Common {
    /// What the server does.
    pub description: String,
    /// How a client talks to it.
    pub transport: Transport,
    /// Who maintains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Whether it is still recommended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Tool names it offers.
    pub tools: Vec<String>,
    /// Tags, used by `spec.filter.tags`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Every other field of the source entry, keys sorted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Spellings of a registry entry's transport, for messages.
struct Transports;

impl Transports {
    const ALLOWED: &str = "one of stdio, sse, streamable-http";
    const ALLOWED_REMOTE: &str = "sse or streamable-http (a remote server is reached over HTTP)";

    fn parse(text: &str) -> Option<Transport> {
        Transport::parse(text)
    }

    fn parse_remote(text: &str) -> Option<Transport> {
        Transport::parse(text).filter(|t| *t != Transport::Stdio)
    }
}

/// Who maintains a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Tier {
    /// Maintained by the vendor of what it connects to.
    Official,
    /// Maintained by the community.
    Community,
}

impl Tier {
    const ALLOWED: &str = "Official or Community";

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "official" => Some(Self::Official),
            "community" => Some(Self::Community),
            _ => None,
        }
    }
}

/// Whether a server is still recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    /// In use.
    Active,
    /// Kept for existing users; do not start using it.
    Deprecated,
}

impl Status {
    const ALLOWED: &str = "Active or Deprecated";

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "active" => Some(Self::Active),
            "deprecated" => Some(Self::Deprecated),
            _ => None,
        }
    }
}

/// A parsed document: the registry, the format it was read as, and the entries that
/// were skipped because the operator cannot offer them (e.g. npm-only upstream servers).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The registry.
    pub registry: Registry,
    /// The format it was read as.
    pub format: RegistryFormat,
    /// `name: why` for every skipped entry.
    pub skipped: Vec<String>,
}

/// Why a document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Status messages stay readable: the first problems, then a count.
        const SHOWN: usize = 5;
        let shown: Vec<String> = self.0.iter().take(SHOWN).map(|p| p.to_string()).collect();
        f.write_str(&shown.join("; "))?;
        if self.0.len() > SHOWN {
            write!(f, "; and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Parses and validates `bytes` as `format`, or as the format detected from the content.
pub fn parse(bytes: &[u8], format: Option<RegistryFormat>) -> Result<Parsed, Invalid> {
    let root = FieldPath::root();
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Invalid(vec![Problem {
            path: root.clone(),
            message: format!(
                "not valid JSON ({e}); a registry document in ToolHive's or the upstream MCP registry format"
            ),
        }])
    })?;
    let detected = detect(&value);
    let format = match (format, detected) {
        (Some(format), _) => format,
        (None, Some(format)) => format,
        (None, None) => {
            return Err(Invalid(vec![Problem {
                path: root,
                message: format!(
                    "{} that is neither registry format; a ToolHive registry (an object with `servers` keyed by name) or an upstream MCP registry (`data.servers`, `servers` as a list, or a list of server.json entries)",
                    check::kind_of(&value)
                ),
            }]));
        }
    };
    let mut reader = Reader::default();
    let (registry, skipped) = match format {
        RegistryFormat::Toolhive => (toolhive::read(&mut reader, &value), Vec::new()),
        RegistryFormat::Upstream => upstream::read(&mut reader, &value),
    };
    if reader.problems.is_empty() {
        Ok(Parsed {
            registry,
            format,
            skipped,
        })
    } else {
        if detected.is_some_and(|d| d != format) {
            reader.problem(
                &root,
                format!(
                    "the document looks like the {} format; set spec.source.format to it, or leave it unset to detect the format",
                    format_name(detected.unwrap_or(format))
                ),
            );
        }
        Err(Invalid(reader.problems))
    }
}

/// The format a document is in, from its shape: upstream documents have `data` (the
/// ToolHive-published upstream registry), a `servers` list (the registry API) or are a
/// list; ToolHive's have `servers` or `remote_servers` objects keyed by name.
pub fn detect(value: &Value) -> Option<RegistryFormat> {
    match value {
        Value::Array(_) => Some(RegistryFormat::Upstream),
        Value::Object(map) if map.get("data").is_some_and(Value::is_object) => {
            Some(RegistryFormat::Upstream)
        }
        Value::Object(map) if map.get("servers").is_some_and(Value::is_array) => {
            Some(RegistryFormat::Upstream)
        }
        Value::Object(map)
            if map.get("servers").is_some_and(Value::is_object)
                || map.get("remote_servers").is_some_and(Value::is_object) =>
        {
            Some(RegistryFormat::Toolhive)
        }
        _ => None,
    }
}

/// The name of a format as written in `spec.source.format`.
pub fn format_name(format: RegistryFormat) -> &'static str {
    match format {
        RegistryFormat::Toolhive => "toolhive",
        RegistryFormat::Upstream => "upstream",
    }
}

/// The normalised document as written to the output ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Pretty JSON with a trailing newline.
    pub text: String,
    /// SHA-256 of `text`, hex: the same catalogue always has the same hash.
    pub hash: String,
}

/// The normalised document's bytes and their SHA-256.
pub fn render(registry: &Registry) -> Result<Rendered, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(registry)?;
    text.push('\n');
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    Ok(Rendered { text, hash })
}

/// Fields shared by both formats' server entries, read from `object` at `path`: tier,
/// status, tools and tags; every key not in `consumed` (nor one of those) goes to `extra`.
fn labels(
    reader: &mut Reader,
    object: &Map<String, Value>,
    path: &FieldPath,
    consumed: &[&str],
) -> (Labels, Map<String, Value>) {
    const LABELS: [&str; 4] = ["tier", "status", "tools", "tags"];
    let labels = Labels {
        tier: reader.parsed(object, "tier", path, false, Tier::ALLOWED, Tier::parse),
        status: reader.parsed(
            object,
            "status",
            path,
            false,
            Status::ALLOWED,
            Status::parse,
        ),
        tools: reader.strings(object, "tools", path, "a tool name"),
        tags: reader.strings(object, "tags", path, "a tag such as web or github"),
    };
    let extra: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| !LABELS.contains(&k.as_str()) && !consumed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match check::sorted(Value::Object(extra)) {
        Value::Object(extra) => (labels, extra),
        _ => (labels, Map::new()),
    }
}

/// Tier, status, tools and tags of one entry.
#[derive(Clone, Debug, Default, PartialEq)]
struct Labels {
    tier: Option<Tier>,
    status: Option<Status>,
    tools: Vec<String>,
    tags: Vec<String>,
}

impl Labels {
    fn into_common(
        self,
        description: String,
        transport: Transport,
        extra: Map<String, Value>,
    ) -> Common {
        Common {
            description,
            transport,
            tier: self.tier,
            status: self.status,
            tools: self.tools,
            tags: self.tags,
            extra,
        }
    }
}

/// The absolute http(s) URL at `key`.
fn http_url(
    reader: &mut Reader,
    object: &Map<String, Value>,
    key: &str,
    path: &FieldPath,
) -> Option<String> {
    const ALLOWED: &str = "an absolute http(s) URL such as https://mcp.example.com/mcp";
    let text = reader.string(object, key, path, true, ALLOWED)?;
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(text),
        Ok(_) => {
            reader.problem(
                &path.key(key),
                format!("{text:?} is not an http(s) URL; {ALLOWED}"),
            );
            None
        }
        Err(e) => {
            reader.problem(
                &path.key(key),
                format!("{text:?} is not a URL ({e}); {ALLOWED}"),
            );
            None
        }
    }
}

/// Checks a server name (a key of `servers`, or an upstream `name`).
fn server_name(reader: &mut Reader, name: &str, path: &FieldPath) -> bool {
    let ok = !name.trim().is_empty()
        && name.len() <= 200
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        reader.problem(
            path,
            format!("{name:?} is not a server name; up to 200 characters without spaces, e.g. fetch or io.github.org/server"),
        );
    }
    ok
}

#[cfg(test)]
pub(crate) mod tests;
