//! Graceful drain of the `thv-proxyrunner` binary: on SIGTERM it keeps serving for the
//! drain delay while readiness fails and every response closes its connection, then
//! accepts no more connections, lets the request in flight finish and exits 0.

mod support;

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

/// The proxy binary in front of the scripted upstream, with these drain settings.
async fn proxy_with(
    delay: &str,
    timeout: &str,
) -> (
    support::Upstream,
    tempfile::TempDir,
    tokio::process::Child,
    String,
) {
    let upstream = support::upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = support::runconfig(&upstream.url, json!({}));
    let path = dir.path().join("runconfig.json");
    std::fs::write(&path, config.to_string()).expect("write RunConfig");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .args(["--drain-delay", delay, "--drain-timeout", timeout]);
    let (child, url) = support::spawn_listening(command).await;
    (upstream, dir, child, url)
}

/// A `slow` call (held by the upstream until released) sent now, answered in its task.
fn slow_call_in_flight(
    url: &str,
) -> tokio::task::JoinHandle<(StatusCode, http::HeaderMap, serde_json::Value)> {
    let proxy = support::Proxy::at(url.to_owned());
    tokio::spawn(async move {
        support::post(
            &proxy,
            &support::call(7, "tools/call", json!({"name": "slow"})),
            &[],
        )
        .await
    })
}

/// Sends SIGTERM to the proxy.
fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("the proxy runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
}

#[tokio::test]
async fn sigterm_fails_readiness_then_finishes_the_request_in_flight_and_exits() {
    let (upstream, _dir, mut child, url) = proxy_with("2s", "20s").await;
    let proxy = support::Proxy::at(url.clone());
    let health = format!("{url}/health");
    let ready = reqwest::get(&health).await.expect("health answers");
    assert_eq!(ready.status(), StatusCode::OK);

    // A call the upstream holds until released, in flight when SIGTERM arrives.
    let in_flight = slow_call_in_flight(&url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // During the drain delay: readiness fails, requests are served and close their
    // connection.
    let draining = reqwest::get(&health)
        .await
        .expect("health answers while draining");
    assert_eq!(draining.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, headers, body) = support::post(
        &proxy,
        &support::call(8, "tools/call", json!({"name": "echo"})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "called echo");
    assert_eq!(
        headers.get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );

    // After the delay no new connection is accepted, but the call in flight is
    // answered once the upstream releases it, and the process exits cleanly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        reqwest::get(&health).await.is_err(),
        "a new connection after the drain delay is refused"
    );
    assert!(!in_flight.is_finished(), "the slow call is still in flight");
    upstream.release.notify_waiters();
    let (status, _, body) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the call in flight is answered")
        .expect("the call's task");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "called slow");
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the proxy exits once drained")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_second_sigterm_exits_without_waiting_for_the_drain() {
    let (_upstream, _dir, mut child, url) = proxy_with("0s", "60s").await;
    // A call the upstream never releases keeps the drain waiting.
    let _in_flight = slow_call_in_flight(&url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..2 {
        sigterm(&child);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the second SIGTERM ends the drain")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}
