//! Turns a [`RunConfig`] into the Kubernetes objects of the MCP server itself: the
//! StatefulSet that runs its container and, for HTTP transports, the headless Service in
//! front of it. Pure functions, no client.
//!
//! Two callers share them:
//! - the proxy runner builds the objects here and applies them (server-side apply);
//! - admission calls [`check`] to refuse, at apply time, a spec whose objects could not
//!   be created, instead of a proxy pod failing later with the reason in its logs.
//!
//! [`statefulset`] refuses exactly what [`check`] reports as [`Severity::Error`]: both
//! run the same build and collect the same findings.
//!
//! Names, labels and the merge of `pod_template_patch` follow ToolHive's Kubernetes
//! runtime, so selectors, dashboards and existing StatefulSets keep working. Where this
//! crate differs, the item's documentation says so and why. The pod always meets the
//! `restricted` Pod Security Standard: see [`security`] and [`profile`] for what that
//! refuses and how the permission profile maps.

mod checksum;
mod container;
mod findings;
pub mod names;
mod patch;
mod placement;
pub mod profile;
pub mod security;
mod service;
mod statefulset;

pub use findings::{Finding, Severity};
pub use placement::{Owner, Placement};
pub use service::headless_service;
pub use statefulset::{Built, pod_spec, statefulset};

use runconfig::{RunConfig, Violations};

/// Why [`statefulset`] built nothing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The RunConfig asks for something the StatefulSet or its pod cannot have; every
    /// reason, with its RunConfig path (the same errors [`check`] reports).
    #[error("the MCP server's StatefulSet cannot be built:\n{0}")]
    Refused(Violations),
}

/// Every reason the objects of `run` could not be built or their pod could not be
/// created (errors), and what will differ from what the RunConfig asks (notes), each
/// with its RunConfig field path.
pub fn check(run: &RunConfig) -> Vec<Finding> {
    statefulset::build(run, &Placement::new("default")).1
}

/// Reads a pod template given as JSON (an MCPRemoteProxy's `podTemplateSpec`, merged into
/// the proxy's own pod) with the checks a `pod_template_patch` gets: it must be a
/// PodTemplateSpec (misspelt fields are notes), and its pod, with the `restricted`
/// defaults this crate fills into every pod and container (as for the server's pod),
/// must meet the `restricted` Pod Security Standard (errors). Returns the template with
/// those defaults filled; findings are located under `path`.
pub fn pod_template(
    value: &serde_json::Value,
    path: &runconfig::FieldPath,
) -> (k8s_openapi::api::core::v1::PodTemplateSpec, Vec<Finding>) {
    let mut findings = findings::Findings::default();
    let mut template = patch::parse(Some(value), path, &mut findings);
    if let Some(spec) = template.spec.as_mut() {
        security::fill_pod(&mut spec.security_context, None);
        for container in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            security::fill_container(container);
        }
        let annotations = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref());
        security::check(spec, annotations, path, &mut findings);
    }
    (template, findings.0)
}
