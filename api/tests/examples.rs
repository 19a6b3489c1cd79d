//! Every manifest in `examples/` parses into the typed kinds, and defaults match ToolHive's.

use std::path::{Path, PathBuf};

use api::mcpserver::{ProxyMode, SessionAffinity, Transport};
use api::{GROUP, Manifest};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every document of this API group in the top level of `examples/`, with its file name.
fn example_documents() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("example is readable");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for document in api::manifest::split_documents(&text) {
            if document.contains(&format!("apiVersion: {GROUP}/")) {
                found.push((name.clone(), document.to_owned()));
            }
        }
    }
    found
}

fn load(file: &str) -> Vec<Manifest> {
    let text = std::fs::read_to_string(examples_dir().join(file)).expect("example is readable");
    api::manifest::split_documents(&text)
        .into_iter()
        .filter(|d| d.contains(GROUP))
        .map(|d| Manifest::from_yaml(d).unwrap_or_else(|e| panic!("{file}: {e}")))
        .collect()
}

/// The single document of this API group in `file`.
fn only(file: &str) -> Manifest {
    let mut documents = load(file);
    assert_eq!(
        documents.len(),
        1,
        "{file} should hold one object of {GROUP}"
    );
    documents.remove(0)
}

#[test]
fn every_example_parses_into_its_kind() {
    let documents = example_documents();
    assert!(
        documents.len() >= 8,
        "expected the example set, found {}",
        documents.len()
    );
    for (file, document) in documents {
        if let Err(e) = Manifest::from_yaml(&document) {
            panic!("{file}: {e}");
        }
    }
}

#[test]
fn examples_cover_every_kind() {
    let kinds: std::collections::BTreeSet<_> = example_documents()
        .iter()
        .filter_map(|(_, d)| Manifest::from_yaml(d).ok())
        .map(|m| m.kind())
        .collect();
    for kind in api::manifest::KINDS {
        assert!(kinds.contains(kind), "no example of {kind}");
    }
}

#[test]
fn minimal_mcpserver_gets_toolhive_defaults() {
    let Manifest::MCPServer(server) = only("mcpserver-minimal.yaml") else {
        panic!("mcpserver-minimal.yaml is not an MCPServer");
    };
    assert_eq!(server.spec.transport, Transport::Stdio);
    assert_eq!(server.spec.proxy_mode, ProxyMode::StreamableHttp);
    assert_eq!(server.spec.proxy_port, 8080);
    assert_eq!(server.spec.session_affinity, SessionAffinity::ClientIP);
    assert_eq!(server.spec.mcp_port, None);
    assert!(!server.spec.trust_proxy_headers);
}

#[test]
fn full_mcpserver_keeps_every_setting() {
    let Manifest::MCPServer(server) = only("mcpserver-full.yaml") else {
        panic!("mcpserver-full.yaml is not an MCPServer");
    };
    let spec = &server.spec;
    assert_eq!(
        spec.secrets[0].target_env_name.as_deref(),
        Some("GITHUB_PERSONAL_ACCESS_TOKEN")
    );
    assert_eq!(
        spec.oidc_config_ref.as_ref().map(|r| r.audience.as_str()),
        Some("github-mcp")
    );
    let inline = spec
        .authz_config
        .as_ref()
        .and_then(|a| a.inline.as_ref())
        .expect("inline authz");
    assert_eq!(inline.policies.len(), 3);
    assert_eq!(
        inline.entities_json, "[]",
        "entitiesJson defaults to an empty array"
    );
    assert_eq!(
        spec.tool_config_ref.as_ref().map(|r| r.name.as_str()),
        Some("github-tools")
    );
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.pod_template_spec.as_ref().expect("pod template kept");
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}

#[test]
fn mcpregistry_example_reads_its_source_and_schedule() {
    let Manifest::MCPRegistry(registry) = only("mcpregistry.yaml") else {
        panic!("mcpregistry.yaml has no MCPRegistry");
    };
    let source = &registry.spec.source;
    assert_eq!(
        source.config_map.as_ref().map(|c| c.name.as_str()),
        Some("team-catalog")
    );
    assert_eq!(
        registry
            .spec
            .sync_policy
            .as_ref()
            .map(|s| s.interval.as_str()),
        Some("1h")
    );
}

#[test]
fn typed_round_trip_is_lossless() {
    for (file, document) in example_documents() {
        let parsed = Manifest::from_yaml(&document).expect("parses");
        let json = serde_json::to_string(&parsed.to_value()).expect("serialises");
        let again = Manifest::from_yaml(&json).expect("re-parses");
        assert_eq!(parsed, again, "{file} changed on a round trip");
    }
}

#[test]
fn v1alpha1_manifests_still_parse() {
    let document = "apiVersion: toolhive.stacklok.dev/v1alpha1\nkind: MCPServer\nmetadata: {name: old}\nspec: {image: example.com/old:1}\n";
    assert!(matches!(
        Manifest::from_yaml(document),
        Ok(Manifest::MCPServer(_))
    ));
}
