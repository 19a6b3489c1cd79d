//! The legacy HTTP+SSE mode on the wire: the endpoint event, POSTs answered 202 and
//! their answers on the stream, an unknown session refused.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

async fn start() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-fixture"))
        .args(["sse", "--port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the fixture starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("stdout reads")
        .expect("the fixture prints its URL");
    let address = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/sse"))
        .expect("listening on http://HOST:PORT/sse");
    (child, address.to_owned())
}

/// POSTs `body` to `path`; the status line and body (HTTP/1.0: read to the end).
async fn post(address: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("reads");
    answer
}

/// Reads the stream until `needle` appears; what was read.
async fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains(needle) {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "the stream ended before {needle}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle} on the stream: {seen}"));
    seen.clone()
}

#[tokio::test]
async fn answers_arrive_on_the_stream_the_endpoint_event_names() {
    let (_child, address) = start().await;
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    let get = format!("GET /sse HTTP/1.0\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(get.as_bytes()).await.expect("writes");
    let mut seen = String::new();
    let head = read_until(&mut stream, &mut seen, "\n\n").await;
    assert!(
        head.contains("event: endpoint\ndata: /messages?sessionId="),
        "{head}"
    );
    let endpoint = head
        .split("data: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the endpoint")
        .to_owned();

    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let accepted = post(&address, &endpoint, init).await;
    assert!(accepted.starts_with("HTTP/1.0 202"), "{accepted}");
    // Requests run concurrently and their answers may arrive in any order; a client
    // waits for the initialize result before it calls a tool.
    let initialized = read_until(&mut stream, &mut seen, r#""id":1"#).await;
    assert!(
        initialized.contains(r#""protocolVersion":"2024-11-05""#),
        "{initialized}"
    );
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#;
    post(&address, &endpoint, call).await;
    let events = read_until(&mut stream, &mut seen, r#""id":2"#).await;
    assert!(events.contains(r#""text":"hi""#), "{events}");

    let unknown = post(&address, "/messages?sessionId=nope", init).await;
    assert!(unknown.starts_with("HTTP/1.0 404"), "{unknown}");
}
