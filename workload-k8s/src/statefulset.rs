//! The StatefulSet `<name>` running the MCP server: ToolHive's names, labels and merge of
//! `pod_template_patch`, restricted Pod Security defaults, and a checksum annotation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use runconfig::{Reason, RunConfig, Violation};

use crate::container::Server;
use crate::findings::{Finding, Findings, Severity};
use crate::placement::Placement;
use crate::{BuildError, checksum, names, patch, profile, security};

/// A built StatefulSet and what in it differs from the RunConfig as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// The object to apply.
    pub statefulset: StatefulSet,
    /// Notes (e.g. stdio replicas capped at 1, a host path not mounted), each with its
    /// RunConfig path: material for a status condition or an admission warning.
    pub notes: Vec<Violation>,
}

/// The StatefulSet of `run`'s container workload in `placement`, or every reason it
/// cannot be built (exactly the errors [`crate::check`] reports).
pub fn statefulset(run: &RunConfig, placement: &Placement) -> Result<Built, BuildError> {
    let (statefulset, findings) = build(run, placement);
    let findings = Findings(findings);
    findings.errors().map_err(BuildError::Refused)?;
    Ok(Built {
        statefulset,
        notes: findings.of(Severity::Note),
    })
}

/// The one build both [`statefulset`] and [`crate::check`] run: the object (meaningful
/// only without errors) and every finding.
pub(crate) fn build(run: &RunConfig, placement: &Placement) -> (StatefulSet, Vec<Finding>) {
    let mut f = Findings::default();
    let Some(server) = Server::read(run, &mut f) else {
        return (StatefulSet::default(), f.0);
    };
    let replicas = server.replicas(&mut f);
    let patch_path = server.path.key("pod_template_patch");
    let mut template = patch::parse(
        server.workload.pod_template_patch.as_ref(),
        &patch_path,
        &mut f,
    );
    let mut spec = template.spec.take().unwrap_or_default();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);

    // Labels: the patch's, then the RunConfig's, then the required ones over both.
    let mut object_labels = server.workload.labels.clone();
    object_labels.extend(names::required_labels(server.name));
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .extend(object_labels.clone());

    spec.restart_policy
        .get_or_insert_with(|| "Always".to_owned());
    if let Some(account) = &server.workload.service_account {
        if let Some(theirs) = spec.service_account_name.as_ref().filter(|a| *a != account) {
            f.note(
                patch_path.key("spec").key("serviceAccountName"),
                Reason::Conflict,
                format!("serviceAccountName {theirs:?} is replaced by the RunConfig's {account:?}"),
                "set the ServiceAccount in the RunConfig (MCPServer spec.serviceAccount)",
            );
        }
        spec.service_account_name = Some(account.clone());
    }
    security::fill_pod(&mut spec.security_context, placement.run_as_user);

    let patch_index = spec
        .containers
        .iter()
        .position(|c| c.name == names::CONTAINER);
    let occupied: BTreeSet<String> = patch_index
        .and_then(|i| spec.containers.get(i))
        .and_then(|c| c.volume_mounts.as_ref())
        .into_iter()
        .flatten()
        .map(|m| profile::normalised(&m.mount_path).to_owned())
        .collect();
    let taken = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    let mounts = profile::mounts(&server, &occupied, &taken, &mut f);

    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        security::fill_container(container);
    }
    let index = patch_index.unwrap_or_else(|| {
        // No `mcp` container in the patch: the server's comes after the sidecars.
        spec.containers.push(Container {
            name: names::CONTAINER.to_owned(),
            ..Container::default()
        });
        spec.containers.len() - 1
    });
    if let Some(container) = spec.containers.get_mut(index) {
        server.configure(container, patch_index, &mut f);
        if !mounts.mounts.is_empty() {
            container
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .extend(mounts.mounts);
        }
    }
    if !mounts.volumes.is_empty() {
        spec.volumes
            .get_or_insert_with(Vec::new)
            .extend(mounts.volumes);
    }
    security::check(&spec, meta.annotations.as_ref(), &patch_path, &mut f);

    template.spec = Some(spec);
    let sum = checksum::of(&template);
    let template_annotations = template
        .metadata
        .get_or_insert_with(ObjectMeta::default)
        .annotations
        .get_or_insert_with(BTreeMap::new);
    template_annotations.insert(names::CHECKSUM_ANNOTATION.to_owned(), sum);
    if let Some(secrets) = placement
        .secrets_checksum
        .as_ref()
        .filter(|s| !s.is_empty())
    {
        template_annotations.insert(
            names::SECRETS_CHECKSUM_ANNOTATION.to_owned(),
            secrets.clone(),
        );
    }
    if let Some(at) = placement.restarted_at.as_ref().filter(|s| !s.is_empty()) {
        template_annotations.insert(names::RESTARTED_AT_ANNOTATION.to_owned(), at.clone());
    }

    let annotations = placement
        .generation
        .filter(|g| *g > 0)
        .map(|g| BTreeMap::from([(names::GENERATION_ANNOTATION.to_owned(), g.to_string())]));
    let statefulset = StatefulSet {
        metadata: ObjectMeta {
            name: Some(server.name.to_owned()),
            namespace: Some(placement.namespace.clone()),
            labels: Some(object_labels),
            annotations,
            owner_references: placement.owner_references(),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(names::selector(server.name)),
                ..LabelSelector::default()
            },
            // ToolHive's value, though no such Service exists: serviceName is immutable,
            // so another one would make applying over a ToolHive-made StatefulSet fail.
            service_name: Some(server.name.to_owned()),
            template,
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    (statefulset, f.0)
}

/// The pod spec of a built StatefulSet (tests and callers inspecting it).
pub fn pod_spec(statefulset: &StatefulSet) -> Option<&PodSpec> {
    statefulset.spec.as_ref()?.template.spec.as_ref()
}
