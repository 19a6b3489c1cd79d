//! The `restricted` Pod Security Standard: the defaults the server pod gets where the
//! patch leaves a field unset, and the check that refuses a patch setting a field the
//! standard forbids.
//!
//! The server runs third-party code, so the pod always meets `restricted`, whatever the
//! namespace enforces. The user's values win where the standard allows them (e.g.
//! `readOnlyRootFilesystem: false`, `runAsUser: 1234`, a `Localhost` seccomp profile,
//! resources); a value it forbids (`privileged`, `hostNetwork`, a `hostPath` volume,
//! `runAsNonRoot: false`, an added capability other than `NET_BIND_SERVICE`, …) is an
//! error at its path in `pod_template_patch`.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext,
};
use runconfig::{FieldPath, Reason};

use crate::findings::Findings;

/// Volume types `restricted` allows.
pub const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls every Pod Security level allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_wmem",
];

const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

const ALLOWED: &str = "what the restricted Pod Security Standard allows";

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

/// Fills the pod's context where unset: `runAsNonRoot`, `RuntimeDefault` seccomp, and
/// ToolHive's UID/GID/fsGroup when `run_as` is given.
pub(crate) fn fill_pod(context: &mut Option<PodSecurityContext>, run_as: Option<i64>) {
    let context = context.get_or_insert_with(PodSecurityContext::default);
    context.run_as_non_root.get_or_insert(true);
    context.seccomp_profile.get_or_insert_with(runtime_default);
    if let Some(id) = run_as.filter(|id| *id > 0) {
        context.run_as_user.get_or_insert(id);
        context.run_as_group.get_or_insert(id);
        context.fs_group.get_or_insert(id);
    }
}

/// Fills what `restricted` requires of every container where unset: no privilege
/// escalation, all capabilities dropped. Sidecars get only this; they are the user's.
pub(crate) fn fill_container(container: &mut Container) {
    let context = container
        .security_context
        .get_or_insert_with(SecurityContext::default);
    context.allow_privilege_escalation.get_or_insert(false);
    let capabilities = context
        .capabilities
        .get_or_insert_with(Capabilities::default);
    capabilities
        .drop
        .get_or_insert_with(|| vec!["ALL".to_owned()]);
}

/// The server container's defaults on top of [`fill_container`], as ToolHive sets them:
/// not privileged, non-root, read-only root filesystem.
pub(crate) fn fill_server(container: &mut Container) {
    fill_container(container);
    if let Some(context) = container.security_context.as_mut() {
        context.privileged.get_or_insert(false);
        context.run_as_non_root.get_or_insert(true);
        context.read_only_root_filesystem.get_or_insert(true);
    }
}

/// Records every field of `spec` that breaks `restricted`, and `annotations` that set an
/// unconfined AppArmor profile, at their paths under `patch` (`pod_template_patch`):
/// the defaults this crate adds meet the standard, so any breach comes from the patch.
pub(crate) fn check(
    spec: &PodSpec,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    patch: &FieldPath,
    f: &mut Findings,
) {
    let base = &patch.key("spec");
    for (field, set) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if set == Some(true) {
            f.error(
                base.key(field),
                Reason::Forbidden,
                format!("{field} shares the node's namespace with the MCP server"),
                format!("remove {field}"),
            );
        }
    }
    if let Some(context) = &spec.security_context {
        pod_context(context, &base.key("securityContext"), f);
    }
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let value = serde_json::to_value(volume).unwrap_or_default();
        for kind in value.as_object().into_iter().flat_map(|o| o.keys()) {
            if kind != "name" && !ALLOWED_VOLUMES.contains(&kind.as_str()) {
                f.error(
                    base.key("volumes").index(i).key(kind.as_str()),
                    Reason::Forbidden,
                    format!("{kind} volumes are not allowed in the MCP server's pod"),
                    format!("one of {}", ALLOWED_VOLUMES.join(", ")),
                );
            }
        }
    }
    for (list, containers) in [
        ("initContainers", spec.init_containers.as_deref()),
        ("containers", Some(spec.containers.as_slice())),
    ] {
        for (i, c) in containers.into_iter().flatten().enumerate() {
            let path = base.key(list).index(i);
            for (j, port) in c.ports.iter().flatten().enumerate() {
                if port.host_port.is_some_and(|p| p != 0) {
                    f.error(
                        path.key("ports").index(j).key("hostPort"),
                        Reason::Forbidden,
                        "hostPort binds a port of the node",
                        "remove hostPort; reach the server through its Service",
                    );
                }
            }
            if let Some(context) = &c.security_context {
                container_context(context, &path.key("securityContext"), f);
            }
        }
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        f.error(
            base.key("ephemeralContainers"),
            Reason::Forbidden,
            "ephemeral containers cannot be set when a pod is created",
            "remove ephemeralContainers; add them later with kubectl debug",
        );
    }
    for (key, value) in annotations.into_iter().flatten() {
        if key.starts_with("container.apparmor.security.beta.kubernetes.io/")
            && value != "runtime/default"
            && !value.starts_with("localhost/")
        {
            f.error(
                patch.key("metadata").key("annotations").key(key.as_str()),
                Reason::Forbidden,
                format!("AppArmor profile {value:?} is not allowed"),
                "runtime/default or localhost/<profile>",
            );
        }
    }
}

