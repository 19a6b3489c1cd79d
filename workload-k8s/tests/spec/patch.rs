//! `pod_template_patch`, merged the way ToolHive merges it.

use super::*;

#[test]
fn pod_template_patch_adds_a_sidecar_and_keeps_restricted_defaults() {
    let built = built(&fixture("full.yaml"));
    let pod = pod(&built.statefulset);
    let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["mcp", "otel-collector"],
        "sidecar kept, in the patch's order"
    );
    let sidecar = named(pod, "otel-collector");
    assert_eq!(
        sidecar.image.as_deref(),
        Some("otel/opentelemetry-collector-contrib:0.120.0")
    );
    let context = sidecar.security_context.clone().unwrap();
    assert_eq!(context.allow_privilege_escalation, Some(false));
    assert_eq!(
        context.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    assert_eq!(
        pod.node_selector.clone().unwrap()["kubernetes.io/os"],
        "linux",
        "the rest of the patch's pod spec is kept"
    );
    let resources = named(pod, "mcp").resources.clone().unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "512Mi");
}

#[test]
fn init_containers_get_the_restricted_defaults_too() {
    let built = built(&container(
        "    pod_template_patch:\n      spec:\n        initContainers: [{name: fetch-model, image: busybox:1, securityContext: {runAsUser: 2000}}]",
    ));
    let init = &pod(&built.statefulset).init_containers.clone().unwrap()[0];
    let context = init.security_context.clone().unwrap();
    assert_eq!(context.allow_privilege_escalation, Some(false));
    assert_eq!(
        context.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(context.run_as_user, Some(2000), "the user's value kept");
}

#[test]
fn without_an_mcp_container_the_server_comes_after_the_sidecars() {
    let built = built(&container(
        "    pod_template_patch:\n      spec:\n        containers: [{name: sidecar, image: busybox:1}]",
    ));
    let names: Vec<_> = pod(&built.statefulset)
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["sidecar", "mcp"]);
}

#[test]
fn the_patch_mcp_container_is_the_server() {
    let run = container(
        "    args: [serve]\n    pod_template_patch:\n      spec:\n        containers:\n          - name: mcp\n            image: someone/else:1\n            args: [--verbose]\n            env: [{name: FROM_PATCH, value: '1'}]\n            securityContext: {readOnlyRootFilesystem: false, runAsUser: 4242}\n            volumeMounts: [{name: data, mountPath: /data}]\n        volumes: [{name: data, emptyDir: {}}]",
    );
    let built = built(&run);
    let c = mcp(&built.statefulset);
    assert_eq!(
        c.image.as_deref(),
        Some("mcp/time:1.0"),
        "the RunConfig's image"
    );
    assert_eq!(
        c.args.clone().unwrap(),
        ["--verbose", "serve"],
        "RunConfig args appended"
    );
    assert_eq!(env(c)[0].0, "FROM_PATCH", "patch env first");
    let context = c.security_context.clone().unwrap();
    assert_eq!(
        context.read_only_root_filesystem,
        Some(false),
        "the user's value wins"
    );
    assert_eq!(context.run_as_user, Some(4242));
    assert_eq!(
        context.allow_privilege_escalation,
        Some(false),
        "filled where unset"
    );
    assert_eq!(c.volume_mounts.clone().unwrap()[0].mount_path, "/data");
    assert_eq!(
        paths(&built.notes),
        ["workload.container.pod_template_patch.spec.containers[0].image"]
    );
}

#[test]
fn patch_fields_breaking_restricted_pod_security_are_refused_with_their_paths() {
    let run = container(
        "    pod_template_patch:\n      spec:\n        hostNetwork: true\n        securityContext: {runAsNonRoot: false}\n        volumes: [{name: docker, hostPath: {path: /var/run/docker.sock}}]\n        containers:\n          - name: helper\n            image: busybox:1\n            securityContext: {privileged: true, capabilities: {add: [NET_ADMIN, NET_BIND_SERVICE]}}\n            ports: [{containerPort: 80, hostPort: 80}]\n          - name: mcp\n            securityContext: {runAsUser: 0, allowPrivilegeEscalation: true}",
    );
    let base = "workload.container.pod_template_patch.spec";
    let mut expected: Vec<String> = [
        "hostNetwork",
        "securityContext.runAsNonRoot",
        "volumes[0].hostPath",
        "containers[0].ports[0].hostPort",
        "containers[0].securityContext.privileged",
        "containers[0].securityContext.capabilities.add[0]",
        "containers[1].securityContext.runAsUser",
        "containers[1].securityContext.allowPrivilegeEscalation",
    ]
    .iter()
    .map(|p| format!("{base}.{p}"))
    .collect();
    let mut found = paths(&refused(&run));
    expected.sort();
    found.sort();
    assert_eq!(found, expected);
}

#[test]
fn a_patch_that_is_not_a_pod_template_is_refused() {
    for patch in ["'just text'", "{spec: {containers: mcp}}"] {
        let run = container(&format!("    pod_template_patch: {patch}"));
        assert_eq!(
            paths(&refused(&run)),
            ["workload.container.pod_template_patch"],
            "{patch}"
        );
    }
}

#[test]
fn invalid_or_duplicate_container_names_in_the_patch_are_refused() {
    let run = container(
        "    pod_template_patch:\n      spec:\n        initContainers: [{name: mcp, image: a:1}]\n        containers: [{name: Log_Shipper, image: a:1}, {image: a:1}, {name: mcp}]",
    );
    let base = "workload.container.pod_template_patch.spec";
    assert_eq!(
        paths(&refused(&run)),
        [
            format!("{base}.containers[0].name"),
            format!("{base}.containers[1].name"),
            format!("{base}.containers[2].name"),
            format!("{base}.initContainers"),
        ]
    );
}

#[test]
fn a_restart_policy_other_than_always_is_refused() {
    let run = container("    pod_template_patch: {spec: {restartPolicy: Never}}");
    assert_eq!(
        paths(&refused(&run)),
        ["workload.container.pod_template_patch.spec.restartPolicy"]
    );
}

#[test]
fn a_misspelt_patch_field_is_noted_not_silently_dropped() {
    let run = container(
        "    pod_template_patch:\n      spec:\n        containers: [{name: mcp, securityContxt: {readOnlyRootFilesystem: false}}]",
    );
    assert_eq!(
        paths(&built(&run).notes),
        ["workload.container.pod_template_patch.spec.containers[0].securityContxt"]
    );
}
