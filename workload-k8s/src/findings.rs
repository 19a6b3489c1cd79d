//! Findings: errors that refuse a build and notes that tell the caller what differs from
//! the RunConfig (to become a status condition or an admission warning).

use runconfig::{FieldPath, Reason, Violation, Violations};
use serde::Serialize;

/// Whether a finding refuses the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Severity {
    /// The StatefulSet is not built: the API server or Pod Security admission would
    /// refuse it or its pod.
    Error,
    /// Built, but not exactly as written (e.g. stdio replicas capped at 1).
    Note,
}

/// One finding, located by a RunConfig path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or note.
    pub severity: Severity,
    /// Where, why, and what would be accepted.
    #[serde(flatten)]
    pub violation: Violation,
}

/// Collects findings while the objects are built.
#[derive(Debug, Default)]
pub(crate) struct Findings(pub(crate) Vec<Finding>);

impl Findings {
    pub(crate) fn error(
        &mut self,
        path: FieldPath,
        reason: Reason,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.push(Severity::Error, path, reason, message, allowed);
    }

    pub(crate) fn note(
        &mut self,
        path: FieldPath,
        reason: Reason,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.push(Severity::Note, path, reason, message, allowed);
    }

    fn push(
        &mut self,
        severity: Severity,
        path: FieldPath,
        reason: Reason,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.0.push(Finding {
            severity,
            violation: Violation::new(path, reason, message).allowed(allowed),
        });
    }

    /// The violations of one severity, in the order found.
    pub(crate) fn of(&self, severity: Severity) -> Vec<Violation> {
        self.0
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.violation.clone())
            .collect()
    }

    /// `Err` with every error when there is one.
    pub(crate) fn errors(&self) -> Result<(), Violations> {
        let errors = self.of(Severity::Error);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Violations(errors))
        }
    }
}
