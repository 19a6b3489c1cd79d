//! Admission checks per kind, specified with the YAML a user would apply.
#![allow(clippy::unwrap_used)] // fixtures are literals

use std::collections::BTreeMap;

use api::Manifest;
use serde_json::json;

use super::registry::go_duration;
use super::{InMemoryCatalog, Report, check_manifest, unknown_fields};
use runconfig::Reason;

const V1BETA1: &str = "toolhive.stacklok.dev/v1beta1";

fn object(yaml: &str) -> Manifest {
    Manifest::from_yaml(yaml).unwrap_or_else(|e| panic!("fixture parses: {e}\n{yaml}"))
}

fn server(spec: &str) -> String {
    format!("apiVersion: {V1BETA1}\nkind: MCPServer\nmetadata: {{name: demo}}\nspec:\n{spec}")
}

fn kind(kind: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: {V1BETA1}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

fn check_in(yaml: &str, catalog: &InMemoryCatalog) -> Report {
    check_manifest(&object(yaml), V1BETA1, catalog)
}

fn check_alone(yaml: &str) -> Report {
    check_in(yaml, &InMemoryCatalog::default())
}

fn catalog(documents: &[&str]) -> InMemoryCatalog {
    let mut catalog = InMemoryCatalog::default();
    for document in documents {
        catalog.add(object(document));
    }
    catalog
}

fn error_paths(report: &Report) -> Vec<&str> {
    report.errors.iter().map(|e| e.path.as_str()).collect()
}

fn warning_paths(report: &Report) -> Vec<&str> {
    report.warnings.iter().map(|w| w.path.as_str()).collect()
}

const TOOLS: &str = "  toolsFilter: [search, get_issue]\n";
const OIDC: &str = "  type: inline\n  inline:\n    issuer: https://idp.example.com\n";

// ---- MCPServer ----

#[test]
fn minimal_server_is_admitted_without_findings() {
    let report = check_alone(&server("  image: docker.io/mcp/everything:latest\n"));
    assert_eq!(report, Report::default());
}

#[test]
fn cedar_syntax_error_is_located_at_the_inline_policy() {
    let report = check_alone(&server(
        "  image: a/b:1\n  authzConfig:\n    type: inline\n    inline:\n      policies:\n        - 'permit(principal, action, resource);'\n        - 'permit(principal action);'\n",
    ));
    assert_eq!(
        error_paths(&report),
        ["spec.authzConfig.inline.policies[1]"]
    );
    assert_eq!(report.errors[0].reason, Reason::CedarSyntax);
}

#[test]
fn cedar_policy_with_unknown_action_is_refused() {
    let report = check_alone(&server(
        "  image: a/b:1\n  authzConfig:\n    type: inline\n    inline:\n      policies: ['permit(principal, action == Action::\"delete_everything\", resource);']\n",
    ));
    assert_eq!(
        error_paths(&report),
        ["spec.authzConfig.inline.policies[0]"]
    );
    assert_eq!(report.errors[0].reason, Reason::CedarSchema);
}

#[test]
fn authz_config_together_with_authz_config_ref_is_refused_by_the_crd_rule() {
    let report = check_alone(&server(
        "  image: a/b:1\n  authzConfig:\n    type: inline\n    inline:\n      policies: ['permit(principal, action, resource);']\n  authzConfigRef: {name: shared}\n",
    ));
    let error = report
        .errors
        .iter()
        .find(|e| e.path == "spec.authzConfigRef")
        .unwrap();
    assert_eq!(error.reason, Reason::CrdRule);
    assert!(error.message.contains("mutually exclusive"), "{error}");
}

#[test]
fn out_of_range_proxy_port_is_reported_once() {
    let report = check_alone(&server("  image: a/b:1\n  proxyPort: 70000\n"));
    assert_eq!(error_paths(&report), ["spec.proxyPort"]);
    assert!(report.errors[0].message.contains("65535"), "{report:?}");
}

#[test]
fn schema_bounds_are_enforced_where_no_runconfig_rule_applies() {
    let report = check_alone(&server("  image: a/b:1\n  replicas: -1\n"));
    assert_eq!(error_paths(&report), ["spec.replicas"]);
    assert_eq!(report.errors[0].reason, Reason::OutOfRange);
}

#[test]
fn empty_audience_is_refused_at_the_reference() {
    let catalog = catalog(&[&kind("MCPOIDCConfig", "idp", OIDC)]);
    let report = check_in(
        &server("  image: a/b:1\n  oidcConfigRef: {name: idp, audience: ''}\n"),
        &catalog,
    );
    assert_eq!(error_paths(&report), ["spec.oidcConfigRef.audience"]);
}

#[test]
fn missing_references_are_warnings_not_errors() {
    let report = check_alone(&server(
        "  image: a/b:1\n  toolConfigRef: {name: tools}\n  oidcConfigRef: {name: idp, audience: demo}\n  telemetryConfigRef: {name: otel}\n",
    ));
    assert!(report.is_allowed(), "{:?}", report.errors);
    assert_eq!(
        warning_paths(&report),
        [
            "spec.oidcConfigRef",
            "spec.telemetryConfigRef",
            "spec.toolConfigRef"
        ]
    );
    assert!(
        report.warnings[2]
            .message
            .contains("MCPToolConfig tools does not exist yet")
    );
}

#[test]
fn problems_in_a_referenced_object_name_the_reference() {
    let catalog = catalog(&[&kind(
        "MCPToolConfig",
        "tools",
        "  toolsFilter: [search, search]\n",
    )]);
    let report = check_in(
        &server("  image: a/b:1\n  toolConfigRef: {name: tools}\n"),
        &catalog,
    );
    assert_eq!(
        error_paths(&report),
        ["spec.toolConfigRef (MCPToolConfig tools): spec.toolsFilter[1]"]
    );
}

#[test]
fn authorization_file_in_a_config_map_is_validated() {
    let mut catalog = InMemoryCatalog::default();
    let file = r#"{"version": "1.0", "type": "cedarv1", "cedar": {"policies": ["permit(principal"], "entities_json": "[]"}}"#;
    catalog.add_config_map(
        "authz",
        BTreeMap::from([("authz.json".to_owned(), file.to_owned())]),
    );
    let report = check_in(
        &server(
            "  image: a/b:1\n  authzConfig:\n    type: configMap\n    configMap: {name: authz}\n",
        ),
        &catalog,
    );
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(
        report.errors[0]
            .path
            .starts_with(r#"spec.authzConfig.configMap (ConfigMap authz): data["authz.json"]"#),
        "{report:?}"
    );
}

#[test]
fn an_oidc_ca_bundle_comes_from_its_config_map_into_the_runconfig() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let oidc = format!("{OIDC}    caBundleRef: {{configMapRef: {{name: idp-ca}}}}\n");
    let server_yaml = server("  image: a/b:1\n  oidcConfigRef: {name: idp, audience: demo}\n");
    let server = match object(&server_yaml) {
        Manifest::MCPServer(server) => server,
        other => panic!("{other:?}"),
    };
    let mut with_map = catalog(&[&kind("MCPOIDCConfig", "idp", &oidc)]);
    with_map.add_config_map(
        "idp-ca",
        BTreeMap::from([("ca.crt".to_owned(), pem.to_owned())]),
    );
    let refs = crate::Referenced::from_catalog(&server, &with_map);
    let mapped = crate::from_mcpserver(&server, &refs.references());
    assert_eq!(
        mapped
            .config
            .proxy
            .oidc
            .and_then(|o| o.ca_bundle)
            .as_deref(),
        Some(pem)
    );
    assert!(check_in(&server_yaml, &with_map).is_allowed());

    // The ConfigMap missing: the server waits for it (a warning at apply time).
    let without = catalog(&[&kind("MCPOIDCConfig", "idp", &oidc)]);
    let report = check_in(&server_yaml, &without);
    assert!(report.is_allowed(), "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.path == "spec.oidcConfigRef" && w.message.contains("idp-ca (key ca.crt")),
        "{report:?}"
    );
    // Optional and missing: nothing to trust beyond the public CAs, no finding.
    let optional = oidc.replace("name: idp-ca}", "name: idp-ca, optional: true}");
    let report = check_in(
        &server_yaml,
        &catalog(&[&kind("MCPOIDCConfig", "idp", &optional)]),
    );
    assert!(
        report.is_allowed() && report.warnings.is_empty(),
        "{report:?}"
    );

    // Not PEM: refused inside the MCPOIDCConfig, at its caBundleRef.
    let mut junk = catalog(&[&kind("MCPOIDCConfig", "idp", &oidc)]);
    junk.add_config_map(
        "idp-ca",
        BTreeMap::from([("ca.crt".to_owned(), "junk".to_owned())]),
    );
    let report = check_in(&server_yaml, &junk);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.path.contains("spec.inline.caBundleRef")),
        "{report:?}"
    );
}

