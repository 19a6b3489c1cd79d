//! The proxy's security guarantees, against a scripted upstream in process: tokens,
//! Cedar, Host/Origin, body limit, malformed JSON-RPC, tool filtering, isolation of slow
//! requests, and a bad RunConfig refused before any port is bound.

mod support;

use serde_json::{Value, json};
use support::{Issuer, call, post, post_bytes, proxy, runconfig, upstream};

const AUDIENCE: &str = "https://mcp.example.com";

async fn oidc_proxy(issuer: &Issuer, upstream_url: &str) -> support::Proxy {
    let config = runconfig(
        upstream_url,
        json!({"oidc": {
            "issuer": issuer.url, "audience": AUDIENCE, "jwks_url": issuer.jwks_url,
            "insecure_allow_http": true, "allow_private_ip": true, "scopes": ["openid"],
        }}),
    );
    proxy(config, 1 << 20).await
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_token_passes_and_is_not_forwarded_to_the_server() {
    let up = upstream().await;
    let issuer = Issuer::start().await;
    let p = oidc_proxy(&issuer, &up.url).await;
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    let auth = format!("Bearer {token}");
    let (status, _, body) = post(
        &p,
        &call(1, "tools/list", json!({})),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["tools"].as_array().map(Vec::len), Some(4));
    let seen = up.seen.lock().expect("lock");
    assert!(
        seen.headers
            .iter()
            .all(|h| !h.contains_key("authorization")),
        "the token reached the MCP server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_forged_expired_and_wrong_audience_tokens_get_401_with_resource_metadata() {
    let up = upstream().await;
    let issuer = Issuer::start().await;
    let p = oidc_proxy(&issuer, &up.url).await;
    let (other_key, _) = support::es256_key("k1");
    let now = support::now();
    let cases = [
        ("missing", None),
        ("forged", Some(support::sign(&other_key, &issuer.claims("mallory", AUDIENCE)))),
        ("expired", Some(issuer.token(&json!({"iss": issuer.url, "aud": AUDIENCE, "sub": "alice", "exp": now - 3600})))),
        ("wrong audience", Some(issuer.token(&issuer.claims("alice", "https://other.example.com")))),
        ("wrong issuer", Some(issuer.token(&json!({"iss": "https://evil.example", "aud": AUDIENCE, "sub": "alice", "exp": now + 600})))),
        ("not yet valid", Some(issuer.token(&json!({"iss": issuer.url, "aud": AUDIENCE, "sub": "alice", "nbf": now + 3600, "exp": now + 7200})))),
        ("garbage", Some("not-a-token".to_owned())),
    ];
    for (case, token) in cases {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, headers, body) = post(&p, &call(1, "tools/list", json!({})), &headers).await;
        assert_eq!(status, 401, "{case}: {body}");
        let challenge = headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
                p.url
            )),
            "{case}: {challenge}"
        );
    }
    assert!(
        up.seen.lock().expect("lock").bodies.is_empty(),
        "a refused request reached the server"
    );
    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-protected-resource", p.url))
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(metadata["resource"], format!("{}/mcp", p.url));
    assert_eq!(metadata["authorization_servers"][0], issuer.url);
    assert_eq!(metadata["scopes_supported"][0], "openid");
}

