//! The stdio mode as a client drives it: one JSON-RPC message a line, and the
//! server's own requests (sampling) answered on stdin.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Client {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-fixture"))
            .arg("stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the fixture starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, message: Value) {
        let line = format!("{message}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("stdin is open");
    }

    async fn receive(&mut self) -> Value {
        let line = self
            .stdout
            .next_line()
            .await
            .expect("stdout reads")
            .expect("a line");
        serde_json::from_str(&line).expect("each line is JSON")
    }
}

#[tokio::test]
async fn a_tool_samples_through_the_client_and_the_server_exits_when_stdin_ends() {
    let mut client = Client::start();
    client
        .send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"sampling": {}},
                "clientInfo": {"name": "test", "version": "1"},
            }}),
        )
        .await;
    assert_eq!(
        client.receive().await["result"]["protocolVersion"],
        "2025-11-25"
    );
    client
        .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    client
        .send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "test_sampling", "arguments": {"prompt": "Say hi"}}}))
        .await;
    let sampling = client.receive().await;
    assert_eq!(sampling["method"], "sampling/createMessage");
    assert_eq!(
        sampling["params"]["messages"][0]["content"]["text"],
        "Say hi"
    );
    client
        .send(json!({"jsonrpc": "2.0", "id": sampling["id"], "result": {
            "role": "assistant",
            "content": {"type": "text", "text": "hi"},
            "model": "test-model",
        }}))
        .await;
    let answer = client.receive().await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "LLM response: hi");

    drop(client.stdin);
    let status = client.child.wait().await.expect("the fixture exits");
    assert!(status.success());
}

#[test]
fn the_stdio_echo_answers_a_burst_in_order_and_exits_at_the_end_of_input() {
    let mut input = String::new();
    for id in 0..100 {
        input.push_str(&format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"n": id}}})
        ));
    }
    input.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n\nnot json\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-fixture"))
        .args(["echo", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the echo server starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("stdin is open");
    drop(stdin);
    let output = child.wait_with_output().expect("the echo server exits");
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON message a line"))
        .collect();
    // 100 answers, nothing for the notification or the blank line, a parse error last.
    assert_eq!(lines.len(), 101);
    for (id, answer) in lines[..100].iter().enumerate() {
        assert_eq!(answer["id"], id);
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("{{\"n\":{id}}}")
        );
    }
    assert_eq!(lines[100]["error"]["code"], -32700);
}
