//! RunConfig → MCPServer (and the config objects it needs), for `thv convert`: move a
//! workload run locally onto a cluster.

use std::collections::BTreeMap;

use api::common::{EnvVar, LocalRef, SessionStorageConfig, SessionStorageProvider, Volume};
use api::mcpserver::{
    AuditConfig, AuthzConfigRef, AuthzConfigSource, InlineAuthzConfig, MCPOIDCConfigReference,
    MCPTelemetryConfigReference, PermissionProfileRef, PermissionProfileType, ProxyMode, SecretRef,
    SessionAffinity, Transport,
};
use api::oidcconfig::{InlineOIDCConfig, KubernetesServiceAccountOIDCConfig, OIDCConfigSource};
use api::telemetryconfig::{
    OpenTelemetryConfig, OpenTelemetryMetricsConfig, OpenTelemetryTracingConfig, PrometheusConfig,
};
use api::toolconfig::ToolOverride;
use api::{
    MCPOIDCConfig, MCPOIDCConfigSpec, MCPServer, MCPServerSpec, MCPTelemetryConfig,
    MCPTelemetryConfigSpec, MCPToolConfig, MCPToolConfigSpec, Manifest,
};

use runconfig::config::{AuthzConfig, PermissionProfile, RunConfig, SamplingRate, Workload};
use runconfig::error::{Reason, Violation, Violations};
use runconfig::path::FieldPath;
use runconfig::validate::Transport as RunConfigTransport;