#[test]
fn a_collector_ca_bundle_comes_from_its_config_map_into_the_runconfig() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let otel = "  openTelemetry:\n    enabled: true\n    endpoint: otel.example.com:4318\n    tracing: {enabled: true}\n    caBundleRef: {configMapRef: {name: otel-ca, key: bundle.pem}}\n";
    let server_yaml = server("  image: a/b:1\n  telemetryConfigRef: {name: otel}\n");
    let server = match object(&server_yaml) {
        Manifest::MCPServer(server) => server,
        other => panic!("{other:?}"),
    };
    let mut with_map = catalog(&[&kind("MCPTelemetryConfig", "otel", otel)]);
    with_map.add_config_map(
        "otel-ca",
        BTreeMap::from([("bundle.pem".to_owned(), pem.to_owned())]),
    );
    let refs = crate::Referenced::from_catalog(&server, &with_map);
    let mapped = crate::from_mcpserver(&server, &refs.references());
    assert_eq!(
        mapped
            .config
            .proxy
            .telemetry
            .and_then(|t| t.ca_bundle)
            .as_deref(),
        Some(pem)
    );
    let report = check_in(
        &server_yaml,
        &catalog(&[&kind("MCPTelemetryConfig", "otel", otel)]),
    );
    assert!(report.is_allowed(), "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.path == "spec.telemetryConfigRef"
                && w.message.contains("otel-ca (key bundle.pem")),
        "{report:?}"
    );
}

