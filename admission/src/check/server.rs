//! MCPServer admission: the CRD rules, then exactly the RunConfig the operator would
//! write (with the referenced objects that exist) through [`runconfig::validate`], every
//! problem located at the field the user wrote.

use api::mcpserver::{ProxyMode, Transport};
use api::{MCPServer, Manifest};

use super::{Catalog, ConfigKind, Finding, Report, schema};
use crate::front::Fronted;
use crate::service::{MAX_SERVER_NAME_LENGTH, proxy_service_name};
use crate::{
    Location, Mapped, MissingReference, Referenced, References, authz_config_map, from_mcpserver,
    permission_profile_config_map,
};
use runconfig::config::Workload;
use runconfig::error::{Reason, Violation};
use runconfig::validate::is_dns_label;

impl Referenced {
    /// Looks up everything `server` references.
    pub fn from_catalog(server: &MCPServer, catalog: &dyn Catalog) -> Self {
        let data = |map: Option<crate::ConfigMapKey>| {
            map.and_then(|m| catalog.config_map_data(&m.name, &m.key))
        };
        Self {
            permission_profile_map: data(permission_profile_config_map(server)),
            ..Self::from_catalog_front(server, catalog)
        }
    }

    /// Looks up everything `object` references through the fields both kinds share
    /// (all an MCPRemoteProxy references).
    pub fn from_catalog_front(object: &impl Fronted, catalog: &dyn Catalog) -> Self {
        let data = |map: Option<crate::ConfigMapKey>| {
            map.and_then(|m| catalog.config_map_data(&m.name, &m.key))
        };
        let get = |kind: ConfigKind| kind.referenced_by(object);
        let oidc_config = get(ConfigKind::OidcConfig).and_then(|n| catalog.oidc_config(n));
        let oidc_ca_bundle = oidc_config
            .as_ref()
            .and_then(crate::oidc_ca_bundle_map)
            .and_then(|(map, _)| catalog.config_map_data(&map.name, &map.key));
        let telemetry_config =
            get(ConfigKind::TelemetryConfig).and_then(|n| catalog.telemetry_config(n));
        let telemetry_ca_bundle = telemetry_config
            .as_ref()
            .and_then(crate::telemetry_ca_bundle_map)
            .and_then(|(map, _)| catalog.config_map_data(&map.name, &map.key));
        Self {
            tool_config: get(ConfigKind::ToolConfig).and_then(|n| catalog.tool_config(n)),
            oidc_config,
            oidc_ca_bundle,
            authz_config: get(ConfigKind::AuthzConfig).and_then(|n| catalog.authz_config(n)),
            telemetry_config,
            telemetry_ca_bundle,
            group: get(ConfigKind::Group).and_then(|n| catalog.group(n)),
            external_auth_config: get(ConfigKind::ExternalAuthConfig)
                .and_then(|n| catalog.external_auth_config(n)),
            webhook_config: get(ConfigKind::WebhookConfig).and_then(|n| catalog.webhook_config(n)),
            authz_config_map: data(authz_config_map(object)),
            permission_profile_map: None,
        }
    }

    /// The same references with `object` in place of the one of its kind.
    pub fn with(mut self, object: &Manifest) -> Self {
        match object {
            Manifest::MCPToolConfig(o) => self.tool_config = Some(o.clone()),
            Manifest::MCPOIDCConfig(o) => self.oidc_config = Some(o.clone()),
            Manifest::MCPAuthzConfig(o) => self.authz_config = Some(o.clone()),
            Manifest::MCPTelemetryConfig(o) => self.telemetry_config = Some(o.clone()),
            Manifest::MCPGroup(o) => self.group = Some(o.clone()),
            Manifest::MCPExternalAuthConfig(o) => self.external_auth_config = Some(o.clone()),
            Manifest::MCPWebhookConfig(o) => self.webhook_config = Some(o.clone()),
            Manifest::MCPServer(_) | Manifest::MCPRemoteProxy(_) | Manifest::MCPRegistry(_) => {}
        }
        self
    }
}