/// The manifests that reproduce a RunConfig on a cluster: the MCPServer first, then
/// `<name>-tools`, `<name>-oidc` and `<name>-telemetry` when those sections are set.
/// Settings a CRD cannot express are reported, never dropped silently.
pub fn to_manifests(config: &RunConfig) -> Result<Vec<Manifest>, Violations> {
    let mut problems = Violations::default();
    let name = config.name.clone();
    let Workload::Container(container) = &config.workload else {
        problems.push(
            Violation::new(
                FieldPath::parse("workload.remote"),
                Reason::NotSupported,
                "a remote workload has no MCPServer form",
            )
            .allowed("a container workload"),
        );
        return Err(problems);
    };
    let transport = match RunConfigTransport::parse(&container.transport) {
        Some(transport) => crate::transport::to_crd(transport),
        None => {
            let unknown = &container.transport;
            problems.push(
                Violation::new(
                    FieldPath::parse("workload.container.transport"),
                    Reason::NotSupported,
                    format!("transport {unknown:?} has no MCPServer form"),
                )
                .allowed(RunConfigTransport::ALLOWED),
            );
            Transport::Stdio // placeholder: the problem makes the conversion fail
        }
    };
    let permission_profile = match &container.permission_profile {
        None => None,
        Some(PermissionProfile::Builtin(profile)) => Some(PermissionProfileRef {
            type_: PermissionProfileType::Builtin,
            name: profile.clone(),
            key: None,
        }),
        Some(PermissionProfile::Inline(_)) => {
            problems.push(
                Violation::new(FieldPath::parse("workload.container.permission_profile.inline"), Reason::NotSupported, "an inline permission profile goes into a ConfigMap")
                    .allowed("store it in a ConfigMap and set permissionProfile {type: configmap, name, key}"),
            );
            None
        }
    };
    if !container.headers.is_empty() {
        problems.push(
            Violation::new(
                FieldPath::parse("workload.container.headers"),
                Reason::NotSupported,
                "headers toward the server come from an MCPExternalAuthConfig's Secret",
            )
            .allowed("an MCPExternalAuthConfig (bearerToken or headerInjection) referenced by externalAuthConfigRef"),
        );
    }
    let proxy = &config.proxy;
    if proxy.token_exchange.is_some() {
        problems.push(
            Violation::new(
                FieldPath::parse("proxy.token_exchange"),
                Reason::NotSupported,
                "token exchange is an MCPExternalAuthConfig of its own",
            )
            .allowed("an MCPExternalAuthConfig of type tokenExchange referenced by externalAuthConfigRef"),
        );
    }
    for (list, field) in [
        (&proxy.mutating_webhooks, "proxy.mutating_webhooks"),
        (&proxy.validating_webhooks, "proxy.validating_webhooks"),
    ] {
        if !list.is_empty() {
            problems.push(
                Violation::new(
                    FieldPath::parse(field),
                    Reason::NotSupported,
                    "request webhooks are an MCPWebhookConfig of their own",
                )
                .allowed("an MCPWebhookConfig referenced by webhookConfigRef"),
            );
        }
    }
    let authz_config = match &proxy.authz {
        None => None,
        Some(AuthzConfig::Cedar(cedar)) => Some(AuthzConfigRef {
            type_: AuthzConfigSource::Inline,
            inline: Some(InlineAuthzConfig {
                policies: cedar.policies.clone(),
                entities_json: cedar.entities_json.clone(),
                primary_upstream_provider: None,
            }),
            group_claim_name: cedar.group_claim_name.clone(),
            role_claim_name: cedar.role_claim_name.clone(),
            group_entity_type: cedar.group_entity_type.clone(),
            ..AuthzConfigRef::default()
        }),
        Some(AuthzConfig::Http(_)) => {
            problems.push(
                Violation::new(
                    FieldPath::parse("proxy.authz"),
                    Reason::NotSupported,
                    "an httpv1 authorizer is shared through an MCPAuthzConfig",
                )
                .allowed("create an MCPAuthzConfig of type httpv1 and set authzConfigRef"),
            );
            None
        }
    };
    let mut manifests = Vec::new();
    let oidc_config_ref = proxy.oidc.as_ref().map(|oidc| {
        let object = format!("{name}-oidc");
        let spec = match &oidc.kubernetes_service_account {
            Some(sa) => MCPOIDCConfigSpec {
                type_: OIDCConfigSource::KubernetesServiceAccount,
                kubernetes_service_account: Some(KubernetesServiceAccountOIDCConfig {
                    service_account: sa.service_account.clone(),
                    namespace: sa.namespace.clone(),
                    issuer: oidc.issuer.clone(),
                    jwks_url: oidc.jwks_url.clone(),
                    introspection_url: oidc.introspection_url.clone(),
                    use_cluster_auth: sa.use_cluster_auth,
                }),
                inline: None,
            },
            None => MCPOIDCConfigSpec {
                type_: OIDCConfigSource::Inline,
                kubernetes_service_account: None,
                inline: Some(InlineOIDCConfig {
                    issuer: oidc.issuer.clone().unwrap_or_default(),
                    jwks_url: oidc.jwks_url.clone(),
                    introspection_url: oidc.introspection_url.clone(),
                    client_id: oidc.client_id.clone(),
                    jwks_allow_private_ip: oidc.allow_private_ip,
                    insecure_allow_http: oidc.insecure_allow_http,
                    ..InlineOIDCConfig::default()
                }),
            },
        };
        manifests.push(Manifest::MCPOIDCConfig(MCPOIDCConfig::new(&object, spec)));
        MCPOIDCConfigReference {
            name: object,
            audience: oidc.audience.clone().unwrap_or_default(),
            scopes: oidc.scopes.clone(),
            resource_url: oidc.resource_url.clone(),
        }
    });
    let telemetry_config_ref = proxy.telemetry.as_ref().map(|t| {
        let object = format!("{name}-telemetry");
        let sampling_rate = match &t.sampling_rate {
            Some(SamplingRate::Number(n)) => n.to_string(),
            Some(SamplingRate::Text(text)) => text.clone(),
            None => api::telemetryconfig::DEFAULT_SAMPLING_RATE.to_owned(),
        };
        let spec = MCPTelemetryConfigSpec {
            open_telemetry: t.endpoint.as_ref().map(|endpoint| OpenTelemetryConfig {
                enabled: true,
                endpoint: Some(endpoint.clone()),
                insecure: t.insecure,
                headers: t.headers.clone(),
                sensitive_headers: Vec::new(),
                resource_attributes: t.resource_attributes.clone(),
                metrics: Some(OpenTelemetryMetricsConfig {
                    enabled: t.metrics_enabled,
                }),
                tracing: Some(OpenTelemetryTracingConfig {
                    enabled: t.tracing_enabled,
                    sampling_rate,
                }),
                use_legacy_attributes: t.use_legacy_attributes,
                ca_bundle_ref: None,
            }),
            prometheus: t
                .prometheus_enabled
                .then_some(PrometheusConfig { enabled: true }),
        };
        manifests.push(Manifest::MCPTelemetryConfig(MCPTelemetryConfig::new(
            &object, spec,
        )));
        MCPTelemetryConfigReference {
            name: object,
            // The server's name is the default the mapping fills in; left implicit.
            service_name: t.service_name.clone().filter(|service| *service != name),
        }
    });
    let tool_config_ref = (!proxy.tools.is_empty()).then(|| {
        let object = format!("{name}-tools");
        let spec = MCPToolConfigSpec {
            tools_filter: proxy.tools.filter.clone(),
            tools_override: proxy
                .tools
                .overrides
                .iter()
                .map(|(k, o)| {
                    (
                        k.clone(),
                        ToolOverride {
                            name: o.name.clone(),
                            description: o.description.clone(),
                            annotations: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        };
        manifests.push(Manifest::MCPToolConfig(MCPToolConfig::new(&object, spec)));
        LocalRef { name: object }
    });
    let session_storage = proxy.session_redis.as_ref().map(|redis| {
        if let Some(env) = &redis.password_env {
            problems.push(
                Violation::new(
                    FieldPath::parse("proxy.session_redis.password_env"),
                    Reason::NotSupported,
                    format!("an MCPServer takes the Redis password from a Secret, not from the variable {env}"),
                )
                .allowed("store the password in a Secret and set spec.sessionStorage.passwordRef {name, key}"),
            );
        }
        SessionStorageConfig {
            provider: SessionStorageProvider::Redis,
            address: Some(redis.address.clone()),
            db: i32::try_from(redis.db).unwrap_or_default(),
            key_prefix: redis.key_prefix.clone(),
            password_ref: None,
        }
    });
    let spec = MCPServerSpec {
        image: container.image.clone(),
        transport,
        proxy_mode: if proxy.mode == "sse" {
            ProxyMode::Sse
        } else {
            ProxyMode::StreamableHttp
        },
        proxy_port: i32::try_from(proxy.port).unwrap_or(api::mcpserver::DEFAULT_PROXY_PORT),
        // The default port is what the mapping fills in for an HTTP server; left implicit.
        mcp_port: container
            .target_port
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p != api::mcpserver::DEFAULT_MCP_PORT),
        args: container.args.clone(),
        env: container
            .env
            .iter()
            .map(|e| EnvVar {
                name: e.name.clone(),
                value: e.value.clone(),
            })
            .collect(),
        secrets: container
            .secrets
            .iter()
            .map(|s| SecretRef {
                name: s.name.clone(),
                key: s.key.clone().unwrap_or_else(|| s.name.clone()),
                target_env_name: s.target_env.clone(),
            })
            .collect(),
        volumes: container
            .volumes
            .iter()
            .enumerate()
            .map(|(i, v)| Volume {
                name: v.name.clone().unwrap_or_else(|| format!("volume-{i}")),
                host_path: v.host_path.clone(),
                mount_path: v.mount_path.clone(),
                read_only: v.read_only,
            })
            .collect(),
        resources: None,
        proxy_resources: None,
        // `<name>-sa` is what the mapping fills in when the spec names no account (the
        // operator then creates it); naming it would make the operator expect it to exist.
        service_account: container
            .service_account
            .clone()
            .filter(|account| *account != format!("{name}-sa")),
        permission_profile,
        pod_template_spec: container.pod_template_patch.clone(),
        resource_overrides: None,
        oidc_config_ref,
        authz_config,
        authz_config_ref: None,
        audit: proxy.audit.as_ref().map(|_| AuditConfig { enabled: true }),
        tool_config_ref,
        telemetry_config_ref,
        group_ref: None,
        auth_server_ref: None,
        external_auth_config_ref: None,
        webhook_config_ref: None,
        network_policy: None,
        trust_proxy_headers: proxy.trust_proxy_headers,
        endpoint_prefix: proxy.endpoint_prefix.clone(),
        replicas: None,
        backend_replicas: container.replicas.and_then(|r| i32::try_from(r).ok()),
        session_affinity: SessionAffinity::ClientIP,
        session_storage,
        rate_limiting: proxy.rate_limit.as_ref().map(rate_limiting),
    };
    manifests.insert(0, Manifest::MCPServer(MCPServer::new(&name, spec)));
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

/// `proxy.rate_limit` as `spec.rateLimiting` (capacities beyond the CRD's int32 are
/// refused by validation before this runs).
fn rate_limiting(limit: &runconfig::config::RateLimit) -> api::ratelimit::RateLimitConfig {
    let bucket = |b: &runconfig::config::RateLimitBucket| api::ratelimit::RateLimitBucket {
        max_tokens: i32::try_from(b.max_tokens).unwrap_or(i32::MAX),
        refill_period: b.refill_period.clone(),
    };
    api::ratelimit::RateLimitConfig {
        shared: limit.shared.as_ref().map(bucket),
        per_user: limit.per_user.as_ref().map(bucket),
        tools: limit
            .tools
            .iter()
            .map(|t| api::ratelimit::ToolRateLimitConfig {
                name: t.name.clone(),
                shared: t.shared.as_ref().map(bucket),
                per_user: t.per_user.as_ref().map(bucket),
            })
            .collect(),
    }
}
