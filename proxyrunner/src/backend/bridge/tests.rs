//! The bridge between sessions that number their requests alike, against a scripted
//! workload: the test reads what the workload would read and writes its answers.

use serde_json::json;

use super::scripted::{start, start_with};
use super::*;

/// Sends one message as `session`; returns the stream its answers arrive on.
async fn send(bridge: &Bridge, session: &str, message: Value) -> mpsc::UnboundedReceiver<Bytes> {
    let bytes = message.to_string();
    let body = mcp::parse(bytes.as_bytes()).expect("a JSON-RPC message");
    let (sink, rx) = mpsc::unbounded_channel();
    bridge
        .send(session, &body, bytes.as_bytes(), &sink)
        .await
        .expect("the bridge takes the message");
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Bytes>) -> Value {
    let bytes = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn call_with_progress(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "slow", "_meta": {"progressToken": id}}})
}

#[tokio::test]
async fn sessions_with_the_same_request_ids_and_progress_tokens_get_only_their_own_progress() {
    let (bridge, mut server) = start();
    let mut a = send(&bridge, "a", call_with_progress(3)).await;
    let mut b = send(&bridge, "b", call_with_progress(3)).await;
    let seen_a = server.read().await;
    let seen_b = server.read().await;
    let (id_a, id_b) = (seen_a["id"].clone(), seen_b["id"].clone());
    assert_ne!(id_a, id_b, "the workload sees distinct ids");
    assert_eq!(seen_a["params"]["_meta"]["progressToken"], id_a);
    assert_eq!(seen_b["params"]["_meta"]["progressToken"], id_b);

    for (token, progress) in [(&id_b, 1), (&id_a, 2)] {
        server
            .write(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": token, "progress": progress}}))
            .await;
    }
    server
        .write(json!({"jsonrpc": "2.0", "id": id_a, "result": {"content": []}}))
        .await;

    let progress_a = next(&mut a).await;
    assert_eq!(
        progress_a["params"],
        json!({"progressToken": 3, "progress": 2})
    );
    assert_eq!(next(&mut a).await["id"], 3);
    let progress_b = next(&mut b).await;
    assert_eq!(
        progress_b["params"],
        json!({"progressToken": 3, "progress": 1})
    );
    assert!(b.try_recv().is_err(), "b got nothing of a's");
}

#[tokio::test]
async fn a_server_line_that_is_an_array_is_dropped_and_the_bridge_goes_on() {
    let (bridge, mut server) = start();
    let mut a = send(&bridge, "a", call_with_progress(1)).await;
    let id = server.read().await["id"].clone();
    // Read field by field, this is a response to the request in flight; rewriting its
    // id used to panic the bridge's reader, and the server was never heard again.
    server
        .write(json!(["2.0", id, null, null, {"content": []}, null]))
        .await;
    server
        .write(json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}}))
        .await;
    assert_eq!(next(&mut a).await["id"], 1);
}

#[tokio::test]
async fn a_server_line_that_is_not_utf8_is_dropped_not_passed_to_a_client() {
    let (bridge, mut server) = start();
    let mut a = send(&bridge, "a", call_with_progress(1)).await;
    let id = server.read().await["id"].clone();
    // A server request whose skipped params hold a byte that is not UTF-8: passed on
    // as it was, the client's stream would carry text that is not JSON.
    let mut line = br#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","x":{""#.to_vec();
    line.extend_from_slice(b"\x93\"}}\n");
    server.writes.write_all(&line).await.expect("writing");
    server
        .write(json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}}))
        .await;
    let answer = next(&mut a).await;
    assert_eq!(answer["id"], 1, "the next message is the answer: {answer}");
}

#[tokio::test]
async fn an_answer_that_cannot_be_read_in_full_reaches_its_client_as_an_error() {
    let (bridge, mut server) = start();
    let mut a = send(&bridge, "a", call_with_progress(4)).await;
    let id = server.read().await["id"].clone();
    let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"text\":\"\\ud800\"}}}}\n");
    server
        .writes
        .write_all(line.as_bytes())
        .await
        .expect("writing");
    let answer = next(&mut a).await;
    assert_eq!(answer["id"], 4);
    assert_eq!(answer["error"]["code"], code::INTERNAL_ERROR, "{answer}");
}

#[tokio::test]
async fn a_cancellation_names_the_workloads_id_and_only_reaches_its_own_sessions_request() {
    let (bridge, mut server) = start();
    let _a = send(&bridge, "a", call_with_progress(7)).await;
    let seen = server.read().await;
    let cancel = |id: u64| {
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": id, "reason": "user"}})
    };
    // Session b has no request 7: its cancellation must not touch a's.
    let _ = send(&bridge, "b", cancel(7)).await;
    let _ = send(&bridge, "a", cancel(7)).await;
    let forwarded = server.read().await;
    assert_eq!(forwarded["method"], "notifications/cancelled");
    assert_eq!(forwarded["params"]["requestId"], seen["id"]);
    assert_eq!(forwarded["params"]["reason"], "user");
}

#[tokio::test]
async fn an_ended_session_has_its_requests_in_flight_cancelled() {
    let (bridge, mut server) = start();
    let _a = send(&bridge, "a", call_with_progress(1)).await;
    let seen = server.read().await;
    bridge.end_session("a");
    let cancelled = server.read().await;
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], seen["id"]);
}

