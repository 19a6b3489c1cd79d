//! Import of ToolHive's RunConfig (schema `v0.1.0`): snake_case keys, an `oidc_config`
//! with Go field names (no JSON tags, so PascalCase), camelCase audit and telemetry
//! blocks, secrets and volumes as strings. File-path fields are refused with advice to
//! inline the content: a RunConfig carries no file references (seed 004).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::SCHEMA_VERSION as CURRENT;
use crate::error::{Reason, Violation, Violations};
use crate::path::FieldPath;

/// ToolHive's RunConfig schema version.
pub const SCHEMA_VERSION: &str = "v0.1.0";

/// Keys that name files; each is refused with what to do instead.
const FILE_PATH_KEYS: &[(&str, &str)] = &[
    (
        "authz_config_path",
        "inline the file's content as authz_config",
    ),
    (
        "audit_config_path",
        "inline the file's content as audit_config",
    ),
    ("env_file_dir", "list the variables in env_vars"),
    (
        "jwks_auth_token_file",
        "the proxy authenticates JWKS requests with its own service-account token",
    ),
    (
        "thv_ca_bundle",
        "inline the PEM bundle as oidc_config.ca_bundle",
    ),
];

/// Keys that carry nothing the proxy needs (bookkeeping of ToolHive's CLI), or that are
/// derived here from the typed blocks (`middleware_configs`).
const IGNORED_KEYS: &[&str] = &[
    "schema_version",
    "container_name",
    "base_name",
    "registry_api_url",
    "registry_url",
    "registry_server_name",
    "mcpserver_generation",
    "middleware_configs",
    "permission_profile_name_or_path",
    "permission_profile",
    "remote_url",
    "remote_auth_config",
    "image",
    "cmd_args",
    "transport",
    "target_host",
    "target_port",
    "env_vars",
    "secrets",
    "volumes",
    "container_labels",
    "k8s_pod_template_patch",
    "isolate_network",
    "backend_replicas",
    "scaling_config",
    "rate_limit_config",
    "rate_limit_namespace",
    "token_exchange_config",
    "mutating_webhooks",
    "validating_webhooks",
    "name",
    "group",
    "debug",
    "host",
    "port",
    "proxy_mode",
    "trust_proxy_headers",
    "endpoint_prefix",
    "allowed_origins",
    "oidc_config",
    "authz_config",
    "audit_config",
    "telemetry_config",
    "tools_filter",
    "tools_override",
];

