//! Field-for-field comparison of our generated CRDs with ToolHive's, so that a manifest a
//! ToolHive user applies keeps working here. What counts as a difference: a kind or
//! version they serve that we do not, a field of theirs we lack, a different type, enum
//! values or default, a field we require that they do not, and an object whose unknown
//! keys they keep and we refuse. Fields only we have are additive and not differences.
//!
//! Deliberate deviations are listed, with the reason, in a table of `docs/decisions.md`
//! (the section [`DEVIATIONS_HEADING`]); [`Deviation::covers`] matches them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The heading in `docs/decisions.md` whose table lists the deliberate deviations.
pub const DEVIATIONS_HEADING: &str = "Deviations from ToolHive's CRDs";

/// The directory of ToolHive's Go module at the pinned version, downloaded from the Go
/// module proxy by `e2e/cluster/toolhive.sh module` (cached by the Go command).
pub fn toolhive_module() -> anyhow::Result<std::path::PathBuf> {
    let script = crate::repo_root().join("e2e/cluster/toolhive.sh");
    let output = std::process::Command::new(&script)
        .arg("module")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} module failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().into())
}

/// Each served version's schema of every kind in a directory of CRD YAML files.
pub type Schemas = BTreeMap<String, BTreeMap<String, Value>>;

/// Reads every CRD in `dir` (`*.yaml`, several documents per file allowed).
pub fn load_crds(dir: &Path) -> anyhow::Result<Schemas> {
    let mut kinds = Schemas::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.path());
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let crd: Value = serde::Deserialize::deserialize(document)
                .with_context(|| format!("parsing {}", path.display()))?;
            if crd.is_null() {
                continue;
            }
            let Some(kind) = crd.pointer("/spec/names/kind").and_then(Value::as_str) else {
                bail!("{}: a document without spec.names.kind", path.display());
            };
            let versions = crd
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let served = kinds.entry(kind.to_owned()).or_default();
            for version in versions {
                let (Some(name), Some(schema)) = (
                    version.get("name").and_then(Value::as_str),
                    version.pointer("/schema/openAPIV3Schema"),
                ) else {
                    continue;
                };
                served.insert(name.to_owned(), schema.clone());
            }
        }
    }
    Ok(kinds)
}

/// What differs at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum What {
    /// They serve the kind; we do not.
    Kind,
    /// They serve this version of the kind; we do not.
    Version,
    /// They have the field; we do not.
    Missing,
    Type,
    Enum,
    Default,
    /// We require the field; they do not.
    Required,
    /// They keep unknown keys of this object; our schema lists its keys and refuses others.
    Closed,
}

impl What {
    fn name(self) -> &'static str {
        match self {
            What::Kind => "kind",
            What::Version => "version",
            What::Missing => "missing",
            What::Type => "type",
            What::Enum => "enum",
            What::Default => "default",
            What::Required => "required",
            What::Closed => "closed",
        }
    }

    fn parse(text: &str) -> Option<What> {
        [
            What::Kind,
            What::Version,
            What::Missing,
            What::Type,
            What::Enum,
            What::Default,
            What::Required,
            What::Closed,
        ]
        .into_iter()
        .find(|what| what.name() == text)
    }
}

/// One difference between their CRD and ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    pub kind: String,
    pub version: String,
    /// Dotted field path below the object (`spec.env[].value`); empty for the whole kind.
    pub path: String,
    pub what: What,
    /// Their value and ours, for type, enum and default.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.version.is_empty() {
            write!(f, " {}", self.version)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {}", self.what.name())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Every difference between `theirs` and `ours`, in a stable order.
pub fn compare(theirs: &Schemas, ours: &Schemas) -> Vec<Difference> {
    let mut found = Vec::new();
    for (kind, their_versions) in theirs {
        let Some(our_versions) = ours.get(kind) else {
            found.push(Difference {
                kind: kind.clone(),
                version: String::new(),
                path: String::new(),
                what: What::Kind,
                detail: String::new(),
            });
            continue;
        };
        for (version, their_schema) in their_versions {
            let mut at = At {
                kind,
                version,
                found: &mut found,
            };
            match our_versions.get(version) {
                None => at.push("", What::Version, String::new()),
                Some(our_schema) => {
                    for part in ["spec", "status"] {
                        if let Some(theirs) = their_schema.pointer(&format!("/properties/{part}")) {
                            let ours = our_schema.pointer(&format!("/properties/{part}"));
                            at.walk(part, theirs, ours);
                        }
                    }
                }
            }
        }
    }
    found.sort();
    found
}

struct At<'a> {
    kind: &'a str,
    version: &'a str,
    found: &'a mut Vec<Difference>,
}

