//! MCPServer (+ referenced objects) → RunConfig, the CRD paths of violations, and the
//! reverse mapping for `thv convert`.

use std::path::Path;

use admission::{References, from_mcpserver, to_manifests};
use api::Manifest;
use runconfig::{FieldPath, validate};

fn example(file: &str) -> Vec<Manifest> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("example exists");
    api::manifest::split_documents(&text)
        .into_iter()
        .filter(|d| d.contains("toolhive.stacklok.dev/"))
        .map(|d| Manifest::from_yaml(d).expect("example parses"))
        .collect()
}

fn server(yaml: &str) -> api::MCPServer {
    let document = format!(
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: demo, namespace: team}}\nspec:\n{yaml}"
    );
    api::manifest::from_yaml(&document).expect("test manifest parses")
}

macro_rules! only {
    ($file:expr, $kind:ident) => {
        example($file)
            .into_iter()
            .find_map(|m| {
                if let Manifest::$kind(o) = m {
                    Some(o)
                } else {
                    None
                }
            })
            .expect(concat!("example has a ", stringify!($kind)))
    };
}

#[test]
fn full_example_with_its_references_maps_to_a_valid_runconfig() {
    let server = only!("mcpserver-full.yaml", MCPServer);
    let tools = only!("mcptoolconfig.yaml", MCPToolConfig);
    let oidc = example("mcpoidcconfig.yaml")
        .into_iter()
        .find_map(|m| match m {
            Manifest::MCPOIDCConfig(o) if o.metadata.name.as_deref() == Some("corporate-idp") => {
                Some(o)
            }
            _ => None,
        })
        .expect("corporate-idp");
    let telemetry = only!("mcptelemetryconfig.yaml", MCPTelemetryConfig);
    let group = only!("mcpgroup.yaml", MCPGroup);
    let refs = References {
        tool_config: Some(&tools),
        oidc_config: Some(&oidc),
        telemetry_config: Some(&telemetry),
        group: Some(&group),
        ..References::default()
    };
    let mapped = from_mcpserver(&server, &refs);
    assert!(mapped.missing.is_empty(), "{:?}", mapped.missing);
    assert!(mapped.problems.is_empty());
    let validated =
        validate(&mapped.config).unwrap_or_else(|e| panic!("full example must validate:\n{e}"));
    assert_eq!(validated.proxy.port, 8080);
    let oidc = validated.proxy.oidc.as_ref().expect("oidc");
    assert_eq!(oidc.audience, "github-mcp");
    assert_eq!(
        oidc.client_secret_env.as_deref(),
        Some(admission::OIDC_CLIENT_SECRET_ENV),
        "secret by env, never by value"
    );
    assert_eq!(
        validated
            .proxy
            .tools
            .renamed_from
            .get("find_repos")
            .map(String::as_str),
        Some("search_repositories")
    );
    assert_eq!(
        validated
            .proxy
            .telemetry
            .as_ref()
            .map(|t| t.service_name.as_str()),
        Some("github-mcp")
    );
    let json = String::from_utf8(runconfig::to_json(&mapped.config)).expect("utf8");
    assert!(
        !json.contains("client-secret"),
        "no secret material in the RunConfig"
    );
}

#[test]
fn minimal_example_maps_with_toolhive_defaults() {
    let mapped = from_mcpserver(
        &only!("mcpserver-minimal.yaml", MCPServer),
        &References::default(),
    );
    let validated = validate(&mapped.config).expect("valid");
    assert_eq!(
        validated.proxy.mode,
        runconfig::validate::ProxyMode::StreamableHttp
    );
    let runconfig::validate::ValidatedWorkload::Container(c) = &validated.workload else {
        panic!("container")
    };
    assert_eq!(c.transport, runconfig::validate::Transport::Stdio);
    assert_eq!(
        mapped.config.workload_service_account(),
        Some("everything-sa")
    );
}

trait ServiceAccount {
    fn workload_service_account(&self) -> Option<&str>;
}

impl ServiceAccount for runconfig::RunConfig {
    fn workload_service_account(&self) -> Option<&str> {
        match &self.workload {
            runconfig::config::Workload::Container(c) => c.service_account.as_deref(),
            runconfig::config::Workload::Remote(_) => None,
        }
    }
}

