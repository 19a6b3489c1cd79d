//! What an MCPServer references, for the watches that reconcile it when one of them
//! changes and the per-reference status conditions. The config kinds come from
//! admission's one table ([`ConfigKind`]), the ConfigMap keys from its lookups.

use admission::{ConfigKind, authz_config_map, permission_profile_config_map};
use api::MCPServer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use crate::controllers::conditions::{ConditionStatus, raw_condition};

/// Kinds an MCPServer can reference by name in its namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// A config object (`spec.toolConfigRef`, `spec.oidcConfigRef`, …).
    Config(ConfigKind),
    /// An authorization or permission-profile ConfigMap.
    ConfigMap,
    /// A Secret exposed to the MCP server.
    Secret,
}

/// Whether `server` references the object of `kind` named `name` (same namespace).
pub fn references(server: &MCPServer, kind: RefKind, name: &str) -> bool {
    match kind {
        RefKind::Config(kind) => admission::references(server, kind, name),
        RefKind::ConfigMap => [
            authz_config_map(server),
            permission_profile_config_map(server),
        ]
        .iter()
        .flatten()
        .any(|map| map.name == name),
        RefKind::Secret => server.spec.secrets.iter().any(|s| s.name == name),
    }
}

/// An object that references others by name, for the watches that reconcile it when
/// one of them changes.
pub trait Referencing {
    /// Whether it references the object of `kind` named `name` (same namespace).
    fn references(&self, kind: RefKind, name: &str) -> bool;
}

impl Referencing for MCPServer {
    fn references(&self, kind: RefKind, name: &str) -> bool {
        references(self, kind, name)
    }
}

impl Referencing for api::MCPRemoteProxy {
    fn references(&self, kind: RefKind, name: &str) -> bool {
        match kind {
            RefKind::Config(kind) => admission::references(self, kind, name),
            RefKind::ConfigMap => authz_config_map(self).is_some_and(|map| map.name == name),
            // Header values; its OIDC client secret is re-read on the periodic resync,
            // as an MCPServer's.
            RefKind::Secret => self.spec.header_forward.iter().any(|f| {
                f.add_headers_from_secret
                    .iter()
                    .any(|h| h.value_secret_ref.name == name)
            }),
        }
    }
}

/// A referenced config object, found or not: one `<Kind>RefValidated` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefState {
    /// Which reference.
    pub kind: ConfigKind,
    /// The referenced name.
    pub name: String,
    /// Whether the object exists.
    pub found: bool,
}

impl RefState {
    /// The state of every config reference of `server` (an MCPServer or an
    /// MCPRemoteProxy); `found` says which exist.
    pub fn of(server: &impl admission::Fronted, found: impl Fn(ConfigKind) -> bool) -> Vec<Self> {
        ConfigKind::ALL
            .into_iter()
            .filter_map(|kind| {
                Some(Self {
                    kind,
                    name: kind.referenced_by(server)?.to_owned(),
                    found: found(kind),
                })
            })
            .collect()
    }

    /// `ToolConfigRefValidated` with reason `ToolConfigRefValid` or `ToolConfigRefNotFound`.
    pub fn condition(&self, generation: Option<i64>, now: Timestamp) -> Condition {
        let prefix = condition_prefix(self.kind);
        let (kind, name) = (self.kind.kind(), &self.name);
        let (status, reason, message) = if self.found {
            // ToolHive spells the group's reason differently from the config kinds'.
            let valid = match self.kind {
                ConfigKind::Group => "IsValid",
                _ => "Valid",
            };
            (
                ConditionStatus::True,
                format!("{prefix}{valid}"),
                format!("{kind} {name} found"),
            )
        } else {
            (
                ConditionStatus::False,
                format!("{prefix}NotFound"),
                format!("{kind} {name} does not exist in this namespace"),
            )
        };
        raw_condition(
            &format!("{prefix}Validated"),
            status.as_str(),
            &reason,
            &message,
            generation,
            now,
        )
    }
}

/// How the status names a reference (ToolHive's condition types).
fn condition_prefix(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::ToolConfig => "ToolConfigRef",
        ConfigKind::OidcConfig => "OIDCConfigRef",
        ConfigKind::AuthzConfig => "AuthzConfigRef",
        ConfigKind::TelemetryConfig => "TelemetryConfigRef",
        ConfigKind::Group => "GroupRef",
        // ToolHive's MCPRemoteProxy condition: ExternalAuthConfigValidated.
        ConfigKind::ExternalAuthConfig => "ExternalAuthConfig",
        ConfigKind::WebhookConfig => "WebhookConfigRef",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::server;

    const FULL: &str = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: s}\nspec:\n  image: a/b:1\n  groupRef: {name: team}\n  toolConfigRef: {name: tools}\n  oidcConfigRef: {name: idp, audience: a}\n  telemetryConfigRef: {name: otel}\n  authzConfig: {type: configMap, configMap: {name: policies}}\n  secrets: [{name: token, key: k}]\n";

    #[test]
    fn finds_each_kind_of_reference_by_name() {
        let s = server(FULL);
        for (kind, name) in [
            (RefKind::Config(ConfigKind::ToolConfig), "tools"),
            (RefKind::Config(ConfigKind::OidcConfig), "idp"),
            (RefKind::Config(ConfigKind::TelemetryConfig), "otel"),
            (RefKind::Config(ConfigKind::Group), "team"),
            (RefKind::ConfigMap, "policies"),
            (RefKind::Secret, "token"),
        ] {
            assert!(references(&s, kind, name), "{kind:?} {name}");
            assert!(!references(&s, kind, "other"), "{kind:?} other");
        }
        assert!(!references(
            &s,
            RefKind::Config(ConfigKind::AuthzConfig),
            "policies"
        ));
    }

    #[test]
    fn reference_conditions_keep_toolhive_names() {
        let s = server(FULL);
        let states = RefState::of(&s, |kind| kind != ConfigKind::OidcConfig);
        let spelled: Vec<_> = states
            .iter()
            .map(|r| {
                let c = r.condition(Some(1), Timestamp::UNIX_EPOCH);
                (c.type_, c.status, c.reason)
            })
            .collect();
        let expected = [
            ("ToolConfigRefValidated", "True", "ToolConfigRefValid"),
            ("OIDCConfigRefValidated", "False", "OIDCConfigRefNotFound"),
            (
                "TelemetryConfigRefValidated",
                "True",
                "TelemetryConfigRefValid",
            ),
            ("GroupRefValidated", "True", "GroupRefIsValid"),
        ]
        .map(|(t, s, r)| (t.to_owned(), s.to_owned(), r.to_owned()));
        assert_eq!(spelled, expected);
    }
}
