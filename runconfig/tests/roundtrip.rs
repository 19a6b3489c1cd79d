//! Property: for every RunConfig `x`, `from_json(to_json(x)) == x`.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use runconfig::config::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z][a-z0-9_-]{0,12}"]
}

fn map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}

prop_compose! {
    fn container()(
        image in text(), args in vec(text(), 0..3), transport in text(),
        target_host in option::of(text()), target_port in option::of(any::<i64>()),
        env in vec((text(), text()).prop_map(|(name, value)| EnvVar { name, value }), 0..3),
        secrets in vec((text(), option::of(text()), option::of(text())).prop_map(|(name, key, target_env)| SecretRef { name, key, target_env }), 0..3),
        volumes in vec((option::of(text()), text(), text(), any::<bool>()).prop_map(|(name, host_path, mount_path, read_only)| VolumeMount { name, host_path, mount_path, read_only }), 0..3),
        labels in map(), isolate_network in any::<bool>(),
        profile in option::of(prop_oneof![
            text().prop_map(PermissionProfile::Builtin),
            (vec(text(), 0..2), vec(text(), 0..2), any::<bool>(), vec(any::<i64>(), 0..2)).prop_map(|(read, write, privileged, allow_port)| PermissionProfile::Inline(Profile {
                read, write, privileged,
                network: Some(NetworkPermissions { outbound: Some(OutboundPermissions { insecure_allow_all: false, allow_host: vec![], allow_port }) }),
            })),
        ]),
        service_account in option::of(text()), replicas in option::of(any::<i64>()),
        headers in forwarded_headers(),
    ) -> ContainerWorkload {
        ContainerWorkload { image, args, transport, target_host, target_port, env, secrets, volumes, labels,
            pod_template_patch: None, isolate_network, permission_profile: profile, service_account, replicas, headers }
    }
}

prop_compose! {
    fn oidc()(issuer in option::of(text()), audience in option::of(text()), scopes in vec(text(), 0..3), insecure in any::<bool>(), sa in option::of(option::of(text()))) -> OidcConfig {
        OidcConfig { issuer, audience, scopes, insecure_allow_http: insecure,
            kubernetes_service_account: sa.map(|namespace| KubernetesServiceAccount { namespace, ..Default::default() }),
            ..Default::default() }
    }
}

fn authz() -> impl Strategy<Value = AuthzConfig> {
    prop_oneof![
        (vec(text(), 0..3), text(), option::of(text())).prop_map(
            |(policies, entities_json, group_entity_type)| AuthzConfig::Cedar(CedarConfig {
                policies,
                entities_json,
                group_entity_type,
                ..Default::default()
            })
        ),
        (text(), option::of(text()), any::<bool>()).prop_map(|(url, timeout, include_args)| {
            AuthzConfig::Http(HttpAuthzConfig {
                url,
                timeout,
                include_args,
                ..Default::default()
            })
        }),
    ]
}

prop_compose! {
    fn telemetry()(endpoint in option::of(text()), rate in option::of(prop_oneof![(-1e6f64..1e6).prop_map(SamplingRate::Number), text().prop_map(SamplingRate::Text)]), headers in map(), tracing in any::<bool>()) -> TelemetryConfig {
        TelemetryConfig { endpoint, sampling_rate: rate, headers, tracing_enabled: tracing, ..Default::default() }
    }
}

/// Boxed: one more field inlined in `run_config`'s strategy overflows the test thread's
/// stack in debug builds.
fn session_redis() -> BoxedStrategy<Option<SessionRedis>> {
    option::of(
        (text(), any::<i64>(), option::of(text()), option::of(text())).prop_map(
            |(address, db, key_prefix, password_env)| SessionRedis {
                address,
                db,
                key_prefix,
                password_env,
            },
        ),
    )
    .boxed()
}

/// Boxed for the same reason as [`session_redis`].
fn forwarded_headers() -> BoxedStrategy<Vec<ForwardedHeader>> {
    vec(
        (text(), option::of(text()), option::of(text())).prop_map(|(name, value, value_env)| {
            ForwardedHeader {
                name,
                value,
                value_env,
            }
        }),
        0..2,
    )
    .boxed()
}

