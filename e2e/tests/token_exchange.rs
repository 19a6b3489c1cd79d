//! Token exchange (RFC 8693) through `thv-proxyrunner` against a real identity provider:
//! Keycloak on loopback (`e2e::keycloak`). A client gets a token from Keycloak whose
//! audience is the proxy; the proxy validates it, exchanges it at Keycloak for one whose
//! audience is the MCP server, and the server behind the proxy verifies that token's
//! signature against Keycloak's keys, its issuer and its audience before it answers.
//! No cluster needed.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use e2e::keycloak::{Keycloak, request};
use e2e::proxy::{Proxy, remote_config};

const SECRET_ENV: &str = "TOOLHIVE_TOKEN_EXCHANGE_CLIENT_SECRET";

/// What the server behind the proxy accepted: each request's token and its claims.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// An MCP server (streamable HTTP, JSON answers) that answers only requests bearing a
/// token Keycloak signed for audience `mcp-backend`; 401 otherwise.
async fn audience_checking_server(jwks: JwkSet, issuer: String) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let state = (Arc::new(jwks), Arc::new(issuer), seen.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let (jwks, issuer, seen) = state.clone();
                    async move { answer(request, &jwks, &issuer, &seen).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

/// The claims of `token` if Keycloak signed it for `mcp-backend`.
fn verified(token: &str, jwks: &JwkSet, issuer: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["mcp-backend"]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn answer(
    request: hyper::Request<Incoming>,
    jwks: &JwkSet,
    issuer: &str,
    seen: &Mutex<Vec<(String, Value)>>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::http::Error> {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let claims = match token.as_deref().map(|t| verified(t, jwks, issuer)) {
        Some(Ok(claims)) => claims,
        Some(Err(why)) => {
            return hyper::Response::builder()
                .status(401)
                .body(Full::new(Bytes::from(why)));
        }
        None => {
            return hyper::Response::builder()
                .status(401)
                .body(Full::new(Bytes::from_static(b"no bearer token")));
        }
    };
    if let (Some(token), Ok(mut seen)) = (token, seen.lock()) {
        seen.push((token, claims.clone()));
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(id) = message.get("id").cloned() else {
        return hyper::Response::builder()
            .status(202)
            .body(Full::new(Bytes::new()));
    };
    let result = match message["method"].as_str() {
        Some("initialize") => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "audience-checker", "version": "1"}})
        }
        Some("tools/list") => {
            json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]})
        }
        _ => json!({"content": [{"type": "text", "text": claims["sub"]}]}),
    };
    hyper::Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        )))
}

/// A proxy in front of `server` that authenticates callers with Keycloak (audience
/// `thv-proxy`) and exchanges their tokens for `audience` as client `thv-proxy`.
fn proxy(keycloak: &Keycloak, server: &str, audience: &str, secret: &str) -> Proxy {
    let mut config = remote_config("exchange", server, "streamable-http");
    config["proxy"]["oidc"] = json!({
        "issuer": keycloak.issuer, "audience": "thv-proxy", "jwks_url": keycloak.jwks_url(),
        "insecure_allow_http": true, "allow_private_ip": true,
    });
    config["proxy"]["token_exchange"] = json!({
        "token_url": keycloak.token_url(), "client_id": "thv-proxy",
        "client_secret_env": SECRET_ENV, "audience": audience,
    });
    Proxy::start(&config, &[], &[(SECRET_ENV, secret)])
}

/// POSTs one JSON-RPC request with `token`: status and body.
async fn call(proxy: &Proxy, token: &str, id: u64, method: &str) -> (u16, String) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}}).to_string();
    let authorization = format!("Bearer {token}");
    request(
        "POST",
        &proxy.at("/mcp"),
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("authorization", &authorization),
        ],
        body,
    )
    .await
    .expect("the proxy answers")
}

/// `sub` of a token, read without verification (the test's own token).
fn subject(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gets_a_token_of_its_own_audience_exchanged_at_keycloak() {
    let keycloak = Keycloak::start().await.expect("Keycloak starts");
    let jwks = keycloak.jwks().await.expect("Keycloak's keys");
    let (server, seen) = audience_checking_server(jwks, keycloak.issuer.clone()).await;
    let caller = keycloak
        .token("mcp-client", "mcp-client-secret")
        .await
        .expect("a token for the MCP client");

    // Through the proxy: every request reaches the server with an exchanged token.
    let exchanging = proxy(&keycloak, &server, "mcp-backend", "proxy-secret");
    for (id, method) in [(1, "initialize"), (2, "tools/list"), (3, "tools/call")] {
        let (status, body) = call(&exchanging, &caller, id, method).await;
        assert_eq!(status, 200, "{method}: {body}");
    }
    let accepted = seen.lock().expect("lock").clone();
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    for (token, claims) in &accepted {
        assert_ne!(token, &caller, "the caller's own token reached the server");
        assert_eq!(claims["aud"], json!("mcp-backend"), "{claims}");
        assert_eq!(claims["azp"], json!("thv-proxy"), "{claims}");
        assert_eq!(claims["sub"].as_str(), Some(subject(&caller).as_str()));
    }
    // One exchange per caller token: Keycloak issues a new token (a new `jti`) on each
    // exchange, and the server saw one.
    assert!(
        accepted.iter().all(|(token, _)| token == &accepted[0].0),
        "the proxy exchanged the same caller token more than once"
    );

    // A token Keycloak issued to another client (its audience is not the proxy) is
    // refused by the proxy's authentication, before any exchange.
    let stranger = keycloak
        .token("stranger", "stranger-secret")
        .await
        .expect("a stranger's token");
    let (status, _) = call(&exchanging, &stranger, 4, "tools/list").await;
    assert_eq!(status, 401);

    // An audience the proxy's client may not ask for: Keycloak refuses the exchange,
    // and the caller is told so (403, naming the audience), not sent to log in again.
    let other = proxy(&keycloak, &server, "other-backend", "proxy-secret");
    let (status, body) = call(&other, &caller, 5, "tools/list").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("other-backend"), "{body}");

    // The proxy's own client refused (a wrong secret) is the platform's failure: 502,
    // with the detail in the proxy's log rather than in the answer.
    let misconfigured = proxy(&keycloak, &server, "mcp-backend", "not-the-secret");
    let (status, body) = call(&misconfigured, &caller, 6, "tools/list").await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("unauthorized_client"), "{body}");
    assert_eq!(
        seen.lock().expect("lock").len(),
        3,
        "refused requests reached the server"
    );
}