/// Converts a ToolHive `v0.1.0` RunConfig into a current one; every problem is reported.
pub fn to_current(old: &Value) -> Result<Value, Violations> {
    let mut problems = Violations::default();
    let Some(old) = old.as_object() else {
        problems.push(Violation::new(
            FieldPath::root(),
            Reason::InvalidFormat,
            "a RunConfig is a JSON object",
        ));
        return Err(problems);
    };
    let root = FieldPath::root();
    for (key, advice) in FILE_PATH_KEYS {
        if non_empty(old.get(*key)) {
            problems.push(
                Violation::new(
                    root.key(*key),
                    Reason::FilePathNotAllowed,
                    "file paths are not allowed in a RunConfig",
                )
                .allowed(*advice),
            );
        }
    }
    for (key, value) in old {
        if !IGNORED_KEYS.contains(&key.as_str())
            && !FILE_PATH_KEYS.iter().any(|(k, _)| k == key)
            && non_empty(Some(value))
        {
            problems.push(
                Violation::new(
                    root.key(key.as_str()),
                    Reason::NotSupported,
                    "this ToolHive setting is not supported",
                )
                .allowed("remove it, or run the workload with ToolHive"),
            );
        }
    }

    let workload = workload(old, &mut problems);
    let mut proxy = Map::new();
    copy(old, "host", &mut proxy, "host");
    copy(old, "port", &mut proxy, "port");
    copy(old, "proxy_mode", &mut proxy, "mode");
    copy(
        old,
        "trust_proxy_headers",
        &mut proxy,
        "trust_proxy_headers",
    );
    copy(old, "endpoint_prefix", &mut proxy, "endpoint_prefix");
    copy(old, "allowed_origins", &mut proxy, "allowed_origins");
    if let Some(oidc) = old.get("oidc_config").filter(|v| v.is_object()) {
        proxy.insert(
            "oidc".into(),
            oidc_config(oidc, &root.key("oidc_config"), &mut problems),
        );
    }
    if let Some(authz) = old.get("authz_config").filter(|v| v.is_object()) {
        proxy.insert(
            "authz".into(),
            authz_config(authz, &root.key("authz_config"), &mut problems),
        );
    }
    if let Some(audit) = old
        .get("audit_config")
        .and_then(audit_config_of(&root.key("audit_config"), &mut problems))
    {
        proxy.insert("audit".into(), audit);
    }
    if let Some(telemetry) = old.get("telemetry_config").filter(|v| v.is_object()) {
        proxy.insert(
            "telemetry".into(),
            telemetry_config(telemetry, &root.key("telemetry_config"), &mut problems),
        );
    }
    if let Some(redis) = old
        .get("scaling_config")
        .and_then(|s| s.get("session_redis"))
        .and_then(Value::as_object)
        .filter(|r| !r.is_empty())
    {
        let mut out = Map::new();
        copy(redis, "address", &mut out, "address");
        copy(redis, "db", &mut out, "db");
        copy(redis, "key_prefix", &mut out, "key_prefix");
        // ToolHive's proxy reads the password from this variable when it is set.
        out.insert(
            "password_env".into(),
            json!(crate::config::SESSION_REDIS_PASSWORD_ENV),
        );
        proxy.insert("session_redis".into(), Value::Object(out));
    }
    if let Some(limit) = old.get("rate_limit_config").and_then(Value::as_object) {
        // ToolHive embeds the CRD's type: camelCase keys, Go durations.
        let bucket = |b: &Value| {
            b.as_object().map(|b| {
                json!({
                    "max_tokens": b.get("maxTokens").cloned().unwrap_or(Value::Null),
                    "refill_period": b.get("refillPeriod").cloned().unwrap_or(Value::Null),
                })
            })
        };
        let mut out = Map::new();
        if let Some(b) = limit.get("shared").and_then(bucket) {
            out.insert("shared".into(), b);
        }
        if let Some(b) = limit.get("perUser").and_then(bucket) {
            out.insert("per_user".into(), b);
        }
        if let Some(tools) = limit.get("tools").and_then(Value::as_array) {
            let list: Vec<Value> = tools
                .iter()
                .filter_map(Value::as_object)
                .map(|t| {
                    let mut tool = Map::new();
                    copy(t, "name", &mut tool, "name");
                    if let Some(b) = t.get("shared").and_then(bucket) {
                        tool.insert("shared".into(), b);
                    }
                    if let Some(b) = t.get("perUser").and_then(bucket) {
                        tool.insert("per_user".into(), b);
                    }
                    Value::Object(tool)
                })
                .collect();
            out.insert("tools".into(), Value::Array(list));
        }
        proxy.insert("rate_limit".into(), Value::Object(out));
    }
    if let Some(exchange) = old
        .get("token_exchange_config")
        .and_then(Value::as_object)
        .filter(|e| !e.is_empty())
    {
        proxy.insert(
            "token_exchange".into(),
            token_exchange(exchange, &root.key("token_exchange_config"), &mut problems),
        );
    }
    for key in ["mutating_webhooks", "validating_webhooks"] {
        if let Some(list) = old
            .get(key)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
        {
            let converted = list
                .iter()
                .enumerate()
                .map(|(i, w)| webhook(w, &root.key(key).index(i), &mut problems))
                .collect();
            proxy.insert(key.into(), Value::Array(converted));
        }
    }
    let mut tools = Map::new();
    copy(old, "tools_filter", &mut tools, "filter");
    copy(old, "tools_override", &mut tools, "overrides");
    if !tools.is_empty() {
        proxy.insert("tools".into(), Value::Object(tools));
    }

    let mut current = Map::new();
    current.insert("schema_version".into(), json!(CURRENT));
    copy(old, "name", &mut current, "name");
    copy(old, "group", &mut current, "group");
    copy(old, "debug", &mut current, "debug");
    current.insert("workload".into(), workload);
    current.insert("proxy".into(), Value::Object(proxy));
    if problems.is_empty() {
        Ok(Value::Object(current))
    } else {
        Err(problems)
    }
}

