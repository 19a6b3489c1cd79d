//! Routing an HTTP MCP server's sessions to the pods of its StatefulSet (in a cluster,
//! `sse` and `streamable-http` transports).
//!
//! [`PodRouter`] holds the pods requests may go to (Ready, not terminating, at
//! `podIP:targetPort`; [`discovery`] keeps them current from a watch on the
//! StatefulSet's pods) and which pod each MCP session lives on:
//!
//! - a request that names no session (an `initialize`, a legacy `GET /sse`) goes to the
//!   pod with the fewest sessions, ties taken in turn, so new sessions spread across
//!   `backendReplicas`;
//! - the session the pod creates (the `Mcp-Session-Id` of its response, or the
//!   `sessionId` of a legacy SSE stream's `endpoint` event) is pinned to that pod, and
//!   every later request naming it goes there;
//! - a session is forgotten when the client DELETEs it, the server answers 404 for it,
//!   its legacy SSE stream ends, or its pod stops being routable (deleted, replaced,
//!   its container restarted: the server's in-memory session is gone with it). A
//!   request for a forgotten or unknown session is answered 404 with a JSON-RPC error
//!   at once — the MCP signal for the client to initialize again — never left to hang
//!   on a pod that is not there.
//! - a session nobody has used for [`SESSION_IDLE`] is forgotten too (clients that go
//!   away without a DELETE would otherwise grow the table for ever); a legacy SSE
//!   session is held while its stream is open, however quiet.
//!
//! ToolHive instead pins all of a client's traffic to one pod by ClientIP affinity on
//! the headless Service, which puts every session behind one proxy on one pod.

pub mod discovery;
pub mod shared;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, Response, StatusCode};
use tokio::sync::watch;

use crate::reply::{self, Body, code};
use crate::transport::sse::session_param;
use shared::SharedSessions;

/// How long a session may go unused before the router forgets it. The MCP servers'
/// own session lifetimes are usually shorter; after this a client is told 404 and
/// initializes again, as after any lost session.
pub const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);

/// The header naming a streamable HTTP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// A pod requests can be sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTarget {
    /// The pod's name (`<server>-0`, …).
    pub name: String,
    /// The pod's UID and its `mcp` container's restart count: a pod recreated under the
    /// same name, or a restarted server, is another instance (its sessions are gone).
    pub instance: String,
    /// `podIP:targetPort`.
    pub address: SocketAddr,
}

/// Why a request cannot be routed to a pod.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unroutable {
    /// No pod is Ready.
    #[error("no MCP server pod is ready")]
    NoPods,
    /// The session's pod is gone (or the session was never created through this proxy).
    #[error(
        "session {0} not found: its MCP server pod is gone or it never existed; initialize a new session"
    )]
    SessionGone(String),
}

impl Unroutable {
    /// The answer to the client: 503 while no pod is ready, 404 for a session that is
    /// gone (the client then initializes again), with a JSON-RPC error body.
    pub fn response(&self) -> Response<Body> {
        let (status, code) = match self {
            Self::NoPods => (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE),
            Self::SessionGone(_) => (StatusCode::NOT_FOUND, code::SESSION_NOT_FOUND),
        };
        reply::jsonrpc_error(status, None, code, &self.to_string())
    }
}

/// The routable pods and the sessions pinned to them.
pub struct PodRouter {
    /// Ready pods, by name.
    targets: watch::Sender<Arc<[PodTarget]>>,
    state: Mutex<State>,
    /// Turns among pods with equally few sessions.
    turn: AtomicUsize,
    /// Whether the proxy's own handshake with a pod succeeded last time
    /// ([`super::probe::keep_probing`]).
    initialized: AtomicBool,
    /// How long a session may go unused ([`SESSION_IDLE`]; shorter in tests).
    idle: Duration,
    /// The sessions of every proxy replica, when `spec.sessionStorage` names Redis.
    shared: OnceLock<Arc<SharedSessions>>,
}

/// One pinned session.
struct Session {
    /// Instance of its pod.
    instance: Arc<str>,
    /// Last request naming it.
    used: Instant,
    /// Held by an open legacy SSE stream: never idle.
    held: bool,
    /// When its use was last reported to the shared sessions.
    reported: Instant,
}

#[derive(Default)]
struct State {
    /// Session id → where it lives.
    sessions: HashMap<String, Session>,
    /// Pod instance → sessions pinned to it (kept with `sessions`, so picking a pod does
    /// not count the whole table).
    pinned: HashMap<Arc<str>, usize>,
    /// Pod instance → requests sent to it for a new session whose id is not known yet.
    pending: HashMap<String, usize>,
    /// When idle sessions were last looked for.
    swept: Option<Instant>,
}

