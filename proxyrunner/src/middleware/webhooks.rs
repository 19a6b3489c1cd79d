//! HTTP request webhooks, ToolHive's protocol `v0.1.0` (an MCPWebhookConfig's
//! `mutating` and `validating` lists): each MCP request of a POST is sent, with the
//! caller's identity, to every webhook of the list in order.
//!
//! - The payload is `{version, uid, timestamp, principal, mcp_request, context}`; with an
//!   HMAC key it is signed: `X-ToolHive-Signature: sha256=<hex of HMAC-SHA256 over
//!   "<unix time>.<body>">` and `X-ToolHive-Timestamp: <unix time>`.
//! - A validating webhook answers `{allowed, code?, message?, reason?}`. Denied, the
//!   request is refused with a JSON-RPC error naming the webhook and its message. HTTP
//!   422 is a denial too, whatever the failure policy.
//! - A mutating webhook answers as well `patch_type: "json_patch"` and `patch`, an RFC
//!   6902 patch of `{"mcp_request": …}` (every path under `/mcp_request/`). The patched
//!   message must still be a JSON-RPC call with the same `id` (the client matches the
//!   answer by it); what follows in the chain (validating webhooks, authorization, the
//!   server) sees the patched request.
//! - A webhook that does not answer within its timeout, answers another status or
//!   nonsense has failed: `failurePolicy: fail` refuses the request, `ignore` lets it
//!   through unchanged. The detail is in the proxy's log, not in the answer.
//!
//! Unlike ToolHive, a batch is not refused: each of its requests is sent on its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use runconfig::middleware::webhooks::{
    FailurePolicy, ValidatedWebhook, ValidatedWebhooks, WebhookKind,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::Sha256;

use super::authn::Principal;
use super::chain::{BuildContext, Exchange, Middleware, Refusal};
use super::telemetry::Metrics;
use crate::mcp;
use crate::reply::code;
use crate::runner::BuildError;

/// The protocol version sent and expected.
pub const API_VERSION: &str = "v0.1.0";
/// Header carrying the payload's signature.
pub const SIGNATURE_HEADER: &str = "X-ToolHive-Signature";
/// Header carrying the Unix time the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-ToolHive-Timestamp";
/// The longest answer read from a webhook.
const MAX_ANSWER: usize = 1 << 20;

/// One list of webhooks (mutating or validating), a stage of the chain.
pub struct Webhooks {
    kind: WebhookKind,
    webhooks: Vec<Client>,
    server_name: String,
    transport: String,
    metrics: Option<Arc<Metrics>>,
}

/// One webhook, ready to call.
struct Client {
    config: ValidatedWebhook,
    hmac_key: Option<Vec<u8>>,
    http: reqwest::Client,
}

/// Why a webhook gave no usable answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// No answer in time, or no connection.
    #[error("{0}")]
    Unreachable(String),
    /// An HTTP status other than 200 (422 is a denial, see [`Answer`]).
    #[error("answered HTTP {0}")]
    Status(u16),
    /// An answer that is not the protocol's.
    #[error("{0}")]
    Invalid(String),
}

/// A webhook's answer (the fields of both kinds).
#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    allowed: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    patch_type: Option<String>,
    #[serde(default)]
    patch: Option<Value>,
}

/// What one webhook made of one message.
enum Outcome {
    /// Let it through, changed when `Some`.
    Pass(Option<Bytes>),
    /// Refuse it.
    Refuse(Refusal),
}

fn env_value(env: &str, field: &str) -> Result<String, BuildError> {
    std::env::var(env).map_err(|_| {
        BuildError::Setting(format!(
            "{field}: the environment variable {env} is not set (or not UTF-8)"
        ))
    })
}

