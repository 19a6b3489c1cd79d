//! Field paths into a RunConfig (or a CRD), printed as `proxy.authz.policies[1]`.

use std::fmt;

use serde::{Serialize, Serializer};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path from the document root to one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses `a.b[2].c`; keys may not contain `.` or `[`, except inside a bracketed
    /// quoted key (`overrides["my.tool"]`), which this form never needs to produce.
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
            if !key.is_empty() {
                path = path.key(key);
            }
            for index in rest.split('[') {
                if let Ok(i) = index.trim_end_matches(']').parse::<usize>() {
                    path = path.index(i);
                }
            }
        }
        path
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Replaces the leading `prefix` by `replacement`; `None` when `prefix` does not lead.
    pub fn rebase(&self, prefix: &FieldPath, replacement: &FieldPath) -> Option<FieldPath> {
        self.starts_with(prefix).then(|| {
            let mut segments = replacement.0.clone();
            segments.extend_from_slice(&self.0[prefix.0.len()..]);
            FieldPath(segments)
        })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if key.contains(['.', '[', ']', ' ']) || key.is_empty() => {
                    write!(f, "[{key:?}]")?
                }
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_keys_and_indexes() {
        let path = FieldPath::root()
            .key("proxy")
            .key("authz")
            .key("policies")
            .index(1);
        assert_eq!(path.to_string(), "proxy.authz.policies[1]");
        assert_eq!(FieldPath::root().to_string(), ".");
    }

    #[test]
    fn quotes_keys_that_would_be_ambiguous() {
        let path = FieldPath::root()
            .key("tools")
            .key("overrides")
            .key("my.tool");
        assert_eq!(path.to_string(), "tools.overrides[\"my.tool\"]");
    }

    #[test]
    fn parse_round_trips_plain_paths() {
        for text in ["spec.authzConfig.inline.policies[1]", "a", "a[0][1].b"] {
            assert_eq!(FieldPath::parse(text).to_string(), text);
        }
    }

    #[test]
    fn rebase_swaps_the_prefix() {
        let path = FieldPath::parse("proxy.authz.policies[1]");
        let crd = path.rebase(
            &FieldPath::parse("proxy.authz.policies"),
            &FieldPath::parse("spec.authzConfig.inline.policies"),
        );
        assert_eq!(
            crd.map(|p| p.to_string()).as_deref(),
            Some("spec.authzConfig.inline.policies[1]")
        );
        assert!(
            path.rebase(&FieldPath::parse("proxy.oidc"), &FieldPath::root())
                .is_none()
        );
    }
}
