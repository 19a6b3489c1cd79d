//! One client's session: what it negotiated and set, the requests in flight in both
//! directions, and what a running request may send to the client.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{LATEST_VERSION, dispatch};
use crate::jsonrpc::{self, INTERNAL_ERROR, RpcError};

/// How long a server-to-client request (sampling, elicitation) waits for its answer.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a running request sends toward the client, in order.
#[derive(Debug)]
pub enum Outbound {
    /// A notification or a server-to-client request related to the running request.
    Message(Value),
    /// The request is over: its response, or `None` when the client cancelled it
    /// (a cancelled request gets no response).
    Done(Option<Value>),
    /// End the HTTP stream now (SEP-1699 polling): the client resumes it with GET and
    /// `Last-Event-ID`. Transports without such streams ignore it.
    CloseStream,
}

pub type Outbox = mpsc::UnboundedSender<Outbound>;

/// MCP log levels, least severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler leaves the state as consistent as it was; keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One client's session: negotiated version, capabilities, settings, and the
/// requests in flight in either direction.
pub struct Session {
    pub(super) protocol_version: Mutex<&'static str>,
    pub(super) client_capabilities: Mutex<Value>,
    /// Least severe level the client wants as `notifications/message`.
    pub(super) log_level: Mutex<LogLevel>,
    pub(super) subscriptions: Mutex<HashSet<String>>,
    /// Server-to-client requests awaiting the client's response, by their id.
    pub(super) pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>,
    pub(super) next_request_id: AtomicU64,
    /// Client requests still running, by their id's JSON text, to cancel them.
    pub(super) in_flight: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Where messages that belong to no request go (stdout; the HTTP GET stream).
    pub(super) unsolicited: Outbox,
    pub(super) closed: AtomicBool,
}

impl Session {
    pub fn new(unsolicited: Outbox) -> Arc<Self> {
        Arc::new(Self {
            protocol_version: Mutex::new(LATEST_VERSION),
            client_capabilities: Mutex::new(json!({})),
            log_level: Mutex::new(LogLevel::Debug),
            subscriptions: Mutex::default(),
            pending: Mutex::default(),
            next_request_id: AtomicU64::new(1),
            in_flight: Mutex::default(),
            unsolicited,
            closed: AtomicBool::new(false),
        })
    }

    pub fn protocol_version(&self) -> &'static str {
        *lock(&self.protocol_version)
    }

    /// Runs one client request to its end; its messages and response go to `outbox`.
    pub async fn handle_request(
        self: Arc<Self>,
        id: Value,
        method: String,
        params: Option<Value>,
        outbox: Outbox,
    ) {
        let key = id.to_string();
        let (cancel, cancelled) = oneshot::channel();
        lock(&self.in_flight).insert(key.clone(), cancel);
        let ctx = RequestContext {
            progress_token: progress_token(params.as_ref()),
            session: self.clone(),
            outbox: outbox.clone(),
        };
        let response = tokio::select! {
            outcome = dispatch(&ctx, &method, params) => Some(jsonrpc::response(&id, outcome)),
            Ok(()) = cancelled => None,
        };
        lock(&self.in_flight).remove(&key);
        // The transport may be gone (client disconnected); nothing is left to tell.
        let _ = outbox.send(Outbound::Done(response));
    }

    pub fn handle_notification(&self, method: &str, params: Option<Value>) {
        match method {
            "notifications/cancelled" => {
                let request = params.as_ref().and_then(|p| p.get("requestId"));
                if let Some(id) = request
                    && let Some(cancel) = lock(&self.in_flight).remove(&id.to_string())
                {
                    let _ = cancel.send(());
                }
            }
            // initialized, roots/list_changed, progress: nothing to do.
            _ => tracing::debug!(method, "notification"),
        }
    }

    /// Completes the server-to-client request the client answered.
    pub fn handle_response(&self, id: &Value, outcome: Result<Value, RpcError>) {
        let waiter = id.as_u64().and_then(|id| lock(&self.pending).remove(&id));
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(outcome);
            }
            None => tracing::warn!(%id, "response to no request of ours"),
        }
    }

    /// The transport is gone: requests to the client can no longer be answered.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.pending).clear();
        for (_, cancel) in lock(&self.in_flight).drain() {
            let _ = cancel.send(());
        }
    }

    /// Stops waiting for client answers (stdin ended) while letting running
    /// requests finish.
    pub fn stop_client_requests(&self) {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.pending).clear();
    }
}

fn progress_token(params: Option<&Value>) -> Option<Value> {
    params?.get("_meta")?.get("progressToken").cloned()
}

/// What a handler may do while it runs: talk to the client about its request.
pub struct RequestContext {
    pub(super) session: Arc<Session>,
    outbox: Outbox,
    progress_token: Option<Value>,
}

impl RequestContext {
    fn send(&self, message: Value) {
        let _ = self.outbox.send(Outbound::Message(message));
    }

    pub fn log(&self, level: LogLevel, data: Value) {
        if level >= *lock(&self.session.log_level) {
            self.send(jsonrpc::notification(
                "notifications/message",
                json!({"level": level.as_str(), "logger": "mcp-fixture", "data": data}),
            ));
        }
    }

    /// Reports progress if the client asked for it (`_meta.progressToken`).
    pub fn progress(&self, progress: u32, total: u32, message: &str) {
        if let Some(token) = &self.progress_token {
            self.send(jsonrpc::notification(
                "notifications/progress",
                json!({"progressToken": token, "progress": progress, "total": total, "message": message}),
            ));
        }
    }

    pub fn client_supports(&self, capability: &str) -> bool {
        lock(&self.session.client_capabilities)
            .get(capability)
            .is_some()
    }

    /// Sends a request to the client on this request's stream and waits for the answer.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.session.next_request_id.fetch_add(1, Ordering::SeqCst);
        let (answer, answered) = oneshot::channel();
        if self.session.closed.load(Ordering::SeqCst) {
            return Err(RpcError::new(INTERNAL_ERROR, "the client is gone"));
        }
        lock(&self.session.pending).insert(id, answer);
        self.send(jsonrpc::request(id, method, params));
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(RpcError::new(INTERNAL_ERROR, "the client is gone")),
            Err(_) => {
                lock(&self.session.pending).remove(&id);
                Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!("no answer to {method} within {CLIENT_REQUEST_TIMEOUT:?}"),
                ))
            }
        }
    }

    pub fn close_stream(&self) {
        let _ = self.outbox.send(Outbound::CloseStream);
    }

    /// Tells the client a subscribed resource changed, outside any request's stream.
    pub fn notify_resource_updated(&self, uri: &str) -> bool {
        let subscribed = lock(&self.session.subscriptions).contains(uri);
        if subscribed {
            let _ = self
                .session
                .unsolicited
                .send(Outbound::Message(jsonrpc::notification(
                    "notifications/resources/updated",
                    json!({"uri": uri}),
                )));
        }
        subscribed
    }
}