impl State {
    fn insert(&mut self, id: &str, instance: &str, held: bool) {
        let instance: Arc<str> = match self.pinned.get_key_value(instance) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(instance),
        };
        *self.pinned.entry(instance.clone()).or_default() += 1;
        let now = Instant::now();
        let session = Session {
            instance,
            used: now,
            held,
            reported: now,
        };
        if let Some(old) = self.sessions.insert(id.to_owned(), session) {
            self.unpin(&old.instance);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.sessions.remove(id) {
            self.unpin(&old.instance);
        }
    }

    fn unpin(&mut self, instance: &Arc<str>) {
        if let Some(n) = self.pinned.get_mut(instance) {
            *n -= 1;
            if *n == 0 {
                self.pinned.remove(instance);
            }
        }
    }

    /// Keeps only the sessions `keep` accepts; how many went.
    fn retain(&mut self, mut keep: impl FnMut(&Session) -> bool) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| keep(s));
        let mut pinned: HashMap<Arc<str>, usize> = HashMap::new();
        for session in self.sessions.values() {
            *pinned.entry(session.instance.clone()).or_default() += 1;
        }
        self.pinned = pinned;
        before - self.sessions.len()
    }

    /// Forgets the sessions unused for `idle`, at most once per `idle / 4`.
    fn sweep(&mut self, idle: Duration) {
        let now = Instant::now();
        if self
            .swept
            .is_some_and(|at| now.duration_since(at) < idle / 4)
        {
            return;
        }
        self.swept = Some(now);
        let dropped = self.retain(|s| s.held || now.duration_since(s.used) < idle);
        if dropped > 0 {
            tracing::info!(sessions = dropped, idle = ?idle, "forgot MCP sessions nobody used");
        }
    }

    fn load(&self, instance: &str) -> usize {
        self.pinned.get(instance).copied().unwrap_or(0)
            + self.pending.get(instance).copied().unwrap_or(0)
    }
}

impl PodRouter {
    /// A router with no pod yet.
    pub fn new() -> Arc<Self> {
        Self::with_session_idle(SESSION_IDLE)
    }

