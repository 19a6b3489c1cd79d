//! The token exchange stage against a token endpoint on loopback that records what it
//! is sent: RFC 8693's form, where the new token goes, when an exchange is reused, and
//! what the caller gets when the exchange fails. Keycloak, a real identity provider,
//! is in `e2e/tests/token_exchange.rs`.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the token endpoint received: each request's headers and form.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<(String, String)>)>>>;

/// A token endpoint answering `status` and `answer` (with `{n}` replaced by the number
/// of the exchange, so each issued token differs).
async fn token_endpoint(status: u16, answer: Value) -> (String, Received) {
    let received: Received = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/token", listener.local_addr().expect("addr"));
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, answer) = (seen.clone(), answer.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (seen, answer) = (seen.clone(), answer.clone());
                    async move {
                        let headers = request.headers().clone();
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let form: Vec<(String, String)> =
                            url::form_urlencoded::parse(&body).into_owned().collect();
                        let n = {
                            let mut seen = seen.lock().expect("lock");
                            seen.push((headers, form));
                            seen.len()
                        };
                        let text = answer.to_string().replace("{n}", &n.to_string());
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(text)))
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
    (url, received)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

struct Setup {
    proxy: support::Proxy,
    upstream: support::Upstream,
    token: String,
}

async fn start(exchange: Value) -> Setup {
    let issuer = support::Issuer::start().await;
    let upstream = support::upstream().await;
    let oidc = json!({"issuer": issuer.url, "audience": "thv-proxy", "jwks_url": issuer.jwks_url,
        "insecure_allow_http": true, "allow_private_ip": true});
    let proxy = support::proxy(
        support::runconfig(
            &upstream.url,
            json!({"oidc": oidc, "token_exchange": exchange,
                   "telemetry": {"prometheus_enabled": true}}),
        ),
        1 << 20,
    )
    .await;
    let token = issuer.token(&issuer.claims("alice", "thv-proxy"));
    Setup {
        proxy,
        upstream,
        token,
    }
}

async fn list(setup: &Setup) -> (StatusCode, Value) {
    let authorization = format!("Bearer {}", setup.token);
    let (status, _, body) = support::post(
        &setup.proxy,
        &support::call(1, "tools/list", json!({})),
        &[("authorization", authorization.as_str())],
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn the_form_is_rfc_8693s_and_the_token_goes_in_the_named_header() {
    let (url, received) = token_endpoint(
        200,
        json!({"access_token": "exchanged-{n}", "token_type": "Bearer",
               "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}),
    )
    .await;
    let setup = start(json!({"token_url": url, "client_id": "thv-proxy", "audience": "mcp-backend",
        "scopes": ["read", "write"], "subject_token_type": "jwt", "header_name": "X-Upstream-Token"}))
    .await;
    for _ in 0..2 {
        let (status, body) = list(&setup).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let received = received.lock().expect("lock").clone();
    // No expires_in in the answer: nothing is kept, each request is exchanged.
    assert_eq!(received.len(), 2);
    let (headers, form) = &received[0];
    assert_eq!(
        field(form, "grant_type"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(field(form, "subject_token"), Some(setup.token.as_str()));
    assert_eq!(
        field(form, "subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:jwt")
    );
    assert_eq!(
        field(form, "requested_token_type"),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(field(form, "audience"), Some("mcp-backend"));
    assert_eq!(field(form, "scope"), Some("read write"));
    // A public client names itself in the body and sends no credentials.
    assert_eq!(field(form, "client_id"), Some("thv-proxy"));
    assert!(headers.get("authorization").is_none());

    let seen = setup.upstream.seen.lock().expect("lock");
    for (i, headers) in seen.headers.iter().enumerate() {
        assert_eq!(
            headers
                .get("x-upstream-token")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer exchanged-{}", i + 1).as_str())
        );
        // The caller's own token is never passed on.
        assert!(headers.get("authorization").is_none(), "{headers:?}");
    }
}

#[tokio::test]
async fn an_exchanged_token_is_reused_until_it_nearly_expires() {
    let (url, received) = token_endpoint(
        200,
        json!({"access_token": "exchanged-{n}", "token_type": "Bearer", "expires_in": 300,
               "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}),
    )
    .await;
    let setup = start(json!({"token_url": url, "audience": "mcp-backend"})).await;
    for _ in 0..3 {
        let (status, body) = list(&setup).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(received.lock().expect("lock").len(), 1);
    let text = exchanges(&setup);
    assert!(
        text.contains("outcome=\"issued\",server=\"scripted\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("outcome=\"cached\",server=\"scripted\"} 2"),
        "{text}"
    );
    let seen = setup.upstream.seen.lock().expect("lock");
    assert!(seen.headers.iter().all(|h| {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer exchanged-1")
    }));
}

#[tokio::test]
async fn a_refused_token_is_the_callers_403_and_a_failed_exchange_a_502() {
    let (url, _) = token_endpoint(
        400,
        json!({"error": "invalid_grant", "error_description": "subject token expired"}),
    )
    .await;
    let setup = start(json!({"token_url": url, "audience": "mcp-backend"})).await;
    let (status, body) = list(&setup).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("invalid_grant") && text.contains("mcp-backend"),
        "{text}"
    );

    assert!(exchanges(&setup).contains("outcome=\"refused\",server=\"scripted\"} 1"));

    let (url, _) = token_endpoint(401, json!({"error": "invalid_client"})).await;
    let setup = start(json!({"token_url": url, "audience": "mcp-backend"})).await;
    let (status, body) = list(&setup).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(!body.to_string().contains("invalid_client"), "{body}");
    assert!(exchanges(&setup).contains("outcome=\"failed\",server=\"scripted\"} 1"));

    // Nothing listens there.
    let closed = format!("http://127.0.0.1:{}/token", support_closed_port());
    let setup = start(json!({"token_url": closed, "audience": "mcp-backend"})).await;
    let (status, body) = list(&setup).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        setup.upstream.seen.lock().expect("lock").headers.is_empty(),
        "a request reached the server without an exchanged token"
    );
}

/// The `toolhive_token_exchanges_total` lines of the proxy's metrics.
fn exchanges(setup: &Setup) -> String {
    let text = setup.proxy.metrics.as_ref().expect("metrics").render();
    text.lines()
        .filter(|line| line.starts_with("toolhive_token_exchanges_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback port nothing listens on (bound, then released).
fn support_closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind")
}
