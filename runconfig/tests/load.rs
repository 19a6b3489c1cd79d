//! Bytes in, bytes out: schema versions, ToolHive import, and errors for what cannot load.

mod common;

use runconfig::config::{AuthzConfig, PermissionProfile, Workload};
use runconfig::{LoadError, Reason, from_json, from_reader, to_json};

const TOOLHIVE: &str = include_str!("data/toolhive_v0.1.0.json");

#[test]
fn current_version_round_trips_through_bytes() {
    let config = common::full();
    let bytes = to_json(&config);
    assert_eq!(from_json(&bytes).expect("reads back"), config);
    assert_eq!(
        from_reader(bytes.as_slice()).expect("reader variant"),
        config
    );
}

#[test]
fn toolhive_runconfig_imports_and_validates() {
    let config = from_json(TOOLHIVE.as_bytes()).expect("imports");
    assert_eq!(config.schema_version, runconfig::SCHEMA_VERSION);
    assert_eq!(config.name, "github");
    let Workload::Container(container) = &config.workload else {
        panic!("container workload")
    };
    assert_eq!(container.args, ["stdio", "--read-only"]);
    assert_eq!(container.env.len(), 2);
    assert_eq!(
        container.secrets[0].target_env.as_deref(),
        Some("GITHUB_PERSONAL_ACCESS_TOKEN")
    );
    assert_eq!(container.volumes[0].mount_path, "/workspace");
    assert!(container.volumes[0].read_only);
    assert_eq!(
        container.permission_profile,
        Some(PermissionProfile::Builtin("network".into()))
    );
    assert_eq!(container.target_port, None, "ToolHive's zero means unset");
    assert!(
        container
            .pod_template_patch
            .as_ref()
            .is_some_and(|p| p["spec"]["nodeSelector"].is_object())
    );
    let oidc = config
        .proxy
        .oidc
        .as_ref()
        .expect("oidc from PascalCase keys");
    assert_eq!(oidc.audience.as_deref(), Some("github-mcp"));
    assert_eq!(oidc.scopes, ["openid", "mcp:tools"]);
    let Some(AuthzConfig::Cedar(cedar)) = &config.proxy.authz else {
        panic!("cedar authz")
    };
    assert_eq!(cedar.policies.len(), 3);
    let audit = config
        .proxy
        .audit
        .as_ref()
        .expect("audit from camelCase keys");
    assert_eq!(audit.max_data_size, Some(4096));
    let telemetry = config.proxy.telemetry.as_ref().expect("telemetry");
    assert!(telemetry.prometheus_enabled && telemetry.tracing_enabled);
    assert_eq!(
        config.proxy.tools.overrides["search_repositories"]
            .name
            .as_deref(),
        Some("find_repos")
    );

    let validated = runconfig::validate(&config).expect("imported config validates");
    assert_eq!(validated.proxy.port, 19042);
}

fn toolhive_with(key: &str, value: serde_json::Value) -> Vec<u8> {
    let mut document: serde_json::Value = serde_json::from_str(TOOLHIVE).expect("fixture is JSON");
    document[key] = value;
    serde_json::to_vec(&document).expect("serialises")
}

fn migration_problems(bytes: &[u8]) -> Vec<(String, Reason, String)> {
    match from_json(bytes) {
        Err(LoadError::Migration(problems)) => problems
            .into_iter()
            .map(|v| (v.path.to_string(), v.reason, v.to_string()))
            .collect(),
        other => panic!("expected migration problems, got {other:?}"),
    }
}

#[test]
fn toolhive_file_paths_are_refused_with_advice_to_inline() {
    for (key, advice) in [
        (
            "authz_config_path",
            "inline the file's content as authz_config",
        ),
        (
            "audit_config_path",
            "inline the file's content as audit_config",
        ),
        ("env_file_dir", "env_vars"),
        ("jwks_auth_token_file", "service-account token"),
    ] {
        let problems =
            migration_problems(&toolhive_with(key, serde_json::json!("/etc/toolhive/file")));
        assert_eq!(problems.len(), 1, "{key}: {problems:?}");
        let (path, reason, message) = &problems[0];
        assert_eq!((path.as_str(), *reason), (key, Reason::FilePathNotAllowed));
        assert!(message.contains(advice), "{key}: {message}");
    }
}

#[test]
fn toolhive_permission_profile_given_as_a_path_is_refused() {
    let mut document: serde_json::Value = serde_json::from_str(TOOLHIVE).expect("fixture is JSON");
    document["permission_profile_name_or_path"] = serde_json::json!("/home/dev/profile.json");
    document
        .as_object_mut()
        .expect("object")
        .remove("permission_profile");
    let problems = migration_problems(&serde_json::to_vec(&document).expect("json"));
    assert_eq!(problems[0].0, "permission_profile_name_or_path");
    assert_eq!(problems[0].1, Reason::FilePathNotAllowed);
    assert!(
        problems[0].2.contains("inline the profile"),
        "{}",
        problems[0].2
    );
}

#[test]
fn toolhive_secret_values_are_refused() {
    let mut document: serde_json::Value = serde_json::from_str(TOOLHIVE).expect("fixture is JSON");
    document["oidc_config"]["ClientSecret"] = serde_json::json!("s3cr3t");
    let problems = migration_problems(&serde_json::to_vec(&document).expect("json"));
    assert_eq!(problems[0].0, "oidc_config.ClientSecret");
    assert_eq!(problems[0].1, Reason::Forbidden);
}