    /// A router that forgets sessions unused for `idle`.
    pub fn with_session_idle(idle: Duration) -> Arc<Self> {
        Arc::new(Self {
            targets: watch::Sender::new(Arc::from(Vec::new())),
            state: Mutex::default(),
            turn: AtomicUsize::new(0),
            initialized: AtomicBool::new(false),
            idle,
            shared: OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shares streamable HTTP sessions with the other proxy replicas through `shared`
    /// (set once, before serving).
    pub fn share_sessions(&self, shared: Arc<SharedSessions>) {
        if self.shared.set(shared).is_err() {
            tracing::warn!("session storage was set twice; the first one is kept");
        }
    }

    /// The pods requests may go to now (readiness: the MCP server is reachable when
    /// there is at least one), sorted by name.
    pub fn targets(&self) -> Arc<[PodTarget]> {
        self.targets.borrow().clone()
    }

    /// Whether at least one pod is routable.
    pub fn has_targets(&self) -> bool {
        !self.targets.borrow().is_empty()
    }

    /// Readiness: a pod is routable and answered the proxy's `initialize`.
    pub fn is_ready(&self) -> bool {
        self.has_targets() && self.initialized.load(Ordering::Relaxed)
    }

    /// Records the outcome of the proxy's last handshake with a pod.
    pub fn set_initialized(&self, answered: bool) {
        self.initialized.store(answered, Ordering::Relaxed);
    }

    /// Notified whenever the routable pods change (to wait for the first one).
    pub fn subscribe(&self) -> watch::Receiver<Arc<[PodTarget]>> {
        self.targets.subscribe()
    }

    /// Replaces the routable pods; the sessions of a pod no longer among them are
    /// forgotten (their next request is answered 404).
    pub fn set_targets(&self, mut targets: Vec<PodTarget>) {
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        let mut state = self.lock();
        let dropped = state.retain(|s| targets.iter().any(|t| *t.instance == *s.instance));
        state
            .pending
            .retain(|instance, _| targets.iter().any(|t| &t.instance == instance));
        if dropped > 0 {
            tracing::info!(
                sessions = dropped,
                "forgot the sessions of MCP server pods that are gone"
            );
        }
        self.targets.send_if_modified(|current| {
            if **current == *targets {
                return false;
            }
            tracing::info!(pods = ?targets.iter().map(|t| format!("{}={}", t.name, t.address)).collect::<Vec<_>>(), "routable MCP server pods");
            *current = Arc::from(targets);
            true
        });
    }

    /// A pod for a new session: the one with the fewest sessions (pinned or being
    /// created), ties taken in turn.
    pub fn pick(self: &Arc<Self>) -> Result<Pick, Unroutable> {
        let targets = self.targets();
        let mut state = self.lock();
        state.sweep(self.idle);
        let load = |t: &PodTarget| state.load(&t.instance);
        let fewest = targets.iter().map(load).min().ok_or(Unroutable::NoPods)?;
        let tied: Vec<&PodTarget> = targets.iter().filter(|t| load(t) == fewest).collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let target = tied[turn % tied.len()].clone();
        *state.pending.entry(target.instance.clone()).or_default() += 1;
        Ok(Pick {
            router: self.clone(),
            target,
        })
    }

    /// The pod of an existing session; a session whose pod is gone is forgotten.
    pub fn session(&self, id: &str) -> Result<PodTarget, Unroutable> {
        self.session_reporting(id).map(|(target, _)| target)
    }

    /// [`Self::session`], and whether its use is due to be reported to the shared
    /// sessions (at most every quarter of the idle time, which keeps its key alive).
    fn session_reporting(&self, id: &str) -> Result<(PodTarget, bool), Unroutable> {
        let mut state = self.lock();
        let idle = self.idle;
        let shared = self.shared.get().is_some();
        let found = state.sessions.get_mut(id).and_then(|s| {
            let now = Instant::now();
            if !s.held && now.duration_since(s.used) >= idle {
                return None;
            }
            s.used = now;
            let report = shared && now.duration_since(s.reported) >= idle / 4;
            if report {
                s.reported = now;
            }
            self.targets
                .borrow()
                .iter()
                .find(|t| *t.instance == *s.instance)
                .cloned()
                .map(|target| (target, report))
        });
        match found {
            Some(found) => Ok(found),
            None => {
                state.remove(id);
                Err(Unroutable::SessionGone(id.to_owned()))
            }
        }
    }

    /// Forgets a session (ended by the client or the server).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Sessions pinned per pod name (for logs and tests).
    pub fn sessions_per_pod(&self) -> Vec<(String, usize)> {
        let state = self.lock();
        self.targets()
            .iter()
            .map(|t| {
                let n = state.pinned.get(t.instance.as_str()).copied().unwrap_or(0);
                (t.name.clone(), n)
            })
            .collect()
    }

    /// Where one request goes: the pod of the session it names, or a picked pod when it
    /// names none. `legacy_sse` says which transport names sessions how: streamable
    /// HTTP in the `Mcp-Session-Id` header, legacy SSE in the `sessionId` query
    /// parameter of its POSTs.
    pub fn route(
        self: &Arc<Self>,
        legacy_sse: bool,
        parts: &http::request::Parts,
    ) -> Result<Route, Unroutable> {
        let session = if legacy_sse {
            session_param(parts.uri.query())
        } else {
            match parts.headers.get(SESSION_HEADER) {
                None => None,
                // Bytes that are not text name no session a pod gave out; before, such a
                // request was sent on as a new session to a picked pod.
                Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
                    Unroutable::SessionGone(String::from_utf8_lossy(value.as_bytes()).into_owned())
                })?),
            }
        };
        match session {
            Some(id) => {
                let (target, report) = self.session_reporting(&id)?;
                Ok(self.session_route(target, parts, id, report))
            }
            None => {
                let pick = self.pick()?;
                Ok(Route {
                    target: pick.target.clone(),
                    kind: RouteKind::New(pick),
                })
            }
        }
    }

    /// A streamable HTTP session this replica does not know, looked up in the shared
    /// sessions: when another replica pinned it to a pod that is routable here, it is
    /// pinned here too and the request goes there. Anything else is the session-gone
    /// answer a replica without shared sessions gives.
    pub async fn adopt(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        id: String,
    ) -> Result<Route, Unroutable> {
        let Some(shared) = self.shared.get() else {
            return Err(Unroutable::SessionGone(id));
        };
        let Some(instance) = shared.get(&id).await else {
            return Err(Unroutable::SessionGone(id));
        };
        let Some(target) = self
            .targets()
            .iter()
            .find(|t| t.instance == instance)
            .cloned()
        else {
            // Its pod is gone (or not yet seen by this replica's watch): a pod's
            // sessions die with it, and the key expires on its own.
            return Err(Unroutable::SessionGone(id));
        };
        self.lock().insert(&id, &target.instance, false);
        tracing::debug!(session = %id, pod = %target.name, "session adopted from the shared sessions");
        Ok(self.session_route(target, parts, id, false))
    }

    /// The route of a request of session `id`, pinned to `target`.
    fn session_route(
        self: &Arc<Self>,
        target: PodTarget,
        parts: &http::request::Parts,
        id: String,
        report: bool,
    ) -> Route {
        Route {
            target,
            kind: RouteKind::Session {
                router: self.clone(),
                id,
                delete: parts.method == Method::DELETE,
                report,
            },
        }
    }