fn pod_context(c: &PodSecurityContext, path: &FieldPath, f: &mut Findings) {
    shared(shared_fields!(c), path, f);
    for (i, sysctl) in c.sysctls.iter().flatten().enumerate() {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            f.error(
                path.key("sysctls").index(i).key("name"),
                Reason::Forbidden,
                format!("sysctl {:?} is not namespaced safely", sysctl.name),
                format!("one of {}", SAFE_SYSCTLS.join(", ")),
            );
        }
    }
}

fn container_context(c: &SecurityContext, path: &FieldPath, f: &mut Findings) {
    shared(shared_fields!(c), path, f);
    let mut refuse = |field: &str, message: String, allowed: &str| {
        f.error(path.key(field), Reason::Forbidden, message, allowed);
    };
    if c.privileged == Some(true) {
        refuse(
            "privileged",
            "a privileged container has every power of the node".to_owned(),
            "remove privileged",
        );
    }
    if c.allow_privilege_escalation == Some(true) {
        refuse(
            "allowPrivilegeEscalation",
            "privilege escalation must be off".to_owned(),
            "false, or leave it unset",
        );
    }
    if c.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        refuse(
            "procMount",
            "an unmasked /proc is not allowed".to_owned(),
            "Default, or leave it unset",
        );
    }
    if let Some(capabilities) = &c.capabilities {
        let cap_path = path.key("capabilities");
        for (i, cap) in capabilities.add.iter().flatten().enumerate() {
            let name = cap.trim_start_matches("CAP_");
            if name != "NET_BIND_SERVICE" {
                f.error(
                    cap_path.key("add").index(i),
                    Reason::Forbidden,
                    format!("capability {cap} may not be added"),
                    "only NET_BIND_SERVICE",
                );
            }
        }
        if let Some(drop) = &capabilities.drop
            && !drop.iter().any(|d| d == "ALL")
        {
            f.error(
                cap_path.key("drop"),
                Reason::Forbidden,
                "every capability must be dropped",
                "a list containing ALL, or leave drop unset",
            );
        }
    }
}

/// The [`Shared`] fields of a pod or container security context (two types, same names).
macro_rules! shared_fields {
    ($c:expr) => {
        Shared {
            run_as_non_root: $c.run_as_non_root,
            run_as_user: $c.run_as_user,
            seccomp: $c.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            selinux: $c.se_linux_options.as_ref(),
            app_armor: $c.app_armor_profile.as_ref().map(|a| a.type_.as_str()),
            host_process: $c.windows_options.as_ref().and_then(|w| w.host_process),
        }
    };
}
use shared_fields;

/// Fields pod and container contexts share.
struct Shared<'a> {
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    seccomp: Option<&'a str>,
    selinux: Option<&'a k8s_openapi::api::core::v1::SELinuxOptions>,
    app_armor: Option<&'a str>,
    host_process: Option<bool>,
}

fn shared(c: Shared<'_>, path: &FieldPath, f: &mut Findings) {
    if c.run_as_non_root == Some(false) {
        f.error(
            path.key("runAsNonRoot"),
            Reason::Forbidden,
            "the MCP server's pod must not run as root",
            "true, or leave it unset",
        );
    }
    if c.run_as_user == Some(0) {
        f.error(
            path.key("runAsUser"),
            Reason::Forbidden,
            "UID 0 is root",
            "a non-zero UID",
        );
    }
    if let Some(kind) = c.seccomp
        && kind != "RuntimeDefault"
        && kind != "Localhost"
    {
        f.error(
            path.key("seccompProfile").key("type"),
            Reason::Forbidden,
            format!("seccomp profile {kind:?} is not allowed"),
            "RuntimeDefault or Localhost",
        );
    }
    if let Some(kind) = c.app_armor
        && kind != "RuntimeDefault"
        && kind != "Localhost"
    {
        f.error(
            path.key("appArmorProfile").key("type"),
            Reason::Forbidden,
            format!("AppArmor profile {kind:?} is not allowed"),
            "RuntimeDefault or Localhost",
        );
    }
    if let Some(selinux) = c.selinux {
        let path = path.key("seLinuxOptions");
        if let Some(kind) = selinux.type_.as_deref().filter(|t| !t.is_empty())
            && !SELINUX_TYPES.contains(&kind)
        {
            f.error(
                path.key("type"),
                Reason::Forbidden,
                format!("SELinux type {kind:?} is not allowed"),
                format!("one of {}", SELINUX_TYPES.join(", ")),
            );
        }
        for (field, value) in [("user", &selinux.user), ("role", &selinux.role)] {
            if value.as_deref().is_some_and(|v| !v.is_empty()) {
                f.error(
                    path.key(field),
                    Reason::Forbidden,
                    format!("a custom SELinux {field} is not allowed"),
                    ALLOWED,
                );
            }
        }
    }
    if c.host_process == Some(true) {
        f.error(
            path.key("windowsOptions").key("hostProcess"),
            Reason::Forbidden,
            "a Windows host process runs on the node",
            "remove hostProcess",
        );
    }
}
