//! `check` reports what `statefulset` refuses, and nothing else as an error.

use super::*;

/// RunConfigs a user could write, with the error paths `check` must report.
fn table() -> Vec<(RunConfig, Vec<&'static str>)> {
    vec![
        (fixture("stdio.yaml"), vec![]),
        (fixture("full.yaml"), vec![]),
        (container(""), vec![]),
        (
            run(
                "schema_version: v1\nname: My_Server\nworkload:\n  container: {image: a/b:1, transport: stdio}\nproxy: {}\n",
            ),
            vec!["name"],
        ),
        (
            run(&format!(
                "schema_version: v1\nname: {}\nworkload:\n  container: {{image: a/b:1, transport: sse}}\nproxy: {{}}\n",
                "a".repeat(51)
            )),
            vec!["name"],
        ),
        (
            run(&format!(
                "schema_version: v1\nname: {}\nworkload:\n  container: {{image: a/b:1, transport: stdio}}\nproxy: {{}}\n",
                "a".repeat(52)
            )),
            vec![],
        ),
        (
            run(
                "schema_version: v1\nname: x\nworkload:\n  container: {image: '', transport: websocket, target_port: 70000}\nproxy: {}\n",
            ),
            vec!["workload.container.transport", "workload.container.image"],
        ),
        (
            run(
                "schema_version: v1\nname: x\nworkload:\n  container: {image: a/b:1, transport: sse, target_port: 70000}\nproxy: {}\n",
            ),
            vec!["workload.container.target_port"],
        ),
        (
            container("    replicas: -1"),
            vec!["workload.container.replicas"],
        ),
        (container("    replicas: 5"), vec![]),
        (
            container("    service_account: Bad_SA"),
            vec!["workload.container.service_account"],
        ),
        (
            container("    labels: {'team/a/b': x, ok: 'not ok'}"),
            vec![
                "workload.container.labels.ok",
                "workload.container.labels.team/a/b",
            ],
        ),
        (
            container("    env: [{name: 'A=B', value: x}]"),
            vec!["workload.container.env[0].name"],
        ),
        (
            container("    secrets: [{name: Token, key: 'a/b'}]"),
            vec![
                "workload.container.secrets[0].name",
                "workload.container.secrets[0].key",
            ],
        ),
        (
            container("    permission_profile: {builtin: sandbox}"),
            vec!["workload.container.permission_profile.builtin"],
        ),
        (
            container("    volumes: [{host_path: /a, mount_path: relative}]"),
            vec!["workload.container.volumes[0]"],
        ),
        (
            container(
                "    pod_template_patch: {spec: {hostPID: true, securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}]}}}",
            ),
            vec![
                "workload.container.pod_template_patch.spec.hostPID",
                "workload.container.pod_template_patch.spec.securityContext.sysctls[0].name",
            ],
        ),
        (
            container(
                "    pod_template_patch: {spec: {containers: [{name: mcp, volumeMounts: [{name: data, mountPath: /data}]}]}}",
            ),
            vec!["workload.container.pod_template_patch.spec.containers[0].volumeMounts[0].name"],
        ),
        (
            container(
                "    pod_template_patch: {metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/mcp: unconfined}}}",
            ),
            vec![
                "workload.container.pod_template_patch.metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/mcp\"]",
            ],
        ),
    ]
}

#[test]
fn check_errors_are_exactly_what_statefulset_refuses() {
    for (run, expected) in table() {
        let mut errors = checked(&run, Severity::Error);
        let built = workload_k8s::statefulset(&run, &placement());
        match &built {
            Ok(_) => assert!(errors.is_empty(), "{}: built despite {errors:?}", run.name),
            Err(workload_k8s::BuildError::Refused(v)) => {
                assert_eq!(paths(&v.0), errors, "{}: the same errors", run.name)
            }
        }
        let mut expected: Vec<String> = expected.iter().map(|p| p.to_string()).collect();
        errors.sort();
        expected.sort();
        assert_eq!(errors, expected, "{}", run.name);
    }
}

#[test]
fn stdio_replicas_above_one_are_a_note_not_an_error() {
    let run = container("    replicas: 5");
    assert_eq!(
        checked(&run, Severity::Note),
        ["workload.container.replicas"]
    );
    assert!(checked(&run, Severity::Error).is_empty());
}

#[test]
fn refusals_name_what_would_be_accepted() {
    let run = container("    permission_profile:\n      inline: {privileged: true}");
    let finding = &workload_k8s::check(&run)[0];
    let text = finding.violation.to_string();
    assert!(
        text.starts_with("workload.container.permission_profile.inline.privileged: "),
        "{text}"
    );
    assert!(finding.violation.allowed.is_some());
}

#[test]
fn findings_serialise_for_admission_and_thv_validate() {
    let run = container("    replicas: 2");
    let json = serde_json::to_value(workload_k8s::check(&run)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "severity": "Note",
            "path": "workload.container.replicas",
            "reason": "OutOfRange",
            "message": "2 replicas of a stdio server: running 1",
            "allowed": "at most 1: the proxy attaches to a single process's stdin and stdout",
        }])
    );
}
