//! The MCP server behind both transports: one session's state, what a running request
//! may send to the client, and the dispatch of each method.
//!
//! A transport hands each client request to [`Session::handle_request`] together with
//! an [`Outbox`]; everything the request produces (notifications, requests to the
//! client, and finally its response) arrives there in order, and the transport decides
//! where it goes (stdout, a JSON body, an SSE stream).

mod completion;
mod media;
mod prompts;
mod resources;
mod tools;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::jsonrpc::{self, INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError};

/// Protocol revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];

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
    protocol_version: Mutex<&'static str>,
    client_capabilities: Mutex<Value>,
    /// Least severe level the client wants as `notifications/message`.
    log_level: Mutex<LogLevel>,
    subscriptions: Mutex<HashSet<String>>,
    /// Server-to-client requests awaiting the client's response, by their id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>,
    next_request_id: AtomicU64,
    /// Client requests still running, by their id's JSON text, to cancel them.
    in_flight: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Where messages that belong to no request go (stdout; the HTTP GET stream).
    unsolicited: Outbox,
    closed: AtomicBool,
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
    session: Arc<Session>,
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

/// Reads `params` as `T`; absent params read as `{}`.
pub(crate) fn parse_params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(params.unwrap_or_else(|| json!({})))
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

async fn dispatch(
    ctx: &RequestContext,
    method: &str,
    params: Option<Value>,
) -> Result<Value, RpcError> {
    match method {
        "initialize" => Ok(initialize(&ctx.session, params)?),
        "ping" => Ok(json!({})),
        "logging/setLevel" => {
            #[derive(Deserialize)]
            struct SetLevel {
                level: LogLevel,
            }
            let SetLevel { level } = parse_params(params)?;
            *lock(&ctx.session.log_level) = level;
            Ok(json!({}))
        }
        "tools/list" => Ok(tools::list()),
        "tools/call" => tools::call(ctx, params).await,
        "resources/list" => Ok(resources::list()),
        "resources/templates/list" => Ok(resources::templates()),
        "resources/read" => resources::read(params),
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = resources::subscription_uri(params)?;
            let mut subscriptions = lock(&ctx.session.subscriptions);
            if method == "resources/subscribe" {
                subscriptions.insert(uri);
            } else {
                subscriptions.remove(&uri);
            }
            Ok(json!({}))
        }
        "prompts/list" => Ok(prompts::list()),
        "prompts/get" => prompts::get(params),
        "completion/complete" => completion::complete(params),
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

fn initialize(session: &Session, params: Option<Value>) -> Result<Value, RpcError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Initialize {
        protocol_version: String,
        #[serde(default)]
        capabilities: Value,
    }
    let request: Initialize = parse_params(params)?;
    // Answer with the client's version when we speak it, else with our latest.
    let version = SUPPORTED_VERSIONS
        .into_iter()
        .find(|v| *v == request.protocol_version)
        .unwrap_or(LATEST_VERSION);
    *lock(&session.protocol_version) = version;
    *lock(&session.client_capabilities) = request.capabilities;
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": false},
            "prompts": {"listChanged": false},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {
            "name": "mcp-fixture",
            "title": "ToolHive MCP test fixture",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "A test server: every tool, resource and prompt exists to exercise one part of MCP.",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one request on a fresh session; returns everything sent to the client.
    async fn run(session: &Arc<Session>, method: &str, params: Value) -> Vec<Outbound> {
        let (outbox, mut received) = mpsc::unbounded_channel();
        session
            .clone()
            .handle_request(json!(7), method.into(), Some(params), outbox)
            .await;
        let mut sent = Vec::new();
        while let Ok(item) = received.try_recv() {
            sent.push(item);
        }
        sent
    }

    fn session() -> Arc<Session> {
        Session::new(mpsc::unbounded_channel().0)
    }

    fn final_response(sent: &[Outbound]) -> &Value {
        match sent.last() {
            Some(Outbound::Done(Some(response))) => response,
            other => panic!("expected a final response, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn initialize_echoes_a_supported_version_and_falls_back_to_the_latest() {
        let session = session();
        let params = json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
        let sent = run(&session, "initialize", params).await;
        assert_eq!(
            final_response(&sent)["result"]["protocolVersion"],
            "2025-03-26"
        );
        let params = json!({"protocolVersion": "1999-01-01", "capabilities": {}});
        let sent = run(&session, "initialize", params).await;
        assert_eq!(
            final_response(&sent)["result"]["protocolVersion"],
            LATEST_VERSION
        );
    }

    #[tokio::test]
    async fn unknown_methods_are_method_not_found() {
        let sent = run(&session(), "tools/frobnicate", json!({})).await;
        assert_eq!(final_response(&sent)["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(final_response(&sent)["id"], 7);
    }

    #[tokio::test]
    async fn log_notifications_respect_the_level_set_by_the_client() {
        let session = session();
        run(&session, "logging/setLevel", json!({"level": "warning"})).await;
        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_logging"}),
        )
        .await;
        assert_eq!(sent.len(), 1, "info logs are below warning: {sent:?}");

        run(&session, "logging/setLevel", json!({"level": "debug"})).await;
        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_logging"}),
        )
        .await;
        assert_eq!(sent.len(), 4, "three logs then the response: {sent:?}");
    }

    #[tokio::test]
    async fn progress_is_reported_only_with_a_progress_token() {
        let session = session();
        let with_token =
            json!({"name": "test_tool_with_progress", "_meta": {"progressToken": "p"}});
        let sent = run(&session, "tools/call", with_token).await;
        let progress: Vec<_> = sent
            .iter()
            .filter_map(|item| match item {
                Outbound::Message(m) => Some(m["params"]["progress"].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(progress, [json!(0), json!(50), json!(100)]);

        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_progress"}),
        )
        .await;
        assert_eq!(sent.len(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_request_gets_no_response() {
        let session = session();
        let (outbox, mut received) = mpsc::unbounded_channel();
        let call = json!({"name": "sleep", "arguments": {"milliseconds": 10_000}});
        let running = tokio::spawn(session.clone().handle_request(
            json!("slow"),
            "tools/call".into(),
            Some(call),
            outbox,
        ));
        tokio::task::yield_now().await;
        while lock(&session.in_flight).is_empty() {
            tokio::task::yield_now().await;
        }
        session.handle_notification(
            "notifications/cancelled",
            Some(json!({"requestId": "slow"})),
        );
        running.await.expect("request task ends");
        assert!(matches!(received.try_recv(), Ok(Outbound::Done(None))));
    }
}