fn workload(old: &Map<String, Value>, problems: &mut Violations) -> Value {
    let root = FieldPath::root();
    if let Some(url) = old.get("remote_url").filter(|v| non_empty(Some(v))) {
        let mut remote = Map::new();
        remote.insert("url".into(), url.clone());
        copy(old, "transport", &mut remote, "transport");
        if let Some(auth) = old.get("remote_auth_config").and_then(Value::as_object) {
            let mut out = Map::new();
            for (from, to) in [
                ("issuer", "issuer"),
                ("client_id", "client_id"),
                ("scopes", "scopes"),
            ] {
                copy(auth, from, &mut out, to);
            }
            if non_empty(auth.get("client_secret")) {
                problems.push(secret_value_violation(
                    root.key("remote_auth_config").key("client_secret"),
                    "remote_auth_config.client_secret_env",
                ));
            }
            remote.insert("auth".into(), Value::Object(out));
        }
        return json!({ "remote": remote });
    }
    let mut container = Map::new();
    copy(old, "image", &mut container, "image");
    copy(old, "cmd_args", &mut container, "args");
    copy(old, "transport", &mut container, "transport");
    copy(old, "target_host", &mut container, "target_host");
    copy(old, "target_port", &mut container, "target_port");
    copy(old, "container_labels", &mut container, "labels");
    copy(old, "isolate_network", &mut container, "isolate_network");
    copy(old, "backend_replicas", &mut container, "replicas");
    if let Some(scaling) = old.get("scaling_config").and_then(Value::as_object) {
        copy(scaling, "backend_replicas", &mut container, "replicas");
    }
    if let Some(env) = old.get("env_vars").and_then(Value::as_object) {
        // ToolHive keeps a map; a list keeps the order and lets validation see duplicates.
        let sorted: BTreeMap<_, _> = env.iter().collect();
        let list: Vec<Value> = sorted
            .into_iter()
            .map(|(k, v)| json!({"name": k, "value": v.as_str().unwrap_or_default()}))
            .collect();
        container.insert("env".into(), Value::Array(list));
    }
    if let Some(secrets) = old.get("secrets").and_then(Value::as_array) {
        let list = secrets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| secret(s, &root.key("secrets").index(i), problems))
            .collect();
        container.insert("secrets".into(), Value::Array(list));
    }
    if let Some(volumes) = old.get("volumes").and_then(Value::as_array) {
        let list = volumes
            .iter()
            .enumerate()
            .filter_map(|(i, v)| volume(v, &root.key("volumes").index(i), problems))
            .collect();
        container.insert("volumes".into(), Value::Array(list));
    }
    match old.get("k8s_pod_template_patch") {
        Some(Value::String(patch)) if !patch.trim().is_empty() => {
            match serde_json::from_str::<Value>(patch) {
                Ok(value) => {
                    container.insert("pod_template_patch".into(), value);
                }
                Err(e) => problems.push(Violation::new(
                    root.key("k8s_pod_template_patch"),
                    Reason::InvalidFormat,
                    format!("not JSON: {e}"),
                )),
            }
        }
        Some(value @ Value::Object(_)) => {
            container.insert("pod_template_patch".into(), value.clone());
        }
        _ => {}
    }
    if let Some(profile) = permission_profile(old, problems) {
        container.insert("permission_profile".into(), profile);
    }
    json!({ "container": container })
}

/// `name,target=ENV` → `{name, target_env}`.
fn secret(value: &Value, path: &FieldPath, problems: &mut Violations) -> Option<Value> {
    let Some(text) = value.as_str() else {
        problems.push(
            Violation::new(path.clone(), Reason::InvalidFormat, "a secret is a string")
                .allowed("<name>,target=<ENV_VAR>"),
        );
        return None;
    };
    let mut parts = text.split(',');
    let name = parts.next().unwrap_or_default().trim();
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    for part in parts {
        match part.split_once('=') {
            Some(("target", env)) => {
                out.insert("target_env".into(), json!(env.trim()));
            }
            _ => problems.push(
                Violation::new(
                    path.clone(),
                    Reason::InvalidFormat,
                    format!("unknown secret option {part:?}"),
                )
                .allowed("<name>,target=<ENV_VAR>"),
            ),
        }
    }
    Some(Value::Object(out))
}

