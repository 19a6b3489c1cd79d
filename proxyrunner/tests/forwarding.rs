//! What an HTTP upstream receives: the client's MCP headers untouched (including ones
//! this proxy does not know yet), `X-Forwarded-*` added, hop-by-hop headers and the
//! client's credentials removed, and the upstream's answer headers passed back.

mod support;

use serde_json::json;
use support::{call, post, proxy, runconfig, upstream};

#[tokio::test(flavor = "multi_thread")]
async fn mcp_headers_known_and_unknown_reach_the_upstream_untouched() {
    let up = upstream().await;
    let p = proxy(runconfig(&up.url, json!({})), 1 << 20).await;
    let (status, headers, body) = post(
        &p,
        &call(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"a": 1}}),
        ),
        &[
            ("mcp-session-id", "session-123"),
            ("mcp-protocol-version", "2025-11-25"),
            ("last-event-id", "stream-1-7"),
            // Headers of later protocol revisions pass as they are.
            ("mcp-method", "tools/call"),
            ("mcp-param-name", "echo"),
            ("x-custom", "kept"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "dropped"),
            ("proxy-authorization", "Basic c2VjcmV0"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The upstream's headers come back.
    assert_eq!(headers["mcp-session-id"], "upstream-session");

    let seen = up.seen.lock().expect("lock");
    let sent = &seen.headers[0];
    for (name, value) in [
        ("mcp-session-id", "session-123"),
        ("mcp-protocol-version", "2025-11-25"),
        ("last-event-id", "stream-1-7"),
        ("mcp-method", "tools/call"),
        ("mcp-param-name", "echo"),
        ("x-custom", "kept"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
    ] {
        assert_eq!(
            sent.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    for name in ["x-hop", "proxy-authorization"] {
        assert!(!sent.contains_key(name), "{name} reached the upstream");
    }
    // The body arrives as the client sent it.
    assert_eq!(
        seen.bodies[0],
        call(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"a": 1}})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_is_a_502_with_a_json_rpc_error_for_the_request() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let p = proxy(
        runconfig(&format!("http://127.0.0.1:{port}/mcp"), json!({})),
        1 << 20,
    )
    .await;
    let (status, _, body) = post(&p, &call(42, "tools/list", json!({})), &[]).await;
    assert_eq!(status, 502);
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 42);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("upstream"), "{body}");
}
