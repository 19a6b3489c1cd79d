//! `pod_template_patch`: read as a PodTemplateSpec, as ToolHive does (no strategic merge:
//! the patch's `spec` is the starting pod spec, its labels and annotations are kept, and
//! the runner's settings are layered on top in `statefulset`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use runconfig::{FieldPath, Reason};
use serde_json::Value;

use crate::findings::Findings;
use crate::names;

/// The patch as a PodTemplateSpec; an empty one when there is none or it cannot be read
/// (an error is then recorded).
pub(crate) fn parse(patch: Option<&Value>, path: &FieldPath, f: &mut Findings) -> PodTemplateSpec {
    let Some(patch) = patch else {
        return PodTemplateSpec::default();
    };
    if !patch.is_object() {
        f.error(
            path.clone(),
            Reason::InvalidFormat,
            "the pod template patch is not an object",
            "a PodTemplateSpec object: {metadata: …, spec: {containers: […]}}",
        );
        return PodTemplateSpec::default();
    }
    let template: PodTemplateSpec = match serde_json::from_value(patch.clone()) {
        Ok(template) => template,
        Err(e) => {
            f.error(
                path.clone(),
                Reason::InvalidFormat,
                format!("the pod template patch is not a PodTemplateSpec: {e}"),
                "a PodTemplateSpec object: {metadata: …, spec: {containers: […]}}",
            );
            return PodTemplateSpec::default();
        }
    };
    let read_back = serde_json::to_value(&template).unwrap_or_default();
    dropped_fields(patch, &read_back, path, f);
    check(&template, path, f);
    template
}

/// Notes every field of the patch that is not a PodTemplateSpec field: Kubernetes (and
/// ToolHive, which re-serialises the patch) drop it, so a misspelt field has no effect.
fn dropped_fields(written: &Value, read: &Value, path: &FieldPath, f: &mut Findings) {
    match (written, read) {
        (Value::Object(written), Value::Object(read)) => {
            for (key, value) in written.iter().filter(|(_, v)| !v.is_null()) {
                match read.get(key) {
                    Some(read) => dropped_fields(value, read, &path.key(key.as_str()), f),
                    None => f.note(
                        path.key(key.as_str()),
                        Reason::UnknownField,
                        format!("{key:?} is not a field here; it is ignored"),
                        "a field of the Kubernetes PodTemplateSpec (check the spelling)",
                    ),
                }
            }
        }
        (Value::Array(written), Value::Array(read)) => {
            for (i, (w, r)) in written.iter().zip(read).enumerate() {
                dropped_fields(w, r, &path.index(i), f);
            }
        }
        _ => {}
    }
}

/// What the API server would refuse in the patch regardless of Pod Security: container
/// names, the restart policy, label syntax.
fn check(template: &PodTemplateSpec, path: &FieldPath, f: &mut Findings) {
    let meta_path = path.key("metadata");
    if let Some(labels) = template.metadata.as_ref().and_then(|m| m.labels.as_ref()) {
        labels_are_valid(labels, &meta_path.key("labels"), f);
    }
    let Some(spec) = &template.spec else {
        return;
    };
    let spec_path = path.key("spec");
    let mut seen = BTreeSet::new();
    for (list, containers) in [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", spec.containers.as_slice()),
    ] {
        for (i, c) in containers.iter().enumerate() {
            let name_path = spec_path.key(list).index(i).key("name");
            if c.name.is_empty() {
                f.error(
                    name_path,
                    Reason::Required,
                    "a container needs a name",
                    "mcp for the server's container, any DNS label for a sidecar",
                );
            } else if !names::is_dns_label(&c.name) {
                f.error(
                    name_path,
                    Reason::InvalidFormat,
                    format!("{:?} is not a valid container name", c.name),
                    "lowercase letters, digits and '-', at most 63 characters",
                );
            } else if !seen.insert(c.name.as_str()) {
                f.error(
                    name_path,
                    Reason::Duplicate,
                    format!("container {:?} is named twice", c.name),
                    "unique names across containers and initContainers",
                );
            }
        }
    }
    if spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == names::CONTAINER)
    {
        f.error(
            spec_path.key("initContainers"),
            Reason::Conflict,
            "an init container is named mcp, the name of the server's container",
            "another name for the init container",
        );
    }
    volumes_resolve(spec, &spec_path, f);
    if let Some(policy) = spec.restart_policy.as_deref()
        && policy != "Always"
    {
        f.error(
            spec_path.key("restartPolicy"),
            Reason::NotSupported,
            format!("restartPolicy {policy:?}: a StatefulSet's pods always restart"),
            "Always, or leave it unset",
        );
    }
}

/// Volume names are unique labels, and every mount names a volume of the patch once per
/// path: the API server refuses the pod otherwise.
fn volumes_resolve(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    spec_path: &FieldPath,
    f: &mut Findings,
) {
    let mut volumes = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let path = spec_path.key("volumes").index(i).key("name");
        if !names::is_dns_label(&volume.name) {
            f.error(
                path,
                Reason::InvalidFormat,
                format!("{:?} is not a valid volume name", volume.name),
                "lowercase letters, digits and '-', at most 63 characters",
            );
        } else if !volumes.insert(volume.name.as_str()) {
            f.error(
                path,
                Reason::Duplicate,
                format!("volume {:?} is declared twice", volume.name),
                "unique volume names",
            );
        }
    }
    for (list, containers) in [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", spec.containers.as_slice()),
    ] {
        for (i, c) in containers.iter().enumerate() {
            let mut mount_paths = BTreeSet::new();
            for (j, mount) in c.volume_mounts.iter().flatten().enumerate() {
                let path = spec_path.key(list).index(i).key("volumeMounts").index(j);
                if !volumes.contains(mount.name.as_str()) {
                    f.error(
                        path.key("name"),
                        Reason::UnknownReference,
                        format!("no volume {:?} in the pod template patch", mount.name),
                        "the name of a volume under spec.volumes",
                    );
                }
                if !mount_paths.insert(mount.mount_path.as_str()) {
                    f.error(
                        path.key("mountPath"),
                        Reason::Duplicate,
                        format!(
                            "{} is mounted twice in container {:?}",
                            mount.mount_path, c.name
                        ),
                        "one volume per path",
                    );
                }
            }
        }
    }
}

/// Records label keys and values the API server refuses.
pub(crate) fn labels_are_valid(
    labels: &std::collections::BTreeMap<String, String>,
    path: &FieldPath,
    f: &mut Findings,
) {
    for (key, value) in labels {
        if !names::is_label_key(key) {
            f.error(
                path.key(key.as_str()),
                Reason::InvalidFormat,
                format!("{key:?} is not a label key"),
                "[prefix/]name: name of letters, digits, '-', '_', '.', at most 63",
            );
        } else if !names::is_label_value(value) {
            f.error(
                path.key(key.as_str()),
                Reason::InvalidFormat,
                format!("{value:?} is not a label value"),
                "letters, digits, '-', '_', '.', starting and ending alphanumeric, at most 63",
            );
        }
    }
}