/// `host:container[:ro]` → `{host_path, mount_path, read_only}`.
fn volume(value: &Value, path: &FieldPath, problems: &mut Violations) -> Option<Value> {
    let text = value.as_str().unwrap_or_default();
    let mut parts: Vec<&str> = text.split(':').collect();
    let read_only = parts.last() == Some(&"ro");
    if matches!(parts.last(), Some(&"ro") | Some(&"rw")) && parts.len() > 1 {
        parts.pop();
    }
    match parts.as_slice() {
        [host] if !host.is_empty() => {
            Some(json!({"host_path": host, "mount_path": host, "read_only": read_only}))
        }
        [host, container] if !host.is_empty() => {
            Some(json!({"host_path": host, "mount_path": container, "read_only": read_only}))
        }
        _ => {
            problems.push(
                Violation::new(
                    path.clone(),
                    Reason::InvalidFormat,
                    format!("cannot read volume {text:?}"),
                )
                .allowed("<host-path>[:<container-path>][:ro]"),
            );
            None
        }
    }
}

fn permission_profile(old: &Map<String, Value>, problems: &mut Violations) -> Option<Value> {
    let name = old
        .get("permission_profile_name_or_path")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if matches!(name, "none" | "network") {
        return Some(json!({"builtin": name}));
    }
    if let Some(profile) = old.get("permission_profile").and_then(Value::as_object) {
        let mut out = Map::new();
        copy(profile, "read", &mut out, "read");
        copy(profile, "write", &mut out, "write");
        copy(profile, "privileged", &mut out, "privileged");
        if let Some(outbound) = profile
            .get("network")
            .and_then(|n| n.get("outbound"))
            .and_then(Value::as_object)
        {
            let mut o = Map::new();
            for key in ["insecure_allow_all", "allow_host", "allow_port"] {
                copy(outbound, key, &mut o, key);
            }
            out.insert("network".into(), json!({"outbound": o}));
        }
        return Some(json!({"inline": out}));
    }
    if !name.is_empty() {
        problems.push(
            Violation::new(FieldPath::root().key("permission_profile_name_or_path"), Reason::FilePathNotAllowed, format!("{name:?} is a file path"))
                .allowed("use a built-in profile (none, network) or inline the profile as permission_profile"),
        );
    }
    None
}

/// ToolHive's `TokenValidatorConfig` has no JSON tags: its keys are Go field names.
fn oidc_config(old: &Value, path: &FieldPath, problems: &mut Violations) -> Value {
    let Some(old) = old.as_object() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (from, to) in [
        ("Issuer", "issuer"),
        ("Audience", "audience"),
        ("JWKSURL", "jwks_url"),
        ("IntrospectionURL", "introspection_url"),
        ("ClientID", "client_id"),
        ("Scopes", "scopes"),
        ("ResourceURL", "resource_url"),
        ("AllowPrivateIP", "allow_private_ip"),
        ("InsecureAllowHTTP", "insecure_allow_http"),
    ] {
        copy(old, from, &mut out, to);
    }
    if non_empty(old.get("ClientSecret")) {
        problems.push(secret_value_violation(
            path.key("ClientSecret"),
            "oidc_config.client_secret_env",
        ));
    }
    for key in ["CACertPath", "AuthTokenFile"] {
        if non_empty(old.get(key)) {
            problems.push(
                Violation::new(
                    path.key(key),
                    Reason::FilePathNotAllowed,
                    "file paths are not allowed in a RunConfig",
                )
                .allowed(if key == "CACertPath" {
                    "inline the PEM bundle as oidc.ca_bundle"
                } else {
                    "remove it; the proxy authenticates JWKS requests itself"
                }),
            );
        }
    }
    // Some ToolHive builds wrote snake_case keys here; accept those as they are.
    for key in [
        "issuer",
        "audience",
        "jwks_url",
        "introspection_url",
        "client_id",
        "scopes",
        "resource_url",
    ] {
        if !out.contains_key(key) {
            copy(old, key, &mut out, key);
        }
    }
    Value::Object(out)
}

