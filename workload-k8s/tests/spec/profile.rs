//! How the permission profile and host-path volumes map to a restricted pod.

use super::*;

#[test]
fn privileged_profile_is_refused_with_its_path() {
    let run = container("    permission_profile:\n      inline: {privileged: true}");
    let refused = refused(&run);
    assert_eq!(
        paths(&refused),
        ["workload.container.permission_profile.inline.privileged"]
    );
    assert_eq!(refused[0].reason, runconfig::Reason::Forbidden);
}

#[test]
fn a_writable_host_path_becomes_an_empty_dir_with_a_note() {
    let run = container(
        "    permission_profile:\n      inline: {write: ['/srv/notes:/notes'], read: [/etc/ssl/certs]}",
    );
    let built = built(&run);
    let pod = pod(&built.statefulset);
    let volumes = pod.volumes.clone().unwrap();
    assert_eq!(volumes.len(), 1, "only the writable path is mounted");
    assert!(volumes[0].empty_dir.is_some() && volumes[0].host_path.is_none());
    let mounts = named(pod, "mcp").volume_mounts.clone().unwrap();
    assert_eq!(
        (mounts[0].name.as_str(), mounts[0].mount_path.as_str()),
        ("scratch-0", "/notes")
    );
    assert_eq!(
        paths(&built.notes),
        [
            "workload.container.permission_profile.inline.read[0]",
            "workload.container.permission_profile.inline.write[0]",
        ]
    );
}

#[test]
fn volumes_mounted_by_the_patch_serve_the_host_path_instead() {
    let run = container(
        "    volumes: [{host_path: /var/cache/x, mount_path: /cache}]\n    pod_template_patch:\n      spec:\n        volumes: [{name: cache, persistentVolumeClaim: {claimName: cache}}]\n        containers: [{name: mcp, volumeMounts: [{name: cache, mountPath: /cache}]}]",
    );
    let built = built(&run);
    let pod = pod(&built.statefulset);
    assert_eq!(pod.volumes.clone().unwrap().len(), 1, "no emptyDir added");
    assert_eq!(named(pod, "mcp").volume_mounts.clone().unwrap().len(), 1);
    assert_eq!(paths(&built.notes), ["workload.container.volumes[0]"]);
}

#[test]
fn network_rules_are_noted_as_not_enforced() {
    let run = container(
        "    isolate_network: true\n    permission_profile:\n      inline: {network: {outbound: {allow_host: [api.github.com]}}}",
    );
    assert_eq!(
        paths(&built(&run).notes),
        [
            "workload.container.permission_profile.inline.network.outbound",
            "workload.container.isolate_network",
        ]
    );
    assert!(
        built(&container("    permission_profile: {builtin: network}"))
            .notes
            .is_empty()
    );
}
