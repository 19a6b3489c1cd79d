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