#[test]
fn name_too_long_for_the_proxy_service_is_refused() {
    let document = |name: &str| {
        format!(
            "apiVersion: {V1BETA1}\nkind: MCPServer\nmetadata: {{name: {name}}}\nspec: {{image: a/b:1}}\n"
        )
    };
    // 52: the StatefulSet's pods carry a `controller-revision-hash` label of the
    // StatefulSet's name plus 11 characters, and labels hold at most 63.
    let longest = "a".repeat(52);
    assert!(check_alone(&document(&longest)).is_allowed());
    let report = check_alone(&document(&format!("{longest}b")));
    assert_eq!(error_paths(&report), ["metadata.name"]);
    assert!(
        report.errors[0].message.contains("at most 52"),
        "{report:?}"
    );
}

#[test]
fn v1alpha1_is_admitted_with_a_deprecation_warning() {
    let manifest = object(&server("  image: a/b:1\n").replace("v1beta1", "v1alpha1"));
    let report = check_manifest(
        &manifest,
        "toolhive.stacklok.dev/v1alpha1",
        &InMemoryCatalog::default(),
    );
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["apiVersion"]);
    assert_eq!(report.warnings[0].reason, Reason::Deprecated);
}

#[test]
fn replicas_of_a_stdio_server_are_admitted_capped_with_warnings() {
    // ToolHive accepts these and runs one of each; so do we, and say so.
    let report = check_alone(&server(
        "  image: a/b:1\n  transport: stdio\n  replicas: 2\n  backendReplicas: 3\n",
    ));
    assert!(report.is_allowed(), "{report:?}");
    let mut paths = warning_paths(&report);
    paths.sort_unstable();
    assert_eq!(paths, ["spec.backendReplicas", "spec.replicas"]);
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.message.contains("running 1")),
        "{report:?}"
    );
}

#[test]
fn proxy_replicas_without_shared_sessions_are_admitted_with_a_warning() {
    let base = "  image: a/b:1\n  transport: streamable-http\n  replicas: 2\n";
    let report = check_alone(&server(base));
    assert!(report.is_allowed(), "{report:?}");
    assert_eq!(warning_paths(&report), ["spec.replicas"]);
    assert!(
        report.warnings[0].message.contains("session not found"),
        "{report:?}"
    );
    let shared = check_alone(&server(&format!(
        "{base}  sessionStorage: {{provider: redis, address: 'redis:6379'}}\n"
    )));
    assert!(
        shared.is_allowed() && shared.warnings.is_empty(),
        "{shared:?}"
    );
    // Redis without an address: refused at the field, as the CRD's rule does.
    let refused = check_alone(&server(&format!(
        "{base}  sessionStorage: {{provider: redis}}\n"
    )));
    assert_eq!(
        error_paths(&refused),
        ["spec.sessionStorage.address"],
        "{refused:?}"
    );
}

#[test]
fn rate_limits_are_refused_at_the_field_that_cannot_work() {
    let base = "  image: a/b:1\n  transport: streamable-http\n";
    let redis = "  sessionStorage: {provider: redis, address: 'redis:6379'}\n";
    let shared = "  rateLimiting: {shared: {maxTokens: 10, refillPeriod: 1m0s}}\n";
    assert!(check_alone(&server(&format!("{base}{redis}{shared}"))).is_allowed());
    // No Redis to keep the buckets in.
    let report = check_alone(&server(&format!("{base}{shared}")));
    assert!(
        error_paths(&report).contains(&"spec.rateLimiting"),
        "{report:?}"
    );
    // A per-tool per-user limit without authentication: no caller to count.
    let report = check_alone(&server(&format!(
        "{base}{redis}  rateLimiting: {{tools: [{{name: search, perUser: {{maxTokens: 2, refillPeriod: 1m}}}}]}}\n"
    )));
    assert_eq!(
        error_paths(&report),
        ["spec.rateLimiting.tools[0].perUser"],
        "{report:?}"
    );
    // A refill period that is not a duration.
    let report = check_alone(&server(&format!(
        "{base}{redis}  rateLimiting: {{shared: {{maxTokens: 10, refillPeriod: soon}}}}\n"
    )));
    assert_eq!(
        error_paths(&report),
        ["spec.rateLimiting.shared.refillPeriod"],
        "{report:?}"
    );
}

#[test]
fn proxy_mode_of_a_streamable_http_server_is_ineffective() {
    let report = check_alone(&server(
        "  image: a/b:1\n  transport: streamable-http\n  proxyMode: sse\n",
    ));
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.proxyMode"]);
}

#[test]
fn map_and_validate_gives_the_runconfig_and_leaves_out_artifacts_of_missing_objects() {
    let Manifest::MCPServer(server) = object(&server(
        "  image: a/b:1\n  endpointPrefix: nope\n  oidcConfigRef: {name: idp, audience: demo}\n",
    )) else {
        panic!("an MCPServer")
    };
    let checked = super::map_and_validate(&server, &crate::References::default());
    assert_eq!(checked.mapped.config.name, "demo");
    assert_eq!(checked.mapped.missing.len(), 1);
    let paths: Vec<String> = checked
        .problems
        .iter()
        .map(|p| p.location.to_string())
        .collect();
    assert_eq!(
        paths,
        ["spec.endpointPrefix"],
        "no issuer error for the missing MCPOIDCConfig"
    );
}