#[tokio::test(flavor = "multi_thread")]
async fn cedar_deny_refuses_the_call_and_filters_the_list() {
    let up = upstream().await;
    let config = runconfig(
        &up.url,
        json!({"authz": {"type": "cedarv1", "policies": [
            "permit(principal, action == Action::\"call_tool\", resource == Tool::\"echo\");",
        ]}}),
    );
    let p = proxy(config, 1 << 20).await;
    let (status, _, body) = post(
        &p,
        &call(1, "tools/call", json!({"name": "secret", "arguments": {}})),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(body["id"], 1);
    let (_, _, body) = post(
        &p,
        &call(2, "tools/call", json!({"name": "echo", "arguments": {}})),
        &[],
    )
    .await;
    assert_eq!(
        body["result"]["content"][0]["text"], "called echo",
        "{body}"
    );
    let (_, _, body) = post(&p, &call(3, "tools/list", json!({})), &[]).await;
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["echo"], "{body}");
    let calls: Vec<String> = up
        .seen
        .lock()
        .expect("lock")
        .bodies
        .iter()
        .filter_map(|b| b["params"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(calls, ["echo"], "a denied call reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_host_or_origin_gets_403() {
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1 << 20).await;
    let body = call(1, "ping", json!({}));
    let (status, _, _) = post(&p, &body, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post(&p, &body, &[("host", "evil.example")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post(&p, &body, &[("origin", "http://localhost:6274")]).await;
    assert_eq!(
        status, 200,
        "a loopback origin is allowed on a loopback proxy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_gets_413() {
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1024).await;
    let big = call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x".repeat(4096)}}),
    );
    let (status, _, _) = post(&p, &big, &[]).await;
    assert_eq!(status, 413);
    let (status, _, _) = post(&p, &call(2, "ping", json!({})), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_rpc_gets_a_json_rpc_error() {
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1 << 20).await;
    let (status, _, body) =
        post_bytes(&p, b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec(), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700, "{body}");
    assert_eq!(body["id"], Value::Null);
    let (status, _, body) = post(&p, &json!({"id": 1, "method": "ping"}), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(up.seen.lock().expect("lock").bodies.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_tools_are_hidden_and_renamed_tools_map_back() {
    let up = upstream().await;
    let config = runconfig(
        &up.url,
        json!({"tools": {"filter": ["echo", "add"], "overrides": {"add": {"name": "sum", "description": "Adds numbers"}}}}),
    );
    let p = proxy(config, 1 << 20).await;
    let (_, _, body) = post(&p, &call(1, "tools/list", json!({})), &[]).await;
    assert_eq!(
        body["result"]["tools"],
        json!([
            {"name": "echo", "description": "echo", "inputSchema": {"type": "object"}},
            {"name": "sum", "description": "Adds numbers", "inputSchema": {"type": "object"}},
        ])
    );
    let (_, _, body) = post(
        &p,
        &call(2, "tools/call", json!({"name": "sum", "arguments": {}})),
        &[],
    )
    .await;
    assert_eq!(body["result"]["content"][0]["text"], "called add", "{body}");
    for hidden in ["secret", "add"] {
        let (_, _, body) = post(
            &p,
            &call(3, "tools/call", json!({"name": hidden, "arguments": {}})),
            &[],
        )
        .await;
        assert_eq!(body["error"]["code"], -32602, "{hidden}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_request_does_not_delay_other_clients() {
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1 << 20).await;
    let slow = {
        let url = p.url.clone();
        tokio::spawn(async move {
            let p = support::Proxy::at(url);
            post(
                &p,
                &call(1, "tools/call", json!({"name": "slow", "arguments": {}})),
                &[],
            )
            .await
        })
    };
    // Other clients are answered while the slow call is still waiting for its server.
    for id in 2..12 {
        let (status, _, body) = post(
            &p,
            &call(id, "tools/call", json!({"name": "echo", "arguments": {}})),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        !slow.is_finished(),
        "the slow call ended before it was released"
    );
    up.release.notify_one();
    let (status, _, body) = slow.await.expect("slow call");
    assert_eq!(status, 200);
    assert_eq!(body["result"]["content"][0]["text"], "called slow");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_under_toolhive_names() {
    let up = upstream().await;
    let p = proxy(
        runconfig(&up.url, json!({"telemetry": {"prometheus_enabled": true}})),
        1 << 20,
    )
    .await;
    post(
        &p,
        &call(1, "tools/call", json!({"name": "echo", "arguments": {}})),
        &[],
    )
    .await;
    let text = p.metrics.as_ref().expect("metrics enabled").render();
    assert!(
        text.contains("toolhive_mcp_requests_total{mcp_method=\"tools/call\""),
        "{text}"
    );
    assert!(
        text.contains(
            "toolhive_mcp_tool_calls_total{server=\"scripted\",status=\"success\",tool=\"echo\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("toolhive_mcp_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[test]
fn an_invalid_runconfig_exits_with_field_paths_before_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runconfig.json");
    let config = json!({
        "schema_version": "v1", "name": "bad",
        "workload": {"container": {"image": "ghcr.io/x/y:1", "transport": "carrier-pigeon"}},
        "proxy": {"host": "127.0.0.1", "port": 70000, "authz": {"type": "cedarv1", "policies": ["permit(principal, action == Action::\"fly\", resource);"]}},
    });
    std::fs::write(&path, config.to_string()).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for path in [
        "workload.container.transport",
        "proxy.port",
        "proxy.authz.policies[0]",
    ] {
        assert!(stderr.contains(path), "{path} missing from:\n{stderr}");
    }
    assert!(
        output.stdout.is_empty(),
        "it bound a port: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1 << 20).await;
    let addr = p.url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("write");
    // Meanwhile a well-behaved client is served.
    let (status, _, body) = post(&p, &call(1, "tools/list", json!({})), &[]).await;
    assert_eq!(status, 200, "{body}");
    let limit = proxyrunner::runner::HEADER_READ_TIMEOUT + std::time::Duration::from_secs(5);
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(limit, slow.read(&mut buf))
        .await
        .expect("the proxy closes the connection");
    // EOF, or a 408 before closing, or a reset: in every case the connection is over.
    if let Ok(n) = read
        && n > 0
    {
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    }
}
