//! Any bytes as what a stdio MCP server's attach stream carries back to the proxy, cut
//! into reads of any size: first the wiring pings (`wait_until_wired`, exactly as
//! `pods/attach` is read), then the stdio bridge with the proxy's own `initialize`
//! (`Handshake::Eager`, as in a cluster) and two client sessions in flight.
//!
//! Nothing may panic, and routing must hold whatever the server writes: a session
//! gets answers only to its own requests, under its own ids, each at most once.
//!
//! Input: byte 0 seeds the read sizes, byte 1 picks what the clients do; the rest is
//! the server's output. Time is paused, so the bridge's timeouts pass at once.
#![no_main]

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use proxyrunner::backend::bridge::{Bridge, Handshake};
use proxyrunner::backend::kubernetes::wait_until_wired;
use proxyrunner::backend::{Attached, Workload};
use serde_json::Value;
use tokio::io::{AsyncRead, BufReader, ReadBuf};
use tokio::sync::mpsc;

/// The server's output, handed out in reads whose sizes (and whether a read must wait)
/// follow a small generator.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    seed: u8,
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.seed = this.seed.wrapping_mul(29).wrapping_add(7);
        // Some reads are not ready yet: the clients' requests interleave with the output.
        if this.seed % 3 == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let want = 1 + usize::from(this.seed % 97);
        let end = (this.at + want)
            .min(this.data.len())
            .min(this.at + buf.remaining());
        buf.put_slice(&this.data[this.at..end]);
        this.at = end;
        Poll::Ready(Ok(()))
    }
}

/// A workload reached once: its stdout is the fuzz input; later starts fail, as an
/// attach to a pod that is gone does.
struct Server {
    output: Mutex<Option<Chunked>>,
}

impl Workload for Server {
    fn start(&self) -> BoxFuture<'_, io::Result<Attached>> {
        let output = self.output.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            let output = output.ok_or_else(|| io::Error::other("the pod is gone"))?;
            let mut stdin = tokio::io::sink();
            let mut stdout = BufReader::new(output);
            wait_until_wired(&mut stdin, &mut stdout).await;
            Ok(Attached {
                stdin: Box::pin(stdin),
                stdout: Box::pin(stdout),
                stderr: None,
                exited: Box::pin(std::future::pending()),
            })
        })
    }

    fn describe(&self) -> String {
        "fuzzed attach stream".to_owned()
    }
}

/// One client session: its requests' ids and what reached its sink.
struct Client {
    session: &'static str,
    ids: Vec<Value>,
    sink: mpsc::UnboundedSender<Bytes>,
    received: mpsc::UnboundedReceiver<Bytes>,
}

impl Client {
    fn new(session: &'static str) -> Self {
        let (sink, received) = mpsc::unbounded_channel();
        Self {
            session,
            ids: Vec::new(),
            sink,
            received,
        }
    }

    async fn send(&mut self, bridge: &Bridge, message: Value) {
        if let Some(id) = message.get("id") {
            self.ids.push(id.clone());
        }
        let bytes = message.to_string().into_bytes();
        let Ok(body) = proxyrunner::mcp::parse(&bytes) else {
            panic!("the harness's own message does not parse: {message}");
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(90),
            bridge.send(self.session, &body, &bytes, &self.sink),
        )
        .await;
    }

    /// Every answer that reached this session is to one of its requests, once.
    fn check(mut self) {
        let mut answered: HashMap<String, usize> = HashMap::new();
        while let Ok(message) = self.received.try_recv() {
            let value: Value = match serde_json::from_slice(&message) {
                Ok(value) => value,
                Err(error) => panic!(
                    "session {} got a message that is not JSON: {error}",
                    self.session
                ),
            };
            let is_response = value.get("method").is_none()
                && (value.get("result").is_some() || value.get("error").is_some());
            let Some(id) = value.get("id").filter(|_| is_response) else {
                continue;
            };
            assert!(
                self.ids.contains(id),
                "session {} got an answer to a request it did not send: {value}",
                self.session
            );
            let n = answered.entry(id.to_string()).or_default();
            *n += 1;
            assert!(*n <= 1, "session {} got two answers to {id}", self.session);
        }
    }
}

fn initialize(id: Value) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "fuzz", "version": "1"}}})
}

fn call(id: Value, progress: bool) -> Value {
    let mut value = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}}});
    if progress {
        value["params"]["_meta"] = serde_json::json!({"progressToken": "p1"});
    }
    value
}

fuzz_target!(|data: &[u8]| {
    let (seed, plan, output) = match data {
        [seed, plan, rest @ ..] => (*seed, *plan, rest.to_vec()),
        _ => return,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let server = Arc::new(Server {
            output: Mutex::new(Some(Chunked {
                data: output,
                at: 0,
                seed,
            })),
        });
        let bridge = Bridge::start_with(server, Handshake::Eager);
        let mut a = Client::new("session-a");
        let mut b = Client::new("session-b");
        let (listen, _stream) = mpsc::unbounded_channel();
        if plan & 1 != 0 {
            bridge.listen(Arc::from("session-a"), listen);
        }
        a.send(&bridge, initialize(Value::from("a0"))).await;
        b.send(&bridge, initialize(Value::from(100))).await;
        a.send(&bridge, call(Value::from("a1"), plan & 2 != 0))
            .await;
        b.send(&bridge, call(Value::from(101), plan & 4 != 0)).await;
        if plan & 8 != 0 {
            let cancel = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": "a1"}});
            a.send(&bridge, cancel).await;
        }
        // Let the server's output run to its end.
        tokio::time::sleep(Duration::from_secs(120)).await;
        if plan & 16 != 0 {
            bridge.end_session("session-b");
        }
        a.check();
        b.check();
    });
});
