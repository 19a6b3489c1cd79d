//! Client-facing transports for workloads behind the stdio bridge (HTTP upstreams are
//! forwarded as they are, see `backend::http`).
//!
//! - [`streamable`]: MCP streamable HTTP on `/mcp` with sessions.
//! - [`sse`]: the legacy HTTP+SSE transport, `GET /sse` and `POST /messages`.

pub mod sse;
pub mod streamable;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::reply::{Body, BoxError};

/// Protocol revisions the bridge accepts in `MCP-Protocol-Version`.
pub const PROTOCOL_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// A fresh session id: 128 random bits, hex.
pub fn new_session_id() -> Arc<str> {
    let bits: u128 = rand::random();
    Arc::from(format!("{bits:032x}"))
}

/// An SSE response whose events come from `events`; `guard` lives as long as the stream
/// (it unregisters the stream and counts the connection).
pub fn sse_response<G: Send + 'static>(
    events: impl futures::Stream<Item = Bytes> + Send + 'static,
    guard: G,
) -> Response<Body> {
    let stream = events.map(move |event| {
        let _keep = &guard;
        Ok::<_, BoxError>(Frame::data(event))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    *response.status_mut() = StatusCode::OK;
    response
}

/// The messages of a channel as a stream.
pub fn receiver_stream(
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Whether the `Accept` header admits `media` (or anything).
pub fn accepts(headers: &http::HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .any(|v| v == media || v == "*/*")
}
