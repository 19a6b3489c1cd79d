//! The stdio bridge: many client sessions over one workload's stdin/stdout.
//!
//! The workload sees a single MCP client. The first `initialize` is forwarded and its
//! result remembered; later sessions are answered from it, and a restarted workload is
//! re-initialised with the same request. Request ids and progress tokens are rewritten
//! to ids unique across sessions (clients number their requests alike, and both SDKs use
//! the request id as the progress token) and mapped back on the way out; a client's
//! `notifications/cancelled` names its own request id and is mapped the same way, so it
//! can only cancel that session's requests. Messages the server starts are routed:
//! progress notifications to the request whose token they carry, server requests
//! (sampling, elicitation, roots) to the stream of the latest request still in flight,
//! other notifications to every session's listening stream. A session that ends has
//! its requests in flight cancelled at the server. If the workload dies, requests in
//! flight get a JSON-RPC error and it is restarted with exponential backoff.
//!
//! With [`Handshake::Eager`] (the Kubernetes backend) the bridge initialises the server
//! itself as soon as it is reached, so the proxy is ready only once the server has
//! answered `initialize`, and [`Bridge::link`] tells what it answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};

use super::Workload;
use crate::mcp;
use crate::reply::{code, jsonrpc_error_value};

/// Where messages for a client go: one JSON-RPC message per item.
pub type Sink = mpsc::UnboundedSender<Bytes>;

/// Why a message could not be handed to the workload.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The body is not JSON (already checked by the parser; kept for completeness).
    #[error("message is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The workload did not answer `initialize` in time.
    #[error("the MCP server did not answer initialize within {0:?}")]
    InitTimeout(Duration),
    /// The workload ended while the request was in flight.
    #[error("the MCP server is not running")]
    Gone,
    /// The workload did not answer the proxy's own request in time.
    #[error("the MCP server did not answer {method} within {timeout:?}")]
    Timeout {
        /// The request's method.
        method: String,
        /// How long the proxy waited.
        timeout: Duration,
    },
    /// The workload answered the proxy's own request with an error.
    #[error("the MCP server refused {method}: {message}")]
    Refused {
        /// The request's method.
        method: String,
        /// The error's message.
        message: String,
    },
}

/// How the bridge greets a workload it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The first client's `initialize` is the one the server sees (a local process:
    /// the server meets its first client's capabilities, as without a proxy).
    Lazy,
    /// The proxy sends `initialize` itself when the server is reached, declaring every
    /// client capability (roots, sampling, elicitation) so the server offers everything
    /// a client may use; clients are answered from its result. Readiness then means the
    /// server answered.
    Eager,
}

/// The server as the bridge last saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    /// Not reached yet, or reached and not answered `initialize` yet.
    Starting,
    /// It answered `initialize` with this result.
    Up(Value),
    /// It ended or could not be reached; why.
    Down(String),
    /// It was reached but refused `initialize` or did not answer it; why.
    Unanswered(String),
}

/// Longest wait for the server's `initialize` result.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);
/// First and largest restart delay; the delay doubles after each quick exit.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A workload that ran this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// The id of the `initialize` replayed to a restarted workload (no request of a
/// client gets a string id from the bridge).
const REPLAY_ID: &str = "thv-proxy-replay";

/// Longest line accepted from the workload; longer output is dropped with a log line.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// How many bytes of queued messages the writer gathers before it writes them: kube
/// sends the attach stream's stdin in frames of at most 4 KiB (one read of its pipe), so
/// a larger batch saves no frame.
const BATCH: usize = 4096;

/// A request the workload has not answered yet, under the id the workload saw (which
/// is also its progress token there, when the client asked for progress).
struct Pending {
    session: Arc<str>,
    client_id: Value,
    sink: Sink,
    /// The client's own progress token.
    progress_token: Option<Value>,
}

#[derive(Default)]
struct Routes {
    next_id: u64,
    pending: HashMap<u64, Pending>,
    /// Listening streams (GET on streamable HTTP, the SSE stream), by session.
    streams: HashMap<Arc<str>, Sink>,
    /// The stream of the request sent last, for requests the server starts.
    recent: Option<Sink>,
}

