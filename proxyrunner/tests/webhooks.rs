//! Request webhooks (an MCPWebhookConfig) against webhook servers on loopback that record
//! what they are sent: ToolHive's payload and HMAC signature, denials, JSON Patch
//! mutations seen by the next webhook and the server, the failure policies, HTTP 422,
//! timeouts, and a webhook over mutual TLS behind a private CA.
//!
//! The proxy runs as `thv-proxyrunner run` (a child process), so that the secrets reach
//! it as they do in a pod: in environment variables.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

/// What a webhook received: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// What a webhook answers: status, body, and a delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Value,
    delay: Duration,
}

fn allow() -> Answer {
    answer(json!({"version": "v0.1.0", "allowed": true}))
}

fn answer(body: Value) -> Answer {
    Answer {
        status: 200,
        body,
        delay: Duration::ZERO,
    }
}

async fn handle(
    request: Request<Incoming>,
    seen: Received,
    answer: Answer,
) -> Response<Full<Bytes>> {
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().expect("lock").push((headers, body));
    tokio::time::sleep(answer.delay).await;
    Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.body.to_string())))
        .expect("response")
}

/// A webhook over http on loopback.
async fn webhook(answer: Answer) -> (String, Received) {
    let received: Received = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, answer) = (seen.clone(), answer.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let (seen, answer) = (seen.clone(), answer.clone());
                    async move { Ok::<_, Infallible>(handle(request, seen, answer).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

/// An insecure (http) webhook entry of a RunConfig list.
fn entry(name: &str, url: &str, extra: Value) -> Value {
    let mut entry = json!({"name": name, "url": url, "tls": {"insecure_skip_verify": true}});
    if let (Some(entry), Value::Object(extra)) = (entry.as_object_mut(), extra) {
        entry.extend(extra);
    }
    entry
}

/// The proxy as a child process, with `env` in its environment.
struct Running {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    proxy: support::Proxy,
}

async fn start(upstream: &support::Upstream, proxy: Value, env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runconfig.json");
    let config = support::runconfig(&upstream.url, proxy);
    std::fs::write(&path, config.to_string()).expect("write RunConfig");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .envs(env.iter().copied());
    let (child, url) = support::spawn_listening(command).await;
    Running {
        _child: child,
        _dir: dir,
        proxy: support::Proxy::at(url),
    }
}

async fn call_echo(running: &Running, text: &str) -> (StatusCode, Value) {
    let (status, _, body) = support::post(
        &running.proxy,
        &support::call(
            7,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": text}}),
        ),
        &[],
    )
    .await;
    (status, body)
}

fn tool_calls(upstream: &support::Upstream) -> Vec<Value> {
    upstream
        .seen
        .lock()
        .expect("lock")
        .bodies
        .iter()
        .filter(|b| b["method"] == "tools/call")
        .cloned()
        .collect()
}

fn payloads(received: &Received) -> Vec<Value> {
    received
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).expect("the payload is JSON"))
        .collect()
}

#[tokio::test]
async fn the_payload_is_toolhives_signed_and_a_denial_names_the_webhook() {
    let upstream = support::upstream().await;
    let (allowing, allowed_seen) = webhook(allow()).await;
    let (denying, _) = webhook(answer(json!({"version": "v0.1.0", "allowed": false,
        "message": "echo is closed on Sundays", "reason": "Closed"})))
    .await;
    let config = json!({"validating_webhooks": [
        entry("audit-log", &allowing, json!({"hmac_secret_env": "HOOK_KEY"})),
    ]});
    let running = start(&upstream, config, &[("HOOK_KEY", "s3cret")]).await;
    let (status, body) = call_echo(&running, "hi").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"], "called echo",
        "{body}"
    );

    let received = allowed_seen.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "one tools/call, one webhook call");
    let (headers, raw) = &received[0];
    let payload: Value = serde_json::from_slice(raw).expect("JSON");
    assert_eq!(payload["version"], "v0.1.0");
    assert_eq!(payload["mcp_request"]["method"], "tools/call");
    assert_eq!(payload["mcp_request"]["params"]["arguments"]["text"], "hi");
    assert_eq!(payload["principal"]["sub"], "anonymous");
    assert_eq!(payload["context"]["server_name"], "scripted");
    assert_eq!(payload["context"]["transport"], "streamable-http");
    assert!(
        payload["context"]["source_ip"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:")
    );
    assert_eq!(payload["uid"].as_str().map(str::len), Some(36), "a UUID");
    // The signature a webhook checks: HMAC-SHA256 over "<timestamp>.<body>".
    let timestamp = headers["x-toolhive-timestamp"].to_str().expect("ASCII");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(raw);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-toolhive-signature"].to_str().expect("ASCII"),
        format!("sha256={expected}")
    );

    let config = json!({"validating_webhooks": [
        entry("allow", &allowing, json!({})),
        entry("opening-hours", &denying, json!({})),
    ]});
    let running = start(&upstream, config, &[]).await;
    let before = tool_calls(&upstream).len();
    let (status, body) = call_echo(&running, "hi").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "refusals are JSON-RPC errors: {body}"
    );
    assert_eq!(body["error"]["code"], -32001, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("opening-hours") && message.contains("echo is closed on Sundays"),
        "{message}"
    );
    assert_eq!(
        tool_calls(&upstream).len(),
        before,
        "the server never saw it"
    );
}

