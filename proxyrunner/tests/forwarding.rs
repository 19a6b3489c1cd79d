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
