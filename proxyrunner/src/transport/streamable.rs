//! Streamable HTTP on `/mcp` in front of the stdio bridge.
//!
//! `initialize` without a session creates one (`Mcp-Session-Id` in the answer). Other
//! POSTs need a known session (400 without, 404 for an unknown or deleted one). A POST of
//! only notifications and responses is answered 202; one with requests is answered as
//! an SSE stream (when the client accepts it) carrying the server's requests and
//! notifications about them and ending after the last response, or as JSON: always for a
//! client that accepts only JSON, and for a lone request whose answer is the first thing
//! the server sends about it when the client accepts both. GET opens
//! the session's listening stream; DELETE ends the session. Streams are not resumable:
//! the bridge keeps no event history, so `Last-Event-ID` starts a fresh stream.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::sync::mpsc;

use super::{PROTOCOL_VERSIONS, accepts, new_session_id, receiver_stream, sse_response};
use crate::backend::bridge::Bridge;
use crate::mcp;
use crate::middleware::telemetry::Metrics;
use crate::reply::{self, Body, code};
use crate::sse;

/// Header naming the session.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Sessions of the streamable transport.
pub struct Streamable {
    bridge: Arc<Bridge>,
    sessions: Mutex<HashSet<Arc<str>>>,
    metrics: Option<Arc<Metrics>>,
}