impl At<'_> {
    fn push(&mut self, path: &str, what: What, detail: String) {
        self.found.push(Difference {
            kind: self.kind.to_owned(),
            version: self.version.to_owned(),
            path: path.to_owned(),
            what,
            detail,
        });
    }

    fn walk(&mut self, path: &str, theirs: &Value, ours: Option<&Value>) {
        let Some(ours) = ours else {
            self.push(path, What::Missing, type_of(theirs));
            return;
        };
        if theirs.get("type").is_some() && type_of(theirs) != type_of(ours) {
            self.push(
                path,
                What::Type,
                format!("theirs {}, ours {}", type_of(theirs), type_of(ours)),
            );
            return;
        }
        let (their_enum, our_enum) = (enum_of(theirs), enum_of(ours));
        if their_enum != our_enum {
            self.push(
                path,
                What::Enum,
                format!(
                    "theirs {}, ours {}",
                    show_set(&their_enum),
                    show_set(&our_enum)
                ),
            );
        }
        let (their_default, our_default) = (theirs.get("default"), ours.get("default"));
        if their_default != our_default {
            self.push(
                path,
                What::Default,
                format!("theirs {}, ours {}", show(their_default), show(our_default)),
            );
        }
        let their_required = names(theirs.get("required"));
        for name in names(ours.get("required")).difference(&their_required) {
            self.push(&format!("{path}.{name}"), What::Required, String::new());
        }
        let keeps_unknown = |schema: &Value| {
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        };
        if keeps_unknown(theirs) && !keeps_unknown(ours) && ours.get("properties").is_some() {
            self.push(path, What::Closed, String::new());
        }
        if let Some(Value::Object(fields)) = theirs.get("properties") {
            for (name, their_field) in fields {
                let our_field = ours.pointer(&format!("/properties/{}", escape(name)));
                self.walk(&format!("{path}.{name}"), their_field, our_field);
            }
        }
        if let Some(their_items) = theirs.get("items") {
            self.walk(&format!("{path}[]"), their_items, ours.get("items"));
        }
        if let Some(their_values @ Value::Object(_)) = theirs.get("additionalProperties") {
            self.walk(
                &format!("{path}{{}}"),
                their_values,
                ours.get("additionalProperties"),
            );
        }
    }
}

/// A JSON pointer token for a property name.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn type_of(schema: &Value) -> String {
    match schema.get("type").and_then(Value::as_str) {
        Some(kind) => kind.to_owned(),
        None if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) => {
            "int-or-string".to_owned()
        }
        None => "any".to_owned(),
    }
}

fn enum_of(schema: &Value) -> BTreeSet<String> {
    schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| values.iter().map(Value::to_string).collect())
        .unwrap_or_default()
}

fn names(list: Option<&Value>) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "none".to_owned(), Value::to_string)
}

fn show_set(values: &BTreeSet<String>) -> String {
    if values.is_empty() {
        return "none".to_owned();
    }
    values.iter().cloned().collect::<Vec<_>>().join("|")
}

/// One row of the deviation table: a difference we keep on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub kind: String,
    /// The field, or empty for the whole kind; covers everything below it.
    pub path: String,
    pub what: What,
    pub reason: String,
}

impl Deviation {
    /// Whether this row accounts for `difference` (any version).
    pub fn covers(&self, difference: &Difference) -> bool {
        if self.kind != difference.kind || self.what != difference.what {
            return false;
        }
        let path = difference.path.as_str();
        self.path.is_empty()
            || path == self.path
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    }
}

/// The rows of the table under [`DEVIATIONS_HEADING`] in `markdown`:
/// `| Kind | `field` | what | reason |`, the field `—` for the whole kind.
pub fn parse_deviations(markdown: &str) -> anyhow::Result<Vec<Deviation>> {
    let Some(start) = markdown.find(DEVIATIONS_HEADING) else {
        bail!("no section \"{DEVIATIONS_HEADING}\"");
    };
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in markdown[start..].lines().skip(1) {
        let line = line.trim();
        if line.starts_with('#') {
            break;
        }
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [kind, path, what, reason] = cells.as_slice() else {
            bail!("a deviation row needs 4 cells (kind, field, what, reason): {line}");
        };
        if *kind == "Kind" || kind.starts_with("---") {
            continue;
        }
        let Some(what) = What::parse(what) else {
            bail!("unknown difference \"{what}\" in: {line}");
        };
        let path = path.trim_matches('`');
        rows.push(Deviation {
            kind: (*kind).to_owned(),
            path: if path == "—" { "" } else { path }.to_owned(),
            what,
            reason: (*reason).to_owned(),
        });
    }
    if rows.is_empty() {
        bail!("the section \"{DEVIATIONS_HEADING}\" has no table rows");
    }
    Ok(rows)
}