// ---- config kinds ----

#[test]
fn tool_config_with_a_duplicate_tool_is_refused_at_its_own_path() {
    let report = check_alone(&kind(
        "MCPToolConfig",
        "tools",
        "  toolsFilter: [search, get_issue, search]\n",
    ));
    assert_eq!(error_paths(&report), ["spec.toolsFilter[2]"]);
    assert_eq!(report.errors[0].reason, Reason::Duplicate);
}

#[test]
fn tool_config_overriding_a_hidden_tool_is_refused() {
    let report = check_alone(&kind(
        "MCPToolConfig",
        "tools",
        "  toolsFilter: [search]\n  toolsOverride:\n    delete_repo: {description: gone}\n",
    ));
    assert_eq!(error_paths(&report), ["spec.toolsOverride.delete_repo"]);
}

#[test]
fn oidc_config_with_http_issuer_needs_the_insecure_flag() {
    let http = "  type: inline\n  inline:\n    issuer: http://idp.example.com\n";
    let report = check_alone(&kind("MCPOIDCConfig", "idp", http));
    assert_eq!(error_paths(&report), ["spec.inline.issuer"]);
    assert_eq!(report.errors[0].reason, Reason::InsecureUrl);
    let allowed = format!("{http}    insecureAllowHTTP: true\n");
    assert!(check_alone(&kind("MCPOIDCConfig", "idp", &allowed)).is_allowed());
}

#[test]
fn an_embedded_authorization_server_is_refused_as_not_supported_yet() {
    let report = check_alone(&server(
        "  image: docker.io/mcp/everything:latest\n  authServerRef: {name: embedded}\n",
    ));
    assert_eq!(error_paths(&report), ["spec.authServerRef"], "{report:?}");
    assert_eq!(report.errors[0].reason, Reason::NotSupported);
    assert!(report.errors[0].message.contains("not supported yet"));
}

#[test]
fn primary_upstream_provider_on_a_server_is_a_warning_that_it_has_no_effect() {
    let report = check_alone(&server(
        "  image: docker.io/mcp/everything:latest\n  authzConfig:\n    type: inline\n    inline:\n      policies: ['permit(principal, action, resource);']\n      primaryUpstreamProvider: github\n",
    ));
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        warning_paths(&report),
        ["spec.authzConfig.inline.primaryUpstreamProvider"]
    );
}

#[test]
fn settings_the_proxy_cannot_honour_yet_are_refused_not_ignored() {
    // A CA bundle is honoured now (its ConfigMap is read): admitted.
    let oidc = format!("{OIDC}    caBundleRef:\n      configMapRef: {{name: idp-ca}}\n");
    let report = check_alone(&kind("MCPOIDCConfig", "idp", &oidc));
    assert!(report.is_allowed(), "{report:?}");

    let telemetry = check_alone(&kind(
        "MCPTelemetryConfig",
        "otel",
        "  openTelemetry:\n    enabled: true\n    endpoint: collector:4318\n    caBundleRef:\n      configMapRef: {name: otel-ca}\n    sensitiveHeaders:\n    - name: Authorization\n      secretKeyRef: {name: otel, key: token}\n",
    ));
    assert_eq!(
        error_paths(&telemetry),
        ["spec.openTelemetry.sensitiveHeaders"],
        "{telemetry:?}"
    );
    assert_eq!(telemetry.errors[0].reason, Reason::NotSupported);
    assert!(telemetry.errors[0].message.contains("not supported yet"));
}

#[test]
fn authz_config_policies_are_compiled_at_their_own_path() {
    let report = check_alone(&kind(
        "MCPAuthzConfig",
        "authz",
        "  type: cedarv1\n  config:\n    policies: ['permit(principal, action == Action::\"call_tool\", resource == Prompt::\"x\");']\n",
    ));
    assert_eq!(error_paths(&report), ["spec.config.policies[0]"]);
}

#[test]
fn authz_config_without_policies_is_refused_once() {
    let report = check_alone(&kind(
        "MCPAuthzConfig",
        "authz",
        "  type: cedarv1\n  config: {}\n",
    ));
    assert_eq!(error_paths(&report), ["spec.config.policies"], "{report:?}");
}

#[test]
fn telemetry_sampling_rate_above_one_is_refused_once() {
    let report = check_alone(&kind(
        "MCPTelemetryConfig",
        "otel",
        "  openTelemetry:\n    enabled: true\n    endpoint: collector:4318\n    tracing: {enabled: true, samplingRate: '1.5'}\n",
    ));
    assert_eq!(
        error_paths(&report),
        ["spec.openTelemetry.tracing.samplingRate"]
    );
}

#[test]
fn telemetry_endpoint_must_be_host_port_or_url() {
    let report = check_alone(&kind(
        "MCPTelemetryConfig",
        "otel",
        "  openTelemetry:\n    enabled: true\n    endpoint: 'ftp://collector'\n    tracing: {enabled: true}\n",
    ));
    assert_eq!(error_paths(&report), ["spec.openTelemetry.endpoint"]);
}

