//! Admission of the config kinds (MCPToolConfig, MCPOIDCConfig, MCPAuthzConfig,
//! MCPTelemetryConfig).
//!
//! The object alone is checked by mapping a probe MCPServer that references only it and
//! keeping the problems located inside it: the same mapping and the same runconfig rules
//! as for a real server, so no rule is written twice. Then every MCPServer that
//! references the object is re-checked with the new version in place; an update that
//! would break one is denied, naming the servers.

use std::collections::BTreeSet;

use api::{MCPRemoteProxy, MCPServer, Manifest};
use serde_json::json;

use super::remoteproxy::map_and_validate_remote;
use super::server::{Problem, located};
use super::{Catalog, ConfigKind, Finding, Report, schema};
use crate::Location;
use crate::Referenced;
use runconfig::error::Reason;

pub(super) fn check(object: &Manifest, catalog: &dyn Catalog, report: &mut Report) {
    let Some(kind) = ConfigKind::of(object) else {
        return;
    };
    let Identity {
        name,
        namespace,
        value,
    } = identity(object);
    let inside = |location: &Location| {
        location
            .via
            .as_ref()
            .is_some_and(|via| via.kind == kind.kind() && via.name == name)
    };
    match probe(kind, &name, namespace.as_deref()) {
        Ok(probe) => {
            let refs = Referenced::default().with(object);
            let problems = match probe {
                Probe::Server(server) => located(&server, &refs).0,
                Probe::RemoteProxy(proxy) => {
                    map_and_validate_remote(&proxy, &refs.references()).problems
                }
            };
            for problem in problems.iter().filter(|p| inside(&p.location)) {
                report.error(Finding::from_violation(
                    &problem.location.path,
                    &problem.violation,
                ));
            }
        }
        Err(finding) => report.error(finding),
    }
    report.schema(schema::findings(kind.kind(), &value));

    let mut affected = Vec::new();
    let fronts = catalog
        .servers_referencing(kind, &name)
        .into_iter()
        .map(|server| {
            let current = Referenced::from_catalog(&server, catalog);
            let before = located(&server, &current).0;
            let after = located(&server, &current.with(object)).0;
            (server.metadata.name.clone(), "MCPServer", before, after)
        })
        .chain(
            catalog
                .remote_proxies_referencing(kind, &name)
                .into_iter()
                .map(|proxy| {
                    let current = Referenced::from_catalog_front(&proxy, catalog);
                    let problems = |refs: &Referenced| {
                        map_and_validate_remote(&proxy, &refs.references()).problems
                    };
                    let before = problems(&current);
                    let after = problems(&current.with(object));
                    (proxy.metadata.name.clone(), "MCPRemoteProxy", before, after)
                }),
        );
    for (front_name, front_kind, before, after) in fronts {
        let before: BTreeSet<String> = before.iter().map(|p| p.finding().to_string()).collect();
        let broken: Vec<_> = after
            .iter()
            .filter(|p| !before.contains(&p.finding().to_string()))
            .collect();
        if broken.is_empty() {
            continue;
        }
        let front_name = front_name.unwrap_or_default();
        for Problem {
            location,
            violation,
        } in broken
        {
            let own = Finding::from_violation(&location.path, violation);
            if inside(location) && report.errors.contains(&own) {
                continue; // already reported against the object itself
            }
            let path = if inside(location) {
                location.path.to_string()
            } else {
                "spec".to_owned()
            };
            let mut finding = Finding::from_violation(path, violation);
            finding.message = format!(
                "in {front_kind} {front_name} ({location}): {}",
                finding.message
            );
            report.error(finding);
        }
        affected.push(format!("{front_kind} {front_name}"));
    }
    if !affected.is_empty() {
        report.error(Finding::new(
            "spec",
            Reason::Conflict,
            format!(
                "this {} would make the objects referencing it invalid: {}",
                kind.kind(),
                affected.join(", ")
            ),
            "fix the problems reported for this object, or change those objects first",
        ));
    }
}

/// Name, namespace and JSON form of a config object.
struct Identity {
    name: String,
    namespace: Option<String>,
    value: serde_json::Value,
}

fn identity(object: &Manifest) -> Identity {
    let metadata = object.meta();
    Identity {
        name: metadata.name.clone().unwrap_or_default(),
        namespace: metadata.namespace.clone(),
        value: object.to_value(),
    }
}

/// The object a config object is checked through.
enum Probe {
    Server(Box<MCPServer>),
    /// Outgoing authentication is an MCPRemoteProxy's (an MCPServer refuses it).
    RemoteProxy(Box<MCPRemoteProxy>),
}

/// An MCPServer (an MCPRemoteProxy for an MCPExternalAuthConfig) that references only the
/// `kind` object called `name`. Its own fields are placeholders: only problems located
/// inside the referenced object are kept.
fn probe(kind: ConfigKind, name: &str, namespace: Option<&str>) -> Result<Probe, Finding> {
    let metadata =
        json!({"name": if name.is_empty() { "probe" } else { name }, "namespace": namespace});
    let failed = |e: serde_json::Error| {
        Finding::new(
            "spec",
            Reason::InvalidFormat,
            format!("internal error: cannot build the probe object: {e}"),
            "report this as a bug",
        )
    };
    if kind == ConfigKind::ExternalAuthConfig {
        let probe = json!({
            "apiVersion": format!("{}/{}", api::GROUP, api::VERSION),
            "kind": "MCPRemoteProxy",
            "metadata": metadata,
            "spec": {"remoteUrl": "https://probe.invalid/mcp", "externalAuthConfigRef": {"name": name}},
        });
        return serde_json::from_value(probe)
            .map(|proxy| Probe::RemoteProxy(Box::new(proxy)))
            .map_err(failed);
    }
    let reference = match kind {
        ConfigKind::ToolConfig => json!({"toolConfigRef": {"name": name}}),
        ConfigKind::OidcConfig => json!({"oidcConfigRef": {"name": name, "audience": "probe"}}),
        ConfigKind::AuthzConfig => json!({"authzConfigRef": {"name": name}}),
        ConfigKind::TelemetryConfig => json!({"telemetryConfigRef": {"name": name}}),
        ConfigKind::Group => json!({"groupRef": {"name": name}}),
        ConfigKind::ExternalAuthConfig => json!({"externalAuthConfigRef": {"name": name}}),
        ConfigKind::WebhookConfig => json!({"webhookConfigRef": {"name": name}}),
    };
    let mut spec = json!({"image": "registry.invalid/probe:latest"});
    if let (Some(spec), Some(reference)) = (spec.as_object_mut(), reference.as_object()) {
        spec.extend(reference.clone());
    }
    let probe = json!({
        "apiVersion": format!("{}/{}", api::GROUP, api::VERSION),
        "kind": "MCPServer",
        "metadata": metadata,
        "spec": spec,
    });
    serde_json::from_value(probe)
        .map(|server| Probe::Server(Box::new(server)))
        .map_err(failed)
}
