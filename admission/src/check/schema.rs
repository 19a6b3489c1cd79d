//! What the API server checks before any webhook runs: the CEL rules of the CRD
//! (`x-kubernetes-validations`, evaluated with `kube::core::cel` as the API server would)
//! and the OpenAPI bounds of the storage-version schema (ranges, lengths, patterns,
//! required fields, item counts). The typed parse already refuses wrong types and enum
//! values; the bounds are checked here, on the schema itself, so no bound is written twice.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use kube::core::cel::{CompiledSchema, compile_schema, validate_compiled};
use regex::Regex;
use serde_json::Value;

use super::Finding;
use runconfig::error::Reason;
use runconfig::path::FieldPath;

/// Root fields the CRD schema leaves out because every object has them.
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// The storage-version schema of every kind, as JSON.
static SCHEMAS: LazyLock<BTreeMap<String, Value>> = LazyLock::new(|| {
    api::crds::all()
        .into_iter()
        .filter_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            let schema = crd
                .spec
                .versions
                .into_iter()
                .find(|v| v.storage)?
                .schema?
                .open_api_v3_schema?;
            Some((kind, serde_json::to_value(schema).ok()?))
        })
        .collect()
});

thread_local! {
    /// Compiled CEL rules per kind: compiling costs more than evaluating, and the webhook
    /// checks the same kinds over and over.
    static COMPILED: BTreeMap<String, CompiledSchema> = SCHEMAS
        .iter()
        .map(|(kind, schema)| (kind.clone(), compile_schema(schema)))
        .collect();
}

/// Compiled `pattern`s of the schemas, by source text.
static PATTERNS: LazyLock<Mutex<BTreeMap<String, Option<Regex>>>> = LazyLock::new(Mutex::default);

/// CEL rule failures and schema-bound violations of `object` (a whole object of `kind`).
pub(super) fn findings(kind: &str, object: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let cel = COMPILED.with(|compiled| {
        compiled
            .get(kind)
            .map(|schema| validate_compiled(schema, object, None))
    });
    if let Some(Err(errors)) = cel {
        for error in errors.iter() {
            let path = FieldPath::parse(&error.field_path);
            out.push(Finding {
                path: path.to_string(),
                message: error.message.clone(),
                reason: Reason::CrdRule,
            });
        }
    }
    if let Some(schema) = SCHEMAS.get(kind) {
        let mut walker = Walker {
            unknown_only: false,
            out: &mut out,
        };
        walker.walk(schema, object, &FieldPath::root());
    }
    out
}

/// Fields of a raw document that the CRD schema does not define. The API server drops
/// them, so a typo would silently do nothing; `kubectl apply` (strict field validation
/// by default) refuses them. Empty for documents of other kinds.
pub fn unknown_fields(document: &Value) -> Vec<Finding> {
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut out = Vec::new();
    if let Some(schema) = SCHEMAS.get(kind) {
        let mut walker = Walker {
            unknown_only: true,
            out: &mut out,
        };
        walker.walk(schema, document, &FieldPath::root());
    }
    out
}

struct Walker<'a> {
    /// Report only unknown fields (raw documents), or only bounds (typed objects).
    unknown_only: bool,
    out: &'a mut Vec<Finding>,
}

impl Walker<'_> {
    fn walk(&mut self, schema: &Value, value: &Value, path: &FieldPath) {
        if !self.unknown_only {
            self.bounds(schema, value, path);
        }
        match value {
            Value::Object(fields) => self.object(schema, fields, path),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &path.index(i));
                    }
                }
            }
            _ => {}
        }
    }

    fn object(
        &mut self,
        schema: &Value,
        fields: &serde_json::Map<String, Value>,
        path: &FieldPath,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let preserve =
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        for (name, child) in fields {
            let child_path = path.key(name.as_str());
            if let Some(child_schema) = properties.and_then(|p| p.get(name)) {
                self.walk(child_schema, child, &child_path);
            } else if let Some(child_schema) = additional {
                self.walk(child_schema, child, &child_path);
            } else if self.unknown_only
                && properties.is_some()
                && !preserve
                && !(path.segments().is_empty() && ROOT_FIELDS.contains(&name.as_str()))
            {
                let known: Vec<&str> = properties
                    .into_iter()
                    .flat_map(|p| p.keys().map(String::as_str))
                    .collect();
                self.out.push(Finding::new(
                    child_path,
                    Reason::UnknownField,
                    format!("unknown field {name:?} (the API server would drop it)"),
                    format!("known fields: {}", known.join(", ")),
                ));
            }
        }
        if !self.unknown_only {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    self.fail(
                        path.key(required),
                        Reason::Required,
                        "the field is missing",
                        "it is required",
                    );
                }
            }
        }
    }

    /// Range, length, pattern and size bounds of one value.
    fn bounds(&mut self, schema: &Value, value: &Value, path: &FieldPath) {
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        match value {
            Value::Number(n) => {
                let Some(n) = n.as_f64() else { return };
                let (min, max) = (number("minimum"), number("maximum"));
                let range = range_text(min, max);
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    self.fail(
                        path.clone(),
                        Reason::OutOfRange,
                        format!("{n} is out of range"),
                        range,
                    );
                }
            }
            Value::String(text) => {
                let chars = text.chars().count() as f64;
                let (min, max) = (number("minLength"), number("maxLength"));
                if min.is_some_and(|m| chars < m) || max.is_some_and(|m| chars > m) {
                    let wrong = if text.is_empty() {
                        "the value is empty".to_owned()
                    } else {
                        format!("{chars} characters is out of range")
                    };
                    let allowed = format!("{} characters", range_text(min, max));
                    self.fail(path.clone(), Reason::OutOfRange, wrong, allowed);
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                    && !matches(pattern, text)
                {
                    self.fail(
                        path.clone(),
                        Reason::InvalidFormat,
                        format!("{text:?} does not match the schema pattern"),
                        format!("a value matching {pattern}"),
                    );
                }
            }
            Value::Array(items) => {
                let count = items.len() as f64;
                let (min, max) = (number("minItems"), number("maxItems"));
                if min.is_some_and(|m| count < m) || max.is_some_and(|m| count > m) {
                    let reason = if items.is_empty() {
                        Reason::Required
                    } else {
                        Reason::OutOfRange
                    };
                    let allowed = format!("{} entries", range_text(min, max));
                    self.fail(path.clone(), reason, format!("{count} entries"), allowed);
                }
            }
            _ => {}
        }
    }

    fn fail(
        &mut self,
        path: FieldPath,
        reason: Reason,
        wrong: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.out
            .push(Finding::new(path, reason, wrong.into(), allowed.into()));
    }
}

/// `from 1 to 65535`, `at least 1`, `at most 63`.
fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "any".to_owned(),
    }
}

/// Whether `text` matches a schema `pattern`. A pattern this regex engine cannot compile
/// is not enforced here (the API server still enforces it).
fn matches(pattern: &str, text: &str) -> bool {
    let mut cache = match PATTERNS.lock() {
        Ok(cache) => cache,
        Err(poisoned) => poisoned.into_inner(),
    };
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| Regex::new(pattern).ok())
        .as_ref()
        .is_none_or(|regex| regex.is_match(text))
}
