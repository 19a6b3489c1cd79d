//! Reading a JSON registry document field by field, collecting every problem with the
//! path where it is (`servers.fetch.image: missing; …`) instead of stopping at the first:
//! a registry author fixes a document in one round.

use std::fmt;

use runconfig::FieldPath;
use serde_json::{Map, Value};

/// One problem in a registry document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, from the document root (`servers.fetch.image`, `data.servers[2].name`).
    pub path: FieldPath,
    /// `<what is wrong>; <what is allowed>`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects problems while reading values.
#[derive(Debug, Default)]
pub struct Reader {
    /// Everything found so far.
    pub problems: Vec<Problem>,
}

/// What a JSON value is, for messages ("found an array").
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Reader {
    /// Records a problem.
    pub fn problem(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// `value` as an object, or a problem saying what was expected.
    pub fn object<'a>(
        &mut self,
        value: &'a Value,
        path: &FieldPath,
        expected: &str,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.problem(path, format!("{}; expected {expected}", kind_of(other)));
                None
            }
        }
    }

    /// `value` as an array, or a problem saying what was expected.
    pub fn array<'a>(
        &mut self,
        value: &'a Value,
        path: &FieldPath,
        expected: &str,
    ) -> Option<&'a [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.problem(path, format!("{}; expected {expected}", kind_of(other)));
                None
            }
        }
    }

    /// The non-empty string at `key`; a problem when it is missing (if `required`), empty
    /// or not a string. `allowed` says what a good value looks like.
    pub fn string(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        path: &FieldPath,
        required: bool,
        allowed: &str,
    ) -> Option<String> {
        let path = path.key(key);
        match object.get(key) {
            None | Some(Value::Null) if required => {
                self.problem(&path, format!("missing; {allowed}"));
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.problem(&path, format!("empty; {allowed}"));
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => {
                self.problem(&path, format!("{}; {allowed}", kind_of(other)));
                None
            }
        }
    }

    /// The list of non-empty strings at `key` (empty when absent).
    pub fn strings(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        path: &FieldPath,
        allowed: &str,
    ) -> Vec<String> {
        let path = path.key(key);
        let Some(value) = object.get(key).filter(|v| !v.is_null()) else {
            return Vec::new();
        };
        let Some(items) = self.array(value, &path, &format!("a list of strings, {allowed}")) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(text) if !text.trim().is_empty() => out.push(text.clone()),
                Value::String(_) => self.problem(&path.index(i), format!("empty; {allowed}")),
                other => self.problem(&path.index(i), format!("{}; {allowed}", kind_of(other))),
            }
        }
        out
    }

    /// The string at `key` parsed by `parse` (which knows the allowed values).
    pub fn parsed<T>(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        path: &FieldPath,
        required: bool,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.string(object, key, path, required, allowed)?;
        let parsed = parse(&text);
        if parsed.is_none() {
            self.problem(
                &path.key(key),
                format!("{text:?} is not allowed; {allowed}"),
            );
        }
        parsed
    }
}

/// `value` with every object's keys sorted, so the normalised document (and its hash)
/// does not depend on the key order of the source.
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_required_string_names_the_field_and_what_is_allowed() {
        let mut reader = Reader::default();
        let object = json!({"description": 3});
        let map = object.as_object().expect("object");
        let path = FieldPath::root().key("servers").key("fetch");
        assert_eq!(reader.string(map, "image", &path, true, "an image"), None);
        assert_eq!(
            reader.string(map, "description", &path, true, "a sentence"),
            None
        );
        let texts: Vec<String> = reader.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            texts,
            [
                "servers.fetch.image: missing; an image",
                "servers.fetch.description: a number; a sentence"
            ]
        );
    }

    #[test]
    fn list_items_are_located_by_index() {
        let mut reader = Reader::default();
        let object = json!({"tags": ["web", 7, ""]});
        let map = object.as_object().expect("object");
        let tags = reader.strings(map, "tags", &FieldPath::root(), "a tag");
        assert_eq!(tags, ["web"]);
        let texts: Vec<String> = reader.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(texts, ["tags[1]: a number; a tag", "tags[2]: empty; a tag"]);
    }

    #[test]
    fn sorting_makes_key_order_irrelevant() {
        let a = sorted(json!({"b": 1, "a": {"d": 2, "c": [ {"z": 1, "y": 2} ]}}));
        let b = sorted(json!({"a": {"c": [ {"y": 2, "z": 1} ], "d": 2}, "b": 1}));
        assert_eq!(
            serde_json::to_string(&a).ok(),
            serde_json::to_string(&b).ok()
        );
    }
}
