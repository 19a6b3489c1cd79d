//! One table row per validation rule: a valid fixture, one change, and the exact path and
//! reason the change must produce. Plus the passing side of each rule.

// Fixture accessors unwrap sections the fixture always has; a panic is a broken fixture.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cedar, container, full, only_problem, problems};
use runconfig::Reason;
use runconfig::config::*;

type Mutation = fn(&mut RunConfig);

/// (what the rule says, the change, expected path, expected reason, a phrase of the message)
const REJECTED: &[(&str, Mutation, &str, Reason, &str)] = &[
    (
        "transport must be known",
        |c| container(c).transport = "websocket".into(),
        "workload.container.transport",
        Reason::NotSupported,
        "stdio, sse or streamable-http",
    ),
    (
        "proxy mode must be known",
        |c| c.proxy.mode = "grpc".into(),
        "proxy.mode",
        Reason::NotSupported,
        "sse or streamable-http",
    ),
    (
        "proxy port 0 is out of range",
        |c| c.proxy.port = 0,
        "proxy.port",
        Reason::OutOfRange,
        "1 to 65535",
    ),
    (
        "proxy port above 65535 is out of range",
        |c| c.proxy.port = 70000,
        "proxy.port",
        Reason::OutOfRange,
        "70000",
    ),
    (
        "target port is bounded",
        |c| container(c).target_port = Some(-1),
        "workload.container.target_port",
        Reason::OutOfRange,
        "1 to 65535",
    ),
    (
        "image must be an OCI reference",
        |c| container(c).image = "GHCR.io/Org/Server:latest".into(),
        "workload.container.image",
        Reason::InvalidFormat,
        "lowercase",
    ),
    (
        "image must not be empty",
        |c| container(c).image = String::new(),
        "workload.container.image",
        Reason::Required,
        "image",
    ),
    (
        "image tag grammar",
        |c| container(c).image = "ghcr.io/org/server:bad tag".into(),
        "workload.container.image",
        Reason::InvalidFormat,
        "not an image reference",
    ),
    (
        "env names are identifiers",
        |c| container(c).env[0].name = "1BAD-NAME".into(),
        "workload.container.env[0].name",
        Reason::InvalidFormat,
        "not starting with a digit",
    ),
    (
        "env names are unique",
        |c| {
            container(c).env.push(EnvVar {
                name: "GITHUB_TOOLSETS".into(),
                value: "x".into(),
            })
        },
        "workload.container.env[1].name",
        Reason::Duplicate,
        "set twice",
    ),
    (
        "secret target must not clash with env",
        |c| container(c).secrets[0].target_env = Some("GITHUB_TOOLSETS".into()),
        "workload.container.secrets[0].target_env",
        Reason::Duplicate,
        "already set",
    ),
    (
        "secret needs a name",
        |c| container(c).secrets[0].name = String::new(),
        "workload.container.secrets[0].name",
        Reason::Required,
        "name",
    ),
    (
        "secret needs a target",
        |c| {
            let s = &mut container(c).secrets[0];
            s.key = None;
            s.target_env = None;
        },
        "workload.container.secrets[0].target_env",
        Reason::Required,
        "target_env",
    ),
    (
        "mount paths are absolute",
        |c| container(c).volumes[0].mount_path = "workspace".into(),
        "workload.container.volumes[0].mount_path",
        Reason::InvalidFormat,
        "absolute",
    ),
    (
        "builtin profile names are known",
        |c| container(c).permission_profile = Some(PermissionProfile::Builtin("root".into())),
        "workload.container.permission_profile.builtin",
        Reason::NotSupported,
        "none or network",
    ),
    (
        "inline profile may not be privileged",
        |c| {
            container(c).permission_profile = Some(PermissionProfile::Inline(Profile {
                privileged: true,
                ..Profile::default()
            }))
        },
        "workload.container.permission_profile.inline.privileged",
        Reason::Forbidden,
        "privileged",
    ),
    (
        "inline profile ports are bounded",
        |c| {
            container(c).permission_profile = Some(PermissionProfile::Inline(Profile {
                network: Some(NetworkPermissions {
                    outbound: Some(OutboundPermissions {
                        allow_port: vec![443, 0],
                        ..Default::default()
                    }),
                }),
                ..Profile::default()
            }))
        },
        "workload.container.permission_profile.inline.network.outbound.allow_port[1]",
        Reason::OutOfRange,
        "1 to 65535",
    ),
    (
        "endpoint prefix is a path",
        |c| c.proxy.endpoint_prefix = Some("github".into()),
        "proxy.endpoint_prefix",
        Reason::InvalidFormat,
        "starts with '/'",
    ),
    (
        "allowed origins are origins",
        |c| c.proxy.allowed_origins = vec!["https://app.example.com/path".into()],
        "proxy.allowed_origins[0]",
        Reason::InvalidFormat,
        "scheme://host",
    ),
    (
        "issuer must be https",
        |c| c.proxy.oidc.as_mut().unwrap().issuer = Some("http://login.example.com".into()),
        "proxy.oidc.issuer",
        Reason::InsecureUrl,
        "insecure_allow_http",
    ),
    (
        "issuer must be a URL",
        |c| c.proxy.oidc.as_mut().unwrap().issuer = Some("login.example.com".into()),
        "proxy.oidc.issuer",
        Reason::InvalidFormat,
        "not a URL",
    ),
    (
        "issuer is required",
        |c| c.proxy.oidc.as_mut().unwrap().issuer = None,
        "proxy.oidc.issuer",
        Reason::Required,
        "issuer",
    ),
    (
        "audience is required with an issuer",
        |c| c.proxy.oidc.as_mut().unwrap().audience = None,
        "proxy.oidc.audience",
        Reason::Required,
        "any token",
    ),
    (
        "jwks url must be https",
        |c| c.proxy.oidc.as_mut().unwrap().jwks_url = Some("http://login.example.com/certs".into()),
        "proxy.oidc.jwks_url",
        Reason::InsecureUrl,
        "https",
    ),
    (
        "introspection url is well-formed",
        |c| {
            let o = c.proxy.oidc.as_mut().unwrap();
            o.introspection_url = Some("::".into());
            o.client_id = Some("x".into());
        },
        "proxy.oidc.introspection_url",
        Reason::InvalidFormat,
        "not a URL",
    ),
    (
        "scopes are RFC 6749 tokens",
        |c| {
            c.proxy
                .oidc
                .as_mut()
                .unwrap()
                .scopes
                .push("read write".into())
        },
        "proxy.oidc.scopes[2]",
        Reason::InvalidFormat,
        "RFC 6749",
    ),
    (
        "cedar needs a policy",
        |c| cedar(c).policies.clear(),
        "proxy.authz.policies",
        Reason::Required,
        "at least one",
    ),
    (
        "cedar syntax errors name the entry and position",
        |c| {
            cedar(c).policies[1] =
                "permit(principal, action == Action::\"call_tool\" resource);".into()
        },
        "proxy.authz.policies[1]",
        Reason::CedarSyntax,
        "line 1, column",
    ),
    (
        "cedar actions must be MCP actions",
        |c| {
            cedar(c).policies[1] =
                r#"permit(principal, action == Action::"delete_repo", resource);"#.into()
        },
        "proxy.authz.policies[1]",
        Reason::CedarSchema,
        "Action::\"call_tool\"",
    ),
    (
        "cedar entity types must be in the schema",
        |c| {
            cedar(c).policies[0] = r#"permit(principal == User::"alice", action, resource);"#.into()
        },
        "proxy.authz.policies[0]",
        Reason::CedarSchema,
        "User",
    ),
    (
        "cedar action must apply to the resource type",
        |c| {
            cedar(c).policies[0] = r#"permit(principal, action == Action::"call_tool", resource == Prompt::"greeting");"#.into()
        },
        "proxy.authz.policies[0]",
        Reason::CedarSchema,
        "fit the MCP schema",
    ),
    (
        "cedar entities are JSON",
        |c| cedar(c).entities_json = "[{".into(),
        "proxy.authz.entities_json",
        Reason::InvalidFormat,
        "not JSON",
    ),
    (
        "cedar group type is an identifier",
        |c| cedar(c).group_entity_type = Some("Foo::Bar".into()),
        "proxy.authz.group_entity_type",
        Reason::InvalidFormat,
        "namespaces",
    ),
    (
        "http authz timeout is a duration",
        |c| {
            c.proxy.authz = Some(AuthzConfig::Http(HttpAuthzConfig {
                url: "https://pdp.example.com/decide".into(),
                timeout: Some("soon".into()),
                ..Default::default()
            }))
        },
        "proxy.authz.timeout",
        Reason::InvalidFormat,
        "duration",
    ),
    (
        "http authz timeout is bounded",
        |c| {
            c.proxy.authz = Some(AuthzConfig::Http(HttpAuthzConfig {
                url: "https://pdp.example.com/decide".into(),
                timeout: Some("5m".into()),
                ..Default::default()
            }))
        },
        "proxy.authz.timeout",
        Reason::OutOfRange,
        "60s",
    ),
    (
        "http authz url is a URL",
        |c| {
            c.proxy.authz = Some(AuthzConfig::Http(HttpAuthzConfig {
                url: "pdp".into(),
                ..Default::default()
            }))
        },
        "proxy.authz.url",
        Reason::InvalidFormat,
        "not a URL",
    ),
    (
        "audit event types are known",
        |c| {
            c.proxy
                .audit
                .as_mut()
                .unwrap()
                .event_types
                .push("mcp_everything".into())
        },
        "proxy.audit.event_types[1]",
        Reason::NotSupported,
        "mcp_tool_call",
    ),
    (
        "audit excluded types are known",
        |c| {
            c.proxy
                .audit
                .as_mut()
                .unwrap()
                .exclude_event_types
                .push("ping".into())
        },
        "proxy.audit.exclude_event_types[0]",
        Reason::NotSupported,
        "mcp_ping",
    ),
    (
        "audit data size is bounded",
        |c| c.proxy.audit.as_mut().unwrap().max_data_size = Some(-5),
        "proxy.audit.max_data_size",
        Reason::OutOfRange,
        "bytes",
    ),
    (
        "telemetry endpoint is well-formed",
        |c| c.proxy.telemetry.as_mut().unwrap().endpoint = Some("http://".into()),
        "proxy.telemetry.endpoint",
        Reason::InvalidFormat,
        "OTLP endpoint",
    ),
    (
        "telemetry export needs an endpoint",
        |c| c.proxy.telemetry.as_mut().unwrap().endpoint = None,
        "proxy.telemetry.endpoint",
        Reason::Required,
        "no endpoint",
    ),
    (
        "sampling rate is at most 1",
        |c| c.proxy.telemetry.as_mut().unwrap().sampling_rate = Some(SamplingRate::Number(1.5)),
        "proxy.telemetry.sampling_rate",
        Reason::OutOfRange,
        "0 to 1",
    ),
    (
        "sampling rate string form is checked too",
        |c| {
            c.proxy.telemetry.as_mut().unwrap().sampling_rate =
                Some(SamplingRate::Text("high".into()))
        },
        "proxy.telemetry.sampling_rate",
        Reason::OutOfRange,
        "\"high\"",
    ),
    (
        "telemetry header names are tokens",
        |c| {
            c.proxy
                .telemetry
                .as_mut()
                .unwrap()
                .headers
                .insert("bad header".into(), "x".into());
        },
        "proxy.telemetry.headers[\"bad header\"]",
        Reason::InvalidFormat,
        "header name",
    ),
    (
        "telemetry header values have no control characters",
        |c| {
            c.proxy
                .telemetry
                .as_mut()
                .unwrap()
                .headers
                .insert("x-tenant".into(), "a\nb".into());
        },
        "proxy.telemetry.headers.x-tenant",
        Reason::InvalidFormat,
        "control",
    ),
    (
        "telemetry service name is bounded",
        |c| c.proxy.telemetry.as_mut().unwrap().service_name = Some(" ".into()),
        "proxy.telemetry.service_name",
        Reason::InvalidFormat,
        "service name",
    ),
    (
        "tool names are unique",
        |c| c.proxy.tools.filter.push("get_issue".into()),
        "proxy.tools.filter[2]",
        Reason::Duplicate,
        "twice",
    ),
    (
        "tool names are non-empty",
        |c| c.proxy.tools.filter.push(String::new()),
        "proxy.tools.filter[2]",
        Reason::Required,
        "empty",
    ),
    (
        "overrides refer to filtered tools",
        |c| {
            c.proxy.tools.overrides.insert(
                "delete_repo".into(),
                ToolOverride {
                    name: Some("rm".into()),
                    description: None,
                },
            );
        },
        "proxy.tools.overrides.delete_repo",
        Reason::UnknownReference,
        "filter hides",
    ),
    (
        "renamed tools do not collide with exposed tools",
        |c| {
            c.proxy.tools.overrides.insert(
                "search_repositories".into(),
                ToolOverride {
                    name: Some("get_issue".into()),
                    description: None,
                },
            );
        },
        "proxy.tools.overrides.search_repositories.name",
        Reason::Conflict,
        "another exposed tool",
    ),
    (
        "two renames do not collide",
        |c| {
            c.proxy.tools.overrides.insert(
                "get_issue".into(),
                ToolOverride {
                    name: Some("find_repos".into()),
                    description: None,
                },
            );
        },
        "proxy.tools.overrides.search_repositories.name",
        Reason::Conflict,
        "both renamed",
    ),
    (
        "workload names are DNS labels",
        |c| c.name = "GitHub_Server".into(),
        "name",
        Reason::InvalidFormat,
        "lowercase",
    ),
    (
        "remote servers cannot use stdio",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "stdio".into(),
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.transport",
        Reason::NotSupported,
        "remote",
    ),
    (
        "a remote URL with a key in its query",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp?api_key=secret".into(),
                transport: "streamable-http".into(),
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.url",
        Reason::NotSupported,
        "a query",
    ),
    (
        "a remote URL with credentials",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://user:pass@mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.url",
        Reason::NotSupported,
        "user info",
    ),
    (
        "a forwarded header the proxy owns",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![ForwardedHeader {
                    name: "Host".into(),
                    value: Some("evil.example.com".into()),
                    ..ForwardedHeader::default()
                }],
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.headers[0].name",
        Reason::NotSupported,
        "set by the proxy",
    ),
    (
        "a forwarded header that is not a token",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![ForwardedHeader {
                    name: "X API Key".into(),
                    value: Some("k".into()),
                    ..ForwardedHeader::default()
                }],
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.headers[0].name",
        Reason::InvalidFormat,
        "not an HTTP header name",
    ),
    (
        "a forwarded header value that breaks the line",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![ForwardedHeader {
                    name: "X-Tenant".into(),
                    value: Some("a\r\nX-Injected: 1".into()),
                    ..ForwardedHeader::default()
                }],
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.headers[0].value",
        Reason::InvalidFormat,
        "control character",
    ),
    (
        "a forwarded header with a value and an environment variable",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![ForwardedHeader {
                    name: "X-API-Key".into(),
                    value: Some("k".into()),
                    value_env: Some("API_KEY".into()),
                }],
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.headers[0]",
        Reason::InvalidFormat,
        "exactly one",
    ),
    (
        "a forwarded header given twice",
        |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![
                    ForwardedHeader {
                        name: "X-Tenant".into(),
                        value: Some("a".into()),
                        ..ForwardedHeader::default()
                    },
                    ForwardedHeader {
                        name: "x-tenant".into(),
                        value_env: Some("TENANT".into()),
                        ..ForwardedHeader::default()
                    },
                ],
                ..RemoteWorkload::default()
            })
        },
        "workload.remote.headers[1].name",
        Reason::Duplicate,
        "twice",
    ),
];

