//! Property: a RunConfig written in ToolHive's schema (`to_toolhive_json`) reads back
//! (`from_json`, the import of ToolHive's files) as the same RunConfig, up to what
//! ToolHive's schema cannot carry, which the export lists.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use runconfig::config::*;

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

prop_compose! {
    fn exportable()(
        name in "[a-z][a-z0-9]{0,12}",
        image in "[a-z]{1,6}\\.io/[a-z]{1,6}:[0-9]{1,2}",
        transport in prop_oneof![Just("stdio"), Just("sse"), Just("streamable-http")],
        args in vec("[a-z-]{1,8}", 0..3),
        env in btree_map("[A-Z][A-Z_]{0,8}", word(), 0..3),
        secrets in vec((word(), "[A-Z][A-Z_]{0,8}"), 0..2),
        volumes in vec(("/[a-z]{1,6}", "/[a-z]{1,6}", any::<bool>()), 0..2),
        builtin in option::of(prop_oneof![Just("none"), Just("network")]),
        replicas in option::of(1i64..5),
        mode in prop_oneof![Just("sse"), Just("streamable-http")],
        issuer in option::of(word()),
        policies in option::of(vec("permit\\(principal, action, resource\\);", 1..3)),
        audit in option::of(vec(word(), 0..2)),
        telemetry in option::of((word(), any::<bool>(), btree_map(word(), word(), 0..2))),
        filter in vec(word(), 0..3),
    ) -> RunConfig {
        RunConfig {
            schema_version: runconfig::SCHEMA_VERSION.to_owned(),
            name,
            group: None,
            debug: false,
            workload: Workload::Container(ContainerWorkload {
                image,
                args,
                transport: transport.to_owned(),
                env: env.into_iter().map(|(name, value)| EnvVar { name, value }).collect(),
                secrets: secrets.into_iter().map(|(name, target)| SecretRef { name, key: None, target_env: Some(target) }).collect(),
                volumes: volumes.into_iter().map(|(host_path, mount_path, read_only)| VolumeMount { name: None, host_path, mount_path, read_only }).collect(),
                permission_profile: builtin.map(|b| PermissionProfile::Builtin(b.to_owned())),
                replicas,
                ..ContainerWorkload::default()
            }),
            proxy: ProxyConfig {
                mode: mode.to_owned(),
                oidc: issuer.map(|host| OidcConfig { issuer: Some(format!("https://{host}.example.com")), ..OidcConfig::default() }),
                authz: policies.map(|policies| AuthzConfig::Cedar(CedarConfig { policies, entities_json: "[]".to_owned(), ..CedarConfig::default() })),
                audit: audit.map(|event_types| AuditConfig { event_types, ..AuditConfig::default() }),
                telemetry: telemetry.map(|(host, tracing, headers)| TelemetryConfig {
                    endpoint: Some(format!("{host}:4318")),
                    tracing_enabled: tracing,
                    sampling_rate: Some(SamplingRate::Text("0.1".to_owned())),
                    headers,
                    ..TelemetryConfig::default()
                }),
                tools: ToolsConfig { filter, overrides: BTreeMap::new() },
                ..ProxyConfig::default()
            },
        }
    }
}

proptest! {
    #[test]
    fn an_export_in_toolhives_schema_reads_back_the_same(config in exportable()) {
        let (bytes, lost) = runconfig::to_toolhive_json(&config);
        prop_assert!(lost.is_empty(), "{:?}", lost);
        let back = runconfig::from_json(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(back, config);
    }
}

#[test]
fn what_toolhives_schema_cannot_carry_is_listed() {
    let mut config =
        runconfig::from_json(include_bytes!("data/toolhive_v0.1.0.json")).expect("reads");
    if let Workload::Container(c) = &mut config.workload {
        c.service_account = Some("mcp".to_owned());
        c.secrets.push(SecretRef {
            name: "gh".to_owned(),
            key: Some("token".to_owned()),
            target_env: None,
        });
    }
    let (_, lost) = runconfig::to_toolhive_json(&config);
    assert!(
        lost.contains(&"workload.container.service_account".to_owned()),
        "{lost:?}"
    );
    assert!(
        lost.iter()
            .any(|l| l.starts_with("workload.container.secrets[")),
        "{lost:?}"
    );
}

#[test]
fn session_redis_and_backend_replicas_travel_in_scaling_config() {
    let mut config =
        runconfig::from_json(include_bytes!("data/toolhive_v0.1.0.json")).expect("reads");
    if let Workload::Container(c) = &mut config.workload {
        c.replicas = Some(3);
    }
    config.proxy.session_redis = Some(SessionRedis {
        address: "redis.toolhive-system.svc:6379".to_owned(),
        db: 2,
        key_prefix: Some("team-a:".to_owned()),
        password_env: Some("THV_SESSION_REDIS_PASSWORD".to_owned()),
    });
    let (bytes, lost) = runconfig::to_toolhive_json(&config);
    assert!(lost.is_empty(), "{lost:?}");
    let written: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        written["scaling_config"],
        serde_json::json!({
            "backend_replicas": 3,
            "session_redis": {"address": "redis.toolhive-system.svc:6379", "db": 2, "key_prefix": "team-a:"},
        })
    );
    assert_eq!(runconfig::from_json(&bytes).expect("reads back"), config);

    // ToolHive reads the password from one variable; another name cannot be carried.
    if let Some(redis) = &mut config.proxy.session_redis {
        redis.password_env = Some("REDIS_PASSWORD".to_owned());
    }
    let (_, lost) = runconfig::to_toolhive_json(&config);
    assert_eq!(lost, vec!["proxy.session_redis.password_env".to_owned()]);
}

#[test]
fn rate_limits_travel_as_toolhives_crd_type() {
    let mut config =
        runconfig::from_json(include_bytes!("data/toolhive_v0.1.0.json")).expect("reads");
    let bucket = |max_tokens, refill_period: &str| {
        Some(RateLimitBucket {
            max_tokens,
            refill_period: refill_period.to_owned(),
        })
    };
    config.proxy.rate_limit = Some(RateLimit {
        shared: bucket(100, "1m0s"),
        per_user: None,
        tools: vec![ToolRateLimit {
            name: "search".to_owned(),
            shared: None,
            per_user: bucket(5, "30s"),
        }],
    });
    let (bytes, lost) = runconfig::to_toolhive_json(&config);
    assert!(lost.is_empty(), "{lost:?}");
    let written: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        written["rate_limit_config"],
        serde_json::json!({
            "shared": {"maxTokens": 100, "refillPeriod": "1m0s"},
            "tools": [{"name": "search", "perUser": {"maxTokens": 5, "refillPeriod": "30s"}}],
        })
    );
    assert_eq!(runconfig::from_json(&bytes).expect("reads back"), config);
}