/// Maps a server, validates, and returns each violation located in CRD terms.
fn crd_errors(server: &api::MCPServer, refs: &References<'_>) -> Vec<String> {
    let mapped = from_mcpserver(server, refs);
    let mut problems: Vec<_> = mapped.problems.iter().cloned().collect();
    if let Err(v) = validate(&mapped.config) {
        problems.extend(v);
    }
    problems
        .iter()
        .map(|v| format!("{}: {}", mapped.paths.locate(&v.path), v.message))
        .collect()
}

#[test]
fn inline_cedar_error_points_at_the_policy_in_the_mcpserver() {
    let server = server(
        "  image: ghcr.io/org/s:1\n  authzConfig:\n    type: inline\n    inline:\n      policies:\n        - 'permit(principal, action, resource);'\n        - 'permit(principal, action == Action::\"drop_db\", resource);'\n",
    );
    let errors = crd_errors(&server, &References::default());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("spec.authzConfig.inline.policies[1]: "),
        "{errors:?}"
    );
}

#[test]
fn field_names_are_translated_to_the_crd_spelling() {
    let server = server(
        "  image: ghcr.io/org/s:1\n  secrets:\n    - {name: tok, key: k, targetEnvName: 9BAD}\n  volumes:\n    - {name: data, hostPath: /d, mountPath: relative}\n  endpointPrefix: nope\n",
    );
    let errors = crd_errors(&server, &References::default());
    let paths: Vec<_> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "spec.secrets[0].targetEnvName",
            "spec.volumes[0].mountPath",
            "spec.endpointPrefix"
        ],
        "{errors:?}"
    );
}

#[test]
fn referenced_object_errors_name_the_reference_and_the_object_field() {
    let server = server(
        "  image: ghcr.io/org/s:1\n  toolConfigRef: {name: tools}\n  oidcConfigRef: {name: idp, audience: a}\n",
    );
    let tools: api::MCPToolConfig = api::manifest::from_yaml("apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPToolConfig\nmetadata: {name: tools}\nspec:\n  toolsFilter: [a, a]\n").expect("parses");
    let oidc: api::MCPOIDCConfig = api::manifest::from_yaml("apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPOIDCConfig\nmetadata: {name: idp}\nspec:\n  type: inline\n  inline: {issuer: 'http://idp.local'}\n").expect("parses");
    let errors = crd_errors(
        &server,
        &References {
            tool_config: Some(&tools),
            oidc_config: Some(&oidc),
            ..References::default()
        },
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.oidcConfigRef (MCPOIDCConfig idp): spec.inline.issuer: ")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e
                .starts_with("spec.toolConfigRef (MCPToolConfig tools): spec.toolsFilter[1]: ")),
        "{errors:?}"
    );
}

#[test]
fn missing_references_are_listed_not_fatal() {
    let server = server(
        "  image: ghcr.io/org/s:1\n  toolConfigRef: {name: later}\n  authzConfigRef: {name: policy}\n  telemetryConfigRef: {name: otel}\n",
    );
    let mapped = from_mcpserver(&server, &References::default());
    let missing: Vec<_> = mapped
        .missing
        .iter()
        .map(|m| format!("{} {} {}", m.field, m.kind, m.name))
        .collect();
    assert_eq!(
        missing,
        [
            "spec.authzConfigRef MCPAuthzConfig policy",
            "spec.telemetryConfigRef MCPTelemetryConfig otel",
            "spec.toolConfigRef MCPToolConfig later"
        ]
    );
    assert!(validate(&mapped.config).is_ok(), "what exists is valid");
}