#[tokio::test]
async fn a_mutation_is_what_the_next_webhook_and_the_server_see() {
    let upstream = support::upstream().await;
    let (mutating, _) = webhook(answer(json!({"version": "v0.1.0", "allowed": true,
        "patch_type": "json_patch",
        "patch": [{"op": "replace", "path": "/mcp_request/params/arguments/text", "value": "[redacted]"},
                  {"op": "add", "path": "/mcp_request/params/arguments/tenant", "value": "blue"}]})))
    .await;
    let (validating, seen) = webhook(allow()).await;
    let config = json!({
        "mutating_webhooks": [entry("redact", &mutating, json!({}))],
        "validating_webhooks": [entry("check", &validating, json!({}))],
    });
    let running = start(&upstream, config, &[]).await;
    let (status, body) = call_echo(&running, "my password is hunter2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], 7, "the answer keeps the client's id: {body}");
    let arguments = json!({"text": "[redacted]", "tenant": "blue"});
    assert_eq!(
        payloads(&seen)[0]["mcp_request"]["params"]["arguments"],
        arguments
    );
    assert_eq!(tool_calls(&upstream)[0]["params"]["arguments"], arguments);

    // A patch outside the request is the webhook failing: refused (failurePolicy fail).
    let (escaping, _) = webhook(answer(json!({"allowed": true, "patch_type": "json_patch",
        "patch": [{"op": "add", "path": "/principal/sub", "value": "root"}]})))
    .await;
    let config = json!({"mutating_webhooks": [entry("escape", &escaping, json!({}))]});
    let running = start(&upstream, config, &[]).await;
    let (_, body) = call_echo(&running, "hi").await;
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"escape\" failed"),
        "{body}"
    );
}

#[tokio::test]
async fn the_failure_policy_decides_for_a_webhook_that_fails_but_422_always_denies() {
    let upstream = support::upstream().await;
    // Nothing listens on a port just freed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    let (slow, _) = webhook(Answer {
        delay: Duration::from_secs(5),
        ..allow()
    })
    .await;
    let (error, _) = webhook(Answer {
        status: 500,
        ..allow()
    })
    .await;
    let (unprocessable, _) = webhook(Answer {
        status: 422,
        ..allow()
    })
    .await;

    for (url, policy, refused) in [
        (&closed, "fail", true),
        (&closed, "ignore", false),
        (&error, "fail", true),
        (&error, "ignore", false),
        (&slow, "fail", true),
        (&slow, "ignore", false),
        (&unprocessable, "ignore", true),
    ] {
        let config = json!({"validating_webhooks": [
            entry("policy", url, json!({"failure_policy": policy, "timeout": "1s"})),
        ]});
        let running = start(&upstream, config, &[]).await;
        let started = std::time::Instant::now();
        let (status, body) = call_echo(&running, "hi").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body.get("error").is_some(),
            refused,
            "{url} with failurePolicy {policy}: {body}"
        );
        // Not a timing assertion on the proxy's speed: the 5 s webhook must not be
        // waited for past its 1 s timeout.
        assert!(started.elapsed() < Duration::from_secs(4), "{url} {policy}");
    }
}

#[tokio::test]
async fn a_webhook_over_mutual_tls_behind_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let ca_pem = ca.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let client_key = KeyPair::generate().expect("key");
    let client = CertificateParams::new(vec!["thv-proxy".to_owned()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client certificate");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).expect("CA root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.der().to_vec())],
            PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        )
        .expect("serving certificate");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}/hook", listener.local_addr().expect("addr"));
    let received: Received = Arc::default();
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // Without the client's certificate the handshake fails here.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(handle(request, seen, allow()).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let upstream = support::upstream().await;
    let tls = json!({"ca_bundle_env": "HOOK_CA", "client_cert_env": "HOOK_CERT", "client_key_env": "HOOK_KEY"});
    let config = json!({"validating_webhooks": [{"name": "mtls", "url": url, "tls": tls}]});
    let (cert_pem, key_pem) = (client.pem(), client_key.serialize_pem());
    let env = [
        ("HOOK_CA", ca_pem.as_str()),
        ("HOOK_CERT", cert_pem.as_str()),
        ("HOOK_KEY", key_pem.as_str()),
    ];
    let running = start(&upstream, config.clone(), &env).await;
    let (_, body) = call_echo(&running, "hi").await;
    assert_eq!(
        body["result"]["content"][0]["text"], "called echo",
        "{body}"
    );
    assert_eq!(received.lock().expect("lock").len(), 1);

    // Without the client certificate the webhook cannot be reached: refused.
    let config = json!({"validating_webhooks": [{"name": "mtls", "url": url,
        "tls": {"ca_bundle_env": "HOOK_CA"}}]});
    let running = start(&upstream, config, &env[..1]).await;
    let (_, body) = call_echo(&running, "hi").await;
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert_eq!(received.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_missing_secret_stops_the_proxy_at_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runconfig.json");
    let config = support::runconfig(
        "http://127.0.0.1:9/mcp",
        json!({"validating_webhooks": [entry("signed", "http://127.0.0.1:9/hook",
            json!({"hmac_secret_env": "THV_TEST_NOT_SET_ANYWHERE"}))]}),
    );
    std::fs::write(&path, config.to_string()).expect("write RunConfig");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env_remove("THV_TEST_NOT_SET_ANYWHERE")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("proxy.validating_webhooks[0].hmac_secret_env")
            && stderr.contains("THV_TEST_NOT_SET_ANYWHERE"),
        "{stderr}"
    );
}
