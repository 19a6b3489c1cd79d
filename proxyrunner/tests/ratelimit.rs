//! Rate limits through the whole proxy (`proxy.rate_limit`, an MCPServer's
//! `rateLimiting`), its buckets in a real `redis-server`: a call beyond the burst is
//! answered HTTP 429 with `Retry-After` and JSON-RPC error 429 carrying
//! `retryAfterSeconds`, never reaches the server, and is audited as denied.

mod support;

use http::StatusCode;
use proxyrunner::test_redis::Redis;
use serde_json::json;

#[tokio::test]
async fn calls_beyond_the_burst_are_answered_429_and_never_reach_the_server() {
    let redis = Redis::start(None);
    let upstream = support::upstream().await;
    let config = support::runconfig(
        &upstream.url,
        json!({
            "session_redis": {"address": format!("127.0.0.1:{}", redis.port)},
            "rate_limit": {"shared": {"max_tokens": 2, "refill_period": "1m0s"}},
            "audit": {},
        }),
    );
    let proxy = support::proxy(config, 1 << 20).await;
    let tool = |id| support::call(id, "tools/call", json!({"name": "echo", "arguments": {}}));
    for id in 1..=2 {
        let (status, _, body) = support::post(&proxy, &tool(id), &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = support::post(&proxy, &tool(3), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"30"[..])
    );
    assert_eq!(body["id"], 3);
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["data"]["retryAfterSeconds"], 30);
    // Other methods pass; the refused call never reached the server.
    let (status, _, _) =
        support::post(&proxy, &support::call(4, "tools/list", json!({})), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let calls = upstream
        .seen
        .lock()
        .map(|s| {
            s.bodies
                .iter()
                .filter(|b| b["method"] == "tools/call")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(calls, 2);
    let denied = proxy
        .audit_events()
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn rate_limits_without_redis_or_per_user_without_authentication_do_not_start() {
    let upstream = support::upstream().await;
    let config = support::runconfig(
        &upstream.url,
        json!({"rate_limit": {"per_user": {"max_tokens": 2, "refill_period": "1m"}}}),
    );
    let config = runconfig::from_value(config).expect("loads");
    let problems = runconfig::validate(&config)
        .expect_err("refused")
        .to_string();
    assert!(
        problems.contains("proxy.rate_limit:") && problems.contains("Redis"),
        "{problems}"
    );
    assert!(problems.contains("proxy.rate_limit.per_user"), "{problems}");
}