#[test]
fn authz_configmap_content_is_read_as_a_toolhive_authorization_file() {
    let server = server(
        "  image: ghcr.io/org/s:1\n  authzConfig:\n    type: configMap\n    configMap: {name: authz}\n",
    );
    let file = r#"{"version": "1.0", "type": "cedarv1", "cedar": {"policies": ["permit(principal, action == Action::\"list_tools\", resource);"], "entities_json": "[]"}}"#;
    let mapped = from_mcpserver(
        &server,
        &References {
            authz_config_map: Some(file),
            ..References::default()
        },
    );
    assert!(validate(&mapped.config).is_ok());
    let broken = from_mcpserver(
        &server,
        &References {
            authz_config_map: Some("policies: nope"),
            ..References::default()
        },
    );
    let location = broken
        .paths
        .locate(&broken.problems.iter().next().expect("a problem").path);
    assert_eq!(
        location.to_string(),
        r#"spec.authzConfig.configMap (ConfigMap authz): data["authz.json"]"#
    );
}

#[test]
fn unmapped_paths_fall_back_to_spec() {
    let mapped = from_mcpserver(&server("  image: a/b:1\n"), &References::default());
    assert_eq!(
        mapped
            .paths
            .locate(&FieldPath::parse("proxy.host"))
            .to_string(),
        "spec"
    );
}

#[test]
fn runconfig_converts_back_to_manifests_that_map_to_the_same_runconfig() {
    let data = include_str!("../../runconfig/tests/data/toolhive_v0.1.0.json");
    let imported = runconfig::from_json(data.as_bytes()).expect("imports");
    let mut config = imported.clone();
    // A CRD has no inline profile; use the built-in one the import produced.
    let manifests = to_manifests(&config).expect("converts");
    let kinds: Vec<_> = manifests.iter().map(Manifest::kind).collect();
    assert_eq!(
        kinds,
        [
            "MCPServer",
            "MCPOIDCConfig",
            "MCPTelemetryConfig",
            "MCPToolConfig"
        ]
    );
    let get = |kind: &str| manifests.iter().find(|m| m.kind() == kind).cloned();
    let (
        Some(Manifest::MCPServer(server)),
        Some(Manifest::MCPToolConfig(tools)),
        Some(Manifest::MCPOIDCConfig(oidc)),
        Some(Manifest::MCPTelemetryConfig(telemetry)),
    ) = (
        get("MCPServer"),
        get("MCPToolConfig"),
        get("MCPOIDCConfig"),
        get("MCPTelemetryConfig"),
    )
    else {
        panic!("all four kinds")
    };
    let back = from_mcpserver(
        &server,
        &References {
            tool_config: Some(&tools),
            oidc_config: Some(&oidc),
            telemetry_config: Some(&telemetry),
            ..References::default()
        },
    );
    assert!(validate(&back.config).is_ok());
    // What the CRD carries survives; host/labels/debug are local-only.
    config.proxy.host = back.config.proxy.host.clone();
    assert_eq!(back.config.proxy.authz, config.proxy.authz);
    assert_eq!(back.config.proxy.tools, config.proxy.tools);
    assert_eq!(
        back.config
            .proxy
            .oidc
            .as_ref()
            .and_then(|o| o.issuer.clone()),
        config.proxy.oidc.as_ref().and_then(|o| o.issuer.clone())
    );
}

#[test]
fn remote_workloads_have_no_mcpserver_form() {
    let mut config = runconfig::from_json(
        include_str!("../../runconfig/tests/data/toolhive_v0.1.0.json").as_bytes(),
    )
    .expect("imports");
    config.workload = runconfig::config::Workload::Remote(runconfig::config::RemoteWorkload {
        url: "https://x".into(),
        transport: "sse".into(),
        ..runconfig::config::RemoteWorkload::default()
    });
    let error = to_manifests(&config).expect_err("remote");
    assert!(
        error.to_string().starts_with("workload.remote: "),
        "{error}"
    );
}

#[test]
fn unknown_transport_is_an_error_naming_the_value() {
    let mut config = runconfig::from_json(
        include_str!("../../runconfig/tests/data/toolhive_v0.1.0.json").as_bytes(),
    )
    .expect("imports");
    let runconfig::config::Workload::Container(container) = &mut config.workload else {
        panic!("the fixture is a container workload")
    };
    container.transport = "websocket".into();
    let error = to_manifests(&config).expect_err("unknown transport");
    let message = error.to_string();
    assert!(
        message.starts_with("workload.container.transport: ") && message.contains("\"websocket\""),
        "{message}"
    );
}