/// The cached answer to `initialize`.
struct Initialized {
    request: Value,
    result: Value,
}

/// Many sessions over one workload.
pub struct Bridge {
    outbound: mpsc::UnboundedSender<Bytes>,
    routes: Mutex<Routes>,
    init: tokio::sync::Mutex<Option<Arc<Initialized>>>,
    initialized_forwarded: AtomicBool,
    running: AtomicBool,
    /// Told (with the answer) when a restarted workload answered the replayed
    /// `initialize`.
    replay_answered: Mutex<Option<oneshot::Sender<Value>>>,
    handshake: Handshake,
    link: watch::Sender<Link>,
}

impl Bridge {
    /// Starts the workload under supervision and returns the bridge to it; the first
    /// client's `initialize` is the server's ([`Handshake::Lazy`]).
    pub fn start(workload: Arc<dyn Workload>) -> Arc<Self> {
        Self::start_with(workload, Handshake::Lazy)
    }

    /// Starts the workload under supervision, greeting it as `handshake` says.
    pub fn start_with(workload: Arc<dyn Workload>, handshake: Handshake) -> Arc<Self> {
        let (outbound, rx) = mpsc::unbounded_channel();
        let bridge = Arc::new(Self {
            outbound,
            routes: Mutex::new(Routes::default()),
            init: tokio::sync::Mutex::new(None),
            initialized_forwarded: AtomicBool::new(false),
            running: AtomicBool::new(false),
            replay_answered: Mutex::new(None),
            handshake,
            link: watch::Sender::new(Link::Starting),
        });
        tokio::spawn(supervise(Arc::downgrade(&bridge), workload, rx));
        bridge
    }

    /// Whether the workload is running now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Whether clients can be served: the workload runs and, with
    /// [`Handshake::Eager`], has answered `initialize`.
    pub fn is_ready(&self) -> bool {
        self.is_running()
            && (self.handshake == Handshake::Lazy || matches!(*self.link.borrow(), Link::Up(_)))
    }