/// A runconfig violation located at the CRD field it came from.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The CRD field (possibly inside a referenced object).
    pub location: Location,
    /// What is wrong, with its reason.
    pub violation: Violation,
}

impl Problem {
    /// The finding at the problem's full location.
    pub fn finding(&self) -> Finding {
        Finding::from_violation(&self.location, &self.violation)
    }
}

/// An MCPServer's RunConfig with what is wrong with it, in CRD terms.
#[derive(Clone, Debug)]
pub struct CheckedServer {
    /// The mapping: the RunConfig (valid when `problems` is empty and nothing is missing),
    /// its path map and the missing references.
    pub mapped: Mapped,
    /// Every problem with the CRD field it came from. Problems inside a referenced object
    /// that does not exist are left out: they are artifacts of its absence, and the
    /// missing reference is reported on its own (`mapped.missing`).
    pub problems: Vec<Problem>,
}

/// Maps `server` with the referenced objects that exist and validates the result with
/// [`runconfig::validate`]: the MCPServer half of [`super::check_manifest`], for callers
/// that also need the RunConfig (the operator's validate stage).
pub fn map_and_validate(server: &MCPServer, refs: &References<'_>) -> CheckedServer {
    validate_mapped(from_mcpserver(server, refs))
}

/// Validates a mapped RunConfig and locates every problem at the CRD field it came from.
pub(super) fn validate_mapped(mapped: Mapped) -> CheckedServer {
    let mut problems: Vec<Violation> = mapped.problems.iter().cloned().collect();
    match runconfig::validate(&mapped.config) {
        Err(violations) => problems.extend(violations),
        // What the proxy will build the MCP server's StatefulSet from, checked by the
        // same builder: a spec whose pod could not be created is refused here, not in
        // its log. Only for a valid RunConfig: an invalid one's errors come first and
        // are not repeated at coarser paths. A remote workload has no pod.
        Ok(_) if matches!(mapped.config.workload, Workload::Remote(_)) => {}
        Ok(_) => problems.extend(
            workload_k8s::check(&mapped.config)
                .into_iter()
                .filter(|f| f.severity == workload_k8s::Severity::Error)
                .map(|f| f.violation),
        ),
    }
    let absent = |location: &Location| {
        location.via.as_ref().is_some_and(|via| {
            mapped
                .missing
                .iter()
                .any(|m| m.kind.as_str() == via.kind && m.name == via.name)
        })
    };
    let problems = problems
        .into_iter()
        .map(|violation| Problem {
            location: mapped.paths.locate(&violation.path),
            violation,
        })
        .filter(|p| !absent(&p.location))
        .collect();
    CheckedServer { mapped, problems }
}

/// [`map_and_validate`] with references fetched from a catalog.
pub(super) fn located(
    server: &MCPServer,
    fetched: &Referenced,
) -> (Vec<Problem>, Vec<MissingReference>) {
    let checked = map_and_validate(server, &fetched.references());
    (checked.problems, checked.mapped.missing)
}