#[test]
fn the_fixture_is_valid() {
    assert_eq!(problems(&full()), Vec::new());
}

#[test]
fn each_rule_rejects_its_violation_with_path_reason_and_hint() {
    let mut failures = Vec::new();
    for (rule, mutate, path, reason, phrase) in REJECTED {
        let mut config = full();
        mutate(&mut config);
        let result = std::panic::catch_unwind(|| only_problem(&config));
        match result {
            Ok((got_path, got_reason, message)) => {
                if got_path != *path || got_reason != *reason || !message.contains(phrase) {
                    failures.push(format!("{rule}: got {got_path} {got_reason:?} {message:?}"));
                }
            }
            Err(_) => failures.push(format!("{rule}: {:?}", problems(&config))),
        }
    }
    assert!(
        failures.is_empty(),
        "rules that misbehaved:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut config = full();
    config.proxy.port = 0;
    container(&mut config).transport = "ws".into();
    cedar(&mut config).policies.push("permit(".into());
    config.proxy.telemetry.as_mut().unwrap().sampling_rate = Some(SamplingRate::Number(2.0));
    let paths: Vec<_> = problems(&config).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    for expected in [
        "proxy.port",
        "workload.container.transport",
        "proxy.authz.policies[2]",
        "proxy.telemetry.sampling_rate",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "missing {expected} in {paths:?}"
        );
    }
}