#[test]
fn config_update_that_breaks_a_referencing_server_names_it() {
    let current = kind("MCPToolConfig", "tools", TOOLS);
    let user = server("  image: a/b:1\n  toolConfigRef: {name: tools}\n")
        .replace("name: demo", "name: github");
    let catalog = catalog(&[&current, &user]);
    let update = kind(
        "MCPToolConfig",
        "tools",
        "  toolsFilter: [search, search]\n",
    );
    let report = check_in(&update, &catalog);
    assert_eq!(error_paths(&report), ["spec.toolsFilter[1]", "spec"]);
    assert_eq!(report.errors[1].reason, Reason::Conflict);
    assert!(
        report.errors[1]
            .message
            .contains("invalid: MCPServer github"),
        "{report:?}"
    );
}

#[test]
fn config_update_that_keeps_servers_valid_is_admitted() {
    let user = server("  image: a/b:1\n  toolConfigRef: {name: tools}\n");
    let catalog = catalog(&[&kind("MCPToolConfig", "tools", TOOLS), &user]);
    let update = kind("MCPToolConfig", "tools", "  toolsFilter: [search]\n");
    assert_eq!(check_in(&update, &catalog), Report::default());
}

// ---- MCPRegistry ----

fn registry(source: &str, rest: &str) -> String {
    kind("MCPRegistry", "team", &format!("  source:\n{source}{rest}"))
}

const GIT: &str = "    type: git\n    git: {url: 'https://github.com/acme/registry.git'}\n";

#[test]
fn git_source_must_be_https_or_file() {
    let report = check_alone(&registry(
        "    type: git\n    git: {url: 'ftp://example.com/registry.git'}\n",
        "",
    ));
    assert_eq!(error_paths(&report), ["spec.source.git.url"]);
    assert!(check_alone(&registry(GIT, "")).is_allowed());
}

#[test]
fn url_source_over_plain_http_is_a_warning() {
    let report = check_alone(&registry(
        "    type: url\n    url: {url: 'http://example.com/registry.json'}\n",
        "",
    ));
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.source.url.url"]);
}

#[test]
fn sync_interval_is_a_go_duration_from_one_minute_to_a_week() {
    for good in ["1m", "30m", "1h30m", "1.5h", "168h"] {
        let rest = format!("  syncPolicy: {{interval: '{good}'}}\n");
        assert!(check_alone(&registry(GIT, &rest)).is_allowed(), "{good}");
    }
    for bad in ["10s", "169h"] {
        let rest = format!("  syncPolicy: {{interval: '{bad}'}}\n");
        let report = check_alone(&registry(GIT, &rest));
        assert_eq!(error_paths(&report), ["spec.syncPolicy.interval"], "{bad}");
    }
}

#[test]
fn malformed_interval_is_refused_once() {
    let report = check_alone(&registry(GIT, "  syncPolicy: {interval: 1d}\n"));
    assert_eq!(error_paths(&report), ["spec.syncPolicy.interval"]);
}

#[test]
fn go_durations_parse_like_go() {
    let secs = |t: &str| go_duration(t).map(|d| d.as_secs_f64());
    assert_eq!(secs("1h30m"), Some(5400.0));
    assert_eq!(secs("1.5h"), Some(5400.0));
    assert_eq!(secs("500ms"), Some(0.5));
    assert_eq!(secs("2µs"), Some(0.000002));
    for bad in ["", "1", "h", "1d", "-1s", "1.2.3s"] {
        assert_eq!(secs(bad), None, "{bad}");
    }
}

#[test]
fn empty_filter_pattern_is_refused() {
    let report = check_alone(&registry(
        GIT,
        "  filter:\n    names: {include: ['github-*', '']}\n",
    ));
    assert_eq!(error_paths(&report), ["spec.filter.names.include[1]"]);
}

#[test]
fn missing_registry_config_map_is_a_warning() {
    let source = "    type: configmap\n    configMap: {name: team-catalog}\n";
    let report = check_alone(&registry(source, ""));
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.source.configMap"]);
    let mut catalog = InMemoryCatalog::default();
    catalog.add_config_map(
        "team-catalog",
        BTreeMap::from([("registry.json".to_owned(), "{}".to_owned())]),
    );
    assert_eq!(check_in(&registry(source, ""), &catalog), Report::default());
}

#[test]
fn source_config_map_cannot_be_the_registrys_own_output() {
    // The registry is named `team`: it writes `team-registry`, which must not be its source.
    let source = "    type: configmap\n    configMap: {name: team-registry}\n";
    let report = check_alone(&registry(source, ""));
    assert_eq!(error_paths(&report), ["spec.source.configMap.name"]);
}

// ---- raw documents ----

#[test]
fn unknown_fields_are_reported_with_their_path() {
    let document = json!({
        "apiVersion": V1BETA1, "kind": "MCPServer",
        "metadata": {"name": "demo", "labels": {"a": "b"}},
        "spec": {"image": "a/b:1", "imagee": "typo", "env": [{"name": "A", "valeu": "x"}],
                 "podTemplateSpec": {"spec": {"anything": true}}}
    });
    let mut paths: Vec<String> = unknown_fields(&document)
        .into_iter()
        .map(|f| f.path)
        .collect();
    paths.sort();
    assert_eq!(paths, ["spec.env[0].valeu", "spec.imagee"]);
}

