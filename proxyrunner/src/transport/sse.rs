//! The legacy HTTP+SSE transport in front of the stdio bridge: `GET /sse` opens a
//! session whose first event, `endpoint`, names the proxy's own
//! `<endpointPrefix>/messages?sessionId=…`; POSTs there are answered 202 and their
//! responses arrive on the session's stream (list results rewritten on the way, since
//! the POST's own response carries none).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use http::{Response, StatusCode};
use tokio::sync::mpsc;

use super::{new_session_id, receiver_stream, sse_response};
use crate::backend::bridge::{Bridge, Sink};
use crate::mcp;
use crate::middleware::telemetry::Metrics;
use crate::reply::{self, Body, code};
use crate::rewrite::ListRewrite;
use crate::sse;

/// Sessions of the SSE transport.
pub struct Sse {
    bridge: Arc<Bridge>,
    sessions: Arc<Mutex<HashMap<Arc<str>, Sink>>>,
    prefix: String,
    metrics: Option<Arc<Metrics>>,
}

impl Sse {
    /// The transport over `bridge`; `prefix` is prepended to the advertised endpoint.
    pub fn new(bridge: Arc<Bridge>, prefix: &str, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            bridge,
            sessions: Arc::default(),
            prefix: prefix.to_owned(),
            metrics,
        }
    }

    /// The bridge.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The stream of a session, to inject a message (a refusal).
    pub fn sink(&self, session: &str) -> Option<Sink> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
    }

    /// GET `/sse`.
    pub fn get(&self) -> Response<Body> {
        let session = new_session_id();
        let (sink, rx) = mpsc::unbounded_channel();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.clone(), sink.clone());
        self.bridge.listen(session.clone(), sink);
        let endpoint = sse::encode(
            Some("endpoint"),
            None,
            &format!("{}/messages?sessionId={session}", self.prefix),
        );
        let guard = (
            Forget {
                bridge: self.bridge.clone(),
                sessions: self.sessions.clone(),
                session,
            },
            self.metrics.as_ref().map(|m| m.connection()),
        );
        let events =
            futures::stream::once(async move { endpoint }).chain(receiver_stream(rx).map(
                |message| sse::encode(Some("message"), None, &String::from_utf8_lossy(&message)),
            ));
        sse_response(events, guard)
    }

    /// POST `/messages?sessionId=…`; `lists` rewrites the list results it asks for.
    pub async fn post(
        &self,
        session: Option<&str>,
        body: &mcp::Body,
        bytes: &[u8],
        lists: Option<ListRewrite>,
    ) -> Response<Body> {
        let Some((session, stream)) = session.and_then(|s| Some((s, self.sink(s)?))) else {
            return reply::error(
                StatusCode::NOT_FOUND,
                "unknown or ended session: open GET /sse first",
            );
        };
        let sink = match lists {
            Some(lists) => rewriting(stream, lists),
            None => stream,
        };
        match self.bridge.send(session, body, bytes, &sink).await {
            Ok(_) => {
                let mut r = Response::new(
                    reply::with_body(StatusCode::ACCEPTED, "text/plain", "Accepted").into_body(),
                );
                *r.status_mut() = StatusCode::ACCEPTED;
                r
            }
            Err(e) => {
                let id = body.messages.first().and_then(|m| m.id.as_deref());
                reply::jsonrpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    code::UNAVAILABLE,
                    &e.to_string(),
                )
            }
        }
    }
}

/// A sink for one POST's messages that rewrites its list results and passes everything
/// on to the session's stream. It closes once the bridge has delivered the POST's last
/// response (the bridge drops its clones then).
fn rewriting(stream: Sink, lists: ListRewrite) -> Sink {
    let (sink, mut rx) = mpsc::unbounded_channel::<bytes::Bytes>();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let message = lists.message(&message).await.unwrap_or(message);
            if stream.send(message).is_err() {
                return;
            }
        }
    });
    sink
}

struct Forget {
    bridge: Arc<Bridge>,
    sessions: Arc<Mutex<HashMap<Arc<str>, Sink>>>,
    session: Arc<str>,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.bridge.end_session(&self.session);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.session);
    }
}

/// The `sessionId` query parameter.
pub fn session_param(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "sessionId" || k == "session_id")
        .map(|(_, v)| v.into_owned())
}
