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
    /// Whether the API server refused a write because the object's namespace is being
    /// deleted (a create there is refused until the namespace is gone).
    pub fn namespace_terminating(&self) -> bool {
        matches!(self, Self::Kube(kube::Error::Api(status))
        if status.details.as_ref().is_some_and(|details| {
            details.causes.iter().any(|cause| cause.reason == "NamespaceTerminating")
        }))
    }

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

#[cfg(test)]
mod tests {
    use super::Error;

    /// The API server's answer to a create in a namespace being deleted (v1.36).
    const TERMINATING: &str = r#"{"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "configmaps \"y\" is forbidden: unable to create new content in namespace term-test because it is being terminated",
        "details": {"name": "y", "kind": "configmaps", "causes": [{"reason": "NamespaceTerminating",
            "message": "namespace term-test is being terminated", "field": "metadata.namespace"}]}}"#;

    fn refused(answer: &str) -> Error {
        let status: kube::core::Status = serde_json::from_str(answer).expect("a Status");
        Error::Kube(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn a_write_refused_because_the_namespace_is_being_deleted_is_told_apart() {
        assert!(refused(TERMINATING).namespace_terminating());
        let forbidden = r#"{"kind": "Status", "status": "Failure", "reason": "Forbidden",
            "code": 403, "message": "configmaps \"y\" is forbidden: User cannot create"}"#;
        assert!(!refused(forbidden).namespace_terminating());
        assert!(!Error::MissingObjectKey("metadata.name").namespace_terminating());
    }
}