/// `{version, type, cedar: {...}}` or `{version, type, http: {...}}`.
pub(crate) fn authz_config(old: &Value, path: &FieldPath, problems: &mut Violations) -> Value {
    let kind = old.get("type").and_then(Value::as_str).unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    match kind {
        "cedarv1" => {
            let cedar = old
                .get("cedar")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for key in [
                "policies",
                "entities_json",
                "group_claim_name",
                "role_claim_name",
                "group_entity_type",
            ] {
                copy(&cedar, key, &mut out, key);
            }
            out.entry("policies").or_insert_with(|| json!([]));
        }
        "httpv1" => {
            let http = old
                .get("http")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for key in ["url", "timeout", "insecure_skip_verify"] {
                copy(&http, key, &mut out, key);
            }
            if let Some(context) = old.get("context").and_then(Value::as_object) {
                copy(context, "include_args", &mut out, "include_args");
                copy(context, "include_operation", &mut out, "include_operation");
            }
            copy(
                old.as_object().unwrap_or(&Map::new()),
                "claim_mapping",
                &mut out,
                "claim_mapping",
            );
            out.entry("url").or_insert_with(|| json!(""));
        }
        _ => problems.push(
            Violation::new(
                path.key("type"),
                Reason::NotSupported,
                format!("unknown authorizer type {kind:?}"),
            )
            .allowed("cedarv1 or httpv1"),
        ),
    }
    Value::Object(out)
}

fn audit_config_of<'a>(
    path: &'a FieldPath,
    problems: &'a mut Violations,
) -> impl FnOnce(&Value) -> Option<Value> + 'a {
    move |old| {
        let old = old.as_object()?;
        if old.get("enabled").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        if non_empty(old.get("logFile")) {
            problems.push(
                Violation::new(
                    path.key("logFile"),
                    Reason::FilePathNotAllowed,
                    "file paths are not allowed in a RunConfig",
                )
                .allowed("remove it; audit events go to the proxy's standard output"),
            );
        }
        let mut out = Map::new();
        for (from, to) in [
            ("component", "component"),
            ("eventTypes", "event_types"),
            ("excludeEventTypes", "exclude_event_types"),
            ("includeRequestData", "include_request_data"),
            ("includeResponseData", "include_response_data"),
            ("maxDataSize", "max_data_size"),
        ] {
            copy(old, from, &mut out, to);
        }
        Some(Value::Object(out))
    }
}

fn telemetry_config(old: &Value, path: &FieldPath, problems: &mut Violations) -> Value {
    let Some(old) = old.as_object() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (from, to) in [
        ("endpoint", "endpoint"),
        ("serviceName", "service_name"),
        ("serviceVersion", "service_version"),
        ("tracingEnabled", "tracing_enabled"),
        ("metricsEnabled", "metrics_enabled"),
        ("samplingRate", "sampling_rate"),
        ("headers", "headers"),
        ("insecure", "insecure"),
        ("enablePrometheusMetricsPath", "prometheus_enabled"),
        ("customAttributes", "resource_attributes"),
        ("useLegacyAttributes", "use_legacy_attributes"),
    ] {
        copy(old, from, &mut out, to);
    }
    if non_empty(old.get("caCertPath")) {
        problems.push(Violation::new(path.key("caCertPath"), Reason::FilePathNotAllowed, "file paths are not allowed in a RunConfig").allowed("remove it; use a collector with a publicly trusted certificate or insecure: true inside the cluster"));
    }
    Value::Object(out)
}

fn secret_value_violation(path: FieldPath, instead: &str) -> Violation {
    Violation::new(
        path,
        Reason::Forbidden,
        "secret values are not stored in a RunConfig",
    )
    .allowed(format!(
        "name the environment variable that holds it in {instead}"
    ))
}

