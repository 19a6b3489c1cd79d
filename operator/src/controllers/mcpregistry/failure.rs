//! Why a sync failed. Each failure has a condition reason, a metric label, and says
//! whether waiting can fix it (a source ConfigMap not created yet) or the user must act.

use super::document::Invalid;
use crate::controllers::conditions::Reason;

/// A failed sync; the registry keeps serving the data of its last good sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The spec cannot be synced (checked like the admission webhook does).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The source ConfigMap, key, repository, branch, path or URL does not exist.
    #[error("{message}")]
    SourceNotFound {
        /// What is missing, and where.
        message: String,
        /// A source ConfigMap that may still be created: the ConfigMap watch brings it.
        waiting: bool,
    },
    /// The source could not be read (network, TLS, HTTP error, git protocol).
    #[error("{0}")]
    SourceUnreachable(String),
    /// The document is larger than the operator accepts.
    #[error("{what} is {size} bytes; at most {limit} bytes are accepted")]
    TooLarge {
        /// Which document.
        what: String,
        /// Its size (or the size read before giving up).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document is not a valid registry.
    #[error("invalid registry document: {0}")]
    InvalidDocument(Invalid),
    /// The output ConfigMap exists and belongs to someone else.
    #[error("{0}")]
    OutputConflict(String),
}

impl SyncError {
    /// The `Synced` condition's reason.
    pub fn reason(&self) -> Reason {
        match self {
            Self::InvalidSpec(_) => Reason::InvalidSpec,
            Self::SourceNotFound { .. } => Reason::SourceNotFound,
            Self::SourceUnreachable(_) => Reason::SourceUnreachable,
            Self::TooLarge { .. } => Reason::SourceTooLarge,
            Self::InvalidDocument(_) => Reason::InvalidDocument,
            Self::OutputConflict(_) => Reason::OutputConflict,
        }
    }

    /// Label of the `reason` of the error counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "registry_invalid_spec",
            Self::SourceNotFound { .. } => "registry_source_not_found",
            Self::SourceUnreachable(_) => "registry_source_unreachable",
            Self::TooLarge { .. } => "registry_source_too_large",
            Self::InvalidDocument(_) => "registry_invalid_document",
            Self::OutputConflict(_) => "registry_output_conflict",
        }
    }

    /// Whether the registry is waiting for something that will be reported by a watch,
    /// rather than stuck until someone acts.
    pub fn waiting(&self) -> bool {
        matches!(self, Self::SourceNotFound { waiting: true, .. })
    }
}
