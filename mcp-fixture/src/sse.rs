//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens a session
//! whose first event, `endpoint`, names `/messages?sessionId=<id>`; the client POSTs
//! its messages there (answered 202) and every answer arrives on the GET stream. The
//! session is the stdio transport's ([`crate::stdio::serve_session`]), fed by the
//! POSTs; it ends when the stream closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::http::HostPolicy;
use crate::http::guard::{self, Rejection};
use crate::server::{Outbound, lock};

type Incoming = mpsc::UnboundedSender<std::io::Result<String>>;

#[derive(Clone)]
struct AppState {
    /// Open sessions: where their POSTed messages go.
    sessions: Arc<Mutex<HashMap<String, Incoming>>>,
    hosts: HostPolicy,
}

/// Serves until the process ends; prints the URL once the port is bound.
pub async fn serve(host: &str, port: u16, hosts: Option<HostPolicy>) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    let address = listener.local_addr()?;
    let hosts = hosts.unwrap_or(if address.ip().is_loopback() {
        HostPolicy::Loopback
    } else {
        HostPolicy::Any
    });
    let state = AppState {
        sessions: Arc::default(),
        hosts,
    };
    let app = Router::new()
        .route("/sse", get(open))
        .route("/messages", post(message))
        .with_state(state);
    println!("listening on http://{address}/sse");
    tracing::info!(%address, ?hosts, "legacy SSE server ready");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Removes its session when the stream is dropped (the client went away).
struct Open {
    sessions: Arc<Mutex<HashMap<String, Incoming>>>,
    id: String,
}

impl Drop for Open {
    fn drop(&mut self) {
        lock(&self.sessions).remove(&self.id);
    }
}

fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// GET /sse: a new session and its stream.
async fn open(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Rejection> {
    guard::check_host_and_origin(&headers, state.hosts)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (incoming, received) = mpsc::unbounded_channel();
    let (out, outgoing) = mpsc::unbounded_channel::<Outbound>();
    lock(&state.sessions).insert(id.clone(), incoming);
    let messages =
        futures::stream::unfold(
            received,
            |mut r| async move { r.recv().await.map(|m| (m, r)) },
        );
    tokio::spawn(async move {
        if let Err(error) = crate::stdio::serve_session(messages, out).await {
            tracing::warn!(%error, "legacy SSE session failed");
        }
    });
    let open = Open {
        sessions: state.sessions.clone(),
        id: id.clone(),
    };
    let answers =
        futures::stream::unfold(
            outgoing,
            |mut o| async move { o.recv().await.map(|m| (m, o)) },
        )
        .filter_map(move |item| {
            let _open = &open;
            let data = match item {
                Outbound::Message(message) | Outbound::Done(Some(message)) => {
                    Some(event("message", &message.to_string()))
                }
                Outbound::Done(None) | Outbound::CloseStream => None,
            };
            futures::future::ready(data)
        });
    let endpoint = event("endpoint", &format!("/messages?sessionId={id}"));
    let body = futures::stream::once(futures::future::ready(endpoint))
        .chain(answers)
        .map(Ok::<_, std::convert::Infallible>);
    Ok(crate::http::sse(Body::from_stream(body)))
}

/// POST /messages?sessionId=: one client payload for the session's stream.
async fn message(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    guard::check_host_and_origin(&headers, state.hosts)?;
    let id = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
        .ok_or_else(|| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: sessionId is required",
            )
        })?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            "Bad Request: the body is not UTF-8",
        )
    })?;
    let incoming = lock(&state.sessions)
        .get(id)
        .cloned()
        .ok_or_else(|| Rejection::new(StatusCode::NOT_FOUND, "Session not found"))?;
    incoming
        .send(Ok(text))
        .map_err(|_| Rejection::new(StatusCode::NOT_FOUND, "Session not found"))?;
    Ok((StatusCode::ACCEPTED, "Accepted").into_response())
}
