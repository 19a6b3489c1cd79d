//! What can be wrong with a RunConfig: load errors (bytes that are not a RunConfig of a
//! version we understand) and violations (a RunConfig that parses but must not run).

use std::fmt;

use serde::Serialize;

use crate::path::FieldPath;

/// Machine-readable reason of a violation; serialised in CamelCase for the webhook and
/// `thv validate -o json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Reason {
    /// A required field is missing or empty.
    Required,
    /// A value is not one of the allowed values.
    NotSupported,
    /// A number is outside its range.
    OutOfRange,
    /// A value does not have the required syntax.
    InvalidFormat,
    /// A value appears twice where it must be unique.
    Duplicate,
    /// An `http://` URL where TLS is required.
    InsecureUrl,
    /// A Cedar policy does not parse.
    CedarSyntax,
    /// A Cedar policy uses an entity type, action or combination the MCP schema lacks.
    CedarSchema,
    /// A reference to something that does not exist (a tool name, a file).
    UnknownReference,
    /// Two settings contradict each other, or two names collide.
    Conflict,
    /// A file path where RunConfig requires the content inline.
    FilePathNotAllowed,
    /// A setting that is refused in this environment.
    Forbidden,
    /// A CEL rule of the CRD (`x-kubernetes-validations`) fails, as the API server would report.
    CrdRule,
    /// A field the CRD schema does not define; the API server drops it, and `kubectl apply`
    /// (strict field validation, its default) refuses it.
    UnknownField,
    /// An API version or a setting that still works but is going away.
    Deprecated,
    /// A setting that has no effect in this combination.
    Ineffective,
}

/// One problem, located by a path into the document that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Where: a path into the RunConfig (or, after mapping, into a CRD).
    pub path: FieldPath,
    /// Why, for programs.
    pub reason: Reason,
    /// What is wrong, for people.
    pub message: String,
    /// What would be accepted, when that can be said briefly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl Violation {
    /// A violation without an "allowed" hint.
    pub fn new(path: FieldPath, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            path,
            reason,
            message: message.into(),
            allowed: None,
        }
    }

    /// Adds what would be accepted.
    pub fn allowed(mut self, allowed: impl Into<String>) -> Self {
        self.allowed = Some(allowed.into());
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(allowed) = &self.allowed {
            write!(f, "; {allowed}")?;
        }
        Ok(())
    }
}

/// Every problem found in one document. Never empty when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// Records a problem.
    pub fn push(&mut self, violation: Violation) {
        self.0.push(violation);
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Why bytes could not be read as a RunConfig.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("{path}: {message}")]
    Syntax {
        /// Where the parser stopped.
        path: String,
        /// What it found.
        message: String,
    },
    /// `schema_version` is missing.
    #[error("schema_version: missing; a RunConfig must say which schema it follows (this build writes {current})", current = crate::SCHEMA_VERSION)]
    MissingVersion,
    /// A version this build does not know, probably written by a newer release.
    #[error(
        "schema_version: {found:?} is not supported; this build reads {supported} (a newer version needs a newer thv-proxyrunner)"
    )]
    UnsupportedVersion {
        /// The version found.
        found: String,
        /// The versions understood.
        supported: String,
    },
    /// The document is of a known older version but cannot be migrated as written.
    #[error("cannot import this RunConfig:\n{0}")]
    Migration(Violations),
    /// Reading from the reader failed.
    #[error("reading the RunConfig: {0}")]
    Io(#[from] std::io::Error),
}