#[test]
fn toolhive_settings_we_do_not_support_are_reported_not_dropped() {
    let problems = migration_problems(&toolhive_with(
        "aws_sts_config",
        serde_json::json!({"region": "eu-west-1"}),
    ));
    assert_eq!(problems[0].0, "aws_sts_config");
    assert_eq!(problems[0].1, Reason::NotSupported);
}

#[test]
fn toolhive_token_exchange_is_carried_over_with_its_secret_in_the_environment() {
    let bytes = toolhive_with(
        "token_exchange_config",
        serde_json::json!({"token_url": "https://idp.example.com/token", "client_id": "thv-proxy",
            "client_secret": "", "audience": "mcp-backend", "scopes": ["read"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "header_strategy": "custom", "external_token_header_name": "X-Upstream-Token"}),
    );
    let config = from_json(&bytes).expect("imports");
    let exchange = config
        .proxy
        .token_exchange
        .as_ref()
        .expect("token exchange");
    assert_eq!(exchange.client_id.as_deref(), Some("thv-proxy"));
    assert_eq!(
        exchange.client_secret_env.as_deref(),
        Some(runconfig::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV)
    );
    assert_eq!(exchange.header_name.as_deref(), Some("X-Upstream-Token"));
    assert_eq!(exchange.scopes, ["read"]);

    let with_secret = toolhive_with(
        "token_exchange_config",
        serde_json::json!({"token_url": "https://idp.example.com/token", "client_id": "thv-proxy",
            "client_secret": "s3cr3t", "audience": "mcp-backend"}),
    );
    let problems = migration_problems(&with_secret);
    assert_eq!(problems[0].0, "token_exchange_config.client_secret");
    assert_eq!(problems[0].1, Reason::Forbidden);
}

#[test]
fn toolhive_webhooks_are_carried_over_and_their_files_refused() {
    let bytes = toolhive_with(
        "validating_webhooks",
        serde_json::json!([{"name": "opa", "url": "http://opa.policy.svc/check",
            "timeout": 5_000_000_000_u64, "failure_policy": "ignore",
            "tls_config": {"insecure_skip_verify": true}}]),
    );
    let config = from_json(&bytes).expect("imports");
    let webhook = &config.proxy.validating_webhooks[0];
    assert_eq!(webhook.name, "opa");
    assert_eq!(webhook.timeout.as_deref(), Some("5000ms"));
    assert_eq!(webhook.failure_policy.as_deref(), Some("ignore"));
    assert!(webhook.tls.as_ref().is_some_and(|t| t.insecure_skip_verify));
    runconfig::validate(&config).expect("the imported webhook is valid");

    let with_files = toolhive_with(
        "mutating_webhooks",
        serde_json::json!([{"name": "redact", "url": "https://redact.example.com",
            "timeout": "5s", "failure_policy": "fail",
            "hmac_secret_ref": "/etc/toolhive/webhooks/hmac",
            "tls_config": {"ca_bundle_path": "/etc/ca.crt"}}]),
    );
    let problems = migration_problems(&with_files);
    let paths: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "mutating_webhooks[0].hmac_secret_ref",
            "mutating_webhooks[0].tls_config.ca_bundle_path"
        ]
    );
    assert!(problems.iter().all(|p| p.1 == Reason::FilePathNotAllowed));
}

#[test]
fn unknown_newer_version_is_a_clear_error() {
    let error = from_json(br#"{"schema_version": "v7", "name": "x"}"#).expect_err("v7 is unknown");
    let text = error.to_string();
    assert!(matches!(error, LoadError::UnsupportedVersion { .. }));
    assert!(
        text.contains("\"v7\"")
            && text.contains("v1")
            && text.contains("v0.1.0")
            && text.contains("newer"),
        "{text}"
    );
}

#[test]
fn missing_version_is_a_clear_error() {
    let error = from_json(br#"{"name": "x"}"#).expect_err("no version");
    assert!(matches!(error, LoadError::MissingVersion), "{error}");
}

#[test]
fn malformed_json_names_the_position() {
    let error = from_json(b"{\"schema_version\": \"v1\",\n \"name\": }").expect_err("broken");
    assert!(error.to_string().contains("line 2"), "{error}");
}

#[test]
fn wrong_shape_names_the_field() {
    let mut value = serde_json::to_value(common::full()).expect("json");
    value["proxy"]["port"] = serde_json::json!("eighty");
    let error =
        from_json(&serde_json::to_vec(&value).expect("json")).expect_err("port is a string");
    assert!(error.to_string().starts_with("proxy.port:"), "{error}");
}

#[test]
fn unknown_fields_are_refused_not_ignored() {
    let mut value = serde_json::to_value(common::full()).expect("json");
    value["proxy"]["oidc"]["issuer_url"] = serde_json::json!("https://typo.example.com");
    let error = from_json(&serde_json::to_vec(&value).expect("json")).expect_err("typo");
    assert!(error.to_string().contains("issuer_url"), "{error}");
}

#[test]
fn no_panic_on_arbitrary_json_documents() {
    for document in [
        "null",
        "[]",
        "42",
        "\"v1\"",
        r#"{"schema_version": 1}"#,
        r#"{"schema_version": "v0.1.0"}"#,
        r#"{"schema_version": "v0.1.0", "secrets": [1], "volumes": [":"]}"#,
    ] {
        let _ = from_json(document.as_bytes());
    }
}
