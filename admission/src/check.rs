//! Admission checks per kind: the one implementation behind the validating webhook and
//! `thv validate`, so an object `thv validate` passes is one `kubectl apply` admits.
//!
//! [`check_manifest`] runs, for one object of our API group:
//! - the CRD's CEL rules and schema bounds, exactly as the API server would ([`schema`]);
//! - for an MCPServer, the RunConfig mapping with its references from a [`Catalog`] and
//!   [`runconfig::validate`], every problem located at the CRD field the user wrote;
//! - for a config kind (MCPToolConfig, MCPOIDCConfig, MCPAuthzConfig,
//!   MCPTelemetryConfig), the same runconfig rules on the object alone, and a re-check of
//!   every MCPServer referencing it with the new object in place;
//! - for an MCPRegistry, its source, sync interval and filter rules.
//!
//! Nothing here does I/O: the caller supplies referenced objects through [`Catalog`].

mod catalog;
mod config;
mod registry;
mod remoteproxy;
mod schema;
mod server;

use std::fmt;

use api::{
    MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig, MCPRemoteProxy, MCPServer,
    MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig, Manifest, ManifestError,
};
use serde::Serialize;

use crate::front::Fronted;

use runconfig::error::{Reason, Violation};

pub use catalog::InMemoryCatalog;
pub use registry::{MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, go_duration};
pub use remoteproxy::map_and_validate_remote;
pub use schema::unknown_fields;
pub use server::{CheckedServer, Problem, map_and_validate, stdio_replicas_capped};

/// The config kinds an MCPServer references by name in its namespace: the one table of
/// them (field, kind, and where the name is), which the mapping, the admission checks,
/// the webhook's catalog and the operator's dereference stage, watches and status read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigKind {
    /// `spec.toolConfigRef` → MCPToolConfig.
    ToolConfig,
    /// `spec.oidcConfigRef` → MCPOIDCConfig.
    OidcConfig,
    /// `spec.authzConfigRef` → MCPAuthzConfig.
    AuthzConfig,
    /// `spec.telemetryConfigRef` → MCPTelemetryConfig.
    TelemetryConfig,
    /// `spec.groupRef` → MCPGroup: nothing of it enters the RunConfig, but the server
    /// waits for it like for the others.
    Group,
    /// `spec.externalAuthConfigRef` → MCPExternalAuthConfig.
    ExternalAuthConfig,
    /// `spec.webhookConfigRef` → MCPWebhookConfig.
    WebhookConfig,
}

impl ConfigKind {
    /// Every config kind, in the order the status lists their conditions.
    pub const ALL: [Self; 7] = [
        Self::ToolConfig,
        Self::OidcConfig,
        Self::AuthzConfig,
        Self::TelemetryConfig,
        Self::Group,
        Self::ExternalAuthConfig,
        Self::WebhookConfig,
    ];

    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::ToolConfig => "MCPToolConfig",
            Self::OidcConfig => "MCPOIDCConfig",
            Self::AuthzConfig => "MCPAuthzConfig",
            Self::TelemetryConfig => "MCPTelemetryConfig",
            Self::Group => "MCPGroup",
            Self::ExternalAuthConfig => "MCPExternalAuthConfig",
            Self::WebhookConfig => "MCPWebhookConfig",
        }
    }

    /// The MCPServer field holding the reference.
    pub fn field(self) -> &'static str {
        match self {
            Self::ToolConfig => "spec.toolConfigRef",
            Self::OidcConfig => "spec.oidcConfigRef",
            Self::AuthzConfig => "spec.authzConfigRef",
            Self::TelemetryConfig => "spec.telemetryConfigRef",
            Self::Group => "spec.groupRef",
            Self::ExternalAuthConfig => "spec.externalAuthConfigRef",
            Self::WebhookConfig => "spec.webhookConfigRef",
        }
    }

    /// The name `server` references of this kind, if any.
    pub fn referenced_by(self, object: &impl Fronted) -> Option<&str> {
        let front = object.front();
        match self {
            Self::ToolConfig => front.tool_config_ref.map(|r| r.name.as_str()),
            Self::OidcConfig => front.oidc_config_ref.map(|r| r.name.as_str()),
            Self::AuthzConfig => front.authz_config_ref.map(|r| r.name.as_str()),
            Self::TelemetryConfig => front.telemetry_config_ref.map(|r| r.name.as_str()),
            Self::Group => front.group_ref.map(|r| r.name.as_str()),
            Self::ExternalAuthConfig => front.external_auth_config_ref.map(|r| r.name.as_str()),
            Self::WebhookConfig => front.webhook_config_ref.map(|r| r.name.as_str()),
        }
    }

    /// The config kind of a manifest; `None` for MCPServer and MCPRegistry.
    pub fn of(object: &Manifest) -> Option<Self> {
        match object {
            Manifest::MCPToolConfig(_) => Some(Self::ToolConfig),
            Manifest::MCPOIDCConfig(_) => Some(Self::OidcConfig),
            Manifest::MCPAuthzConfig(_) => Some(Self::AuthzConfig),
            Manifest::MCPTelemetryConfig(_) => Some(Self::TelemetryConfig),
            Manifest::MCPGroup(_) => Some(Self::Group),
            Manifest::MCPExternalAuthConfig(_) => Some(Self::ExternalAuthConfig),
            Manifest::MCPWebhookConfig(_) => Some(Self::WebhookConfig),
            Manifest::MCPServer(_) | Manifest::MCPRemoteProxy(_) | Manifest::MCPRegistry(_) => None,
        }
    }
}

