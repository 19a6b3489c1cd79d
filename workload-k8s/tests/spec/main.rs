//! The specification of the built objects, from RunConfigs a user or the operator writes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod check;
mod golden;
mod patch;
mod profile;
mod statefulset;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use runconfig::{RunConfig, Violation};
use workload_k8s::{Built, Finding, Placement, Severity};

/// A RunConfig from YAML, read as the proxy reads its JSON.
pub fn run(yaml: &str) -> RunConfig {
    let value: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("fixture is YAML");
    runconfig::from_value(value).expect("fixture is a RunConfig")
}

/// A fixture file from `tests/fixtures`.
pub fn fixture(name: &str) -> RunConfig {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    run(&std::fs::read_to_string(&path).expect("fixture file"))
}

/// A stdio server with the given extra lines under `workload.container` (indented by 4).
pub fn container(extra: &str) -> RunConfig {
    run(&format!(
        "schema_version: v1\nname: time\nworkload:\n  container:\n    image: mcp/time:1.0\n    transport: stdio\n{extra}\nproxy: {{}}\n"
    ))
}

pub fn placement() -> Placement {
    Placement::new("team")
}

pub fn built(run: &RunConfig) -> Built {
    workload_k8s::statefulset(run, &placement()).expect("builds")
}

pub fn pod(statefulset: &StatefulSet) -> &PodSpec {
    workload_k8s::pod_spec(statefulset).expect("pod spec")
}

/// The container named `name`.
pub fn named<'a>(pod: &'a PodSpec, name: &str) -> &'a Container {
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .expect("container")
}

/// The server's container.
pub fn mcp(statefulset: &StatefulSet) -> &Container {
    named(pod(statefulset), "mcp")
}

/// The refusal of `run`, as its violations.
pub fn refused(run: &RunConfig) -> Vec<Violation> {
    match workload_k8s::statefulset(run, &placement()) {
        Ok(_) => panic!("expected a refusal"),
        Err(workload_k8s::BuildError::Refused(v)) => v.0,
    }
}

/// Paths of the violations, as printed.
pub fn paths(violations: &[Violation]) -> Vec<String> {
    violations.iter().map(|v| v.path.to_string()).collect()
}

/// Paths of `check`'s findings of one severity.
pub fn checked(run: &RunConfig, severity: Severity) -> Vec<String> {
    workload_k8s::check(run)
        .into_iter()
        .filter(|f: &Finding| f.severity == severity)
        .map(|f| f.violation.path.to_string())
        .collect()
}

/// `(name, value)` of the env, `value` the literal or `secret:<name>/<key>`.
pub fn env(container: &Container) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let value = match (
                &e.value,
                e.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref()),
            ) {
                (Some(v), _) => v.clone(),
                (None, Some(s)) => format!("secret:{}/{}", s.name, s.key),
                (None, None) => String::new(),
            };
            (e.name.clone(), value)
        })
        .collect()
}
