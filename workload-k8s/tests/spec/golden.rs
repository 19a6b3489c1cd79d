//! The StatefulSet of a full RunConfig, compared with the committed YAML so reviewers see
//! the object. `UPDATE_GOLDEN=1 cargo test -p workload-k8s` rewrites it after a change.

use super::*;

fn compare(built: &impl serde::Serialize, file: &str) {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let actual = serde_yaml_ng::to_string(built).expect("serialises");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("writes the golden file");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{file} differs from what is built; rerun with UPDATE_GOLDEN=1 and review the diff\n--- built ---\n{actual}"
    );
}

#[test]
fn full_runconfig_builds_the_expected_statefulset() {
    let placement = Placement {
        owner: Some(workload_k8s::Owner {
            api_version: "toolhive.stacklok.dev/v1beta1".to_owned(),
            kind: "MCPServer".to_owned(),
            name: "fetch".to_owned(),
            uid: "8f2c1a4e-0000-4000-8000-000000000001".to_owned(),
        }),
        generation: Some(3),
        ..placement()
    };
    let run = fixture("full.yaml");
    let built = workload_k8s::statefulset(&run, &placement).expect("builds");
    compare(&built.statefulset, "fetch-statefulset.yaml");
    let service = workload_k8s::headless_service(&run, &placement).expect("http server");
    compare(&service, "fetch-headless-service.yaml");
    assert_eq!(paths(&built.notes), ["workload.container.volumes[0]"]);
}
