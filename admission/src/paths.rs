//! Where a RunConfig field came from: a field of the MCPServer, or of a config object it
//! references. Lets the webhook report `spec.authzConfig.inline.policies[1]` for a
//! violation found at `proxy.authz.policies[1]`.

use std::fmt;

use runconfig::path::FieldPath;

/// A field in a Kubernetes object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// `None` for the MCPServer itself; otherwise the referenced object's kind and name
    /// and the MCPServer field that references it.
    pub via: Option<Via>,
    /// Path inside that object.
    pub path: FieldPath,
}

/// A referenced object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The MCPServer field holding the reference, e.g. `spec.toolConfigRef`.
    pub reference: FieldPath,
    /// Kind of the referenced object.
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.via {
            None => write!(f, "{}", self.path),
            Some(via) => write!(
                f,
                "{} ({} {}): {}",
                via.reference, via.kind, via.name, self.path
            ),
        }
    }
}

/// RunConfig path prefixes and the object fields they came from.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    entries: Vec<(FieldPath, Location)>,
}

impl PathMap {
    /// Records that `runconfig` (and everything below it) came from `path` in the MCPServer.
    pub fn local(&mut self, runconfig: &str, path: &str) {
        self.entries.push((
            FieldPath::parse(runconfig),
            Location {
                via: None,
                path: FieldPath::parse(path),
            },
        ));
    }

    /// Records that `runconfig` came from `path` in a referenced object.
    pub fn referenced(
        &mut self,
        runconfig: &str,
        reference: &str,
        kind: &str,
        name: &str,
        path: &str,
    ) {
        let via = Via {
            reference: FieldPath::parse(reference),
            kind: kind.to_owned(),
            name: name.to_owned(),
        };
        self.entries.push((
            FieldPath::parse(runconfig),
            Location {
                via: Some(via),
                path: FieldPath::parse(path),
            },
        ));
    }

    /// Records a mapping between already-built paths.
    pub fn insert(&mut self, runconfig: FieldPath, location: Location) {
        self.entries.push((runconfig, location));
    }

    /// Where a RunConfig path came from: the longest recorded prefix, with the rest of the
    /// path appended. A path nothing maps to is reported against `spec`.
    pub fn locate(&self, runconfig: &FieldPath) -> Location {
        self.entries
            .iter()
            .filter(|(prefix, _)| runconfig.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.segments().len())
            .and_then(|(prefix, location)| {
                runconfig
                    .rebase(prefix, &location.path)
                    .map(|path| Location {
                        via: location.via.clone(),
                        path,
                    })
            })
            .unwrap_or_else(|| Location {
                via: None,
                path: FieldPath::parse("spec"),
            })
    }
}
