//! Applying and reading our API group's objects on the cluster: server-side apply with
//! `thv`'s field manager, and the refusal to overwrite what `thv` did not create.

use anyhow::{Context, bail};
use api::Manifest;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};

use crate::cluster::{CREATED_BY, Cluster, FIELD_MANAGER};

fn dynamic(cluster: &Cluster, manifest: &Manifest) -> Api<DynamicObject> {
    Api::namespaced_with(
        cluster.client.clone(),
        &cluster.namespace,
        &manifest.api_resource(),
    )
}

/// Server-side applies `manifest` (thv owns the fields it sets; a GitOps tool that
/// later applies the same object takes over the ones it sets too).
pub async fn apply(cluster: &Cluster, manifest: &Manifest) -> anyhow::Result<()> {
    let name = manifest.meta().name.clone().unwrap_or_default();
    dynamic(cluster, manifest)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(manifest.to_value()),
        )
        .await
        .map_err(|e| match e {
            // The webhook's refusal already names the field; say no more than it does.
            kube::Error::Api(status) => anyhow::anyhow!(
                "the cluster refused {} {name}: {}",
                manifest.kind(),
                status.message
            ),
            other => {
                anyhow::Error::new(other).context(format!("applying {} {name}", manifest.kind()))
            }
        })?;
    Ok(())
}

/// Fails, before anything is applied, when any of `manifests` exists already without
/// `thv`'s label: another tool or person owns that name.
pub async fn refuse_foreign(cluster: &Cluster, manifests: &[Manifest]) -> anyhow::Result<()> {
    for manifest in manifests {
        let name = manifest.meta().name.clone().unwrap_or_default();
        let existing = dynamic(cluster, manifest)
            .get_opt(&name)
            .await
            .with_context(|| format!("reading {} {name}", manifest.kind()))?;
        let Some(existing) = existing else { continue };
        let ours = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CREATED_BY))
            .is_some_and(|v| v == FIELD_MANAGER);
        if !ours {
            bail!(
                "{} {name:?} already exists in namespace {:?} and was not created by thv \
                 (no label {CREATED_BY}={FIELD_MANAGER}); choose another --name",
                manifest.kind(),
                cluster.namespace
            );
        }
    }
    Ok(())
}