#[test]
fn accepted_variants_of_each_rule() {
    let accepted: &[(&str, Mutation)] = &[
        ("sse transport with a port", |c| {
            let w = container(c);
            w.transport = "sse".into();
            w.target_port = Some(3000);
        }),
        ("image with digest", |c| {
            container(c).image = format!("ghcr.io/org/server@sha256:{}", "a".repeat(64))
        }),
        ("image without registry", |c| {
            container(c).image = "mcp/time".into()
        }),
        ("http issuer with the insecure flag", |c| {
            let o = c.proxy.oidc.as_mut().unwrap();
            o.issuer = Some("http://keycloak.auth:8080/realms/dev".into());
            o.jwks_url = None;
            o.insecure_allow_http = true;
        }),
        ("service-account tokens without an issuer", |c| {
            let o = c.proxy.oidc.as_mut().unwrap();
            o.issuer = None;
            o.jwks_url = None;
            o.kubernetes_service_account = Some(KubernetesServiceAccount::default());
        }),
        ("cedar with claims and groups", |c| {
            cedar(c).policies.push(r#"permit(principal in THVGroup::"admins", action, resource) when { principal.claim_email like "*@example.com" && resource.arg_owner == "me" };"#.into())
        }),
        ("two policies in one entry", |c| {
            cedar(c).policies[0] = r#"permit(principal, action == Action::"list_tools", resource); forbid(principal, action == Action::"call_tool", resource == Tool::"x");"#.into()
        }),
        ("custom group type and entities", |c| {
            let cd = cedar(c);
            cd.group_entity_type = Some("Team".into());
            cd.entities_json = r#"[{"uid": {"type": "Team", "id": "sre"}, "attrs": {}, "parents": [{"type": "Role", "id": "ops"}]}]"#.into();
            cd.policies
                .push(r#"permit(principal in Role::"ops", action, resource);"#.into());
        }),
        ("http authorizer", |c| {
            c.proxy.authz = Some(AuthzConfig::Http(HttpAuthzConfig {
                url: "https://pdp.example.com/decide".into(),
                timeout: Some("750ms".into()),
                ..Default::default()
            }))
        }),
        ("sampling rate as ToolHive string", |c| {
            c.proxy.telemetry.as_mut().unwrap().sampling_rate =
                Some(SamplingRate::Text("0.05".into()))
        }),
        ("telemetry URL endpoint", |c| {
            c.proxy.telemetry.as_mut().unwrap().endpoint = Some("https://otlp.example.com".into())
        }),
        ("prometheus only", |c| {
            c.proxy.telemetry = Some(TelemetryConfig {
                prometheus_enabled: true,
                ..Default::default()
            })
        }),
        ("rename onto a tool renamed away", |c| {
            let t = &mut c.proxy.tools;
            t.overrides.insert(
                "get_issue".into(),
                ToolOverride {
                    name: Some("issue".into()),
                    description: None,
                },
            );
            t.overrides.insert(
                "search_repositories".into(),
                ToolOverride {
                    name: Some("get_issue".into()),
                    description: None,
                },
            );
        }),
        ("overrides without a filter", |c| {
            c.proxy.tools.filter.clear();
            c.proxy.tools.overrides.insert(
                "anything".into(),
                ToolOverride {
                    description: Some("d".into()),
                    name: None,
                },
            );
        }),
        ("inline permission profile", |c| {
            container(c).permission_profile = Some(PermissionProfile::Inline(Profile {
                read: vec!["/data".into(), "/host:/container".into()],
                ..Default::default()
            }))
        }),
        ("remote streamable server", |c| {
            c.workload = Workload::Remote(RemoteWorkload {
                url: "https://mcp.example.com/mcp".into(),
                transport: "streamable-http".into(),
                headers: vec![
                    ForwardedHeader {
                        name: "X-Tenant-ID".into(),
                        value: Some("engineering".into()),
                        ..ForwardedHeader::default()
                    },
                    ForwardedHeader {
                        name: "X-API-Key".into(),
                        value_env: Some("TOOLHIVE_HEADER_0".into()),
                        ..ForwardedHeader::default()
                    },
                ],
                ..RemoteWorkload::default()
            })
        }),
        ("no middleware at all", |c| {
            c.proxy = ProxyConfig::default();
        }),
    ];
    for (case, mutate) in accepted {
        let mut config = full();
        mutate(&mut config);
        assert_eq!(problems(&config), Vec::new(), "{case}");
    }
}

#[test]
fn validated_config_holds_parsed_forms() {
    let validated = runconfig::validate(&full()).expect("valid");
    let proxy = &validated.proxy;
    assert_eq!(
        proxy.oidc.as_ref().map(|o| o.issuer.as_str()),
        Some("https://login.example.com/realms/eng")
    );
    let Some(runconfig::middleware::authz::ValidatedAuthz::Cedar(cedar)) = &proxy.authz else {
        panic!("cedar")
    };
    assert_eq!(cedar.compiled.policies.policies().count(), 2);
    assert_eq!(
        proxy.telemetry.as_ref().map(|t| t.sampling_rate),
        Some(0.25)
    );
    assert_eq!(
        proxy
            .tools
            .renamed_from
            .get("find_repos")
            .map(String::as_str),
        Some("search_repositories")
    );
    let runconfig::validate::ValidatedWorkload::Container(c) = &validated.workload else {
        panic!("container")
    };
    assert_eq!(c.image.registry(), "ghcr.io");
    let order: Vec<_> = validated
        .middleware()
        .iter()
        .map(|m| {
            format!("{m:?}")
                .split('(')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        order,
        [
            "Telemetry",
            "Authentication",
            "Audit",
            "Authorization",
            "Tools"
        ]
    );
}

#[test]
fn messages_say_what_is_wrong_and_what_is_allowed() {
    let mut config = full();
    config.proxy.oidc.as_mut().unwrap().issuer = Some("http://idp.example.com".into());
    let (_, _, message) = only_problem(&config);
    assert_eq!(
        message,
        "proxy.oidc.issuer: \"http://idp.example.com\" uses http; tokens and keys would travel unencrypted; an https URL, or set insecure_allow_http (insecureAllowHTTP in MCPOIDCConfig) for development"
    );
}
