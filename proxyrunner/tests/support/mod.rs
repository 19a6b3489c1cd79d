//! In-process harness: a scripted MCP upstream, the proxy built from a RunConfig and
//! served on a free loopback port, and a JWT issuer with its JWKS.

#![allow(dead_code)] // each test file uses part of the harness

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the upstream saw.
#[derive(Default)]
pub struct Seen {
    /// Headers of every request.
    pub headers: Vec<HeaderMap>,
    /// Bodies of every POST.
    pub bodies: Vec<Value>,
}

/// A streamable-HTTP MCP upstream with tools `echo`, `add`, `secret`, `slow` (which
/// answers when `release` is notified) and `stream` (answers as SSE: a progress
/// notification at once, the result when `release` is notified).
pub struct Upstream {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    pub release: Arc<tokio::sync::Notify>,
}

pub async fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, r) = (seen.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (s, r) = (s.clone(), r.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, s.clone(), r.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { url, seen, release }
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    release: Arc<tokio::sync::Notify>,
) -> Result<Response<UnsyncBoxBody<Bytes, Infallible>>, Infallible> {
    let headers = req.headers().clone();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    {
        let mut seen = seen.lock().expect("lock");
        seen.headers.push(headers);
        seen.bodies.push(body.clone());
    }
    let Some(id) = body.get("id").cloned() else {
        return Ok(Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Full::new(Bytes::new()).boxed_unsync())
            .expect("response"));
    };
    let result = match body["method"].as_str().unwrap_or("") {
        "initialize" => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}})
        }
        "tools/list" => json!({"tools": [
            {"name": "echo", "description": "echo", "inputSchema": {"type": "object"}},
            {"name": "add", "description": "add", "inputSchema": {"type": "object"}},
            {"name": "secret", "description": "secret", "inputSchema": {"type": "object"}},
            {"name": "slow", "description": "slow", "inputSchema": {"type": "object"}},
        ]}),
        "tools/call" if body["params"]["name"] == "stream" => {
            let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": id, "progress": 1}});
            let result = json!({"jsonrpc": "2.0", "id": id,
                "result": {"content": [{"type": "text", "text": "streamed"}]}});
            let events = futures::stream::unfold(0, move |step| {
                let (progress, result, release) =
                    (progress.clone(), result.clone(), release.clone());
                async move {
                    let event = match step {
                        0 => progress,
                        1 => {
                            release.notified().await;
                            result
                        }
                        _ => return None,
                    };
                    let frame =
                        Frame::data(Bytes::from(format!("event: message\ndata: {event}\n\n")));
                    Some((Ok::<_, Infallible>(frame), step + 1))
                }
            });
            return Ok(Response::builder()
                .header("content-type", "text/event-stream")
                .body(StreamBody::new(events).boxed_unsync())
                .expect("response"));
        }
        "tools/call" => {
            let name = body["params"]["name"].as_str().unwrap_or("").to_owned();
            if name == "slow" {
                release.notified().await;
            }
            json!({"content": [{"type": "text", "text": format!("called {name}")}]})
        }
        _ => json!({}),
    };
    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("mcp-session-id", "upstream-session")
        .body(Full::new(Bytes::from(reply.to_string())).boxed_unsync())
        .expect("response"))
}

/// A running proxy.
pub struct Proxy {
    pub url: String,
    pub metrics: Option<Arc<proxyrunner::middleware::telemetry::Metrics>>,
    /// What the auditor wrote (instead of stdout), when audit is configured.
    pub audit: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    /// A proxy running elsewhere (a child process) at `url`.
    pub fn at(url: String) -> Self {
        // The test clients (reqwest) use the ring provider, as the proxy does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            url,
            metrics: None,
            audit: Arc::default(),
        }
    }

    /// The audit events written so far, one JSON value each.
    pub fn audit_events(&self) -> Vec<Value> {
        let written = self.audit.lock().expect("lock").clone();
        String::from_utf8(written)
            .expect("audit lines are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit line is one JSON object"))
            .collect()
    }
}

/// A RunConfig (as JSON) for `upstream_url` with `proxy` settings merged in.
pub fn runconfig(upstream_url: &str, proxy: Value) -> Value {
    let mut config = json!({
        "schema_version": "v1",
        "name": "scripted",
        "workload": {"remote": {"url": upstream_url, "transport": "streamable-http"}},
        "proxy": {"host": "127.0.0.1", "port": 8080},
    });
    if let (Some(target), Value::Object(extra)) = (config["proxy"].as_object_mut(), proxy) {
        target.extend(extra);
    }
    config
}

/// Builds the proxy from a RunConfig exactly as `thv-proxyrunner run` does and serves it.
pub async fn proxy(config: Value, max_body_bytes: usize) -> Proxy {
    // The test clients (reqwest) use the ring provider, as the proxy does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = runconfig::from_value(config).expect("RunConfig loads");
    let validated =
        runconfig::validate(&config).unwrap_or_else(|v| panic!("RunConfig invalid:\n{v}"));
    let audit = Arc::new(Mutex::new(Vec::new()));
    let options = proxyrunner::runner::Options {
        command: Vec::new(),
        host_header: None,
        max_body_bytes,
        allowed_hosts: Vec::new(),
        listen: None,
        metrics_listen: "127.0.0.1:0".parse().expect("addr"),
        audit_sink: Some(audit.clone() as proxyrunner::middleware::audit::Sink),
    };
    let built = Arc::new(proxyrunner::runner::build(&validated, &options).expect("proxy builds"));
    let metrics = built.metrics.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(proxyrunner::runner::serve(built, listener));
    Proxy {
        url,
        metrics,
        audit,
    }
}

/// Starts `command` (the `thv-proxyrunner` binary, or a shell running it) with stdout
/// piped and returns it with the URL of its `listening on` line.
pub async fn spawn_listening(
    mut command: tokio::process::Command,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the proxy starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("listening within 20 s")
        .expect("stdout")
        .expect("a line");
    let url = line
        .strip_prefix("listening on ")
        .expect("the listening line")
        .to_owned();
    (child, url)
}

/// A JSON-RPC request body.
pub fn call(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// POSTs to the proxy's `/mcp`; returns status, headers and the body as JSON (or text).
pub async fn post(
    proxy: &Proxy,
    body: &Value,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    post_bytes(proxy, body.to_string().into_bytes(), headers).await
}

pub async fn post_bytes(
    proxy: &Proxy,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{}/mcp", proxy.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .expect("proxy answered within 20 s")
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

/// An ES256 issuer: its JWKS is served over HTTP on loopback.
pub struct Issuer {
    pub url: String,
    pub jwks_url: String,
    key: jsonwebtoken::EncodingKey,
}

impl Issuer {
    pub async fn start() -> Self {
        let (key, jwk) = es256_key("k1");
        let jwks = json!({"keys": [jwk]}).to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind issuer");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let jwks = jwks.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<Incoming>| {
                        let jwks = jwks.clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(jwks)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            jwks_url: format!("{base}/jwks.json"),
            url: base,
            key,
        }
    }

    /// A token with these claims, signed by this issuer's key.
    pub fn token(&self, claims: &Value) -> String {
        sign(&self.key, claims)
    }

    /// Standard claims for `sub`, valid for an hour.
    pub fn claims(&self, sub: &str, audience: &str) -> Value {
        let now = now();
        json!({"iss": self.url, "aud": audience, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 3600})
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh P-256 key and its public JWK.
pub fn es256_key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let point = pair.public_key_raw();
    let (x, y) = point[1..].split_at(32);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
    (key, jwk)
}

pub fn sign(key: &jsonwebtoken::EncodingKey, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}