/// Copies `from[key]` to `to[new_key]` unless it is absent or empty.
/// ToolHive's `token_exchange_config`. Its secret is read from
/// `TOOLHIVE_TOKEN_EXCHANGE_CLIENT_SECRET` (ToolHive's proxy reads it there when the
/// file has none); one written into the file is refused, not carried over.
fn token_exchange(old: &Map<String, Value>, path: &FieldPath, problems: &mut Violations) -> Value {
    let mut out = Map::new();
    copy(old, "token_url", &mut out, "token_url");
    copy(old, "client_id", &mut out, "client_id");
    copy(old, "audience", &mut out, "audience");
    copy(old, "scopes", &mut out, "scopes");
    copy(old, "subject_token_type", &mut out, "subject_token_type");
    if non_empty(old.get("client_secret")) {
        problems.push(
            Violation::new(
                path.key("client_secret"),
                Reason::Forbidden,
                "a client secret written into the RunConfig is not carried over",
            )
            .allowed(format!(
                "remove it and give it in the environment variable {}",
                crate::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV
            )),
        );
    } else if non_empty(old.get("client_id")) {
        out.insert(
            "client_secret_env".into(),
            json!(crate::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV),
        );
    }
    if old.get("header_strategy").and_then(Value::as_str) == Some("custom") {
        copy(old, "external_token_header_name", &mut out, "header_name");
    }
    Value::Object(out)
}

/// One of ToolHive's `mutating_webhooks` / `validating_webhooks`. Its timeout is a
/// duration string or nanoseconds; its HMAC key and TLS files are paths (or a ToolHive
/// secrets-provider name), which a RunConfig does not carry: refused with advice to
/// name an environment variable, never dropped.
fn webhook(old: &Value, path: &FieldPath, problems: &mut Violations) -> Value {
    let Some(old) = old.as_object() else {
        problems.push(Violation::new(
            path.clone(),
            Reason::InvalidFormat,
            "a webhook is a JSON object",
        ));
        return Value::Null;
    };
    let mut out = Map::new();
    copy(old, "name", &mut out, "name");
    copy(old, "url", &mut out, "url");
    copy(old, "failure_policy", &mut out, "failure_policy");
    match old.get("timeout") {
        Some(Value::String(t)) if !t.is_empty() => {
            out.insert("timeout".into(), json!(t));
        }
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
            let nanos = n.as_u64().unwrap_or_default();
            out.insert("timeout".into(), json!(format!("{}ms", nanos / 1_000_000)));
        }
        _ => {}
    }
    if non_empty(old.get("hmac_secret_ref")) {
        problems.push(
            Violation::new(
                path.key("hmac_secret_ref"),
                Reason::FilePathNotAllowed,
                "the HMAC key is named by a file path or a ToolHive secrets-provider entry",
            )
            .allowed("name the environment variable that holds the key in hmac_secret_env"),
        );
    }
    if let Some(tls) = old.get("tls_config").and_then(Value::as_object) {
        let mut out_tls = Map::new();
        copy(
            tls,
            "insecure_skip_verify",
            &mut out_tls,
            "insecure_skip_verify",
        );
        for (key, instead) in [
            ("ca_bundle_path", "tls.ca_bundle_env"),
            ("client_cert_path", "tls.client_cert_env"),
            ("client_key_path", "tls.client_key_env"),
        ] {
            if non_empty(tls.get(key)) {
                problems.push(
                    Violation::new(
                        path.key("tls_config").key(key),
                        Reason::FilePathNotAllowed,
                        "file paths are not allowed in a RunConfig",
                    )
                    .allowed(format!(
                        "name the environment variable that holds the PEM in {instead}"
                    )),
                );
            }
        }
        if !out_tls.is_empty() {
            out.insert("tls".into(), Value::Object(out_tls));
        }
    }
    Value::Object(out)
}

fn copy(from: &Map<String, Value>, key: &str, to: &mut Map<String, Value>, new_key: &str) {
    if let Some(value) = from.get(key).filter(|v| non_empty(Some(v))) {
        to.insert(new_key.to_owned(), value.clone());
    }
}

/// ToolHive writes zero values for unset fields; treat them as absent.
fn non_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}
