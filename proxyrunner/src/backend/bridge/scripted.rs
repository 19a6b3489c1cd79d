//! A scripted workload for tests: the test reads what the workload would read and writes
//! its answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};

use super::{Bridge, Handshake};
use crate::backend::{Attached, Workload};

/// A workload whose other ends the test holds; it starts once.
struct Scripted(Mutex<Option<(DuplexStream, DuplexStream)>>);

impl Workload for Scripted {
    fn start(&self) -> futures::future::BoxFuture<'_, std::io::Result<Attached>> {
        let ends = self.0.lock().expect("not poisoned").take();
        async move {
            let Some((stdin, stdout)) = ends else {
                return futures::future::pending().await;
            };
            Ok(Attached {
                stdin: Box::pin(stdin),
                stdout: Box::pin(stdout),
                stderr: None,
                exited: futures::future::pending().boxed(),
            })
        }
        .boxed()
    }

    fn describe(&self) -> String {
        "scripted".to_owned()
    }
}

/// The workload's side: what it reads, and where it writes.
pub(crate) struct Server {
    pub(crate) reads: Lines<BufReader<DuplexStream>>,
    pub(crate) writes: DuplexStream,
}

impl Server {
    pub(crate) async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(5), self.reads.next_line())
            .await
            .expect("the bridge wrote a line within 5 s")
            .expect("reading the workload's stdin")
            .expect("the workload's stdin is open");
        serde_json::from_str(&line).expect("the bridge writes JSON lines")
    }

    pub(crate) async fn write(&mut self, value: Value) {
        let mut line = value.to_string();
        line.push('\n');
        self.writes
            .write_all(line.as_bytes())
            .await
            .expect("writing the workload's stdout");
    }
}

pub(crate) fn start() -> (Arc<Bridge>, Server) {
    start_with(Handshake::Lazy)
}

pub(crate) fn start_with(handshake: Handshake) -> (Arc<Bridge>, Server) {
    let (stdin, server_reads) = tokio::io::duplex(64 * 1024);
    let (server_writes, stdout) = tokio::io::duplex(64 * 1024);
    let workload = Arc::new(Scripted(Mutex::new(Some((stdin, stdout)))));
    let bridge = Bridge::start_with(workload, handshake);
    let server = Server {
        reads: BufReader::new(server_reads).lines(),
        writes: server_writes,
    };
    (bridge, server)
}
