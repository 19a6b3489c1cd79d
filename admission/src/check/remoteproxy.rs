//! MCPRemoteProxy admission: the CRD rules, then exactly the RunConfig the operator would
//! write (the remote server as the workload, the middleware mapped as for an MCPServer)
//! through [`runconfig::validate`], every problem located at the field the user wrote.

use api::MCPRemoteProxy;

use super::server::{CheckedServer, front_warnings, validate_mapped};
use super::{Catalog, Finding, Report, schema};
use crate::front::Fronted;
use crate::service::{MAX_REMOTE_PROXY_NAME_LENGTH, remote_proxy_service_name};
use crate::{Referenced, References, from_mcpremoteproxy};
use runconfig::error::Reason;
use runconfig::validate::is_dns_label;

/// Maps `proxy` with the referenced objects that exist and validates the result: the
/// MCPRemoteProxy half of [`super::check_manifest`], for callers that also need the
/// RunConfig (the operator's validate stage).
pub fn map_and_validate_remote(proxy: &MCPRemoteProxy, refs: &References<'_>) -> CheckedServer {
    validate_mapped(from_mcpremoteproxy(proxy, refs))
}

/// An MCPServer whose objects would have this MCPRemoteProxy's names: the same name
/// (Deployment `<name>`, ConfigMap `<name>-runconfig`) or `<name>-remote` (Service
/// `mcp-<name>-remote-proxy`). Both would claim them.
fn name_conflict(name: &str, catalog: &dyn Catalog) -> Option<Finding> {
    let clash = [name.to_owned(), format!("{name}-remote")]
        .into_iter()
        .find(|server| catalog.server_exists(server))?;
    Some(Finding::new(
        "metadata.name",
        Reason::Conflict,
        format!(
            "the MCPServer {clash} of this namespace would share this proxy's Deployment, ConfigMap or Service"
        ),
        "another name",
    ))
}

pub(super) fn check(proxy: &MCPRemoteProxy, catalog: &dyn Catalog, report: &mut Report) {
    let schema_findings = match serde_json::to_value(proxy) {
        Ok(object) => schema::findings("MCPRemoteProxy", &object),
        Err(e) => vec![Finding::new(
            ".",
            Reason::InvalidFormat,
            e,
            "an MCPRemoteProxy",
        )],
    };
    let name = proxy.metadata.name.as_deref().unwrap_or_default();
    if is_dns_label(name) && name.len() > MAX_REMOTE_PROXY_NAME_LENGTH {
        report.error(Finding::new(
            "metadata.name",
            Reason::OutOfRange,
            format!(
                "the name has {} characters, so the Service {} would exceed 63",
                name.len(),
                remote_proxy_service_name(name)
            ),
            format!("at most {MAX_REMOTE_PROXY_NAME_LENGTH} characters"),
        ));
    }
    if let Some(finding) = name_conflict(name, catalog) {
        report.error(finding);
    }
    let fetched = Referenced::from_catalog_front(proxy, catalog);
    let checked = map_and_validate_remote(proxy, &fetched.references());
    for problem in &checked.problems {
        report.error(problem.finding());
    }
    report.schema(schema_findings);
    front_warnings(&proxy.front(), &checked.mapped.missing, report);
}
