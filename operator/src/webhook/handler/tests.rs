//! The handler on AdmissionReviews as the API server sends them, with catalogs in memory.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::webhook::catalog::MemoryCatalogs;

const NAMESPACE: &str = "team";

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or(Value::Null)
}

fn example(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(path).unwrap_or_default()
}

/// An AdmissionReview for `object`, as the API server sends it.
fn request(operation: &str, object: &Value, old: Option<&Value>) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or_default();
    let gvk = json!({"group": group, "version": version, "kind": kind});
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": gvk,
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": gvk,
            "name": object["metadata"]["name"],
            "namespace": NAMESPACE,
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false,
        }
    })
    .to_string()
    .into_bytes()
}

fn run(body: &[u8], catalogs: &MemoryCatalogs) -> (Answer, Value) {
    let answer = review(body, catalogs, Instant::now() + Duration::from_secs(5));
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer, json)
}

fn messages(response: &Value) -> String {
    response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const TWO_PROBLEMS: &str = "apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: github}
spec:
  image: ghcr.io/github/github-mcp-server:v0.20.1
  proxyPort: 8080
  endpointPrefix: github
  env: [{name: GOOD, value: a}, {name: 1BAD, value: b}]
";

#[test]
fn admits_a_valid_server_and_warns_about_references_that_do_not_exist_yet() {
    let server = yaml(&example("examples/mcpserver-full.yaml"));
    let (answer, response) = run(
        &request("CREATE", &server, None),
        &MemoryCatalogs::default(),
    );
    assert_eq!((answer.status, answer.verdict), (200, Verdict::Allowed));
    assert_eq!(answer.kind, ReviewedKind::Ours("MCPServer"));
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(
        response["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    let warnings = response["response"]["warnings"].to_string();
    assert!(
        warnings.contains("spec.toolConfigRef: MCPToolConfig github-tools does not exist yet"),
        "{warnings}"
    );
}

#[test]
fn denies_listing_every_problem_at_its_field_path() {
    let (answer, response) = run(
        &request("CREATE", &yaml(TWO_PROBLEMS), None),
        &MemoryCatalogs::default(),
    );
    assert_eq!((answer.status, answer.verdict), (200, Verdict::Denied));
    assert_eq!(response["response"]["allowed"], false);
    let status = &response["response"]["status"];
    assert_eq!(
        (status["code"].as_u64(), status["reason"].as_str()),
        (Some(422), Some("Invalid"))
    );
    let message = messages(&response);
    assert!(
        message.starts_with("MCPServer github is invalid (2 problems):"),
        "{message}"
    );
    assert!(message.contains("\n- spec.endpointPrefix: "), "{message}");
    assert!(message.contains("\n- spec.env[1].name: "), "{message}");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields.len(), 2, "{fields:?}");
}

#[test]
fn every_invalid_example_is_denied_at_its_expected_path() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Some(expect) = text.lines().find_map(|l| l.strip_prefix("# expect: ")) else {
            continue;
        };
        // Multi-document files: earlier documents are in the catalog, as if applied.
        let mut catalogs = MemoryCatalogs::default();
        let mut denied = Vec::new();
        for document in api::manifest::split_documents(&text) {
            let object = yaml(document);
            let (_, response) = run(&request("CREATE", &object, None), &catalogs);
            if response["response"]["allowed"] == false {
                denied.push(messages(&response));
            }
            if let Ok(manifest) = Manifest::from_yaml(document) {
                catalogs.namespace(NAMESPACE).add(manifest);
            }
        }
        let name = entry.file_name();
        if ["spec.audit.eventTypes", "spec.servers"].contains(&expect) {
            // An unknown field: the API server refuses or prunes it before any webhook.
            assert!(denied.is_empty(), "{name:?}: {denied:?}");
            continue;
        }
        assert!(
            denied.iter().any(|m| m.contains(expect)),
            "{name:?} expects {expect}: {denied:?}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} invalid examples checked");
}

#[test]
fn config_update_that_breaks_a_referencing_server_is_denied_naming_it() {
    let text = example("examples/invalid/tool-config-breaks-server.yaml");
    let documents = api::manifest::split_documents(&text);
    let mut catalogs = MemoryCatalogs::default();
    for document in &documents[1..] {
        if let Ok(manifest) = Manifest::from_yaml(document) {
            catalogs.namespace(NAMESPACE).add(manifest);
        }
    }
    let tools = yaml(documents[0]);
    let (answer, response) = run(
        &request("UPDATE", &tools, Some(&json!({"spec": {}}))),
        &catalogs,
    );
    assert_eq!(answer.verdict, Verdict::Denied);
    let message = messages(&response);
    assert!(
        message.contains("would make the objects referencing it invalid: MCPServer github"),
        "{message}"
    );
}

#[test]
fn update_that_leaves_the_spec_alone_is_admitted_even_when_invalid() {
    let object = yaml(TWO_PROBLEMS);
    let mut labelled = object.clone();
    labelled["metadata"]["labels"] = json!({"team": "platform"});
    let (answer, _) = run(
        &request("UPDATE", &labelled, Some(&object)),
        &MemoryCatalogs::default(),
    );
    assert_eq!(answer.verdict, Verdict::Allowed);
    let valid = yaml(&example("examples/mcpserver-minimal.yaml"));
    let (answer, _) = run(
        &request("UPDATE", &object, Some(&valid)),
        &MemoryCatalogs::default(),
    );
    assert_eq!(
        answer.verdict,
        Verdict::Denied,
        "valid → invalid is refused"
    );
}

#[test]
fn deprecated_version_is_admitted_with_a_warning() {
    let mut object = yaml(&example("examples/mcpserver-minimal.yaml"));
    object["apiVersion"] = json!("toolhive.stacklok.dev/v1alpha1");
    let (answer, response) = run(
        &request("CREATE", &object, None),
        &MemoryCatalogs::default(),
    );
    assert_eq!(answer.verdict, Verdict::Allowed);
    assert!(
        response["response"]["warnings"]
            .to_string()
            .contains("apiVersion: toolhive.stacklok.dev/v1alpha1 MCPServer is deprecated")
    );
}

#[test]
fn malformed_review_is_a_400_with_a_json_reason() {
    for body in [
        &b"{not json"[..],
        b"[]",
        b"{}",
        b"",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
    ] {
        let (answer, json) = run(body, &MemoryCatalogs::default());
        assert_eq!(
            (answer.status, answer.verdict),
            (400, Verdict::Error),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(
            json["message"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
        assert_eq!(
            (json["kind"].as_str(), json["code"].as_u64()),
            (Some("Status"), Some(400))
        );
    }
}

#[test]
fn review_of_another_version_of_admission_is_refused() {
    let mut body: Value =
        serde_json::from_slice(&request("CREATE", &yaml(TWO_PROBLEMS), None)).unwrap_or_default();
    body["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (answer, json) = run(body.to_string().as_bytes(), &MemoryCatalogs::default());
    assert_eq!(answer.status, 400);
    assert!(
        json["message"]
            .to_string()
            .contains("admission.k8s.io/v1 AdmissionReview")
    );
}

#[test]
fn oversized_review_is_refused_unread() {
    let body = vec![b' '; MAX_REVIEW_BYTES + 1];
    let (answer, json) = run(&body, &MemoryCatalogs::default());
    assert_eq!(answer.status, 400);
    assert!(json["message"].to_string().contains("3 MiB"), "{json}");
}

#[test]
fn objects_of_other_kinds_and_deletes_are_admitted_unchecked() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let (answer, _) = run(&request("CREATE", &pod, None), &MemoryCatalogs::default());
    assert_eq!(
        (answer.verdict, answer.kind),
        (Verdict::Allowed, ReviewedKind::Other)
    );
    let (answer, _) = run(
        &request("DELETE", &yaml(TWO_PROBLEMS), None),
        &MemoryCatalogs::default(),
    );
    assert_eq!(answer.verdict, Verdict::Allowed);
}

#[test]
fn object_our_types_cannot_read_is_denied_at_the_field() {
    let mut object = yaml(TWO_PROBLEMS);
    object["spec"]["transport"] = json!("carrier-pigeon");
    let (answer, response) = run(
        &request("CREATE", &object, None),
        &MemoryCatalogs::default(),
    );
    assert_eq!(answer.verdict, Verdict::Denied);
    assert!(
        messages(&response).contains("spec.transport: unknown variant"),
        "{}",
        messages(&response)
    );
}

/// A catalog whose API server does not answer.
struct Unreachable;

impl Catalogs for Unreachable {
    fn with_namespace(
        &self,
        namespace: &str,
        _: Instant,
        _: &mut dyn FnMut(&dyn admission::Catalog),
    ) -> Result<(), String> {
        Err(format!(
            "looking up MCPToolConfig github-tools in namespace {namespace}: connection refused"
        ))
    }
}

#[test]
fn failed_lookup_is_a_500_so_the_failure_policy_decides() {
    let server = yaml(&example("examples/mcpserver-full.yaml"));
    let answer = review(
        &request("CREATE", &server, None),
        &Unreachable,
        Instant::now(),
    );
    assert_eq!((answer.status, answer.verdict), (500, Verdict::Error));
    // A `Status` of failure, so that the API server passes its message on to the user
    // instead of "unknown".
    let status: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    assert_eq!(
        (
            status["apiVersion"].as_str(),
            status["kind"].as_str(),
            status["status"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (
            Some("v1"),
            Some("Status"),
            Some("Failure"),
            Some("InternalError"),
            Some(500)
        ),
        "{status}"
    );
    assert!(
        status["message"].as_str().is_some_and(
            |m| m.contains("MCPToolConfig github-tools") && m.contains("connection refused")
        ),
        "{status}"
    );
}
