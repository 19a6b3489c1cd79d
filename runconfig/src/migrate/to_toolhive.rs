//! Export into ToolHive's RunConfig (schema `v0.1.0`), the inverse of
//! [`super::toolhive::to_current`], for ToolHive's own CLI (`thv run --from-config`).
//! Settings its schema cannot carry are listed, never dropped silently.

use serde_json::{Map, Value, json};

use crate::config::{
    AuthzConfig, ContainerWorkload, OidcConfig, PermissionProfile, RunConfig, SamplingRate,
    TelemetryConfig, Workload,
};

/// A RunConfig as ToolHive writes it, with the paths of the settings it cannot carry.
pub fn from_current(config: &RunConfig) -> (Value, Vec<String>) {
    let mut out = Map::new();
    let mut lost = Vec::new();
    out.insert(
        "schema_version".into(),
        json!(super::toolhive::SCHEMA_VERSION),
    );
    out.insert("name".into(), json!(config.name));
    put(&mut out, "group", config.group.as_ref().map(|g| json!(g)));
    if config.debug {
        out.insert("debug".into(), json!(true));
    }
    match &config.workload {
        Workload::Container(container) => self::container(container, &mut out, &mut lost),
        Workload::Remote(remote) => {
            out.insert("remote_url".into(), json!(remote.url));
            out.insert("transport".into(), json!(remote.transport));
            if let Some(auth) = &remote.auth {
                out.insert(
                    "remote_auth_config".into(),
                    json!({"issuer": auth.issuer, "client_id": auth.client_id, "scopes": auth.scopes}),
                );
                if auth.client_secret_env.is_some() {
                    lost.push("workload.remote.auth.client_secret_env".to_owned());
                }
            }
        }
    }
    let proxy = &config.proxy;
    out.insert("host".into(), json!(proxy.host));
    out.insert("port".into(), json!(proxy.port));
    out.insert("proxy_mode".into(), json!(proxy.mode));
    if proxy.trust_proxy_headers {
        out.insert("trust_proxy_headers".into(), json!(true));
    }
    put(
        &mut out,
        "endpoint_prefix",
        proxy.endpoint_prefix.as_ref().map(|p| json!(p)),
    );
    if !proxy.allowed_origins.is_empty() {
        out.insert("allowed_origins".into(), json!(proxy.allowed_origins));
    }
    if let Some(redis) = &proxy.session_redis {
        let mut session = Map::new();
        session.insert("address".into(), json!(redis.address));
        if redis.db != 0 {
            session.insert("db".into(), json!(redis.db));
        }
        put(
            &mut session,
            "key_prefix",
            redis.key_prefix.as_ref().map(|p| json!(p)),
        );
        if redis
            .password_env
            .as_deref()
            .is_some_and(|env| env != crate::config::SESSION_REDIS_PASSWORD_ENV)
        {
            // ToolHive reads the password from one fixed variable only.
            lost.push("proxy.session_redis.password_env".to_owned());
        }
        scaling(&mut out, "session_redis", Value::Object(session));
    }
    if let Some(limit) = &proxy.rate_limit {
        out.insert("rate_limit_config".into(), rate_limit_config(limit));
    }
    if let Some(exchange) = &proxy.token_exchange {
        out.insert(
            "token_exchange_config".into(),
            token_exchange_config(exchange, &mut lost),
        );
    }
    for (key, list) in [
        ("mutating_webhooks", &proxy.mutating_webhooks),
        ("validating_webhooks", &proxy.validating_webhooks),
    ] {
        if !list.is_empty() {
            let converted = list
                .iter()
                .enumerate()
                .map(|(i, w)| webhook(w, &format!("proxy.{key}[{i}]"), &mut lost))
                .collect();
            out.insert(key.into(), Value::Array(converted));
        }
    }
    if let Some(oidc) = &proxy.oidc {
        out.insert("oidc_config".into(), oidc_config(oidc, &mut lost));
    }
    if let Some(authz) = &proxy.authz {
        out.insert("authz_config".into(), authz_config(authz));
    }
    if let Some(audit) = &proxy.audit {
        out.insert(
            "audit_config".into(),
            json!({
                "enabled": true,
                "component": audit.component,
                "eventTypes": audit.event_types,
                "excludeEventTypes": audit.exclude_event_types,
                "includeRequestData": audit.include_request_data,
                "includeResponseData": audit.include_response_data,
                "maxDataSize": audit.max_data_size,
            }),
        );
    }
    if let Some(telemetry) = &proxy.telemetry {
        out.insert("telemetry_config".into(), telemetry_config(telemetry));
        if telemetry.ca_bundle.is_some() {
            // ToolHive reads the collector's CA from a file path, which a RunConfig here
            // never holds.
            lost.push("proxy.telemetry.ca_bundle".to_owned());
        }
    }
    if !proxy.tools.filter.is_empty() {
        out.insert("tools_filter".into(), json!(proxy.tools.filter));
    }
    if !proxy.tools.overrides.is_empty() {
        out.insert("tools_override".into(), json!(proxy.tools.overrides));
    }
    (Value::Object(out), lost)
}