    /// The server's state, as it changes.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// Sends a request of the proxy's own (not a client's) and returns its result.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BridgeError> {
        let (sink, mut rx) = mpsc::unbounded_channel();
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        let session: Arc<str> = Arc::from(INTERNAL_SESSION);
        self.request(&session, request, sink);
        let reply = match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(BridgeError::Gone),
            Err(_) => {
                self.end_session(INTERNAL_SESSION);
                return Err(BridgeError::Timeout {
                    method: method.to_owned(),
                    timeout,
                });
            }
        };
        let mut value: Value = serde_json::from_slice(&reply)?;
        if let Some(error) = value.get("error") {
            return Err(BridgeError::Refused {
                method: method.to_owned(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
            });
        }
        Ok(value
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Routing tables stay consistent across a panic in another request.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session's listening stream (replacing an earlier one).
    pub fn listen(&self, session: Arc<str>, sink: Sink) {
        self.routes().streams.insert(session, sink);
    }

    /// Forgets a session's listening stream, unless another replaced it since: a client
    /// that reconnects its stream opens the new one before the old one is seen closed.
    pub fn unlisten(&self, session: &str, sink: &mpsc::WeakUnboundedSender<Bytes>) {
        let mut routes = self.routes();
        let current = routes.streams.get(session);
        if current.is_some_and(|current| sink.upgrade().is_some_and(|s| s.same_channel(current))) {
            routes.streams.remove(session);
        }
    }

    /// Ends a session: forgets its listening stream and cancels its requests in flight
    /// at the workload (their answers would reach no one).
    pub fn end_session(&self, session: &str) {
        let abandoned: Vec<u64> = {
            let mut routes = self.routes();
            routes.streams.remove(session);
            let ids: Vec<u64> = routes
                .pending
                .iter()
                .filter(|(_, p)| &*p.session == session)
                .map(|(id, _)| *id)
                .collect();
            for id in &ids {
                routes.pending.remove(id);
            }
            ids
        };
        for id in abandoned {
            self.write(&serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "the client's session ended"},
            }));
        }
    }

    /// Sends the messages of one POST body of `session`; responses to its requests go
    /// to `sink`. Returns how many responses will arrive there.
    pub async fn send(
        &self,
        session: &str,
        body: &mcp::Body,
        bytes: &[u8],
        sink: &Sink,
    ) -> Result<usize, BridgeError> {
        let session: Arc<str> = Arc::from(session);
        let values: Vec<Value> = if body.batch {
            serde_json::from_slice(bytes)?
        } else {
            vec![serde_json::from_slice(bytes)?]
        };
        let mut expected = 0;
        for (message, value) in body.messages.iter().zip(values) {
            match message.method() {
                Some("initialize") if message.id.is_some() => {
                    let reply = self.initialize(&session, value).await?;
                    let _ = sink.send(reply);
                    expected += 1;
                }
                Some("notifications/initialized") => {
                    if !self.initialized_forwarded.swap(true, Ordering::SeqCst) {
                        self.write(&value);
                    }
                }
                Some("notifications/cancelled") => self.cancel(&session, value),
                _ if message.is_request() => {
                    self.request(&session, value, sink.clone());
                    expected += 1;
                }
                _ => self.write(&value),
            }
        }
        Ok(expected)
    }

    fn write(&self, value: &Value) {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        // The receiver lives as long as the supervisor, which lives as long as the bridge.
        let _ = self.outbound.send(Bytes::from(line));
    }

    fn request(&self, session: &Arc<str>, mut value: Value, sink: Sink) {
        let client_id = value.get("id").cloned().unwrap_or(Value::Null);
        let token = value.pointer_mut("/params/_meta/progressToken");
        let progress_token = token.as_ref().map(|t| (**t).clone());
        {
            let mut routes = self.routes();
            routes.next_id += 1;
            let id = routes.next_id;
            if let Some(token) = token {
                *token = Value::from(id);
            }
            routes.recent = Some(sink.clone());
            routes.pending.insert(
                id,
                Pending {
                    session: session.clone(),
                    client_id,
                    sink,
                    progress_token,
                },
            );
            value["id"] = Value::from(id);
        }
        self.write(&value);
    }

    /// Forwards a client's `notifications/cancelled` with the id the workload knows its
    /// request by; drops it when that session has no such request in flight.
    fn cancel(&self, session: &str, mut value: Value) {
        let Some(request_id) = value.pointer_mut("/params/requestId") else {
            return;
        };
        let found = self
            .routes()
            .pending
            .iter()
            .find(|(_, p)| &*p.session == session && p.client_id == *request_id)
            .map(|(id, _)| *id);
        match found {
            Some(id) => {
                *request_id = Value::from(id);
                self.write(&value);
            }
            None => tracing::debug!(
                %request_id,
                "cancellation of no request of this session in flight; dropped"
            ),
        }
    }

    /// Answers `initialize`: forwarded the first time, from the cache afterwards.
    async fn initialize(&self, session: &Arc<str>, request: Value) -> Result<Bytes, BridgeError> {
        let client_id = request.get("id").cloned().unwrap_or(Value::Null);
        let mut cached = self.init.lock().await;
        if let Some(init) = cached.as_ref() {
            let mut result = init.result.clone();
            if let Some(version) = session_version(&request, &result) {
                result["protocolVersion"] = Value::from(version);
            }
            let reply = serde_json::json!({"jsonrpc": "2.0", "id": client_id, "result": result});
            return Ok(Bytes::from(reply.to_string()));
        }
        let (sink, mut rx) = mpsc::unbounded_channel();
        self.request(session, request.clone(), sink);
        let reply = tokio::time::timeout(INIT_TIMEOUT, rx.recv())
            .await
            .map_err(|_| BridgeError::InitTimeout(INIT_TIMEOUT))?
            .ok_or(BridgeError::Gone)?;
        if let Ok(value) = serde_json::from_slice::<Value>(&reply)
            && let Some(result) = value.get("result")
        {
            *cached = Some(Arc::new(Initialized {
                request,
                result: result.clone(),
            }));
            self.link.send_replace(Link::Up(result.clone()));
        }
        Ok(reply)
    }

    /// Routes one line the workload wrote.
    fn dispatch(&self, line: &[u8]) {
        // JSON-RPC over MCP is UTF-8, and lines pass to clients as they are: the peek
        // below skips what it does not read without checking it.
        if std::str::from_utf8(line).is_err() {
            tracing::warn!(line = %String::from_utf8_lossy(&line[..line.len().min(200)]), "MCP server wrote a line that is not UTF-8; dropped");
            return;
        }
        let Some(peek) = mcp::peek_server_message(line) else {
            tracing::warn!(line = %String::from_utf8_lossy(&line[..line.len().min(200)]), "MCP server wrote a line that is not JSON-RPC; dropped");
            return;
        };
        match (&peek.method, &peek.id) {
            (None, Some(id)) => self.respond(line, id),
            (Some(_), Some(_)) => {
                // A server request during a tool call belongs to that call: the latest
                // request still in flight is the best guess stdio allows.
                let routes = self.routes();
                let target = routes
                    .pending
                    .iter()
                    .filter(|(_, p)| !p.sink.is_closed())
                    .max_by_key(|(id, _)| **id)
                    .map(|(_, p)| &p.sink)
                    .or(routes.recent.as_ref().filter(|s| !s.is_closed()))
                    .or_else(|| routes.streams.values().find(|s| !s.is_closed()));
                match target {
                    Some(sink) => {
                        let _ = sink.send(Bytes::copy_from_slice(line));
                    }
                    None => {
                        drop(routes);
                        let id = peek.id.as_deref();
                        self.write(&jsonrpc_error_value(
                            id,
                            code::INTERNAL_ERROR,
                            "no client connected to answer this request",
                        ));
                    }
                }
            }
            (Some(_), None) => {
                if let Some(token) = &peek.progress_token
                    && self.progress(line, token)
                {
                    return;
                }
                let mut routes = self.routes();
                routes.streams.retain(|_, s| !s.is_closed());
                let message = Bytes::copy_from_slice(line);
                if routes.streams.is_empty() {
                    if let Some(sink) = &routes.recent {
                        let _ = sink.send(message);
                    }
                } else {
                    for sink in routes.streams.values() {
                        let _ = sink.send(message.clone());
                    }
                }
            }
            (None, None) => {
                tracing::warn!("MCP server wrote a message without id or method; dropped");
            }
        }
    }

    /// Sends a progress notification to the request whose token (the id the workload
    /// knows it by) it carries, with the client's own token; false when there is none.
    fn progress(&self, line: &[u8], token: &str) -> bool {
        let routes = self.routes();
        let Some(pending) = token
            .parse::<u64>()
            .ok()
            .and_then(|id| routes.pending.get(&id))
        else {
            return false;
        };
        let Some(client_token) = &pending.progress_token else {
            return false;
        };
        let Ok(mut value) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        if let Some(token) = value.pointer_mut("/params/progressToken") {
            *token = client_token.clone();
        }
        let _ = pending.sink.send(Bytes::from(value.to_string()));
        true
    }

    fn respond(&self, line: &[u8], id: &str) {
        if id.trim_matches('"') == REPLAY_ID {
            let answered = self
                .replay_answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(answered) = answered {
                let _ = answered.send(serde_json::from_slice(line).unwrap_or(Value::Null));
            }
            return;
        }
        let pending = id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.routes().pending.remove(&id));
        let Some(pending) = pending else {
            tracing::debug!(
                id,
                "response to no request in flight (a replayed initialize, or a late answer); dropped"
            );
            return;
        };
        let mut value = match serde_json::from_slice::<Value>(line) {
            Ok(value) => value,
            // Peeked but not readable in full (a lone surrogate escape, say): the client
            // is told, not left waiting for an answer that will not come.
            Err(error) => jsonrpc_error_value(
                None,
                code::INTERNAL_ERROR,
                &format!("the MCP server's answer is not valid JSON: {error}"),
            ),
        };
        value["id"] = pending.client_id;
        let _ = pending.sink.send(Bytes::from(value.to_string()));
    }

    /// Fails every request in flight: the workload ended.
    fn fail_pending(&self, why: &str) {
        let pending: Vec<Pending> = {
            let mut routes = self.routes();
            routes.pending.drain().map(|(_, p)| p).collect()
        };
        for p in pending {
            let error = serde_json::json!({
                "jsonrpc": "2.0",
                "id": p.client_id,
                "error": {"code": code::UNAVAILABLE, "message": format!("the MCP server {why}")},
            });
            let _ = p.sink.send(Bytes::from(error.to_string()));
        }
    }

    /// What a restarted workload must receive before anything else: the cached
    /// initialize and, once it is answered, the initialized notification.
    async fn replay(&self) -> Option<Replay> {
        // An initialize in flight holds the lock while it waits for this workload's
        // answer: waiting for the lock here would deadlock, and that initialize is
        // already queued for the workload, so there is nothing to replay.
        let Ok(cached) = self.init.try_lock() else {
            return None;
        };
        let mut request = match (cached.clone(), self.handshake) {
            (Some(init), _) => init.request.clone(),
            (None, Handshake::Eager) => {
                // The proxy's own initialize: the server must not see a client's
                // `initialized` as a second one.
                self.initialized_forwarded.store(true, Ordering::SeqCst);
                eager_initialize()
            }
            (None, Handshake::Lazy) => {
                self.initialized_forwarded.store(false, Ordering::SeqCst);
                return None;
            }
        };
        drop(cached);
        request["id"] = Value::from(REPLAY_ID);
        let initialized =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (answered_tx, answered) = oneshot::channel();
        *self
            .replay_answered
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(answered_tx);
        Some(Replay {
            initialize: Bytes::from(format!("{request}\n")),
            initialized: Bytes::from(format!("{initialized}\n")),
            request,
            answered,
        })
    }
}