pub(super) fn check(server: &MCPServer, catalog: &dyn Catalog, report: &mut Report) {
    let schema_findings = match serde_json::to_value(server) {
        Ok(object) => schema::findings("MCPServer", &object),
        Err(e) => vec![Finding::new(".", Reason::InvalidFormat, e, "an MCPServer")],
    };
    let name = server.metadata.name.as_deref().unwrap_or_default();
    if is_dns_label(name) && name.len() > MAX_SERVER_NAME_LENGTH {
        report.error(Finding::new(
            "metadata.name",
            Reason::OutOfRange,
            format!(
                "the name has {} characters, so the Service {} would exceed 63",
                name.len(),
                proxy_service_name(name)
            ),
            format!("at most {MAX_SERVER_NAME_LENGTH} characters"),
        ));
    }
    let clash = std::iter::once(name)
        .chain(name.strip_suffix("-remote"))
        .find(|proxy| catalog.remote_proxy_exists(proxy));
    if let Some(clash) = clash {
        report.error(Finding::new(
            "metadata.name",
            Reason::Conflict,
            format!("the MCPRemoteProxy {clash} of this namespace would share this server's Deployment, ConfigMap or Service"),
            "another name",
        ));
    }
    let (problems, missing) = located(server, &Referenced::from_catalog(server, catalog));
    for problem in &problems {
        report.error(problem.finding());
    }
    report.schema(schema_findings);
    front_warnings(&server.front(), &missing, report);
    let spec = &server.spec;
    if spec.transport == Transport::StreamableHttp && spec.proxy_mode == ProxyMode::Sse {
        report.warn(Finding::new(
            "spec.proxyMode",
            Reason::Ineffective,
            "proxyMode is ignored for a streamable-http server, which is exposed with its own transport",
            "remove proxyMode, or use transport stdio to have the proxy convert",
        ));
    }
    if let Some(replicas) = stdio_replicas_capped(server) {
        report.warn(Finding::new(
            "spec.replicas",
            Reason::Ineffective,
            format!("{replicas} proxy replicas of a stdio server: running 1"),
            "at most 1: one proxy attaches to the server's stdin and stdout (ToolHive caps it the same way)",
        ));
    }
    let redis = spec
        .session_storage
        .as_ref()
        .is_some_and(|s| s.provider == api::common::SessionStorageProvider::Redis);
    if let Some(replicas) = spec
        .replicas
        .filter(|r| *r > 1 && spec.transport != Transport::Stdio && !redis)
    {
        report.warn(Finding::new(
            "spec.replicas",
            Reason::Ineffective,
            format!("{replicas} proxy replicas without shared session storage: a request that reaches another replica than its session's is answered \"session not found\""),
            "sessionStorage {provider: redis, address: host:port}, or sessionAffinity ClientIP (the default) to keep each client on one replica",
        ));
    }
    if let Some(replicas) = spec
        .backend_replicas
        .filter(|r| *r > 1 && spec.transport == Transport::Stdio)
    {
        report.warn(Finding::new(
            "spec.backendReplicas",
            Reason::Ineffective,
            format!("{replicas} replicas of a stdio server: running 1"),
            "at most 1: the proxy attaches to a single process's stdin and stdout",
        ));
    }
}

/// `spec.replicas` when it asks for more than one proxy of a stdio server, which the
/// operator caps at 1 (ToolHive's `StdioReplicaCapped`).
pub fn stdio_replicas_capped(server: &MCPServer) -> Option<i32> {
    server
        .spec
        .replicas
        .filter(|r| *r > 1 && server.spec.transport == Transport::Stdio)
}

/// The warnings both kinds get: references that do not exist yet, settings without effect.
pub(super) fn front_warnings(
    front: &crate::Front<'_>,
    missing: &[MissingReference],
    report: &mut Report,
) {
    let kind = front.kind.kind();
    let what = match front.kind {
        crate::FrontKind::Server => "server",
        crate::FrontKind::RemoteProxy => "proxy",
    };
    for reference in missing {
        report.warn(Finding::new(
            &reference.field,
            Reason::UnknownReference,
            format!("{} {} does not exist yet", reference.kind, reference.name),
            format!("the operator reports it in the {kind}'s status and starts the {what} once it exists"),
        ));
    }
    let upstream = front.authz_config.and_then(|a| a.inline.as_ref());
    if upstream.is_some_and(|inline| inline.primary_upstream_provider.is_some()) {
        report.warn(Finding::new(
            "spec.authzConfig.inline.primaryUpstreamProvider",
            Reason::Ineffective,
            format!("primaryUpstreamProvider has no effect on an {kind}: it runs no embedded authorization server"),
            "remove it; Cedar evaluates the claims of the token the client presents",
        ));
    }
}
