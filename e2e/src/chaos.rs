//! The chaos suite's traffic and its table. MCP sessions keep calling a tool while a
//! fault is injected, and every request ends in exactly one of:
//! - **answered**: a JSON-RPC result (or the 202 of a notification);
//! - **failed**: an error the client saw, an HTTP status or a JSON-RPC error (a client
//!   re-initialises on 404 and retries on 5xx);
//! - **not sent**: the connection was refused, or closed before the request went out
//!   (hyper hands the request back), so the server never saw it and the client retries;
//! - **lost**: sent, and no answer at all (connection reset after sending, a truncated
//!   body, or nothing within [`ANSWER_WITHIN`]). The suite requires 0.
//!
//! Each session is its own HTTP/1.1 connection (hyper's connection API, as an MCP client
//! holds one), reopened after any connection error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// A request not answered within this long is lost.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What happened to the requests of one scenario.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    pub not_sent: u64,
    pub lost: u64,
    /// Failures, not-sent and lost requests by cause (`HTTP 404`, `JSON-RPC -32603`,
    /// `connect: …`), for the table's notes.
    pub causes: BTreeMap<String, u64>,
    /// When the last request that was not answered ended.
    pub last_trouble: Option<Instant>,
    /// When the last answered request ended.
    pub last_answer: Option<Instant>,
    /// How long each answered request took.
    pub latencies: Vec<Duration>,
    /// The first response body of each failure cause (up to 300 bytes), to tell whose
    /// error it was.
    pub samples: BTreeMap<String, String>,
}

impl Counts {
    fn record(&mut self, outcome: &Outcome, took: Duration) {
        let now = Instant::now();
        match outcome {
            Outcome::Answered => {
                self.sent += 1;
                self.answered += 1;
                self.last_answer = Some(now);
                self.latencies.push(took);
                return;
            }
            Outcome::Failed(cause, body) => {
                self.sent += 1;
                self.failed += 1;
                *self.causes.entry(cause.clone()).or_default() += 1;
                if !self.samples.contains_key(cause) {
                    let text = String::from_utf8_lossy(body);
                    let end = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
                    self.samples.insert(cause.clone(), text[..end].to_owned());
                }
            }
            Outcome::NotSent(cause) => {
                self.not_sent += 1;
                *self.causes.entry(format!("not sent: {cause}")).or_default() += 1;
            }
            Outcome::Lost(cause) => {
                self.sent += 1;
                self.lost += 1;
                *self.causes.entry(format!("lost: {cause}")).or_default() += 1;
            }
        }
        self.last_trouble = Some(now);
    }

    /// From `injected` to the last request that was not answered, when requests were
    /// answered after it: the time the clients were disturbed. `None` when nothing was.
    pub fn recovery(&self, injected: Instant) -> Option<Duration> {
        let trouble = self.last_trouble.filter(|t| *t > injected)?;
        Some(trouble - injected)
    }

    /// Whether requests were answered after the last trouble (the service came back).
    pub fn recovered(&self) -> bool {
        match (self.last_trouble, self.last_answer) {
            (None, _) => true,
            (Some(trouble), Some(answer)) => answer > trouble,
            (Some(_), None) => false,
        }
    }

