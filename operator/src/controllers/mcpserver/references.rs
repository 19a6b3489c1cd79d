//! Which objects an MCPServer references, for the watches that reconcile it when one
//! of them changes.

use api::MCPServer;
use api::mcpserver::{AuthzConfigSource, PermissionProfileType};

/// Kinds an MCPServer can reference by name in its namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// `spec.toolConfigRef`.
    ToolConfig,
    /// `spec.oidcConfigRef`.
    OidcConfig,
    /// `spec.authzConfigRef`.
    AuthzConfig,
    /// `spec.telemetryConfigRef`.
    TelemetryConfig,
    /// An authorization or permission-profile ConfigMap.
    ConfigMap,
    /// A Secret exposed to the MCP server.
    Secret,
}

/// Whether `server` references the object of `kind` named `name` (same namespace).
pub fn references(server: &MCPServer, kind: RefKind, name: &str) -> bool {
    let spec = &server.spec;
    match kind {
        RefKind::ToolConfig => spec
            .tool_config_ref
            .as_ref()
            .is_some_and(|r| r.name == name),
        RefKind::OidcConfig => spec
            .oidc_config_ref
            .as_ref()
            .is_some_and(|r| r.name == name),
        RefKind::AuthzConfig => spec
            .authz_config_ref
            .as_ref()
            .is_some_and(|r| r.name == name),
        RefKind::TelemetryConfig => spec
            .telemetry_config_ref
            .as_ref()
            .is_some_and(|r| r.name == name),
        RefKind::ConfigMap => {
            let authz = spec
                .authz_config
                .as_ref()
                .filter(|a| a.type_ == AuthzConfigSource::ConfigMap)
                .and_then(|a| a.config_map.as_ref())
                .is_some_and(|c| c.name == name);
            let profile = spec
                .permission_profile
                .as_ref()
                .is_some_and(|p| p.type_ == PermissionProfileType::Configmap && p.name == name);
            authz || profile
        }
        RefKind::Secret => spec.secrets.iter().any(|s| s.name == name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::server;

    const FULL: &str = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: s}\nspec:\n  image: a/b:1\n  toolConfigRef: {name: tools}\n  oidcConfigRef: {name: idp, audience: a}\n  telemetryConfigRef: {name: otel}\n  authzConfig: {type: configMap, configMap: {name: policies}}\n  secrets: [{name: token, key: k}]\n";

    #[test]
    fn finds_each_kind_of_reference_by_name() {
        let s = server(FULL);
        for (kind, name) in [
            (RefKind::ToolConfig, "tools"),
            (RefKind::OidcConfig, "idp"),
            (RefKind::TelemetryConfig, "otel"),
            (RefKind::ConfigMap, "policies"),
            (RefKind::Secret, "token"),
        ] {
            assert!(references(&s, kind, name), "{kind:?} {name}");
            assert!(!references(&s, kind, "other"), "{kind:?} other");
        }
        assert!(!references(&s, RefKind::AuthzConfig, "policies"));
    }
}
