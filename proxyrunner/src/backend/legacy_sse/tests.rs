//! A legacy SSE stream through [`stream`]: the endpoint event, list results and the
//! proxy's own messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use runconfig::middleware::tools::ValidatedTools;
use serde_json::json;

use super::*;
use crate::middleware::authn::Principal;
use crate::middleware::chain::{Chain, Stage};
use crate::middleware::tools::ToolFilter;

/// The stream of `chunks` through [`stream`] with `prefix`, as one string; `during`
/// runs once the first chunk's events went through (the first event must be complete
/// in it), before the others are sent.
async fn through(
    chunks: &[String],
    prefix: &str,
    sessions: Arc<Sessions>,
    during: impl FnOnce(&Sessions),
) -> String {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let frames = crate::transport::receiver_stream(rx).map(|b| Ok::<_, BoxError>(Frame::data(b)));
    let body = http_body_util::StreamBody::new(frames).boxed_unsync();
    let mut out = stream(body, prefix.to_owned(), sessions.clone(), None).into_data_stream();
    let mut seen = String::new();
    let send = |chunk: &String| {
        tx.send(Bytes::from(chunk.clone()))
            .expect("the stream is open");
    };
    if let Some(first) = chunks.first() {
        send(first);
        let bytes = out.next().await.expect("a chunk").expect("no error");
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    during(&sessions);
    chunks.iter().skip(1).for_each(send);
    drop(tx);
    while let Some(bytes) = out.next().await {
        seen.push_str(&String::from_utf8_lossy(&bytes.expect("no error")));
    }
    seen
}

fn chunks(items: &[&str]) -> Vec<String> {
    items.iter().map(|c| (*c).to_owned()).collect()
}

#[tokio::test]
async fn the_endpoint_event_gets_the_prefix_even_when_split_across_chunks() {
    let out = through(
        &chunks(&[
            ": hello\n\nevent: endpo",
            "int\ndata: /message?sessionId=abc\n\nevent: message\ndata: {}\n\nevent: end",
            "point\ndata: /not-again\n\n",
        ]),
        "/everything/",
        Arc::default(),
        |_| {},
    )
    .await;
    assert_eq!(
        out,
        ": hello\n\nevent: endpoint\ndata: /everything/message?sessionId=abc\n\n\
         event: message\ndata: {}\n\nevent: endpoint\ndata: /not-again\n\n"
    );
}

#[tokio::test]
async fn an_absolute_endpoint_url_becomes_a_path_through_the_proxy() {
    let out = through(
        &chunks(&["event: endpoint\r\ndata: http://10.0.0.7:8080/messages/?session_id=1\r\n\r\n"]),
        "",
        Arc::default(),
        |_| {},
    )
    .await;
    assert_eq!(out, "event: endpoint\ndata: /messages/?session_id=1\n\n");
}

#[tokio::test]
async fn without_a_prefix_a_server_path_and_a_relative_endpoint_pass_unchanged() {
    let events = chunks(&["event: endpoint\r\ndata: /message?sessionId=1\r\n\r\n"]);
    assert_eq!(
        through(&events, "", Arc::default(), |_| {}).await,
        events[0]
    );
    let relative = chunks(&["event: endpoint\ndata: messages?sessionId=1\n\n"]);
    assert_eq!(
        through(&relative, "/p", Arc::default(), |_| {}).await,
        relative[0]
    );
}

#[tokio::test]
async fn list_results_of_the_session_are_filtered_and_refusals_added_to_its_stream() {
    let filter = ToolFilter::new(&ValidatedTools {
        allowed: Some(BTreeSet::from(["echo".to_owned()])),
        overrides: BTreeMap::new(),
        renamed_from: BTreeMap::new(),
    })
    .expect("a filter");
    let rewrite = ListRewrite {
        lists: HashMap::from([("7".to_owned(), "tools/list".to_owned())]),
        principal: Principal::anonymous(),
        chain: Arc::new(Chain::new(vec![Stage::Tools(filter)])),
    };
    let tools = json!({"jsonrpc": "2.0", "id": 7,
                       "result": {"tools": [{"name": "echo"}, {"name": "secret"}]}});
    let refusal = json!({"jsonrpc": "2.0", "id": 8, "error": {"code": -32602, "message": "no"}});
    let out = through(
        &[
            "event: endpoint\ndata: /message?sessionId=s1\n\n".to_owned(),
            format!("event: message\ndata: {tools}\n\n"),
        ],
        "",
        Arc::default(),
        |sessions| {
            sessions.expect_lists(Some("sessionId=s1"), &rewrite);
            assert!(sessions.inject(Some("sessionId=s1"), std::slice::from_ref(&refusal)));
            assert!(!sessions.inject(Some("sessionId=other"), std::slice::from_ref(&refusal)));
        },
    )
    .await;
    assert!(out.contains(&format!("data: {refusal}\n\n")), "{out}");
    assert!(out.contains("\"echo\""), "{out}");
    assert!(!out.contains("secret"), "{out}");
}

#[tokio::test]
async fn a_session_is_forgotten_when_its_stream_ends() {
    let sessions: Arc<Sessions> = Arc::default();
    through(
        &chunks(&["event: endpoint\ndata: /message?sessionId=gone\n\n"]),
        "",
        sessions.clone(),
        |_| {},
    )
    .await;
    assert!(!sessions.inject(Some("sessionId=gone"), &[json!({})]));
}