fn put(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        out.insert(key.to_owned(), value);
    }
}

fn container(c: &ContainerWorkload, out: &mut Map<String, Value>, lost: &mut Vec<String>) {
    let at = |field: &str| format!("workload.container.{field}");
    out.insert("image".into(), json!(c.image));
    out.insert("cmd_args".into(), json!(c.args));
    out.insert("transport".into(), json!(c.transport));
    put(out, "target_host", c.target_host.as_ref().map(|h| json!(h)));
    put(out, "target_port", c.target_port.map(|p| json!(p)));
    // ToolHive keeps a map: the order, and a repeated name, do not carry over.
    let env: Map<String, Value> = c
        .env
        .iter()
        .map(|e| (e.name.clone(), json!(e.value)))
        .collect();
    if env.len() != c.env.len() {
        lost.push(at("env (a repeated name)"));
    }
    out.insert("env_vars".into(), Value::Object(env));
    let secrets: Vec<Value> = c
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.key.as_ref().is_some_and(|k| *k != s.name) {
                lost.push(at(&format!("secrets[{i}].key")));
            }
            let target = s
                .target_env
                .as_deref()
                .or(s.key.as_deref())
                .unwrap_or(&s.name);
            json!(format!("{},target={target}", s.name))
        })
        .collect();
    out.insert("secrets".into(), json!(secrets));
    let volumes: Vec<Value> = c
        .volumes
        .iter()
        .map(|v| {
            let mode = if v.read_only { ":ro" } else { "" };
            json!(format!("{}:{}{mode}", v.host_path, v.mount_path))
        })
        .collect();
    if c.volumes.iter().any(|v| v.name.is_some()) {
        lost.push(at("volumes[].name"));
    }
    out.insert("volumes".into(), json!(volumes));
    if !c.labels.is_empty() {
        out.insert("container_labels".into(), json!(c.labels));
    }
    if let Some(patch) = &c.pod_template_patch {
        out.insert("k8s_pod_template_patch".into(), json!(patch.to_string()));
    }
    if c.isolate_network {
        out.insert("isolate_network".into(), json!(true));
    }
    match &c.permission_profile {
        Some(PermissionProfile::Builtin(name)) => {
            out.insert("permission_profile_name_or_path".into(), json!(name));
        }
        Some(PermissionProfile::Inline(profile)) => {
            out.insert("permission_profile".into(), json!(profile));
        }
        None => {}
    }
    if c.service_account.is_some() {
        lost.push(at("service_account"));
    }
    // ToolHive adds headers only toward remote servers.
    if !c.headers.is_empty() {
        lost.push(at("headers"));
    }
    if let Some(replicas) = c.replicas {
        scaling(out, "backend_replicas", json!(replicas));
    }
}

/// Sets `key` in ToolHive's `scaling_config` object.
fn scaling(out: &mut Map<String, Value>, key: &str, value: Value) {
    let mut scaling = match out.remove("scaling_config") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    scaling.insert(key.to_owned(), value);
    out.insert("scaling_config".into(), Value::Object(scaling));
}

/// ToolHive's `TokenValidatorConfig`: Go field names.
fn oidc_config(oidc: &OidcConfig, lost: &mut Vec<String>) -> Value {
    for (set, field) in [
        (
            oidc.kubernetes_service_account.is_some(),
            "kubernetes_service_account",
        ),
        (oidc.client_secret_env.is_some(), "client_secret_env"),
        (oidc.ca_bundle.is_some(), "ca_bundle"),
    ] {
        if set {
            lost.push(format!("proxy.oidc.{field}"));
        }
    }
    json!({
        "Issuer": oidc.issuer.clone().unwrap_or_default(),
        "Audience": oidc.audience.clone().unwrap_or_default(),
        "JWKSURL": oidc.jwks_url.clone().unwrap_or_default(),
        "IntrospectionURL": oidc.introspection_url.clone().unwrap_or_default(),
        "ClientID": oidc.client_id.clone().unwrap_or_default(),
        "Scopes": oidc.scopes,
        "ResourceURL": oidc.resource_url.clone().unwrap_or_default(),
        "AllowPrivateIP": oidc.allow_private_ip,
        "InsecureAllowHTTP": oidc.insecure_allow_http,
    })
}