/// Boxed for the same reason as [`session_redis`].
fn webhooks() -> BoxedStrategy<Vec<Webhook>> {
    let tls = (
        option::of(text()),
        option::of(text()),
        option::of(text()),
        any::<bool>(),
    )
        .prop_map(
            |(ca_bundle_env, client_cert_env, client_key_env, insecure_skip_verify)| WebhookTls {
                ca_bundle_env,
                client_cert_env,
                client_key_env,
                insecure_skip_verify,
            },
        );
    vec(
        (
            text(),
            text(),
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(tls),
        )
            .prop_map(
                |(name, url, timeout, failure_policy, hmac_secret_env, tls)| Webhook {
                    name,
                    url,
                    timeout,
                    failure_policy,
                    hmac_secret_env,
                    tls,
                },
            ),
        0..2,
    )
    .boxed()
}

fn token_exchange() -> BoxedStrategy<Option<TokenExchange>> {
    option::of(
        (
            (text(), option::of(text()), option::of(text()), text()),
            (vec(text(), 0..2), option::of(text()), option::of(text())),
        )
            .prop_map(
                |(
                    (token_url, client_id, client_secret_env, audience),
                    (scopes, subject_token_type, header_name),
                )| TokenExchange {
                    token_url,
                    client_id,
                    client_secret_env,
                    audience,
                    scopes,
                    subject_token_type,
                    header_name,
                },
            ),
    )
    .boxed()
}

/// Boxed for the same reason as [`session_redis`].
fn rate_limit() -> BoxedStrategy<Option<RateLimit>> {
    let bucket = || {
        option::of(
            (any::<i64>(), text()).prop_map(|(max_tokens, refill_period)| RateLimitBucket {
                max_tokens,
                refill_period,
            }),
        )
    };
    option::of(
        (
            bucket(),
            bucket(),
            vec(
                (text(), bucket(), bucket()).prop_map(|(name, shared, per_user)| ToolRateLimit {
                    name,
                    shared,
                    per_user,
                }),
                0..2,
            ),
        )
            .prop_map(|(shared, per_user, tools)| RateLimit {
                shared,
                per_user,
                tools,
            }),
    )
    .boxed()
}

prop_compose! {
    fn run_config()(
        name in text(), group in option::of(text()), debug in any::<bool>(),
        workload in prop_oneof![
            container().prop_map(Workload::Container),
            (text(), text()).prop_map(|(url, transport)| Workload::Remote(RemoteWorkload { url, transport, ..RemoteWorkload::default() })),
        ],
        host in text(), port in any::<i64>(), mode in text(), trust in any::<bool>(), prefix in option::of(text()),
        origins in vec(text(), 0..2), oidc in option::of(oidc()), authz in option::of(authz()),
        audit in option::of((vec(text(), 0..2), option::of(any::<i64>())).prop_map(|(event_types, max_data_size)| AuditConfig { event_types, max_data_size, ..Default::default() })),
        telemetry in option::of(telemetry()),
        filter in vec(text(), 0..3), overrides in btree_map(text(), (option::of(text()), option::of(text())).prop_map(|(name, description)| ToolOverride { name, description }), 0..2),
        (session_redis, rate_limit, token_exchange, (mutating_webhooks, validating_webhooks)) in (session_redis(), rate_limit(), token_exchange(), (webhooks(), webhooks())).boxed(),
    ) -> RunConfig {
        RunConfig { schema_version: SCHEMA_VERSION.to_owned(), name, group, debug, workload,
            proxy: ProxyConfig { host, port, mode, trust_proxy_headers: trust, endpoint_prefix: prefix, allowed_origins: origins,
                oidc, authz, audit, telemetry, tools: ToolsConfig { filter, overrides }, session_redis, rate_limit, token_exchange, mutating_webhooks, validating_webhooks } }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn from_json_inverts_to_json(config in run_config()) {
        let bytes = runconfig::to_json(&config);
        let back = runconfig::from_json(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, config);
    }

    #[test]
    fn validate_never_panics(config in run_config()) {
        let _ = runconfig::validate(&config);
    }
}