impl Streamable {
    /// The transport over `bridge`.
    pub fn new(bridge: Arc<Bridge>, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            bridge,
            sessions: Mutex::new(HashSet::new()),
            metrics,
        }
    }

    /// The bridge.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashSet<Arc<str>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// The session a request names: `Ok(None)` when it names none.
    fn session(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, Box<Response<Body>>> {
        let Some(value) = headers.get(SESSION_HEADER) else {
            return Ok(None);
        };
        let id = value.to_str().unwrap_or("");
        self.sessions().get(id).cloned().map(Some).ok_or_else(|| {
            Box::new(reply::jsonrpc_error(
                StatusCode::NOT_FOUND,
                None,
                code::INVALID_REQUEST,
                "unknown or ended session",
            ))
        })
    }

    fn check_version(headers: &HeaderMap) -> Result<(), Box<Response<Body>>> {
        match headers
            .get("mcp-protocol-version")
            .map(|v| v.to_str().unwrap_or(""))
        {
            Some(v) if !PROTOCOL_VERSIONS.contains(&v) => Err(Box::new(reply::jsonrpc_error(
                StatusCode::BAD_REQUEST,
                None,
                code::INVALID_REQUEST,
                &format!(
                    "unsupported MCP-Protocol-Version {v:?}; supported: {}",
                    PROTOCOL_VERSIONS.join(", ")
                ),
            ))),
            _ => Ok(()),
        }
    }

    /// POST `/mcp`.
    pub async fn post(
        &self,
        headers: &HeaderMap,
        body: &mcp::Body,
        bytes: &[u8],
    ) -> Response<Body> {
        if let Err(response) = Self::check_version(headers) {
            return *response;
        }
        let initializing = body
            .messages
            .iter()
            .any(|m| m.method() == Some("initialize"));
        let session = match self.session(headers) {
            Err(response) => return *response,
            Ok(Some(session)) => session,
            Ok(None) if initializing => {
                let id = new_session_id();
                self.sessions().insert(id.clone());
                id
            }
            Ok(None) => {
                return reply::jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::INVALID_REQUEST,
                    "missing Mcp-Session-Id header: send initialize first",
                );
            }
        };
        let (sink, rx) = mpsc::unbounded_channel();
        let expected = match self.bridge.send(&session, body, bytes, &sink).await {
            Ok(n) => n,
            Err(e) => {
                let id = body.messages.first().and_then(|m| m.id.as_deref());
                return reply::jsonrpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    code::UNAVAILABLE,
                    &e.to_string(),
                );
            }
        };
        drop(sink);
        let mut response = if expected == 0 {
            let mut r = Response::new(reply::empty());
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        } else if accepts(headers, "text/event-stream") {
            let mut messages = Box::pin(until_responses(receiver_stream(rx), expected));
            // One request, and a client that takes either: the answer is JSON when the
            // server's first message about it is the answer itself (the spec lets the
            // server choose; it chooses once it knows). That is one write, where a stream
            // is its head, then the event and the end. Anything first (progress, a
            // server request) makes it a stream, with that message as its first event.
            let first = if expected == 1 && !body.batch && accepts(headers, "application/json") {
                messages.next().await
            } else {
                None
            };
            match first {
                Some(answer) if is_response(&answer) => {
                    reply::with_body(StatusCode::OK, "application/json", answer)
                }
                first => {
                    let guard = self.metrics.as_ref().map(|m| m.connection());
                    let events = futures::stream::iter(first).chain(messages).map(|message| {
                        sse::encode(Some("message"), None, &String::from_utf8_lossy(&message))
                    });
                    sse_response(events, guard)
                }
            }
        } else {
            let responses: Vec<Bytes> = until_responses(receiver_stream(rx), expected)
                .filter(|m| futures::future::ready(is_response(m)))
                .collect()
                .await;
            let text = if body.batch {
                let parts: Vec<String> = responses
                    .iter()
                    .map(|r| String::from_utf8_lossy(r).into_owned())
                    .collect();
                format!("[{}]", parts.join(","))
            } else {
                responses
                    .first()
                    .map(|r| String::from_utf8_lossy(r).into_owned())
                    .unwrap_or_default()
            };
            reply::with_body(StatusCode::OK, "application/json", text)
        };
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        response
    }

    /// GET `/mcp`: the session's listening stream.
    pub fn get(&self, headers: &HeaderMap) -> Response<Body> {
        if !accepts(headers, "text/event-stream") {
            return reply::error(
                StatusCode::NOT_ACCEPTABLE,
                "GET needs Accept: text/event-stream",
            );
        }
        let session = match self.session(headers) {
            Err(response) => return *response,
            Ok(Some(session)) => session,
            Ok(None) => {
                return reply::error(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
            }
        };
        let (sink, rx) = mpsc::unbounded_channel();
        let registered = sink.downgrade();
        self.bridge.listen(session.clone(), sink);
        let guard = (
            Unlisten {
                bridge: self.bridge.clone(),
                session: session.clone(),
                sink: registered,
            },
            self.metrics.as_ref().map(|m| m.connection()),
        );
        let events = receiver_stream(rx)
            .map(|message| sse::encode(Some("message"), None, &String::from_utf8_lossy(&message)));
        let mut response = sse_response(events, guard);
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        response
    }

    /// DELETE `/mcp`: ends the session.
    pub fn delete(&self, headers: &HeaderMap) -> Response<Body> {
        match self.session(headers) {
            Err(response) => *response,
            Ok(None) => reply::error(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header"),
            Ok(Some(session)) => {
                self.sessions().remove(&session);
                self.bridge.end_session(&session);
                let mut r = Response::new(reply::empty());
                *r.status_mut() = StatusCode::OK;
                r
            }
        }
    }
}

/// Removes a listening stream from the bridge when its response ends.
struct Unlisten {
    bridge: Arc<Bridge>,
    session: Arc<str>,
    sink: mpsc::WeakUnboundedSender<Bytes>,
}

impl Drop for Unlisten {
    fn drop(&mut self) {
        self.bridge.unlisten(&self.session, &self.sink);
    }
}

fn is_response(message: &[u8]) -> bool {
    mcp::peek_server_message(message).is_some_and(|m| m.method.is_none() && m.id.is_some())
}

/// Passes messages until `expected` responses went through, and ends right after the
/// last one (without waiting for a further message, which may never come): the client
/// sees the POST's stream close once it has every answer, as the MCP spec asks.
fn until_responses(
    messages: impl futures::Stream<Item = Bytes> + Send,
    expected: usize,
) -> impl futures::Stream<Item = Bytes> + Send {
    futures::stream::unfold(
        (Box::pin(messages), expected),
        |(mut messages, left)| async move {
            if left == 0 {
                return None;
            }
            let message = messages.next().await?;
            let left = if is_response(&message) {
                left - 1
            } else {
                left
            };
            Some((message, (messages, left)))
        },
    )
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use http_body_util::BodyExt;
    use serde_json::json;

    use super::*;
    use crate::backend::bridge::scripted;

    /// A session on a bridge to a scripted server; the headers of its requests.
    async fn session(accept: &str) -> (Streamable, scripted::Server, HeaderMap) {
        let (bridge, mut server) = scripted::start();
        let streamable = Streamable::new(bridge, None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept",
            HeaderValue::from_str(accept).expect("a header value"),
        );
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "1"}}});
        let asked = post(&streamable, &headers, &initialize);
        let answered = async {
            let seen = server.read().await;
            server
                .write(json!({"jsonrpc": "2.0", "id": seen["id"], "result": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "serverInfo": {"name": "scripted", "version": "1"}}}))
                .await;
        };
        let (response, ()) = tokio::join!(asked, answered);
        let id = response.headers()[SESSION_HEADER].clone();
        headers.insert(SESSION_HEADER, id);
        (streamable, server, headers)
    }

    async fn post(
        streamable: &Streamable,
        headers: &HeaderMap,
        message: &serde_json::Value,
    ) -> Response<Body> {
        let bytes = message.to_string();
        let body = mcp::parse(bytes.as_bytes()).expect("a JSON-RPC message");
        streamable.post(headers, &body, bytes.as_bytes()).await
    }

    /// The answer's content type and body.
    async fn answer(response: Response<Body>) -> (String, String) {
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (kind, String::from_utf8_lossy(&body).into_owned())
    }

    /// A call to the scripted server, which first sends what `before` lists about it.
    async fn call(accept: &str, before: &[serde_json::Value]) -> (String, String) {
        let (streamable, mut server, headers) = session(accept).await;
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": 7}}});
        let asked = post(&streamable, &headers, &call);
        let answered = async {
            let seen = server.read().await;
            for message in before {
                let mut message = message.clone();
                message["params"]["progressToken"] = seen["id"].clone();
                server.write(message).await;
            }
            server
                .write(json!({"jsonrpc": "2.0", "id": seen["id"], "result": {"content": []}}))
                .await;
        };
        let (response, ()) = tokio::join!(asked, answered);
        answer(response).await
    }

    #[tokio::test]
    async fn a_lone_answer_is_json_for_a_client_that_takes_either() {
        let (kind, body) = call("application/json, text/event-stream", &[]).await;
        assert_eq!(kind, "application/json");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["id"], 7);
    }

    #[tokio::test]
    async fn progress_before_the_answer_makes_it_a_stream_that_starts_with_it() {
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                              "params": {"progress": 1}});
        let (kind, body) = call("application/json, text/event-stream", &[progress]).await;
        assert_eq!(kind, "text/event-stream");
        let events: Vec<&str> = body.lines().filter(|l| l.starts_with("data: ")).collect();
        assert_eq!(events.len(), 2, "{body}");
        assert!(events[0].contains("notifications/progress"), "{body}");
        assert!(events[1].contains(r#""id":7"#), "{body}");
    }

    #[tokio::test]
    async fn a_client_that_takes_only_a_stream_gets_one() {
        let (kind, body) = call("text/event-stream", &[]).await;
        assert_eq!(kind, "text/event-stream");
        assert!(body.contains(r#""id":7"#), "{body}");
    }

    /// A POST's stream closes as soon as its last answer went out, even though the bridge
    /// keeps the channel open for later messages of the session.
    #[tokio::test]
    async fn post_stream_ends_right_after_its_last_response() {
        let progress = Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#,
        );
        let answer = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let never_ends = futures::stream::iter([progress.clone(), answer.clone()])
            .chain(futures::stream::pending());
        let passed: Vec<Bytes> = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            until_responses(never_ends, 1).collect(),
        )
        .await
        .expect("the stream ends after the answer");
        assert_eq!(passed, [progress, answer]);
    }
}
