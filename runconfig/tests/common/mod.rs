//! Fixtures shared by the runconfig tests.
#![allow(dead_code)] // each test file uses a different part

use runconfig::config::*;
use runconfig::{Reason, RunConfig, Violations};

/// A RunConfig that uses every section and is valid.
pub fn full() -> RunConfig {
    RunConfig {
        schema_version: runconfig::SCHEMA_VERSION.to_owned(),
        name: "github".to_owned(),
        group: Some("platform".to_owned()),
        debug: false,
        workload: Workload::Container(ContainerWorkload {
            image: "ghcr.io/github/github-mcp-server:v0.20.1".to_owned(),
            args: vec!["--read-only".to_owned()],
            transport: "stdio".to_owned(),
            env: vec![EnvVar { name: "GITHUB_TOOLSETS".to_owned(), value: "repos".to_owned() }],
            secrets: vec![SecretRef { name: "github-token".to_owned(), key: Some("token".to_owned()), target_env: Some("GITHUB_PERSONAL_ACCESS_TOKEN".to_owned()) }],
            volumes: vec![VolumeMount { name: Some("src".to_owned()), host_path: "/src".to_owned(), mount_path: "/workspace".to_owned(), read_only: true }],
            permission_profile: Some(PermissionProfile::Builtin("network".to_owned())),
            ..ContainerWorkload::default()
        }),
        proxy: ProxyConfig {
            endpoint_prefix: Some("/github".to_owned()),
            allowed_origins: vec!["https://app.example.com".to_owned()],
            oidc: Some(OidcConfig {
                issuer: Some("https://login.example.com/realms/eng".to_owned()),
                audience: Some("github-mcp".to_owned()),
                jwks_url: Some("https://login.example.com/realms/eng/certs".to_owned()),
                scopes: vec!["openid".to_owned(), "mcp:tools".to_owned()],
                ..OidcConfig::default()
            }),
            authz: Some(AuthzConfig::Cedar(CedarConfig {
                policies: vec![
                    r#"permit(principal, action == Action::"list_tools", resource);"#.to_owned(),
                    r#"permit(principal, action == Action::"call_tool", resource == Tool::"search_repositories");"#.to_owned(),
                ],
                entities_json: "[]".to_owned(),
                ..CedarConfig::default()
            })),
            audit: Some(AuditConfig { event_types: vec!["mcp_tool_call".to_owned()], max_data_size: Some(2048), ..AuditConfig::default() }),
            telemetry: Some(TelemetryConfig {
                endpoint: Some("otel-collector:4318".to_owned()),
                tracing_enabled: true,
                sampling_rate: Some(SamplingRate::Number(0.25)),
                headers: [("x-scope-orgid".to_owned(), "platform".to_owned())].into(),
                insecure: true,
                ..TelemetryConfig::default()
            }),
            tools: ToolsConfig {
                filter: vec!["search_repositories".to_owned(), "get_issue".to_owned()],
                overrides: [("search_repositories".to_owned(), ToolOverride { name: Some("find_repos".to_owned()), description: None })].into(),
            },
            ..ProxyConfig::default()
        },
    }
}

/// The container workload of a RunConfig built by [`full`].
pub fn container(config: &mut RunConfig) -> &mut ContainerWorkload {
    match &mut config.workload {
        Workload::Container(c) => c,
        Workload::Remote(_) => panic!("fixture is a container workload"),
    }
}

/// The Cedar section of a RunConfig built by [`full`].
pub fn cedar(config: &mut RunConfig) -> &mut CedarConfig {
    match config.proxy.authz.as_mut() {
        Some(AuthzConfig::Cedar(c)) => c,
        _ => panic!("fixture has Cedar authz"),
    }
}

/// Validation errors as `(path, reason)` pairs.
pub fn problems(config: &RunConfig) -> Vec<(String, Reason)> {
    match runconfig::validate(config) {
        Ok(_) => Vec::new(),
        Err(Violations(list)) => list
            .into_iter()
            .map(|v| (v.path.to_string(), v.reason))
            .collect(),
    }
}

/// The single violation of `config`, as `(path, reason, rendered message)`.
pub fn only_problem(config: &RunConfig) -> (String, Reason, String) {
    match runconfig::validate(config) {
        Ok(_) => panic!("expected one violation, config was accepted"),
        Err(Violations(list)) => {
            assert_eq!(list.len(), 1, "expected one violation, got: {list:#?}");
            let v = &list[0];
            (v.path.to_string(), v.reason, v.to_string())
        }
    }
}