impl Bridge {
    /// What the server answered the replayed (or the proxy's own) `initialize`: the
    /// result is cached for the clients when none is yet, and the link is up; an error
    /// takes it down.
    fn answered_initialize(&self, request: &Value, response: Option<Value>) {
        let Some(mut response) = response else {
            self.link.send_replace(Link::Unanswered(format!(
                "the MCP server did not answer initialize within {INIT_TIMEOUT:?}"
            )));
            return;
        };
        let Some(result) = response.get_mut("result").map(Value::take) else {
            let message = response
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("an answer that is neither a result nor an error");
            self.link.send_replace(Link::Unanswered(format!(
                "the MCP server refused initialize: {message}"
            )));
            return;
        };
        // A client's initialize in flight holds the lock and caches its own answer.
        if let Ok(mut cached) = self.init.try_lock()
            && cached.is_none()
        {
            let mut request = request.clone();
            if let Some(object) = request.as_object_mut() {
                object.remove("id");
            }
            *cached = Some(Arc::new(Initialized {
                request,
                result: result.clone(),
            }));
        }
        self.link.send_replace(Link::Up(result));
    }
}

/// The proxy's own `initialize` ([`Handshake::Eager`]): the newest protocol version the
/// proxy knows and every client capability, so the server offers all it has.
fn eager_initialize() -> Value {
    let newest = crate::transport::PROTOCOL_VERSIONS
        .iter()
        .max()
        .copied()
        .unwrap_or("2025-06-18");
    serde_json::json!({
        "jsonrpc": "2.0",
        "method": "initialize",
        "params": {
            "protocolVersion": newest,
            "capabilities": {"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}},
            "clientInfo": {"name": "thv-proxyrunner", "version": env!("CARGO_PKG_VERSION")},
        },
    })
}

/// The session id of the proxy's own requests ([`Bridge::call`]).
const INTERNAL_SESSION: &str = "thv-proxy-internal";

/// The handshake replayed to a restarted workload. `initialized` waits for the answer
/// to `initialize`, as a client's would: servers read the client's capabilities when
/// `initialized` arrives (server-everything registers its sampling tool then) and may
/// not have them yet if both arrive together.
struct Replay {
    initialize: Bytes,
    initialized: Bytes,
    request: Value,
    answered: oneshot::Receiver<Value>,
}

/// The protocol version a later session gets, when not the one the workload
/// negotiated: the version the client asked for, if the proxy knows it and it is older
/// (a server answers a version it supports with that version; the workload, having
/// agreed to a newer one, speaks a superset). An unknown or newer request gets the
/// negotiated version, as from a server that does not support it.
fn session_version<'a>(request: &'a Value, result: &Value) -> Option<&'a str> {
    let asked = request.pointer("/params/protocolVersion")?.as_str()?;
    let negotiated = result.get("protocolVersion")?.as_str()?;
    (crate::transport::PROTOCOL_VERSIONS.contains(&asked) && asked < negotiated).then_some(asked)
}