#[test]
fn documents_of_other_groups_have_no_unknown_fields() {
    let document = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "y"}, "extra": 1});
    assert!(unknown_fields(&document).is_empty());
}

// ---- MCPRemoteProxy ----

fn remote(spec: &str) -> String {
    kind(
        "MCPRemoteProxy",
        "demo",
        &format!("  remoteUrl: https://mcp.example.com/mcp\n{spec}"),
    )
}

#[test]
fn minimal_remote_proxy_is_admitted_without_findings() {
    assert_eq!(check_alone(&remote("")), Report::default());
}

#[test]
fn remote_proxy_middleware_is_checked_as_for_a_server() {
    let report = check_alone(&remote(
        "  authzConfig:\n    type: inline\n    inline:\n      policies: ['permit(principal action);']\n",
    ));
    assert_eq!(
        error_paths(&report),
        ["spec.authzConfig.inline.policies[0]"]
    );
    let report = check_alone(&remote("  oidcConfigRef: {name: idp, audience: demo}\n"));
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.oidcConfigRef"]);
    assert!(
        report.warnings[0]
            .message
            .contains("MCPRemoteProxy's status and starts the proxy"),
        "{report:?}"
    );
}

#[test]
fn remote_url_must_be_http_or_https() {
    let report = check_alone(&kind(
        "MCPRemoteProxy",
        "demo",
        "  remoteUrl: ftp://mcp.example.com/mcp\n",
    ));
    assert_eq!(error_paths(&report), ["spec.remoteUrl"]);
}

#[test]
fn forwarded_headers_are_checked_where_they_are_written() {
    let ok = check_alone(&remote(
        "  headerForward:\n    addPlaintextHeaders: {X-Tenant-ID: engineering}\n    addHeadersFromSecret:\n      - headerName: X-API-Key\n        valueSecretRef: {name: api, key: token}\n",
    ));
    assert_eq!(ok, Report::default());
    let report = check_alone(&remote(
        "  headerForward:\n    addPlaintextHeaders: {Host: evil.example.com}\n    addHeadersFromSecret:\n      - headerName: X-API-Key\n        valueSecretRef: {name: api, key: token}\n      - headerName: x-api-key\n        valueSecretRef: {name: api, key: other}\n",
    ));
    assert_eq!(
        error_paths(&report),
        [
            "spec.headerForward.addPlaintextHeaders.Host",
            "spec.headerForward.addHeadersFromSecret[1].headerName"
        ],
        "{report:?}"
    );
    assert_eq!(report.errors[0].reason, Reason::NotSupported);
    assert_eq!(report.errors[1].reason, Reason::Duplicate);
}

#[test]
fn a_remote_proxys_pod_template_is_checked_as_a_servers() {
    let sidecar = "  podTemplateSpec:\n    spec:\n      nodeSelector: {pool: edge}\n      containers:\n        - name: toolhive\n          volumeMounts: [{name: ca, mountPath: /etc/ca}]\n      volumes: [{name: ca, configMap: {name: corp-ca}}]\n";
    assert_eq!(check_alone(&remote(sidecar)), Report::default());
    let privileged = "  podTemplateSpec:\n    spec:\n      containers:\n        - name: debug\n          image: busybox\n          securityContext: {privileged: true}\n";
    let report = check_alone(&remote(privileged));
    assert_eq!(
        error_paths(&report),
        ["spec.podTemplateSpec.spec.containers[0].securityContext.privileged"]
    );
    let dangling = "  podTemplateSpec:\n    spec:\n      containers:\n        - name: toolhive\n          volumeMounts: [{name: nowhere, mountPath: /x}]\n";
    assert!(!check_alone(&remote(dangling)).is_allowed());
}

#[test]
fn remote_settings_the_proxy_cannot_honour_are_refused_not_ignored() {
    let report = check_alone(&remote("  authServerRef: {name: embedded}\n"));
    assert_eq!(error_paths(&report), ["spec.authServerRef"]);
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.reason == Reason::NotSupported && e.message.contains("not supported yet")),
        "{report:?}"
    );
}

#[test]
fn a_remote_proxy_and_a_server_may_not_claim_the_same_objects() {
    let server_named =
        |name: &str| server("  image: a/b:1\n").replace("name: demo", &format!("name: {name}"));
    // Same name: the Deployment and the RunConfig ConfigMap.
    let report = check_in(&remote(""), &catalog(&[&server_named("demo")]));
    assert_eq!(error_paths(&report), ["metadata.name"]);
    assert_eq!(report.errors[0].reason, Reason::Conflict);
    // `<name>-remote`: the Service mcp-<name>-remote-proxy.
    let report = check_in(&remote(""), &catalog(&[&server_named("demo-remote")]));
    assert_eq!(error_paths(&report), ["metadata.name"]);
    // And the other way round.
    let report = check_in(&server_named("demo-remote"), &catalog(&[&remote("")]));
    assert_eq!(error_paths(&report), ["metadata.name"]);
    assert!(report.errors[0].message.contains("MCPRemoteProxy demo"));
}

#[test]
fn remote_proxy_name_must_leave_room_for_its_service_name() {
    let name = "a".repeat(crate::MAX_REMOTE_PROXY_NAME_LENGTH + 1);
    let report = check_alone(&remote("").replace("name: demo", &format!("name: {name}")));
    assert_eq!(error_paths(&report), ["metadata.name"]);
}