/// Whether `server` references the `kind` object called `name` (same namespace assumed).
/// Catalog implementations use it to answer [`Catalog::servers_referencing`].
pub fn references(object: &impl Fronted, kind: ConfigKind, name: &str) -> bool {
    kind.referenced_by(object) == Some(name)
}

/// The objects in the namespace of the object being checked. The webhook implements it
/// with lookups through the API server (its watch cache: `resourceVersion=0`); `thv
/// validate` over the files it was given. `None` means "does not exist (yet)".
pub trait Catalog {
    /// The MCPToolConfig called `name`.
    fn tool_config(&self, name: &str) -> Option<MCPToolConfig>;
    /// The MCPOIDCConfig called `name`.
    fn oidc_config(&self, name: &str) -> Option<MCPOIDCConfig>;
    /// The MCPAuthzConfig called `name`.
    fn authz_config(&self, name: &str) -> Option<MCPAuthzConfig>;
    /// The MCPTelemetryConfig called `name`.
    fn telemetry_config(&self, name: &str) -> Option<MCPTelemetryConfig>;
    /// The MCPGroup called `name`.
    fn group(&self, name: &str) -> Option<MCPGroup>;
    /// The MCPExternalAuthConfig called `name`.
    fn external_auth_config(&self, name: &str) -> Option<MCPExternalAuthConfig>;
    /// The MCPWebhookConfig called `name`.
    fn webhook_config(&self, name: &str) -> Option<MCPWebhookConfig>;
    /// Whether an MCPServer called `name` exists.
    fn server_exists(&self, name: &str) -> bool;
    /// Whether an MCPRemoteProxy called `name` exists.
    fn remote_proxy_exists(&self, name: &str) -> bool;
    /// The value of `key` in the ConfigMap called `name`.
    fn config_map_data(&self, name: &str, key: &str) -> Option<String>;
    /// Every MCPServer referencing the `kind` object called `name` (see [`references`]).
    fn servers_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPServer>;
    /// Every MCPRemoteProxy referencing the `kind` object called `name`.
    fn remote_proxies_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPRemoteProxy>;
}

/// One problem, located by a CRD field path such as `spec.authzConfig.inline.policies[1]`
/// or, inside a referenced object, `spec.toolConfigRef (MCPToolConfig x): spec.toolsFilter[1]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Where.
    pub path: String,
    /// `<what is wrong>; <what is allowed>`.
    pub message: String,
    /// Why, for programs.
    pub reason: Reason,
}

impl Finding {
    /// A finding whose message says what is wrong and what would be accepted.
    pub fn new(
        path: impl fmt::Display,
        reason: Reason,
        wrong: impl fmt::Display,
        allowed: impl fmt::Display,
    ) -> Self {
        Self {
            path: path.to_string(),
            message: format!("{wrong}; {allowed}"),
            reason,
        }
    }

