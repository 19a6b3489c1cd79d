//! Test fixtures of the middleware: RunConfigs as a user writes them, validated as the
//! proxy validates them, and the requests the middleware see.

use std::sync::{Arc, Mutex};

use http::request::Parts;
use runconfig::ValidatedRunConfig;
use runconfig::validate::ProxyMode;
use serde_json::{Value, json};

use super::audit::Sink;
use super::chain::{BuildContext, Chain};
use crate::mcp::Call;

/// A RunConfig for a remote server with these `proxy` settings, validated.
pub fn validated(proxy: Value) -> ValidatedRunConfig {
    let mut settings = json!({"host": "127.0.0.1", "port": 8080});
    if let (Some(target), Value::Object(extra)) = (settings.as_object_mut(), proxy) {
        target.extend(extra);
    }
    let config = json!({
        "schema_version": "v1",
        "name": "github",
        "workload": {"remote": {"url": "http://127.0.0.1:9/mcp", "transport": "streamable-http"}},
        "proxy": settings,
    });
    let config = runconfig::from_value(config).expect("the RunConfig loads");
    runconfig::validate(&config).unwrap_or_else(|v| panic!("the RunConfig is invalid:\n{v}"))
}

/// The chain the proxy builds for these `proxy` settings; audit lines go to the returned
/// buffer.
pub fn chain(proxy: Value) -> (Chain, Arc<Mutex<Vec<u8>>>) {
    let config = validated(proxy);
    let audit = Arc::new(Mutex::new(Vec::new()));
    let chain = Chain::build(&BuildContext {
        config: &config,
        mode: ProxyMode::StreamableHttp,
        metrics: None,
        audit_sink: Some(audit.clone() as Sink),
    })
    .expect("the chain builds");
    (chain, audit)
}

/// Cedar authorization with these policies.
pub fn cedar(policies: &[&str]) -> Value {
    json!({"authz": {"type": "cedarv1", "policies": policies}})
}

/// OIDC with a fixed JWKS URL (never fetched by the tests that use it).
pub fn oidc() -> Value {
    json!({"oidc": {"issuer": "https://idp.example.com", "audience": "mcp",
                    "jwks_url": "https://idp.example.com/jwks"}})
}

/// Merges RunConfig proxy sections.
pub fn merge(sections: &[Value]) -> Value {
    let mut all = serde_json::Map::new();
    for section in sections {
        if let Value::Object(fields) = section {
            all.extend(fields.clone());
        }
    }
    Value::Object(all)
}

/// A call of `method` on `target`.
pub fn call(method: &str, target: Option<&str>) -> Call {
    Call {
        method: method.to_owned(),
        target: target.map(str::to_owned),
        arguments: None,
        progress_token: None,
    }
}

/// A POST to `/mcp` with these headers, as the chain sees it before the body.
pub fn request(headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::post("/mcp").header("host", "proxy.example");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("a request").into_parts().0
}

/// The audit lines written, one JSON value each.
pub fn audit_lines(buffer: &Mutex<Vec<u8>>) -> Vec<Value> {
    let written = buffer.lock().expect("lock").clone();
    String::from_utf8(written)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}
