//! `mcp-fixture webhook`: a request webhook server of ToolHive's protocol (`v0.1.0`) for
//! tests of the proxy's MCPWebhookConfig support, run in the cluster like any service.
//!
//! - `POST /validate`: denies a `tools/call` of a tool named by `--deny-tool`, allows
//!   anything else.
//! - `POST /mutate`: answers a JSON Patch that upper-cases `params.arguments.message` of
//!   a `tools/call` (the fixture's `echo` tool echoes it, so the change is visible).
//! - With `--hmac-key-env NAME`, a request whose `X-ToolHive-Signature` is not the
//!   HMAC-SHA256 of `<X-ToolHive-Timestamp>.<body>` under that key is answered 401 (and
//!   the proxy's failure policy decides).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Settings {
    deny: Vec<String>,
    key: Option<Vec<u8>>,
}

/// Serves the webhooks on `host:port`; prints `listening on http://HOST:PORT` once bound.
pub async fn serve(
    host: &str,
    port: u16,
    deny: Vec<String>,
    key_env: Option<String>,
) -> anyhow::Result<()> {
    let key = match key_env {
        Some(env) => Some(
            std::env::var(&env)
                .map_err(|_| anyhow::anyhow!("--hmac-key-env: {env} is not set"))?
                .into_bytes(),
        ),
        None => None,
    };
    let settings = Arc::new(Settings { deny, key });
    let app = Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(settings);
    let listener = TcpListener::bind((host, port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The request's payload, once its signature (when a key is set) is checked.
fn payload(
    settings: &Settings,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, (StatusCode, String)> {
    if let Some(key) = &settings.key {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (
            header("x-toolhive-signature"),
            header("x-toolhive-timestamp"),
        ) else {
            return Err((StatusCode::UNAUTHORIZED, "unsigned".to_owned()));
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "bad key".to_owned()));
        };
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if signature.strip_prefix("sha256=") != Some(expected.as_str()) {
            tracing::warn!("bad signature");
            return Err((StatusCode::UNAUTHORIZED, "bad signature".to_owned()));
        }
    }
    serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// Answers a webhook request with `decide`'s answer to its payload, once checked.
fn answer(
    settings: &Settings,
    headers: &HeaderMap,
    body: &Bytes,
    decide: fn(&Settings, &Value) -> Value,
) -> Response {
    match payload(settings, headers, body) {
        Ok(payload) => axum::Json(decide(settings, &payload)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn validate(
    State(settings): State<Arc<Settings>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&settings, &headers, &body, |settings, payload| {
        let request = &payload["mcp_request"];
        let tool = request["params"]["name"].as_str().unwrap_or_default();
        let denied = request["method"] == "tools/call" && settings.deny.iter().any(|d| d == tool);
        let mut answer = json!({"version": "v0.1.0", "uid": payload["uid"], "allowed": !denied});
        if denied {
            answer["code"] = json!(403);
            answer["reason"] = json!("ToolDenied");
            answer["message"] = json!(format!(
                "{tool} is not allowed for {}",
                payload["principal"]["sub"].as_str().unwrap_or("anyone")
            ));
        }
        answer
    })
}

async fn mutate(
    State(settings): State<Arc<Settings>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&settings, &headers, &body, |_, payload| {
        let request = &payload["mcp_request"];
        let mut answer = json!({"version": "v0.1.0", "uid": payload["uid"], "allowed": true});
        if request["method"] == "tools/call"
            && let Some(message) = request["params"]["arguments"]["message"].as_str()
        {
            answer["patch_type"] = json!("json_patch");
            answer["patch"] = json!([{"op": "replace", "path": "/mcp_request/params/arguments/message",
                "value": message.to_uppercase()}]);
        }
        answer
    })
}
