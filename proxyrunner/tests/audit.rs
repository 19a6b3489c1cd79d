//! Audit events as a collector reads them: one JSON object a line with who, what,
//! the outcome, and request and response excerpts when configured.

mod support;

use serde_json::{Value, json};
use support::{call, post, proxy, runconfig, upstream};

fn tool_call(id: i64, name: &str) -> Value {
    call(
        id,
        "tools/call",
        json!({"name": name, "arguments": {"x": 1}}),
    )
}

/// Waits (briefly) for `n` events: events with response data are written once the
/// response body has passed, which may be just after the client has read it.
async fn events(p: &support::Proxy, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let events = p.audit_events();
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    p.audit_events()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_audited_with_request_and_response_excerpts() {
    let up = upstream().await;
    let config = runconfig(
        &up.url,
        json!({"audit": {"component": "github", "include_request_data": true,
                         "include_response_data": true, "max_data_size": 40}}),
    );
    let p = proxy(config, 1 << 20).await;
    let (status, _, body) = post(&p, &tool_call(7, "echo"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["content"][0]["text"], "called echo");

    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["type"], "mcp_tool_call");
    assert_eq!(event["component"], "github");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["status"], 200);
    assert_eq!(
        event["target"],
        json!({"method": "tools/call", "name": "echo"})
    );
    assert!(event["subjects"]["user"].is_string(), "{event}");
    assert!(event["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    let request = tool_call(7, "echo").to_string();
    assert_eq!(event["data"]["request"], request[..40]);
    // The response as the client got it, cut at max_data_size.
    let response = event["data"]["response"]
        .as_str()
        .expect("response excerpt");
    assert_eq!(response, &body.to_string()[..40]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_call_is_audited_as_denied_with_the_refusal_as_response() {
    let up = upstream().await;
    let config = runconfig(
        &up.url,
        json!({"tools": {"filter": ["echo"]},
               "audit": {"include_response_data": true}}),
    );
    let p = proxy(config, 1 << 20).await;
    let (_, _, body) = post(&p, &tool_call(3, "secret"), &[]).await;
    assert!(body["error"].is_object(), "{body}");

    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "denied");
    assert_eq!(events[0]["target"]["name"], "secret");
    let response: Value = serde_json::from_str(
        events[0]["data"]["response"]
            .as_str()
            .expect("response excerpt"),
    )
    .expect("the whole refusal fits in 1024 bytes");
    assert_eq!(response, body);
    assert!(events[0]["data"].get("request").is_none());
    // Nothing reached the server.
    assert!(up.seen.lock().expect("lock").bodies.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_selected_event_types_are_written_and_without_data_by_default() {
    let up = upstream().await;
    let config = runconfig(
        &up.url,
        json!({"audit": {"event_types": ["mcp_tool_call", "mcp_tools_list"],
                         "exclude_event_types": ["mcp_tools_list"]}}),
    );
    let p = proxy(config, 1 << 20).await;
    post(&p, &call(1, "tools/list", json!({})), &[]).await;
    post(&p, &call(2, "ping", json!({})), &[]).await;
    post(&p, &tool_call(3, "add"), &[]).await;
    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "mcp_tool_call");
    assert_eq!(events[0]["target"]["name"], "add");
    assert!(events[0].get("data").is_none(), "{}", events[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_of_a_batch_is_audited_and_a_202_has_no_response_data() {
    let up = upstream().await;
    let config = runconfig(&up.url, json!({"audit": {"include_response_data": true}}));
    let p = proxy(config, 1 << 20).await;
    // The scripted server answers a batch (no top-level id) with 202 and no body.
    let batch = json!([tool_call(1, "echo"), tool_call(2, "add")]);
    let (status, _, _) = post(&p, &batch, &[]).await;
    assert_eq!(status, 202);
    let events = events(&p, 2).await;
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["target"]["name"].as_str())
        .collect();
    assert_eq!(names, ["echo", "add"]);
    for event in &events {
        assert_eq!(event["status"], 202);
        assert!(event.get("data").is_none(), "{event}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_client_goes_away_is_still_audited() {
    let up = upstream().await;
    let config = runconfig(&up.url, json!({"audit": {"include_response_data": true}}));
    let p = proxy(config, 1 << 20).await;
    // `slow` answers only when released; the client gives up first.
    let gave_up = reqwest::Client::new()
        .post(format!("{}/mcp", p.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(tool_call(9, "slow").to_string())
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err());
    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"]["name"], "slow");
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["status"], 499);
    up.release.notify_waiters();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_during_a_streamed_answer_is_audited_as_failed_with_what_it_got() {
    let up = upstream().await;
    let config = runconfig(&up.url, json!({"audit": {"include_response_data": true}}));
    let p = proxy(config, 1 << 20).await;
    let mut response = reqwest::Client::new()
        .post(format!("{}/mcp", p.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(tool_call(4, "stream").to_string())
        .send()
        .await
        .expect("the stream starts");
    assert_eq!(response.status(), 200);
    // The progress event arrives unbuffered; then the client leaves.
    let first = response
        .chunk()
        .await
        .expect("a chunk")
        .expect("not the end");
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    drop(response);
    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["status"], 499);
    let excerpt = events[0]["data"]["response"].as_str().expect("excerpt");
    assert!(excerpt.contains("notifications/progress") && !excerpt.contains("streamed"));
    up.release.notify_waiters();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_answer_is_audited_when_it_ends_with_its_whole_duration() {
    let up = upstream().await;
    let config = runconfig(&up.url, json!({"audit": {"include_response_data": true}}));
    let p = proxy(config, 1 << 20).await;
    let release = up.release.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        release.notify_waiters();
    });
    let (status, _, body) = post(&p, &tool_call(5, "stream"), &[]).await;
    assert_eq!(status, 200);
    assert!(body.to_string().contains("streamed"), "{body}");
    let events = events(&p, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["status"], 200);
    assert!(
        events[0]["duration_ms"]
            .as_f64()
            .is_some_and(|d| d >= 250.0),
        "{}",
        events[0]
    );
    let excerpt = events[0]["data"]["response"].as_str().expect("excerpt");
    assert!(excerpt.contains("notifications/progress") && excerpt.contains("streamed"));
}