async fn supervise(
    bridge: std::sync::Weak<Bridge>,
    workload: Arc<dyn Workload>,
    mut outbound: mpsc::UnboundedReceiver<Bytes>,
) {
    let name = workload.describe();
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        match workload.start().await {
            Ok(attached) => {
                let Some(b) = bridge.upgrade() else { return };
                tracing::info!(workload = %name, "MCP server started");
                b.running.store(true, Ordering::Relaxed);
                let replay = b.replay().await;
                drop(b);
                if let Some(stderr) = attached.stderr {
                    tokio::spawn(drain_stderr(stderr, name.clone()));
                }
                let why = run(
                    &bridge,
                    attached.stdin,
                    attached.stdout,
                    attached.exited,
                    &mut outbound,
                    replay,
                )
                .await;
                let Some(b) = bridge.upgrade() else { return };
                b.running.store(false, Ordering::Relaxed);
                b.link
                    .send_replace(Link::Down(format!("the MCP server ended: {why}")));
                tracing::warn!(workload = %name, why = %why, "MCP server ended; restarting");
                b.fail_pending(&why);
            }
            Err(e) => {
                if let Some(b) = bridge.upgrade() {
                    b.link.send_replace(Link::Down(e.to_string()));
                }
                tracing::error!(workload = %name, error = %e, "MCP server could not be started")
            }
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff = BACKOFF_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if bridge.strong_count() == 0 {
            return;
        }
    }
}

