//! POST /mcp: a client's messages in, and the answer out — 202 when nothing needs an
//! answer, a JSON body when the requests finished without saying anything else, an
//! SSE stream as soon as a request sends the client something before its response.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::guard::{self, Rejection};
use super::streams::HttpSession;
use super::{AppState, SESSION_HEADER};
use crate::jsonrpc::{Message, Payload};
use crate::server::Outbound;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&state, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, Rejection> {
    guard::check_host_and_origin(headers, state.hosts)?;
    if !(guard::accepts(headers, "application/json")
        && guard::accepts(headers, "text/event-stream"))
    {
        return Err(Rejection::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: the client must accept both application/json and text/event-stream",
        ));
    }
    if !guard::is_json(headers) {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    let payload =
        Payload::parse(body).map_err(|error| Rejection::rpc(StatusCode::BAD_REQUEST, error))?;
    let batch = matches!(payload, Payload::Batch(_));
    let messages = payload.into_messages();

    let initializes = messages
        .iter()
        .any(|m| matches!(m, Ok(Message::Request { method, .. }) if method == "initialize"));
    let (session, new_session_id) = if initializes {
        if messages.len() > 1 {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Invalid Request: initialize must be sent alone",
            ));
        }
        if headers.contains_key(SESSION_HEADER) {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Invalid Request: initialize starts a session; send it without Mcp-Session-Id",
            ));
        }
        let (id, session) = state.create_session();
        (session, Some(id))
    } else {
        let session = state.session(headers)?;
        guard::check_protocol_version(headers)?;
        (session, None)
    };

    let (outbox, mut produced) = mpsc::unbounded_channel();
    let mut responses = Vec::new();
    let mut running = 0;
    for message in messages {
        match message {
            Ok(Message::Request { id, method, params }) => {
                running += 1;
                tokio::spawn(session.core.clone().handle_request(
                    id,
                    method,
                    params,
                    outbox.clone(),
                ));
            }
            Ok(Message::Notification { method, params }) => {
                session.core.handle_notification(&method, params)
            }
            Ok(Message::Response { id, outcome }) => session.core.handle_response(&id, outcome),
            Err(invalid) => responses.push(invalid.into_response()),
        }
    }
    drop(outbox);
    if running == 0 {
        // Only notifications and responses (202), or only invalid messages (400).
        return Ok(if responses.is_empty() {
            StatusCode::ACCEPTED.into_response()
        } else {
            json(StatusCode::BAD_REQUEST, &collect(responses, batch))
        });
    }

    // JSON while the requests only produce their responses; SSE from the first
    // message that is not one.
    while let Some(item) = produced.recv().await {
        match item {
            Outbound::Done(done) => {
                responses.extend(done);
                running -= 1;
                if running == 0 {
                    break;
                }
            }
            first => {
                let body = stream(session, responses, first, produced, running);
                return Ok(with_session_id(sse(body), new_session_id));
            }
        }
    }
    if let Some(id) = &new_session_id
        && responses.first().is_some_and(|r| r.get("error").is_some())
    {
        // A failed initialize leaves no session behind.
        state.remove_session(id);
        return Ok(json(StatusCode::OK, &collect(responses, batch)));
    }
    let answer = if responses.is_empty() {
        StatusCode::ACCEPTED.into_response() // every request was cancelled
    } else {
        json(StatusCode::OK, &collect(responses, batch))
    };
    Ok(with_session_id(answer, new_session_id))
}

fn collect(mut responses: Vec<Value>, batch: bool) -> Value {
    match (batch, responses.len()) {
        (false, 1) => responses.remove(0),
        _ => Value::Array(responses),
    }
}

/// Moves the rest of the requests' output onto an SSE stream of the session.
fn stream(
    session: Arc<HttpSession>,
    responses: Vec<Value>,
    first: Outbound,
    mut produced: mpsc::UnboundedReceiver<Outbound>,
    mut running: usize,
) -> Body {
    let (stream, body) = session.open_stream();
    for done in &responses {
        session.push(stream, done);
    }
    // Runs to the end even when the client goes away, so it can resume the stream.
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Outbound::Message(message) => session.push(stream, &message),
                Outbound::CloseStream => session.detach(stream),
                Outbound::Done(done) => {
                    if let Some(done) = done {
                        session.push(stream, &done);
                    }
                    running -= 1;
                    if running == 0 {
                        break;
                    }
                }
            }
            next = produced.recv().await;
        }
        session.finish(stream);
    });
    body
}

pub fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn sse(body: Body) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (StatusCode::OK, headers, body).into_response()
}

fn with_session_id(mut answer: Response, id: Option<String>) -> Response {
    if let Some(value) = id.and_then(|id| id.parse().ok()) {
        answer.headers_mut().insert(SESSION_HEADER, value);
    }
    answer
}