#[test]
fn config_update_that_breaks_a_referencing_remote_proxy_names_it() {
    let current = kind("MCPToolConfig", "tools", TOOLS);
    let user = remote("  toolConfigRef: {name: tools}\n").replace("name: demo", "name: github");
    let catalog = catalog(&[&current, &user]);
    let update = kind(
        "MCPToolConfig",
        "tools",
        "  toolsFilter: [search, search]\n",
    );
    let report = check_in(&update, &catalog);
    assert_eq!(error_paths(&report), ["spec.toolsFilter[1]", "spec"]);
    assert!(
        report.errors[1]
            .message
            .contains("invalid: MCPRemoteProxy github"),
        "{report:?}"
    );
}

// ---- MCPExternalAuthConfig ----

const BEARER: &str =
    "  type: bearerToken\n  bearerToken:\n    tokenSecretRef: {name: api, key: token}\n";

#[test]
fn a_remote_proxy_authenticates_with_a_bearer_token_or_a_header() {
    let auth = kind("MCPExternalAuthConfig", "auth", BEARER);
    let proxy = remote("  externalAuthConfigRef: {name: auth}\n");
    assert_eq!(check_in(&proxy, &catalog(&[&auth])), Report::default());
    let header = kind(
        "MCPExternalAuthConfig",
        "auth",
        "  type: headerInjection\n  headerInjection:\n    headerName: Host\n    valueSecretRef: {name: api, key: token}\n",
    );
    let report = check_in(&proxy, &catalog(&[&header]));
    assert_eq!(
        error_paths(&report),
        [
            "spec.externalAuthConfigRef (MCPExternalAuthConfig auth): spec.headerInjection.headerName"
        ]
    );
    // Missing: the proxy waits for it.
    let report = check_alone(&proxy);
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.externalAuthConfigRef"]);
}

#[test]
fn external_auth_types_not_supported_yet_are_refused_naming_the_type() {
    let sts = kind(
        "MCPExternalAuthConfig",
        "auth",
        "  type: awsSts\n  awsSts: {region: eu-west-1}\n",
    );
    let report = check_alone(&sts);
    assert_eq!(error_paths(&report), ["spec.type"], "{report:?}");
    assert!(
        report.errors[0]
            .message
            .contains("awsSts is not supported yet"),
        "{report:?}"
    );
    let proxy = remote("  externalAuthConfigRef: {name: auth}\n");
    let report = check_in(&proxy, &catalog(&[&sts]));
    assert_eq!(
        error_paths(&report),
        ["spec.externalAuthConfigRef (MCPExternalAuthConfig auth): spec.type"]
    );
    // The CRD's own rules: the section must match the type.
    let report = check_alone(&kind(
        "MCPExternalAuthConfig",
        "auth",
        "  type: bearerToken\n",
    ));
    assert!(!report.is_allowed());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message.contains("bearerToken configuration must be set")),
        "{report:?}"
    );
}

const EXCHANGE: &str = "  type: tokenExchange\n  tokenExchange:\n    tokenUrl: https://idp.example.com/token\n    clientId: thv-proxy\n    clientSecretRef: {name: exchange, key: secret}\n    audience: backend\n";

#[test]
fn token_exchange_is_checked_where_each_part_is_written() {
    let exchange = kind("MCPExternalAuthConfig", "auth", EXCHANGE);
    let oidc = kind("MCPOIDCConfig", "idp", OIDC);
    assert_eq!(check_alone(&exchange), Report::default());
    // Through a remote proxy and an MCPServer on HTTP, both authenticating callers.
    let refs =
        "  externalAuthConfigRef: {name: auth}\n  oidcConfigRef: {name: idp, audience: demo}\n";
    let both = catalog(&[&exchange, &oidc]);
    assert_eq!(check_in(&remote(refs), &both), Report::default());
    let http_server = format!("  image: a/b:1\n  transport: streamable-http\n{refs}");
    assert_eq!(check_in(&server(&http_server), &both), Report::default());
    // Nothing to exchange without authentication: the server's oidcConfigRef is named.
    let report = check_in(
        &remote("  externalAuthConfigRef: {name: auth}\n"),
        &catalog(&[&exchange]),
    );
    assert_eq!(error_paths(&report), ["spec.oidcConfigRef"], "{report:?}");
    // A stdio server reads no header.
    let report = check_in(&server(&format!("  image: a/b:1\n{refs}")), &both);
    assert_eq!(error_paths(&report), ["spec.transport"], "{report:?}");
    // The config's own mistakes, in the config.
    let plain_http = EXCHANGE.replace("https://idp.example.com", "http://idp.example.com");
    let report = check_alone(&kind("MCPExternalAuthConfig", "auth", &plain_http));
    assert_eq!(error_paths(&report), ["spec.tokenExchange.tokenUrl"]);
    assert_eq!(report.errors[0].reason, Reason::InsecureUrl);
    let provider = format!("{EXCHANGE}    subjectProviderName: github\n");
    let report = check_alone(&kind("MCPExternalAuthConfig", "auth", &provider));
    assert_eq!(
        error_paths(&report),
        ["spec.tokenExchange.subjectProviderName"]
    );
    assert_eq!(report.errors[0].reason, Reason::NotSupported);
}