    /// Tells the other replicas what a response taught this one (see
    /// [`Route::shared_change`]). A new session is recorded before its response goes
    /// to the client, so the client's next request finds it on any replica; the rest
    /// is sent without holding the response.
    pub async fn share(&self, change: SharedChange) {
        let Some(shared) = self.shared.get().cloned() else {
            return;
        };
        match change {
            SharedChange::Created { id, instance } => shared.put(&id, &instance).await,
            SharedChange::Ended(id) => {
                tokio::spawn(async move { shared.remove(&id).await });
            }
            SharedChange::Used(id) => {
                tokio::spawn(async move { shared.touch(&id).await });
            }
        }
    }
}

/// What the shared sessions learn from one response.
#[derive(Debug, PartialEq, Eq)]
pub enum SharedChange {
    /// A new session, pinned to a pod instance.
    Created {
        /// Session id.
        id: String,
        /// Pod instance.
        instance: String,
    },
    /// A session the client deleted or the server no longer knows.
    Ended(String),
    /// A session in use (its key is kept alive).
    Used(String),
}

/// A pod picked for a new session, counted as loaded until the session is pinned or the
/// pick dropped.
pub struct Pick {
    router: Arc<PodRouter>,
    target: PodTarget,
}

impl Pick {
    /// The picked pod.
    pub fn target(&self) -> &PodTarget {
        &self.target
    }

    /// Pins `session` to the picked pod; it stays pinned until forgotten.
    pub fn pin(self, session: &str) {
        self.router
            .lock()
            .insert(session, &self.target.instance, false);
    }

    /// Pins `session` for as long as the returned guard lives (a legacy SSE stream: its
    /// session ends with it, and is never idle before).
    pub fn pin_while(self, session: &str) -> Pinned {
        let router = self.router.clone();
        router.lock().insert(session, &self.target.instance, true);
        Pinned {
            router,
            session: session.to_owned(),
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        let mut state = self.router.lock();
        if let Some(n) = state.pending.get_mut(&self.target.instance) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.pending.remove(&self.target.instance);
            }
        }
    }
}

/// A session pinned while this lives.
pub struct Pinned {
    router: Arc<PodRouter>,
    session: String,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.router.forget(&self.session);
    }
}

/// Where one request goes, and what its response may teach the router.
pub struct Route {
    target: PodTarget,
    kind: RouteKind,
}

enum RouteKind {
    /// A request naming no session, sent to a picked pod.
    New(Pick),
    /// A request of a pinned session.
    Session {
        router: Arc<PodRouter>,
        id: String,
        delete: bool,
        /// Its use is due to be reported to the shared sessions.
        report: bool,
    },
}

impl Route {
    /// The pod's address.
    pub fn address(&self) -> SocketAddr {
        self.target.address
    }

    /// What the other replicas should learn from the pod's response, when sessions are
    /// shared: a new streamable HTTP session, an ended one, or one in use.
    pub fn shared_change(&self, status: StatusCode, headers: &HeaderMap) -> Option<SharedChange> {
        match &self.kind {
            RouteKind::New(pick) => {
                pick.router.shared.get()?;
                let session = headers.get(SESSION_HEADER)?.to_str().ok()?;
                status.is_success().then(|| SharedChange::Created {
                    id: session.to_owned(),
                    instance: pick.target.instance.clone(),
                })
            }
            RouteKind::Session {
                router,
                id,
                delete,
                report,
            } => {
                router.shared.get()?;
                if status == StatusCode::NOT_FOUND || (*delete && status.is_success()) {
                    Some(SharedChange::Ended(id.clone()))
                } else {
                    report.then(|| SharedChange::Used(id.clone()))
                }
            }
        }
    }

    /// Learns from the pod's response: a new streamable HTTP session (its
    /// `Mcp-Session-Id`) is pinned to the pod; a session the client deleted or the
    /// server no longer knows (404) is forgotten. Returns the pick of a request that
    /// named no session and got no session id back: a legacy SSE stream pins it when
    /// its `endpoint` event arrives.
    pub fn learn(self, status: StatusCode, headers: &HeaderMap) -> Option<Pick> {
        match self.kind {
            RouteKind::New(pick) => {
                match headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
                    Some(session) if status.is_success() => {
                        pick.pin(session);
                        None
                    }
                    _ => Some(pick),
                }
            }
            RouteKind::Session {
                router, id, delete, ..
            } => {
                if status == StatusCode::NOT_FOUND || (delete && status.is_success()) {
                    router.forget(&id);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
