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

#[tokio::test(flavor = "multi_thread")]
async fn running_out_of_file_descriptors_does_not_stop_the_proxy() {
    // The test's HTTP client (reqwest) uses the ring provider, as the proxy does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runconfig.json");
    std::fs::write(&path, runconfig(&up.url, json!({})).to_string()).expect("write");
    // A low descriptor limit, so that idle connections exhaust it.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" run --listen 127.0.0.1:0 --config "$1""#)
        .arg(env!("CARGO_BIN_EXE_thv-proxyrunner"))
        .arg(&path);
    let (mut child, url) = support::spawn_listening(command).await;
    let address = url.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..100 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&address).await {
            idle.push(stream);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(idle);
    let proxy = support::Proxy::at(url);
    let mut answered = false;
    for _ in 0..50 {
        let (status, _, _) = post(&proxy, &call(1, "tools/list", json!({})), &[]).await;
        if status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "the proxy serves again once descriptors are free");
    assert!(
        child.try_wait().expect("status").is_none(),
        "the proxy exited"
    );
}