#[test]
fn an_mcpserver_sends_a_header_from_a_secret_to_an_http_server() {
    let auth = kind("MCPExternalAuthConfig", "auth", BEARER);
    let http =
        "  image: a/b:1\n  transport: streamable-http\n  externalAuthConfigRef: {name: auth}\n";
    assert_eq!(
        check_in(&server(http), &catalog(&[&auth])),
        Report::default()
    );
    // A stdio server reads no headers: refused at the reference.
    let report = check_in(
        &server("  image: a/b:1\n  externalAuthConfigRef: {name: auth}\n"),
        &catalog(&[&auth]),
    );
    assert_eq!(error_paths(&report), ["spec.externalAuthConfigRef"]);
    assert_eq!(report.errors[0].reason, Reason::Ineffective);
    // A type not supported yet, named.
    let sts = kind(
        "MCPExternalAuthConfig",
        "auth",
        "  type: awsSts\n  awsSts: {region: eu-west-1}\n",
    );
    let report = check_in(&server(http), &catalog(&[&sts]));
    assert_eq!(
        error_paths(&report),
        ["spec.externalAuthConfigRef (MCPExternalAuthConfig auth): spec.type"]
    );
    assert_eq!(report.errors[0].reason, Reason::NotSupported);
}

const WEBHOOKS: &str = "  mutating:\n  - name: redact\n    url: https://redact.policy.svc/mutate\n    hmacSecretRef: {name: hooks, key: hmac}\n  validating:\n  - name: opa\n    url: http://opa.policy.svc/check\n    timeout: 5s\n    failurePolicy: ignore\n    tlsConfig: {insecureSkipVerify: true}\n";

#[test]
fn request_webhooks_are_checked_where_each_is_written() {
    let hooks = kind("MCPWebhookConfig", "hooks", WEBHOOKS);
    assert_eq!(check_alone(&hooks), Report::default());
    // Through an MCPServer, stdio included: webhooks read the MCP request, not headers.
    let refs = "  image: a/b:1\n  webhookConfigRef: {name: hooks}\n";
    assert_eq!(
        check_in(&server(refs), &catalog(&[&hooks])),
        Report::default()
    );
    // And through a remote proxy (ours: ToolHive's has no webhookConfigRef).
    assert_eq!(
        check_in(
            &remote("  webhookConfigRef: {name: hooks}\n"),
            &catalog(&[&hooks])
        ),
        Report::default()
    );
    // A missing one is waited for, with a warning naming the reference.
    let report = check_alone(&server(refs));
    assert!(report.is_allowed());
    assert_eq!(warning_paths(&report), ["spec.webhookConfigRef"]);
    // Each mistake at the field the user wrote.
    let wrong = WEBHOOKS
        .replace("https://redact", "http://redact")
        .replace("timeout: 5s", "timeout: 45s")
        .replace(
            "tlsConfig: {insecureSkipVerify: true}",
            "tlsConfig: {insecureSkipVerify: true, clientCertSecretRef: {name: c, key: tls.crt}}",
        );
    let report = check_alone(&kind("MCPWebhookConfig", "hooks", &wrong));
    assert_eq!(
        error_paths(&report),
        [
            "spec.mutating[0].url",
            "spec.validating[0].timeout",
            "spec.validating[0].tlsConfig.clientKeySecretRef",
        ],
        "{report:?}"
    );
    assert_eq!(report.errors[0].reason, Reason::InsecureUrl);
    // Two webhooks of one list with one name.
    let twice = format!("{WEBHOOKS}  - name: opa\n    url: https://opa2.policy.svc/check\n");
    let report = check_alone(&kind("MCPWebhookConfig", "hooks", &twice));
    assert_eq!(error_paths(&report), ["spec.validating[1].name"]);
    // None at all: the CRD's rule.
    let report = check_alone(&kind("MCPWebhookConfig", "hooks", "  {}\n"));
    assert_eq!(error_paths(&report), ["spec"], "{report:?}");
    // An update that would break a server referencing it names the server.
    let server_yaml = server(refs);
    let report = check_in(
        &kind("MCPWebhookConfig", "hooks", &wrong),
        &catalog(&[&hooks, &server_yaml]),
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message.contains("MCPServer demo")),
        "{report:?}"
    );
}

#[test]
fn unreadable_manifests_are_findings_at_the_field_the_parser_names() {
    use super::Finding;
    let field = Manifest::from_yaml(&server("  image: x\n  proxyPort: high\n")).unwrap_err();
    let finding = Finding::from(field);
    assert_eq!(finding.path, "spec.proxyPort");
    assert_eq!(finding.reason, Reason::InvalidFormat);
    let version =
        Manifest::from_yaml(&server("  image: x\n").replace("v1beta1", "v9")).unwrap_err();
    assert_eq!(Finding::from(version).path, "apiVersion");
    let unknown = Manifest::from_yaml(&kind("VirtualMCPServer", "p", "  {}\n")).unwrap_err();
    let finding = Finding::from(unknown);
    assert_eq!(
        (finding.path.as_str(), finding.reason),
        ("kind", Reason::NotSupported)
    );
}