#[tokio::test]
async fn a_server_request_goes_to_the_stream_of_the_latest_request_still_in_flight() {
    let (bridge, mut server) = start();
    let mut a = send(&bridge, "a", call_with_progress(1)).await;
    server.read().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let mut b = send(&bridge, "b", list).await;
    let seen_b = server.read().await;
    server
        .write(json!({"jsonrpc": "2.0", "id": seen_b["id"], "result": {"tools": []}}))
        .await;
    assert_eq!(next(&mut b).await["id"], 1);
    // b's request is answered; the sampling request belongs to a's call.
    let sampling = json!({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage",
                          "params": {"messages": [], "maxTokens": 1}});
    server.write(sampling.clone()).await;
    assert_eq!(next(&mut a).await, sampling);
}

#[tokio::test]
async fn later_sessions_get_the_cached_handshake_in_the_older_version_they_asked_for() {
    let (bridge, mut server) = start();
    let initialize = |id: u64, version: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
               "params": {"protocolVersion": version, "capabilities": {},
                          "clientInfo": {"name": "t", "version": "1"}}})
    };
    let (first, ()) = tokio::join!(
        async { next(&mut send(&bridge, "a", initialize(0, "2025-11-25")).await).await },
        async {
            let seen = server.read().await;
            server
                .write(json!({"jsonrpc": "2.0", "id": seen["id"],
                              "result": {"protocolVersion": "2025-11-25", "capabilities": {},
                                         "serverInfo": {"name": "s", "version": "1"}}}))
                .await;
        }
    );
    assert_eq!(first["result"]["protocolVersion"], "2025-11-25");
    for (asked, answered) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-11-25", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let reply = next(&mut send(&bridge, "b", initialize(0, asked)).await).await;
        assert_eq!(
            reply["result"]["protocolVersion"], answered,
            "asked {asked}"
        );
        assert_eq!(reply["result"]["serverInfo"]["name"], "s");
    }
}

#[tokio::test]
async fn a_reconnected_listening_stream_survives_the_end_of_the_one_it_replaced() {
    let (bridge, mut server) = start();
    let (old, old_rx) = mpsc::unbounded_channel();
    let old_registration = old.downgrade();
    bridge.listen(Arc::from("a"), old);
    let (new, mut new_rx) = mpsc::unbounded_channel();
    bridge.listen(Arc::from("a"), new);
    drop(old_rx);
    bridge.unlisten("a", &old_registration);
    let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    server.write(changed.clone()).await;
    assert_eq!(next(&mut new_rx).await, changed);
}

#[tokio::test]
async fn an_eager_bridge_initialises_the_server_itself_and_is_ready_only_once_answered() {
    let (bridge, mut server) = start_with(Handshake::Eager);
    let mut link = bridge.link();
    let init = server.read().await;
    assert_eq!(init["method"], "initialize");
    assert_eq!(init["params"]["clientInfo"]["name"], "thv-proxyrunner");
    assert!(init["params"]["capabilities"]["sampling"].is_object());
    assert!(!bridge.is_ready(), "not ready before the server answered");
    let result = json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                        "serverInfo": {"name": "scripted", "version": "2.0"}});
    server
        .write(json!({"jsonrpc": "2.0", "id": init["id"], "result": result}))
        .await;
    assert_eq!(server.read().await["method"], "notifications/initialized");
    tokio::time::timeout(
        Duration::from_secs(5),
        link.wait_for(|l| *l == Link::Up(result.clone())),
    )
    .await
    .expect("the link is up within 5 s")
    .expect("the bridge lives");
    assert!(bridge.is_ready());

    // A client's initialize is answered from the server's answer, not forwarded, and
    // its `initialized` is not a second one for the server.
    let mut a = send(
        &bridge,
        "a",
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "a", "version": "1"}}}),
    )
    .await;
    assert_eq!(
        next(&mut a).await["result"]["serverInfo"]["name"],
        "scripted"
    );
    send(
        &bridge,
        "a",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;

    // The proxy's own request, numbered like a client's and answered to it alone.
    let listing = {
        let bridge = bridge.clone();
        tokio::spawn(async move {
            bridge
                .call("tools/list", json!({}), Duration::from_secs(5))
                .await
        })
    };
    let seen = server.read().await;
    assert_eq!(
        seen["method"], "tools/list",
        "the client's initialized was not forwarded"
    );
    server
        .write(json!({"jsonrpc": "2.0", "id": seen["id"], "result": {"tools": [{"name": "t"}]}}))
        .await;
    let tools = listing.await.expect("joined").expect("listed");
    assert_eq!(tools["tools"][0]["name"], "t");
}

#[tokio::test]
async fn an_eager_bridge_whose_server_refuses_initialize_is_not_ready_and_says_why() {
    let (bridge, mut server) = start_with(Handshake::Eager);
    let mut link = bridge.link();
    let init = server.read().await;
    server
        .write(json!({"jsonrpc": "2.0", "id": init["id"],
                      "error": {"code": -32602, "message": "unsupported protocol version"}}))
        .await;
    let state = tokio::time::timeout(
        Duration::from_secs(5),
        link.wait_for(|l| matches!(l, Link::Unanswered(_))),
    )
    .await
    .expect("the link says so within 5 s")
    .expect("the bridge lives")
    .clone();
    assert_eq!(
        state,
        Link::Unanswered(
            "the MCP server refused initialize: unsupported protocol version".to_owned()
        )
    );
    assert!(!bridge.is_ready());
}