/// `{version, type, cedar: {...}}` or `{version, type, http: {...}, context, claim_mapping}`.
fn authz_config(authz: &AuthzConfig) -> Value {
    match authz {
        AuthzConfig::Cedar(cedar) => json!({
            "version": "1.0",
            "type": "cedarv1",
            "cedar": cedar,
        }),
        AuthzConfig::Http(http) => json!({
            "version": "1.0",
            "type": "httpv1",
            "http": {"url": http.url, "timeout": http.timeout, "insecure_skip_verify": http.insecure_skip_verify},
            "context": {"include_args": http.include_args, "include_operation": http.include_operation},
            "claim_mapping": http.claim_mapping,
        }),
    }
}

fn telemetry_config(t: &TelemetryConfig) -> Value {
    json!({
        "endpoint": t.endpoint.clone().unwrap_or_default(),
        "serviceName": t.service_name.clone().unwrap_or_default(),
        "serviceVersion": t.service_version.clone().unwrap_or_default(),
        "tracingEnabled": t.tracing_enabled,
        "metricsEnabled": t.metrics_enabled,
        "samplingRate": match &t.sampling_rate {
            Some(SamplingRate::Number(n)) => n.to_string(),
            Some(SamplingRate::Text(text)) => text.clone(),
            None => String::new(),
        },
        "headers": t.headers,
        "insecure": t.insecure,
        "enablePrometheusMetricsPath": t.prometheus_enabled,
        "customAttributes": t.resource_attributes,
        "useLegacyAttributes": t.use_legacy_attributes,
    })
}

/// ToolHive's `token_exchange_config`. Its proxy reads the secret from one fixed
/// variable only; another is lost.
fn token_exchange_config(exchange: &crate::config::TokenExchange, lost: &mut Vec<String>) -> Value {
    if exchange
        .client_secret_env
        .as_deref()
        .is_some_and(|env| env != crate::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV)
    {
        lost.push("proxy.token_exchange.client_secret_env".to_owned());
    }
    let mut out = Map::new();
    out.insert("token_url".into(), json!(exchange.token_url));
    out.insert(
        "client_id".into(),
        json!(exchange.client_id.clone().unwrap_or_default()),
    );
    out.insert("client_secret".into(), json!(""));
    out.insert("audience".into(), json!(exchange.audience));
    if !exchange.scopes.is_empty() {
        out.insert("scopes".into(), json!(exchange.scopes));
    }
    put(
        &mut out,
        "subject_token_type",
        exchange.subject_token_type.as_ref().map(|t| {
            json!(crate::middleware::token_exchange::token_type_urn(t).unwrap_or(t.as_str()))
        }),
    );
    match &exchange.header_name {
        Some(name) if !name.eq_ignore_ascii_case("authorization") => {
            out.insert("header_strategy".into(), json!("custom"));
            out.insert("external_token_header_name".into(), json!(name));
        }
        _ => {
            out.insert("header_strategy".into(), json!("replace"));
        }
    }
    Value::Object(out)
}

/// ToolHive's `rate_limit_config`: the CRD's type, camelCase.
/// One webhook in ToolHive's form. Its secrets are environment variables here and files
/// (or secrets-provider entries) there: they are reported lost.
fn webhook(w: &crate::config::Webhook, at: &str, lost: &mut Vec<String>) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(w.name));
    out.insert("url".into(), json!(w.url));
    out.insert(
        "timeout".into(),
        json!(w.timeout.as_deref().unwrap_or("10s")),
    );
    out.insert(
        "failure_policy".into(),
        json!(w.failure_policy.as_deref().unwrap_or("fail")),
    );
    if w.hmac_secret_env.is_some() {
        lost.push(format!("{at}.hmac_secret_env"));
    }
    if let Some(tls) = &w.tls {
        for (env, field) in [
            (&tls.ca_bundle_env, "ca_bundle_env"),
            (&tls.client_cert_env, "client_cert_env"),
            (&tls.client_key_env, "client_key_env"),
        ] {
            if env.is_some() {
                lost.push(format!("{at}.tls.{field}"));
            }
        }
        if tls.insecure_skip_verify {
            out.insert("tls_config".into(), json!({"insecure_skip_verify": true}));
        }
    }
    Value::Object(out)
}

fn rate_limit_config(limit: &crate::config::RateLimit) -> Value {
    let bucket = |b: &crate::config::RateLimitBucket| json!({"maxTokens": b.max_tokens, "refillPeriod": b.refill_period});
    let mut out = Map::new();
    put(&mut out, "shared", limit.shared.as_ref().map(bucket));
    put(&mut out, "perUser", limit.per_user.as_ref().map(bucket));
    if !limit.tools.is_empty() {
        let tools: Vec<Value> = limit
            .tools
            .iter()
            .map(|t| {
                let mut tool = Map::new();
                tool.insert("name".into(), json!(t.name));
                put(&mut tool, "shared", t.shared.as_ref().map(bucket));
                put(&mut tool, "perUser", t.per_user.as_ref().map(bucket));
                Value::Object(tool)
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(out)
}
