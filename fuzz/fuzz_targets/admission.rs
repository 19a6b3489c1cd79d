//! Any bytes through the admission handler, as the webhook server hands it a request
//! body: parse, dispatch on kind, `admission::check_manifest` against an in-memory catalog
//! holding the valid examples (so references resolve and config updates re-check
//! servers). Nothing may panic, and every answer must be JSON the API server can read:
//! an AdmissionReview with our uid on 200, `{"error": …}` on 400/500.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use operator::webhook::catalog::MemoryCatalogs;
use operator::webhook::handler::review;

/// The namespace the seeds' requests name.
const NAMESPACE: &str = "team";

fn catalogs() -> &'static MemoryCatalogs {
    static CATALOGS: OnceLock<MemoryCatalogs> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        let mut catalogs = MemoryCatalogs::default();
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut files: Vec<_> = std::fs::read_dir(examples)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for document in api::manifest::split_documents(&text) {
                if let Ok(manifest) = api::Manifest::from_yaml(document) {
                    catalogs.namespace(NAMESPACE).add(manifest);
                    continue;
                }
                // ConfigMaps (registry and authorization data) by name.
                let Ok(value) = api::manifest::from_yaml::<serde_json::Value>(document) else {
                    continue;
                };
                if value["kind"] == "ConfigMap" {
                    let name = value["metadata"]["name"].as_str().unwrap_or_default();
                    let data = serde_json::from_value(value["data"].clone()).unwrap_or_default();
                    catalogs.namespace(NAMESPACE).add_config_map(name, data);
                }
            }
        }
        catalogs
    })
}

fuzz_target!(|data: &[u8]| {
    let answer = review(data, catalogs(), Instant::now() + Duration::from_secs(5));
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body).expect("every answer is JSON");
    match answer.status {
        200 => {
            let response = &body["response"];
            assert!(response["allowed"].is_boolean(), "a decision: {body}");
            assert!(response["uid"].is_string(), "the request's uid: {body}");
        }
        400 | 500 => assert!(
            body["kind"] == "Status" && body["message"].is_string(),
            "a Status with a reason: {body}"
        ),
        other => panic!("unexpected status {other}"),
    }
});
