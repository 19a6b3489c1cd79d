//! The operator's error type; each variant has a metric label and an event reason.

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object the reconcile needs could not be serialised (a bug).
    #[error("serialising {what}: {source}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// The object lacks a field every stored object has (name, namespace, uid).
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),
    /// A registry source could not be read or parsed.
    #[error("registry sync: {0}")]
    Registry(String),
}

impl Error {
    /// Label for the `reason` of the error counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Serialize { .. } => "serialize",
            Self::MissingObjectKey(_) => "missing_object_key",
            Self::Registry(_) => "registry",
        }
    }
}