/// Differences no deviation covers, and deviations that cover nothing (stale rows).
pub fn unexplained<'a>(
    differences: &'a [Difference],
    deviations: &'a [Deviation],
) -> (Vec<&'a Difference>, Vec<&'a Deviation>) {
    let uncovered = differences
        .iter()
        .filter(|d| !deviations.iter().any(|row| row.covers(d)))
        .collect();
    let stale = deviations
        .iter()
        .filter(|row| !differences.iter().any(|d| row.covers(d)))
        .collect();
    (uncovered, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas(kind: &str, spec: Value) -> Schemas {
        let schema = json!({"type": "object", "properties": {"spec": spec}});
        BTreeMap::from([(
            kind.to_owned(),
            BTreeMap::from([("v1beta1".to_owned(), schema)]),
        )])
    }

    fn shown(theirs: &Schemas, ours: &Schemas) -> Vec<String> {
        compare(theirs, ours)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_renamed_field_is_missing_and_ours_is_additive() {
        let theirs = schemas(
            "MCPOIDCConfig",
            json!({"type": "object", "properties": {"jwksAllowPrivateIP": {"type": "boolean"}}}),
        );
        let ours = schemas(
            "MCPOIDCConfig",
            json!({"type": "object", "properties": {"jwksAllowPrivateIp": {"type": "boolean"}}}),
        );
        assert_eq!(
            shown(&theirs, &ours),
            ["MCPOIDCConfig v1beta1 spec.jwksAllowPrivateIP: missing (boolean)"]
        );
    }

    #[test]
    fn enums_compare_as_sets_and_defaults_by_value() {
        let theirs = schemas(
            "MCPServer",
            json!({"type": "object", "properties": {
                "transport": {"type": "string", "enum": ["stdio", "sse"], "default": "stdio"},
                "port": {"type": "integer", "default": 8080},
            }}),
        );
        let ours = schemas(
            "MCPServer",
            json!({"type": "object", "properties": {
                "transport": {"type": "string", "enum": ["sse", "stdio"], "default": "stdio"},
                "port": {"type": "integer"},
            }}),
        );
        assert_eq!(
            shown(&theirs, &ours),
            ["MCPServer v1beta1 spec.port: default (theirs 8080, ours none)"]
        );
    }

    #[test]
    fn a_field_we_require_and_they_do_not_is_a_difference() {
        let theirs = schemas(
            "MCPGroup",
            json!({"type": "object", "properties": {"description": {"type": "string"}}}),
        );
        let ours = schemas(
            "MCPGroup",
            json!({"type": "object", "required": ["description"],
                   "properties": {"description": {"type": "string"}}}),
        );
        assert_eq!(
            shown(&theirs, &ours),
            ["MCPGroup v1beta1 spec.description: required"]
        );
    }

    #[test]
    fn a_missing_kind_and_a_closed_object_are_differences() {
        let theirs = schemas(
            "MCPAuthzConfig",
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        let ours = schemas(
            "MCPAuthzConfig",
            json!({"type": "object", "properties": {"policies": {"type": "array"}}}),
        );
        let mut theirs_more = theirs.clone();
        theirs_more.extend(schemas("MCPGroup", json!({"type": "object"})));
        assert_eq!(
            shown(&theirs_more, &ours),
            ["MCPAuthzConfig v1beta1 spec: closed", "MCPGroup: kind"]
        );
    }

    #[test]
    fn a_deviation_covers_its_field_and_everything_below_it() {
        let markdown = "\
### Deviations from ToolHive's CRDs

| Kind | Field | What | Why |
| --- | --- | --- | --- |
| MCPServer | `spec.rateLimiting` | missing | needs Redis (#15) |
| MCPGroup | — | kind | not yet |

## Next
";
        let rows = parse_deviations(markdown).expect("the table parses");
        assert_eq!(rows.len(), 2);
        let difference = |path: &str| Difference {
            kind: "MCPServer".to_owned(),
            version: "v1beta1".to_owned(),
            path: path.to_owned(),
            what: What::Missing,
            detail: String::new(),
        };
        assert!(rows[0].covers(&difference("spec.rateLimiting.tools[].name")));
        assert!(rows[0].covers(&difference("spec.rateLimiting")));
        assert!(!rows[0].covers(&difference("spec.rateLimitingX")));
        let differences = [difference("spec.x")];
        let (uncovered, stale) = unexplained(&differences, &rows);
        assert_eq!(uncovered.len(), 1);
        assert_eq!(stale.len(), 2);
    }

    #[test]
    fn a_row_with_an_unknown_difference_is_refused() {
        let markdown =
            "Deviations from ToolHive's CRDs\n\n| MCPServer | `spec.x` | renamed | . |\n";
        let error = parse_deviations(markdown).expect_err("refused");
        assert!(error.to_string().contains("unknown difference \"renamed\""));
    }
}
