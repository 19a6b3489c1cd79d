//! How the permission profile and host-path `volumes` map to the pod.
//!
//! ToolHive's Kubernetes runtime ignores the permission profile and never mounts
//! `volumes` into the server's pod, so manifests carrying them apply there. This crate
//! keeps them applying (refusing would break those manifests) but never pretends:
//! - `privileged: true` is an **error** at `permission_profile.inline.privileged`: it
//!   cannot be honoured under the restricted Pod Security Standard, and silently running
//!   unprivileged would hide that.
//! - Host paths are **not mounted**: `hostPath` volumes are forbidden under restricted.
//!   A *writable* one (profile `write`, or a `volumes` entry without `read_only`) becomes
//!   an `emptyDir` at its container path, so a server told to write there can (the root
//!   filesystem is read-only) — its data lives as long as the pod. A *read-only* one is
//!   left out: an empty directory would only hide that the host's files are missing.
//!   Each gets a note naming its path. A volume the patch mounts at the same path in the
//!   `mcp` container serves it instead (the way to bring real data: a PVC, ConfigMap…).
//! - Network rules (`none`, outbound allow-lists, `isolate_network`) are **not enforced**
//!   (no NetworkPolicy is built; ToolHive builds none either): a note says so.
//!   The built-in `network` profile (everything allowed) needs nothing.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume, VolumeMount};
use runconfig::config::{PermissionProfile, Profile};
use runconfig::{FieldPath, Reason};

use crate::container::Server;
use crate::findings::Findings;

const NOT_ENFORCED: &str = "a NetworkPolicy selecting app=<name>, applied separately";

/// What the profile and `volumes` add to the pod.
#[derive(Default)]
pub(crate) struct Mounts {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// One host path the RunConfig asks for.
struct HostPath<'a> {
    path: FieldPath,
    host: &'a str,
    container: &'a str,
    writable: bool,
}

/// Records the profile's findings and returns the `emptyDir`s standing in for writable
/// host paths. `occupied`: mount paths of the patch's `mcp` container; `taken`: volume
/// names of the patch.
pub(crate) fn mounts(
    server: &Server<'_>,
    occupied: &BTreeSet<String>,
    taken: &BTreeSet<String>,
    f: &mut Findings,
) -> Mounts {
    let w = server.workload;
    let profile_path = server.path.key("permission_profile");
    let mut host_paths = Vec::new();
    match &w.permission_profile {
        None => {}
        Some(PermissionProfile::Builtin(name)) => match name.as_str() {
            "network" => {}
            "none" => f.note(
                profile_path.key("builtin"),
                Reason::Ineffective,
                "the none profile's network isolation is not enforced on Kubernetes",
                NOT_ENFORCED,
            ),
            other => f.error(
                profile_path.key("builtin"),
                Reason::NotSupported,
                format!("unknown built-in profile {other:?}"),
                "none or network, or an inline profile",
            ),
        },
        Some(PermissionProfile::Inline(profile)) => {
            inline(profile, &profile_path.key("inline"), &mut host_paths, f);
        }
    }
    if w.isolate_network {
        f.note(
            server.path.key("isolate_network"),
            Reason::Ineffective,
            "network isolation is not enforced on Kubernetes",
            NOT_ENFORCED,
        );
    }
    for (i, volume) in w.volumes.iter().enumerate() {
        host_paths.push(HostPath {
            path: server.path.key("volumes").index(i),
            host: &volume.host_path,
            container: &volume.mount_path,
            writable: !volume.read_only,
        });
    }
    let mut out = Mounts::default();
    let mut mounted = occupied.clone();
    let mut names = (0..)
        .map(|n| format!("scratch-{n}"))
        .filter(|n| !taken.contains(n));
    for host_path in host_paths {
        let HostPath {
            path,
            host,
            container,
            writable,
        } = host_path;
        if !container.starts_with('/') {
            f.error(
                path,
                Reason::InvalidFormat,
                format!("{container:?} is not an absolute path in the container"),
                "/path or /host/path:/container/path",
            );
            continue;
        }
        let container = normalised(container);
        let (message, allowed) = if occupied.contains(container) {
            (
                format!(
                    "host path {host:?} is not mounted; the pod template patch's volume at {container} serves it"
                ),
                "nothing: the patch's volume is used",
            )
        } else if writable {
            (
                format!(
                    "host path {host:?} is not mounted (hostPath volumes break the restricted Pod Security Standard); {container} is an empty directory that lives as long as the pod"
                ),
                "a persistentVolumeClaim volume mounted at this path in pod_template_patch, for data that outlives the pod",
            )
        } else {
            (
                format!(
                    "host path {host:?} is not mounted (hostPath volumes break the restricted Pod Security Standard); {container} does not exist in the container"
                ),
                "a configMap, secret or persistentVolumeClaim volume mounted at this path in pod_template_patch",
            )
        };
        f.note(path, Reason::Ineffective, message, allowed);
        if writable && mounted.insert(container.to_owned()) {
            let name = names.next().unwrap_or_default();
            out.volumes.push(Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
            out.mounts.push(VolumeMount {
                name,
                mount_path: container.to_owned(),
                ..VolumeMount::default()
            });
        }
    }
    out
}

/// A mount path without its trailing slashes, so `/data/` and `/data` compare equal.
pub(crate) fn normalised(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" if path.starts_with('/') => "/",
        trimmed => trimmed,
    }
}

fn inline<'a>(
    profile: &'a Profile,
    path: &FieldPath,
    host_paths: &mut Vec<HostPath<'a>>,
    f: &mut Findings,
) {
    if profile.privileged {
        f.error(
            path.key("privileged"),
            Reason::Forbidden,
            "a privileged MCP server cannot run under the restricted Pod Security Standard",
            "remove privileged; grant paths and hosts explicitly",
        );
    }
    for (list, entries, writable) in [
        ("read", &profile.read, false),
        ("write", &profile.write, true),
    ] {
        for (i, entry) in entries.iter().enumerate() {
            let (host, container) = entry.split_once(':').unwrap_or((entry, entry));
            host_paths.push(HostPath {
                path: path.key(list).index(i),
                host,
                container,
                writable,
            });
        }
    }
    if let Some(outbound) = profile.network.as_ref().and_then(|n| n.outbound.as_ref())
        && !outbound.insecure_allow_all
    {
        f.note(
            path.key("network").key("outbound"),
            Reason::Ineffective,
            "outbound network rules are not enforced on Kubernetes",
            NOT_ENFORCED,
        );
    }
}