    /// The `q` quantile (0..=1) of the answered requests' latencies.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(last))
            .copied()
    }

    /// Adds the counts of another part of the same scenario (latencies aside).
    pub fn absorb(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.failed += other.failed;
        self.not_sent += other.not_sent;
        self.lost += other.lost;
        for (cause, n) in &other.causes {
            *self.causes.entry(cause.clone()).or_default() += n;
        }
        for (cause, body) in &other.samples {
            self.samples
                .entry(cause.clone())
                .or_insert_with(|| body.clone());
        }
        self.last_trouble = self.last_trouble.max(other.last_trouble);
        self.last_answer = self.last_answer.max(other.last_answer);
    }

    /// `"; "` and the [`Counts::top_causes`], or nothing when there were none: the end
    /// of a notes cell.
    pub fn causes_note(&self) -> String {
        if self.causes.is_empty() {
            String::new()
        } else {
            format!("; {}", self.top_causes())
        }
    }

    /// The three most frequent causes, for a table cell.
    pub fn top_causes(&self) -> String {
        let mut causes: Vec<_> = self.causes.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1));
        causes
            .iter()
            .take(3)
            .map(|(cause, n)| format!("{n}× {cause}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

enum Outcome {
    Answered,
    /// A cause and the response body.
    Failed(String, Bytes),
    NotSent(String),
    Lost(String),
}

/// Sessions calling a tool in a loop until [`Traffic::finish`].
pub struct Traffic {
    stop: watch::Sender<bool>,
    counts: Arc<Mutex<Counts>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// `sessions` sessions against `addr` (`ip:port`) at `path`, each calling `call` (a
    /// `tools/call` params object) back to back.
    pub fn start(addr: &str, path: &str, sessions: usize, call: serde_json::Value) -> Self {
        Self::start_as(addr, path, sessions, call, None)
    }

    /// [`Traffic::start`] with an `Authorization` header on every request.
    pub fn start_as(
        addr: &str,
        path: &str,
        sessions: usize,
        call: serde_json::Value,
        authorization: Option<String>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let workers = (0..sessions)
            .map(|_| {
                let client = Client {
                    addr: addr.to_owned(),
                    path: path.to_owned(),
                    call: call.clone(),
                    authorization: authorization.clone(),
                    connection: None,
                    session: None,
                    next_id: 1,
                };
                tokio::spawn(client.run(counts.clone(), stopped.clone()))
            })
            .collect();
        Self {
            stop,
            counts,
            workers,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Stops after each session's current request and returns the counts.
    pub async fn finish(self) -> Counts {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

struct Client {
    addr: String,
    path: String,
    call: serde_json::Value,
    authorization: Option<String>,
    connection: Option<SendRequest<Full<Bytes>>>,
    session: Option<String>,
    next_id: u64,
}

impl Client {
    async fn run(mut self, counts: Arc<Mutex<Counts>>, stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let started = Instant::now();
            let outcome = self.step().await;
            let took = started.elapsed();
            let pause = !matches!(outcome, Outcome::Answered);
            if let Ok(mut counts) = counts.lock() {
                counts.record(&outcome, took);
            }
            if pause {
                // As a client would back off before retrying.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// One request: `initialize` (then `notifications/initialized`) when the client has
    /// no session, else the tool call.
    async fn step(&mut self) -> Outcome {
        if self.connection.is_none() {
            match connect(&self.addr).await {
                Ok(sender) => self.connection = Some(sender),
                Err(cause) => return Outcome::NotSent(cause),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        if self.session.is_none() {
            let initialize = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "thv-chaos", "version": "1"}}});
            let (outcome, session) = self.send(&initialize).await;
            if matches!(outcome, Outcome::Answered) {
                self.session = session;
                let initialized =
                    serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                return self.send(&initialized).await.0;
            }
            return outcome;
        }
        let call = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": self.call});
        self.send(&call).await.0
    }

    /// Sends one message; its outcome and the response's session id.
    async fn send(&mut self, message: &serde_json::Value) -> (Outcome, Option<String>) {
        let Some(sender) = self.connection.as_mut() else {
            return (Outcome::NotSent("no connection".to_owned()), None);
        };
        if sender.ready().await.is_err() {
            self.connection = None;
            return (
                Outcome::NotSent("connection closed before sending".to_owned()),
                None,
            );
        }
        let mut request = hyper::Request::post(self.path.as_str())
            .header("host", self.addr.as_str())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session.as_str());
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization.as_str());
        }
        let Ok(request) = request.body(Full::new(Bytes::from(message.to_string()))) else {
            return (Outcome::NotSent("building the request".to_owned()), None);
        };
        let exchange = async {
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut error) => {
                    return if error.take_message().is_some() {
                        Err(Outcome::NotSent(format!("{}", error.error())))
                    } else {
                        Err(Outcome::Lost(format!("{}", error.error())))
                    };
                }
            };
            let status = response.status();
            let closes = response
                .headers()
                .get("connection")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Outcome::Lost(format!("reading the body: {e}")))?
                .to_bytes();
            Ok((status, closes, session, body))
        };
        let (status, closes, session, body) =
            match tokio::time::timeout(ANSWER_WITHIN, exchange).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(outcome)) => {
                    self.connection = None;
                    return (outcome, None);
                }
                Err(_) => {
                    self.connection = None;
                    return (
                        Outcome::Lost(format!("no answer within {ANSWER_WITHIN:?}")),
                        None,
                    );
                }
            };
        if closes {
            self.connection = None;
        }
        let outcome = classify(status, &body, message.get("id").is_some());
        if status == hyper::StatusCode::NOT_FOUND || status == hyper::StatusCode::BAD_REQUEST {
            // The session is gone (its pod or proxy replica): initialise again.
            self.session = None;
        }
        (outcome, session)
    }
}

fn classify(status: hyper::StatusCode, body: &[u8], expects_answer: bool) -> Outcome {
    if !status.is_success() {
        return Outcome::Failed(
            format!("HTTP {}", status.as_u16()),
            Bytes::copy_from_slice(body),
        );
    }
    if !expects_answer {
        return Outcome::Answered;
    }
    // A JSON body, or the `data:` lines of an event stream; the last message with an id
    // is the answer.
    let text = String::from_utf8_lossy(body);
    let messages: Vec<serde_json::Value> = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).into_iter().collect()
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    };
    match messages.iter().rev().find(|m| m.get("id").is_some()) {
        Some(m) if m.get("result").is_some() => Outcome::Answered,
        Some(m) => Outcome::Failed(
            format!(
                "JSON-RPC {}",
                m["error"]["code"].as_i64().unwrap_or_default()
            ),
            Bytes::copy_from_slice(body),
        ),
        None => Outcome::Lost(format!("HTTP {} without an answer", status.as_u16())),
    }
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect: timed out".to_owned())?
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One row of the table.
pub struct Row {
    /// What was injected.
    pub scenario: String,
    pub counts: Counts,
    /// Time to recovery, or what stands for it in this scenario.
    pub recovery: String,
    pub notes: String,
}

/// The table, as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | sent | answered | failed (error seen) | not sent (refused) | lost | recovery | notes |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let c = &row.counts;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} |\n",
            row.scenario, c.sent, c.answered, c.failed, c.not_sent, c.lost, row.recovery, row.notes
        ));
    }
    out
}