    /// A runconfig violation, reported at `path`.
    pub fn from_violation(path: impl fmt::Display, violation: &Violation) -> Self {
        let message = match &violation.allowed {
            Some(allowed) => format!("{}; {allowed}", violation.message),
            None => violation.message.clone(),
        };
        Self {
            path: path.to_string(),
            message,
            reason: violation.reason,
        }
    }
}

/// A manifest that cannot be read as its kind, reported at the field the parser names;
/// a known kind at an apiVersion we do not serve is reported at `apiVersion`.
impl From<ManifestError> for Finding {
    fn from(error: ManifestError) -> Self {
        match error {
            ManifestError::Field { path, message } => Self {
                path: if path.is_empty() {
                    ".".to_owned()
                } else {
                    path
                },
                message,
                reason: Reason::InvalidFormat,
            },
            ManifestError::UnknownKind { api_version, kind }
                if api::manifest::KINDS.contains(&kind.as_str()) =>
            {
                Self::new(
                    "apiVersion",
                    Reason::NotSupported,
                    format!("{api_version} is not a served version of {kind}"),
                    format!(
                        "{}/{} (or the deprecated {})",
                        api::GROUP,
                        api::VERSION,
                        api::DEPRECATED_VERSION
                    ),
                )
            }
            unknown @ ManifestError::UnknownKind { .. } => Self {
                path: "kind".to_owned(),
                message: unknown.to_string(),
                reason: Reason::NotSupported,
            },
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The outcome of checking one object: errors deny it, warnings are shown (the webhook
/// sends `warning.to_string()` as admission warnings; `kubectl` prints them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems that deny the object.
    pub errors: Vec<Finding>,
    /// Settings that are accepted but deprecated, ineffective or not resolvable yet.
    pub warnings: Vec<Finding>,
}

impl Report {
    /// Whether the object is admitted.
    pub fn is_allowed(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds an error unless the same one is already there.
    fn error(&mut self, finding: Finding) {
        if !self.errors.contains(&finding) {
            self.errors.push(finding);
        }
    }

    /// Adds a warning unless the same one is already there.
    fn warn(&mut self, finding: Finding) {
        if !self.warnings.contains(&finding) {
            self.warnings.push(finding);
        }
    }

    /// Adds schema findings, except where a runconfig rule already reported the same
    /// field: its message is the more specific one.
    fn schema(&mut self, findings: Vec<Finding>) {
        for finding in findings {
            if !self.errors.iter().any(|e| e.path == finding.path) {
                self.error(finding);
            }
        }
    }
}

/// Checks one object of our API group, served as `api_version` (`toolhive.stacklok.dev/v1beta1`
/// or the deprecated `…/v1alpha1`; the typed object does not keep it), against the objects
/// of its namespace in `catalog`.
pub fn check_manifest(object: &Manifest, api_version: &str, catalog: &dyn Catalog) -> Report {
    let mut report = Report::default();
    if api_version.rsplit('/').next() == Some(api::DEPRECATED_VERSION) {
        let kind = object.kind();
        report.warn(Finding::new(
            "apiVersion",
            Reason::Deprecated,
            format!(
                "{}/{} {kind} is deprecated",
                api::GROUP,
                api::DEPRECATED_VERSION
            ),
            format!("use {}/{} (same fields)", api::GROUP, api::VERSION),
        ));
    }
    match object {
        Manifest::MCPServer(server) => server::check(server, catalog, &mut report),
        Manifest::MCPRemoteProxy(proxy) => remoteproxy::check(proxy, catalog, &mut report),
        Manifest::MCPRegistry(registry) => registry::check(registry, catalog, &mut report),
        Manifest::MCPToolConfig(_)
        | Manifest::MCPOIDCConfig(_)
        | Manifest::MCPAuthzConfig(_)
        | Manifest::MCPTelemetryConfig(_)
        | Manifest::MCPGroup(_)
        | Manifest::MCPExternalAuthConfig(_)
        | Manifest::MCPWebhookConfig(_) => config::check(object, catalog, &mut report),
    }
    report
}

#[cfg(test)]
mod tests;