impl Client {
    fn new(config: &ValidatedWebhook, at: &str) -> Result<Self, BuildError> {
        let hmac_key = match &config.hmac_secret_env {
            Some(env) => {
                let key = env_value(env, &format!("{at}.hmac_secret_env"))?;
                if key.is_empty() {
                    return Err(BuildError::Setting(format!(
                        "{at}.hmac_secret_env: the HMAC key in {env} is empty"
                    )));
                }
                Some(key.into_bytes())
            }
            None => None,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(config.insecure_skip_verify);
        if let Some(env) = &config.ca_bundle_env {
            let field = format!("{at}.tls.ca_bundle_env");
            let pem = env_value(env, &field)?;
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| BuildError::Setting(format!("{field}: {env}: {e}")))?;
            if certs.is_empty() {
                return Err(BuildError::Setting(format!(
                    "{field}: {env} holds no PEM certificate"
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert_env, key_env)) = &config.client_identity_env {
            let field = format!("{at}.tls.client_cert_env");
            let mut pem = env_value(cert_env, &field)?;
            pem.push('\n');
            pem.push_str(&env_value(key_env, &format!("{at}.tls.client_key_env"))?);
            let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
                BuildError::Setting(format!("{field}: {cert_env} and {key_env}: {e}"))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| BuildError::Setting(format!("{at}: {e}")))?;
        Ok(Self {
            config: config.clone(),
            hmac_key,
            http,
        })
    }

    /// Posts `payload` and reads the answer.
    async fn call(&self, payload: Vec<u8>) -> Result<Answer, CallError> {
        let mut request = self
            .http
            .post(self.config.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.hmac_key {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            request = request
                .header(SIGNATURE_HEADER, sign(key, now, &payload))
                .header(TIMESTAMP_HEADER, now.to_string());
        }
        let mut response = request.body(payload).send().await.map_err(|e| {
            CallError::Unreachable(if e.is_timeout() {
                format!("no answer within {:?}", self.config.timeout)
            } else {
                error_chain(&e)
            })
        })?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CallError::Unreachable(error_chain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(CallError::Invalid(format!(
                    "the answer is larger than {MAX_ANSWER} bytes"
                )));
            }
        }
        if status == 422 {
            // ToolHive's "always deny": a denial whatever the failure policy.
            return Ok(Answer {
                message: Some("the webhook answered HTTP 422".to_owned()),
                ..Answer::default()
            });
        }
        if status != 200 {
            return Err(CallError::Status(status));
        }
        serde_json::from_slice(&body).map_err(|e| {
            CallError::Invalid(format!("the answer is not the webhook protocol's: {e}"))
        })
    }
}

/// `sha256=<hex of HMAC-SHA256(key, "<timestamp>.<payload>")>`.
pub fn sign(key: &[u8], timestamp: u64, payload: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// ToolHive's principal: `sub`, with `name`, `email`, `groups` and every claim.
fn principal_info(principal: &Principal) -> Value {
    let mut info = serde_json::Map::new();
    info.insert("sub".into(), json!(principal.subject));
    for field in ["name", "email", "groups"] {
        if let Some(value) = principal.claims.get(field) {
            info.insert(field.into(), value.clone());
        }
    }
    if !principal.claims.is_empty() {
        info.insert("claims".into(), Value::Object(principal.claims.clone()));
    }
    Value::Object(info)
}

/// The messages of a body, each as its own bytes.
fn split(request: &Bytes, batch: bool) -> Option<Vec<Bytes>> {
    if !batch {
        return Some(vec![request.clone()]);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(request).ok()?;
    Some(
        items
            .into_iter()
            .map(|raw| Bytes::copy_from_slice(raw.get().as_bytes()))
            .collect(),
    )
}

/// The body of `messages`: the one message, or a batch.
fn join(messages: &[Bytes], batch: bool) -> Bytes {
    if !batch {
        return messages.first().cloned().unwrap_or_default();
    }
    let mut body = Vec::with_capacity(messages.iter().map(|m| m.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(message);
    }
    body.push(b']');
    Bytes::from(body)
}

impl Webhooks {
    /// The stage for one list of webhooks; secrets are read from their environment
    /// variables now (a missing one is a start-up error, not a refusal per request).
    pub fn new(
        config: &ValidatedWebhooks,
        server_name: &str,
        transport: &str,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, BuildError> {
        let list = format!("proxy.{}_webhooks", config.kind.as_str());
        let webhooks = config
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, webhook)| Client::new(webhook, &format!("{list}[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            kind: config.kind,
            webhooks,
            server_name: server_name.to_owned(),
            transport: transport.to_owned(),
            metrics,
        })
    }

    /// Runs one message through every webhook of the list.
    async fn message(
        &self,
        principal: &Value,
        peer: Option<SocketAddr>,
        id: Option<&str>,
        mut message: Bytes,
    ) -> Outcome {
        let mut changed = false;
        for webhook in &self.webhooks {
            match self.one(webhook, principal, peer, id, &message).await {
                Outcome::Pass(Some(patched)) => {
                    message = patched;
                    changed = true;
                }
                Outcome::Pass(None) => {}
                refused @ Outcome::Refuse(_) => return refused,
            }
        }
        Outcome::Pass(changed.then_some(message))
    }

    async fn one(
        &self,
        webhook: &Client,
        principal: &Value,
        peer: Option<SocketAddr>,
        id: Option<&str>,
        message: &Bytes,
    ) -> Outcome {
        let name = &webhook.config.name;
        let kind = self.kind.as_str();
        let raw: &RawValue = match serde_json::from_slice(message) {
            Ok(raw) => raw,
            Err(_) => return Outcome::Pass(None), // parsed before; cannot happen
        };
        let payload = json!({
            "version": API_VERSION,
            "uid": uuid::Uuid::new_v4().to_string(),
            "timestamp": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "principal": principal,
            "mcp_request": raw,
            "context": {
                "server_name": self.server_name,
                "source_ip": peer.map(|p| p.to_string()).unwrap_or_default(),
                "transport": self.transport,
            },
        });
        let payload = serde_json::to_vec(&payload).unwrap_or_default();
        let failed = |detail: String| {
            tracing::warn!(webhook = %name, kind, error = %detail, policy = ?webhook.config.failure_policy, "request webhook failed");
            self.count(name, "failed");
            match webhook.config.failure_policy {
                FailurePolicy::Ignore => Outcome::Pass(None),
                FailurePolicy::Fail => Outcome::Refuse(Refusal {
                    code: code::INTERNAL_ERROR,
                    message: format!(
                        "the {kind} webhook {name:?} failed and its failure policy refuses the request (the proxy's log says why)"
                    ),
                    retry_after: None,
                }),
            }
        };
        let answer = match webhook.call(payload).await {
            Ok(answer) => answer,
            Err(e) => return failed(e.to_string()),
        };
        if !answer.allowed {
            let why = answer
                .message
                .or(answer.reason)
                .unwrap_or_else(|| "no reason given".to_owned());
            tracing::info!(webhook = %name, kind, reason = %why, "request denied by webhook");
            self.count(name, "denied");
            return Outcome::Refuse(Refusal {
                code: code::FORBIDDEN,
                message: format!("denied by the {kind} webhook {name:?}: {why}"),
                retry_after: None,
            });
        }
        if self.kind == WebhookKind::Validating {
            self.count(name, "allowed");
            return Outcome::Pass(None);
        }
        let patch = match (answer.patch_type.as_deref(), answer.patch) {
            (None | Some(""), _) | (_, None) | (_, Some(Value::Null)) => {
                self.count(name, "allowed");
                return Outcome::Pass(None);
            }
            (Some("json_patch"), Some(patch)) => patch,
            (Some(other), _) => {
                return failed(format!("unsupported patch_type {other:?}; json_patch is"));
            }
        };
        match patched(raw, patch, id) {
            Ok(bytes) => {
                self.count(name, "mutated");
                Outcome::Pass(Some(bytes))
            }
            Err(detail) => failed(detail),
        }
    }

    fn count(&self, webhook: &str, outcome: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.webhook(self.kind.as_str(), webhook, outcome);
        }
    }
}

/// `message` with `patch` applied to `{"mcp_request": message}`: the patched message,
/// still a JSON-RPC call with the same id.
fn patched(message: &RawValue, patch: Value, id: Option<&str>) -> Result<Bytes, String> {
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| format!("the patch is not an RFC 6902 JSON Patch: {e}"))?;
    for op in &patch.0 {
        let (path, from) = match op {
            json_patch::PatchOperation::Add(o) => (&o.path, None),
            json_patch::PatchOperation::Remove(o) => (&o.path, None),
            json_patch::PatchOperation::Replace(o) => (&o.path, None),
            json_patch::PatchOperation::Test(o) => (&o.path, None),
            json_patch::PatchOperation::Move(o) => (&o.path, Some(&o.from)),
            json_patch::PatchOperation::Copy(o) => (&o.path, Some(&o.from)),
        };
        for pointer in std::iter::once(path).chain(from) {
            if !pointer.to_string().starts_with("/mcp_request/") {
                return Err(format!(
                    "the patch touches {pointer}, outside /mcp_request/"
                ));
            }
        }
    }
    let mut envelope = json!({ "mcp_request": serde_json::from_str::<Value>(message.get()).map_err(|e| e.to_string())? });
    json_patch::patch(&mut envelope, &patch)
        .map_err(|e| format!("the patch does not apply: {e}"))?;
    let bytes =
        Bytes::from(serde_json::to_vec(&envelope["mcp_request"]).map_err(|e| e.to_string())?);
    let body = mcp::parse(&bytes).map_err(|e| format!("the patched request is not MCP: {e}"))?;
    match body.messages.first() {
        Some(m) if m.call().is_some() && m.id.as_deref() == id && !body.batch => Ok(bytes),
        Some(m) if m.id.as_deref() != id => Err(
            "the patch changes the request's id, by which the client matches the answer".to_owned(),
        ),
        _ => Err("the patched request is not a JSON-RPC request".to_owned()),
    }
}

impl Middleware for Webhooks {
    type Config<'a> = &'a ValidatedWebhooks;

    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        let source = &context.config.source;
        let transport = match &source.workload {
            runconfig::config::Workload::Container(c) => c.transport.clone(),
            runconfig::config::Workload::Remote(r) => r.transport.clone(),
        };
        Self::new(config, &source.name, &transport, context.metrics.clone()).map(Some)
    }

    async fn amend(&self, exchange: &mut Exchange) {
        let Some(mut messages) = split(&exchange.request, exchange.body.batch) else {
            return;
        };
        let principal = principal_info(&exchange.principal);
        let mut changed = false;
        for (i, message) in messages.iter_mut().enumerate() {
            let Some(parsed) = exchange.body.messages.get(i) else {
                break;
            };
            if parsed.call().is_none() || exchange.refusals.get(i).is_some_and(Option::is_some) {
                continue;
            }
            let id = parsed.id.clone();
            match self
                .message(&principal, exchange.peer, id.as_deref(), message.clone())
                .await
            {
                Outcome::Pass(Some(patched)) => {
                    *message = patched;
                    changed = true;
                }
                Outcome::Pass(None) => {}
                Outcome::Refuse(refusal) => {
                    if let Some(slot) = exchange.refusals.get_mut(i) {
                        *slot = Some(refusal);
                    }
                }
            }
        }
        if changed {
            let request = join(&messages, exchange.body.batch);
            // Each patched message was parsed on its own; the body parses.
            if let Ok(body) = mcp::parse(&request) {
                exchange.body = body;
                exchange.request = request;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_toolhives() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed independently with
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac secret`.
        assert_eq!(
            sign(b"secret", 1_700_000_000, b"{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn a_patch_outside_mcp_request_or_changing_the_id_is_refused() {
        let message: Box<RawValue> = serde_json::from_str(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#,
        )
        .expect("JSON");
        let ok = patched(
            &message,
            json!([{"op":"replace","path":"/mcp_request/params/arguments/text","value":"HI"}]),
            Some("7"),
        )
        .expect("patched");
        assert!(String::from_utf8_lossy(&ok).contains(r#""text":"HI""#));
        let outside = patched(
            &message,
            json!([{"op":"add","path":"/principal","value":1}]),
            Some("7"),
        );
        assert!(
            outside
                .expect_err("outside")
                .contains("outside /mcp_request/")
        );
        let id = patched(
            &message,
            json!([{"op":"replace","path":"/mcp_request/id","value":8}]),
            Some("7"),
        );
        assert!(id.expect_err("id changed").contains("id"));
        let from = patched(
            &message,
            json!([{"op":"copy","from":"/principal","path":"/mcp_request/params/x"}]),
            Some("7"),
        );
        assert!(from.is_err());
    }

    #[test]
    fn a_batch_is_split_and_joined_back() {
        let body = Bytes::from_static(br#"[{"a":1}, {"b":2}]"#);
        let parts = split(&body, true).expect("a batch");
        assert_eq!(parts.len(), 2);
        assert_eq!(
            join(&parts, true),
            Bytes::from_static(br#"[{"a":1},{"b":2}]"#)
        );
    }
}