/// Pumps messages both ways until the workload ends; returns how it ended.
async fn run(
    bridge: &std::sync::Weak<Bridge>,
    stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    stdout: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    exited: futures::future::BoxFuture<'static, String>,
    outbound: &mut mpsc::UnboundedReceiver<Bytes>,
    replay: Option<Replay>,
) -> String {
    let mut writer = BufWriter::new(stdin);
    let write = async {
        if let Some(replay) = replay {
            writer.write_all(&replay.initialize).await?;
            writer.flush().await?;
            let answer = tokio::time::timeout(INIT_TIMEOUT, replay.answered)
                .await
                .ok()
                .and_then(Result::ok);
            if answer.is_none() {
                tracing::warn!("the MCP server did not answer initialize in time; going on");
            }
            if let Some(b) = bridge.upgrade() {
                b.answered_initialize(&replay.request, answer);
            }
            writer.write_all(&replay.initialized).await?;
        }
        writer.flush().await?;
        while let Some(line) = outbound.recv().await {
            writer.write_all(&line).await?;
            let mut batch = line.len();
            // Batch what is already queued into one write, after letting the sessions
            // that are ready to send queue theirs too, for as long as they do: on
            // Kubernetes every write is a frame that the API server, the kubelet and the
            // runtime relay on their own (docs/performance.md, row 3).
            loop {
                tokio::task::yield_now().await;
                let before = batch;
                while let Ok(line) = outbound.try_recv() {
                    batch += line.len();
                    writer.write_all(&line).await?;
                }
                if batch == before || batch >= BATCH {
                    break;
                }
            }
            writer.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let read = async {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if line.len() > MAX_LINE {
                tracing::warn!(
                    bytes = line.len(),
                    "MCP server wrote an oversized line; dropped"
                );
                continue;
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let Some(b) = bridge.upgrade() else {
                return Ok(());
            };
            b.dispatch(text);
        }
    };
    tokio::select! {
        why = exited => why,
        result = write => match result {
            Ok(()) => "stopped: the proxy is shutting down".to_owned(),
            Err(e) => format!("stdin closed: {e}"),
        },
        result = read => {
            match result {
                Ok(()) => "closed its stdout".to_owned(),
                Err(e) => format!("stdout failed: {e}"),
            }
        }
    }
}

async fn drain_stderr(stderr: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>, name: String) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "mcp_server", workload = %name, "{line}");
    }
}

#[cfg(test)]
pub(crate) mod scripted;
#[cfg(test)]
mod tests;
