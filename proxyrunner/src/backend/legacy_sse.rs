//! An HTTP upstream's legacy SSE sessions (`GET /sse`, then `POST /messages?sessionId=`).
//! The responses to a POST arrive on the session's GET stream, not in the POST's
//! response, so what the proxy does to responses happens on that stream:
//!
//! - its `endpoint` event, which names where the client POSTs, is rewritten from the
//!   server's own path (or URL) to the proxy's, under the endpoint prefix;
//! - list results are rewritten (tool filter, authorization) for the list requests the
//!   proxy saw POSTed to that session;
//! - refusals the proxy answers itself are added to the stream.
//!
//! Every other event passes as the bytes it arrived as, as soon as it is complete.
//!
//! In a cluster the stream's session is pinned to the pod it came from (a
//! [`pods::Pick`]) from its endpoint event until the stream ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;

use super::pods;
use crate::mcp;
use crate::reply::{Body, BoxError};
use crate::rewrite::ListRewrite;
use crate::sse;
use crate::transport::sse::session_param;

/// The open sessions, by the id their endpoint event names.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

struct Session {
    /// List requests in flight (id, normalised) and how to rewrite their results.
    lists: HashMap<String, ListRewrite>,
    /// Messages the proxy adds to the stream.
    inject: mpsc::UnboundedSender<Bytes>,
}

/// A JSON-RPC id as `serde_json` writes it, so the client's and the server's spelling
/// of the same id compare equal.
fn normalise(id: &str) -> String {
    serde_json::from_str::<Value>(id).map_or_else(|_| id.to_owned(), |v| v.to_string())
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes the list requests of a POST to `/messages?<query>`: their results will
    /// arrive on that session's stream.
    pub fn expect_lists(&self, query: Option<&str>, rewrite: &ListRewrite) {
        let Some(id) = session_param(query) else {
            return;
        };
        if let Some(session) = self.lock().get_mut(&id) {
            for request in rewrite.lists.keys() {
                session.lists.insert(normalise(request), rewrite.clone());
            }
        }
    }

    /// Whether the session `query` names has its stream open through this proxy.
    pub fn is_open(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Adds messages to the stream of the session `query` names; false when that
    /// session has no stream open through this proxy.
    pub fn inject(&self, query: Option<&str>, messages: &[Value]) -> bool {
        let Some(id) = session_param(query) else {
            return false;
        };
        let sessions = self.lock();
        let Some(session) = sessions.get(&id) else {
            return false;
        };
        for message in messages {
            let event = sse::encode(Some("message"), None, &message.to_string());
            let _ = session.inject.send(event);
        }
        true
    }
}

/// One GET stream on its way to the client.
struct Stream {
    chunks: http_body_util::BodyDataStream<Body>,
    splitter: sse::Splitter,
    prefix: String,
    sessions: Arc<Sessions>,
    /// Until the endpoint event registers the session.
    inject: Option<mpsc::UnboundedSender<Bytes>>,
    session: Option<String>,
    /// The pod this stream comes from, until the endpoint event names its session.
    pick: Option<pods::Pick>,
    /// The session pinned to that pod while the stream lasts.
    _pinned: Option<pods::Pinned>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Also ends the injected half of the response (its sender lives in the map).
        if let Some(session) = &self.session {
            self.sessions.lock().remove(session);
        }
    }
}

impl Stream {
    async fn event(&mut self, event: Bytes) -> Bytes {
        let fields = sse::fields(&event);
        if self.inject.is_some() && fields.event.as_deref() == Some("endpoint") {
            if let Some(session) = endpoint_session(&fields.data)
                && let Some(inject) = self.inject.take()
            {
                self.sessions.lock().insert(
                    session.clone(),
                    Session {
                        lists: HashMap::new(),
                        inject,
                    },
                );
                if let Some(pick) = self.pick.take() {
                    self._pinned = Some(pick.pin_while(&session));
                }
                self.session = Some(session);
            }
            return proxy_endpoint(&fields, &self.prefix).unwrap_or(event);
        }
        match self.list_rewrite(&fields) {
            Some(rewrite) => match rewrite.message(fields.data.as_bytes()).await {
                Some(data) => sse::encode(
                    fields.event.as_deref(),
                    fields.id.as_deref(),
                    &String::from_utf8_lossy(&data),
                ),
                None => event,
            },
            None => event,
        }
    }

    /// The rewrite of a response to a list request this session has in flight.
    fn list_rewrite(&self, fields: &sse::Fields) -> Option<ListRewrite> {
        let session = self.session.as_ref()?;
        if !fields.data.contains("\"result\"") {
            return None;
        }
        let message = mcp::peek_server_message(fields.data.as_bytes())?;
        let id = message.id.filter(|_| message.method.is_none())?;
        self.sessions
            .lock()
            .get_mut(session)?
            .lists
            .remove(&normalise(&id))
    }
}

/// The upstream's `GET /sse` response body as the client gets it: rewritten as the
/// module says, with the proxy's own messages merged in; `pick`, the pod the stream
/// comes from, gets the session pinned.
pub fn stream(
    body: Body,
    prefix: String,
    sessions: Arc<Sessions>,
    pick: Option<pods::Pick>,
) -> Body {
    let (inject, injected) = mpsc::unbounded_channel();
    let state = Stream {
        chunks: body.into_data_stream(),
        splitter: sse::Splitter::default(),
        prefix,
        sessions,
        inject: Some(inject),
        session: None,
        pick,
        _pinned: None,
    };
    let upstream = futures::stream::unfold(state, |mut state| async move {
        loop {
            let chunk = match state.chunks.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Some((Err(e), state)),
                None => {
                    let rest = state.splitter.finish()?;
                    return Some((Ok(rest), state));
                }
            };
            let mut out = BytesMut::new();
            for event in state.splitter.push(&chunk) {
                out.extend_from_slice(&state.event(event).await);
            }
            if !out.is_empty() {
                return Some((Ok(out.freeze()), state));
            }
        }
    });
    let injected = crate::transport::receiver_stream(injected).map(Ok::<_, BoxError>);
    let merged = futures::stream::select(upstream, injected).map(|chunk| chunk.map(Frame::data));
    http_body_util::StreamBody::new(merged).boxed_unsync()
}

/// The session id in an endpoint event's path or URL.
fn endpoint_session(data: &str) -> Option<String> {
    let (_, query) = data.trim().split_once('?')?;
    session_param(Some(query))
}

/// The `endpoint` event a client of the proxy gets, given the server's: a server path
/// (`/messages?sessionId=…`) or URL (`http://host:port/messages?…`, which would send
/// the client around the proxy) becomes that path under `prefix`. `None` leaves the
/// event as it is (a path relative to the SSE URL needs no rewrite).
fn proxy_endpoint(fields: &sse::Fields, prefix: &str) -> Option<Bytes> {
    let data = fields.data.trim();
    let path = if data.starts_with("http://") || data.starts_with("https://") {
        let url = url::Url::parse(data).ok()?;
        url[url::Position::BeforePath..].to_owned()
    } else if data.starts_with('/') && !prefix.is_empty() {
        data.to_owned()
    } else {
        return None;
    };
    let prefix = prefix.trim_end_matches('/');
    Some(sse::encode(
        Some("endpoint"),
        fields.id.as_deref(),
        &format!("{prefix}{path}"),
    ))
}

#[cfg(test)]
mod tests;
