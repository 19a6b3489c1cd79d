//! The streamable HTTP mode on the wire: sessions, JSON versus SSE answers, stream
//! resumption with Last-Event-ID, DELETE, and the DNS rebinding check.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

async fn start() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-fixture"))
        .args(["http", "--port", "0"])
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
        .and_then(|rest| rest.strip_suffix("/mcp"))
        .expect("listening on http://HOST:PORT/mcp");
    (child, address.to_string())
}

/// One HTTP/1.0 exchange: the server closes the connection after the answer, so
/// even an SSE body is read to its end without chunked decoding.
async fn exchange(
    address: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} /mcp HTTP/1.0\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut tcp = TcpStream::connect(address)
        .await
        .expect("the fixture accepts");
    tcp.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.expect("answer read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status: status.expect("a status line"),
        headers,
        body: body.to_string(),
    }
}

const POST: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

async fn post(address: &str, session: &str, body: Value) -> Reply {
    let headers = [
        POST[0],
        POST[1],
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    exchange(address, "POST", &headers, Some(body)).await
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

#[tokio::test]
async fn a_session_answers_in_json_resumes_a_closed_stream_and_ends_on_delete() {
    let (_server, address) = start().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"},
    }});
    let init = exchange(&address, "POST", &POST, Some(initialize)).await;
    assert_eq!(init.status, 200);
    let session = init
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();

    let simple = post(&address, &session, call(2, "test_simple_text")).await;
    assert_eq!(simple.header("content-type"), Some("application/json"));
    assert_eq!(simple.json()["id"], 2);

    // The tool ends its stream after the priming event; the result waits for a resume.
    let closed = post(&address, &session, call(3, "test_reconnection")).await;
    assert_eq!(closed.header("content-type"), Some("text/event-stream"));
    let priming = closed
        .body
        .strip_prefix("id: ")
        .and_then(|b| b.split_once('\n'));
    let (event_id, rest) = priming.expect("the stream starts with a priming event");
    assert_eq!(rest, "retry: 500\ndata: \n\n", "and ends after it");
    let resume = [
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", &session),
        ("Last-Event-ID", event_id),
    ];
    let resumed = exchange(&address, "GET", &resume, None).await;
    let stream = event_id.trim_end_matches("-0");
    let next_event = format!("id: {stream}-1\nevent: message\ndata: {{");
    assert!(resumed.body.starts_with(&next_event), "{}", resumed.body);
    assert!(
        resumed
            .body
            .contains("Reconnection test completed successfully")
    );

    let delete = [("Mcp-Session-Id", session.as_str())];
    assert_eq!(
        exchange(&address, "DELETE", &delete, None).await.status,
        200
    );
    assert_eq!(
        post(&address, &session, call(4, "test_simple_text"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn requests_from_foreign_hosts_are_refused() {
    let (_server, address) = start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let headers = [
        POST[0],
        POST[1],
        ("Host", "evil.example.com"),
        ("Origin", "http://evil.example.com"),
    ];
    assert_eq!(
        exchange(&address, "POST", &headers, Some(ping))
            .await
            .status,
        403
    );
}
