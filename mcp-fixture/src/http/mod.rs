//! The streamable HTTP transport (MCP 2025-03-26 to 2025-11-25) at `/mcp`: POST
//! carries client messages, GET opens (or resumes) a server stream, DELETE ends the
//! session named by `Mcp-Session-Id`.

pub(crate) mod guard;
mod post;
mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

pub use guard::HostPolicy;
use guard::Rejection;
pub(crate) use post::sse;
use streams::HttpSession;

use crate::server::lock;

const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Clone)]
struct AppState {
    sessions: Arc<Mutex<HashMap<String, Arc<HttpSession>>>>,
    hosts: HostPolicy,
}

impl AppState {
    fn create_session(&self) -> (String, Arc<HttpSession>) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = HttpSession::new();
        lock(&self.sessions).insert(id.clone(), session.clone());
        (id, session)
    }

    fn remove_session(&self, id: &str) -> Option<Arc<HttpSession>> {
        lock(&self.sessions).remove(id)
    }

    /// The session the request names: 400 without the header, 404 for an unknown
    /// (or ended) session, which tells the client to initialize again.
    fn session(&self, headers: &HeaderMap) -> Result<Arc<HttpSession>, Rejection> {
        let id = headers
            .get(SESSION_HEADER)
            .and_then(|id| id.to_str().ok())
            .ok_or_else(|| {
                Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required",
                )
            })?;
        lock(&self.sessions)
            .get(id)
            .cloned()
            .ok_or_else(|| Rejection::new(StatusCode::NOT_FOUND, "Session not found"))
    }
}

/// A header every request must carry (`--require-header NAME=VALUE`).
#[derive(Clone, Debug)]
pub struct RequiredHeader {
    name: axum::http::HeaderName,
    value: String,
}

impl RequiredHeader {
    /// Reads `NAME=VALUE`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--require-header {text:?}: expected NAME=VALUE"))?;
        Ok(Self {
            name: axum::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| anyhow::anyhow!("--require-header {name:?}: {e}"))?,
            value: value.to_owned(),
        })
    }
}

/// 401 unless the request carries every required header with its value.
async fn require(
    State(required): State<Arc<Vec<RequiredHeader>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    for required in required.iter() {
        let given = request
            .headers()
            .get(&required.name)
            .and_then(|v| v.to_str().ok());
        if given != Some(required.value.as_str()) {
            return Rejection::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: the required header is missing or wrong",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Serves until the process ends; prints the URL once the port is bound.
pub async fn serve(
    host: &str,
    port: u16,
    hosts: Option<HostPolicy>,
    required: Vec<RequiredHeader>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    let address = listener.local_addr()?;
    let loopback = address.ip().is_loopback();
    let hosts = hosts.unwrap_or(if loopback {
        HostPolicy::Loopback
    } else {
        HostPolicy::Any
    });
    let state = AppState {
        sessions: Arc::default(),
        hosts,
    };
    let app = Router::new()
        .route(
            "/mcp",
            post(post::handle).get(open_stream).delete(end_session),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(required),
            require,
        ));
    println!("listening on http://{address}/mcp");
    tracing::info!(%address, ?hosts, "streamable HTTP server ready");
    axum::serve(listener, app).await?;
    Ok(())
}

/// GET: a stream for messages outside requests, or with `Last-Event-ID` the rest of
/// a stream the client lost.
async fn open_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    guard::check_host_and_origin(&headers, state.hosts)?;
    if !guard::accepts(&headers, "text/event-stream") {
        return Err(Rejection::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: the client must accept text/event-stream",
        ));
    }
    let session = state.session(&headers)?;
    guard::check_protocol_version(&headers)?;
    let body = match headers.get("last-event-id").map(|id| id.to_str()) {
        Some(Ok(last_event_id)) => session.resume(last_event_id).ok_or_else(|| {
            Rejection::new(
                StatusCode::NOT_FOUND,
                "Not Found: no stream to resume for that Last-Event-ID",
            )
        })?,
        Some(Err(_)) => {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: Last-Event-ID is not text",
            ));
        }
        None => session.open_standalone().ok_or_else(|| {
            Rejection::new(
                StatusCode::CONFLICT,
                "Conflict: this session already has a GET stream",
            )
        })?,
    };
    Ok(post::sse(body))
}

/// DELETE: ends the session, its streams and its running requests.
async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    guard::check_host_and_origin(&headers, state.hosts)?;
    state.session(&headers)?;
    guard::check_protocol_version(&headers)?;
    let id = headers
        .get(SESSION_HEADER)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    if let Some(session) = state.remove_session(id) {
        session.close();
    }
    Ok(StatusCode::OK.into_response())
}
