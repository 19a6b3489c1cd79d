//! One HTTP session's SSE streams. Each stream keeps the events it sent, so a client
//! that lost the connection (or was asked to go away, SEP-1699 polling) resumes it
//! with GET and `Last-Event-ID`: event ids are `{stream}-{n}`, and the missed events
//! are replayed before new ones flow.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};

use axum::body::{Body, Bytes};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::server::{Outbound, Session, lock};

/// How long a client waits before resuming a stream the server closed (SSE `retry`).
const RETRY_MS: u32 = 500;

type Sink = mpsc::UnboundedSender<Bytes>;

pub struct HttpSession {
    pub core: Arc<Session>,
    streams: Mutex<Streams>,
}

#[derive(Default)]
struct Streams {
    next_id: u64,
    open: HashMap<u64, Stream>,
    /// The GET stream that carries messages belonging to no request.
    standalone: Option<u64>,
}

struct Stream {
    /// SSE frames sent so far; event `{stream}-{n}` is `events[n - 1]`.
    events: Vec<Bytes>,
    /// The connection currently reading the stream, if any.
    sink: Option<Sink>,
    finished: bool,
    /// Some event went out while no client was connected: keep the stream to resume.
    missed: bool,
}

impl Streams {
    fn push(&mut self, stream: u64, message: &Value) {
        let Some(open) = self.open.get_mut(&stream) else {
            return;
        };
        let frame = Bytes::from(format!(
            "id: {stream}-{}\nevent: message\ndata: {message}\n\n",
            open.events.len() + 1
        ));
        open.events.push(frame.clone());
        let delivered = open
            .sink
            .as_ref()
            .is_some_and(|sink| sink.send(frame).is_ok());
        if !delivered {
            open.sink = None;
            open.missed = true;
        }
    }
}

impl HttpSession {
    pub fn new() -> Arc<Self> {
        let (unsolicited, mut outgoing) = mpsc::unbounded_channel();
        let session = Arc::new(Self {
            core: Session::new(unsolicited),
            streams: Mutex::default(),
        });
        // Messages outside requests go to the GET stream; Weak so that the pump ends
        // with the session.
        let weak: Weak<Self> = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some(item) = outgoing.recv().await {
                let (Some(session), Outbound::Message(message)) = (weak.upgrade(), item) else {
                    continue;
                };
                let mut streams = lock(&session.streams);
                if let Some(standalone) = streams.standalone {
                    streams.push(standalone, &message);
                }
            }
        });
        session
    }

    /// Starts an SSE stream; the returned body carries it.
    pub fn open_stream(&self) -> (u64, Body) {
        let (sink, body) = sse_channel();
        let mut streams = lock(&self.streams);
        let id = streams.next_id;
        streams.next_id += 1;
        // The priming event (an id, no data) lets a client resume even before the
        // first message. Clients before 2025-11-25 may choke on empty data.
        if self.core.protocol_version() >= "2025-11-25" {
            let _ = sink.send(Bytes::from(format!(
                "id: {id}-0\nretry: {RETRY_MS}\ndata: \n\n"
            )));
        }
        let stream = Stream {
            events: Vec::new(),
            sink: Some(sink),
            finished: false,
            missed: false,
        };
        streams.open.insert(id, stream);
        (id, body)
    }

    pub fn push(&self, stream: u64, message: &Value) {
        lock(&self.streams).push(stream, message);
    }

    /// Ends the connection but not the stream: later events wait for a resume.
    pub fn detach(&self, stream: u64) {
        if let Some(open) = lock(&self.streams).open.get_mut(&stream) {
            open.sink = None;
        }
    }

    /// The stream's last event was sent; forget it unless a client still has to
    /// resume it.
    pub fn finish(&self, stream: u64) {
        let mut streams = lock(&self.streams);
        if let Some(open) = streams.open.get_mut(&stream) {
            open.finished = true;
            open.sink = None;
            if !open.missed {
                streams.open.remove(&stream);
            }
        }
    }

    /// Resumes the stream of `last_event_id` on a new connection, replaying what
    /// came after that event; `None` for an event id of no stream we keep.
    pub fn resume(&self, last_event_id: &str) -> Option<Body> {
        let (stream, seen) = last_event_id.split_once('-')?;
        let (stream, seen): (u64, usize) = (stream.parse().ok()?, seen.parse().ok()?);
        let mut streams = lock(&self.streams);
        let open = streams.open.get_mut(&stream)?;
        let (sink, body) = sse_channel();
        for frame in open.events.iter().skip(seen) {
            let _ = sink.send(frame.clone());
        }
        if open.finished {
            // Everything is replayed; dropping the sink ends the body after it.
            streams.open.remove(&stream);
        } else {
            open.sink = Some(sink);
            open.missed = false;
        }
        Some(body)
    }

    /// Opens the GET stream for messages outside requests; `None` while another
    /// connection holds it (one per session).
    pub fn open_standalone(&self) -> Option<Body> {
        {
            let mut streams = lock(&self.streams);
            if let Some(current) = streams.standalone {
                let live = streams
                    .open
                    .get(&current)
                    .and_then(|open| open.sink.as_ref())
                    .is_some_and(|sink| !sink.is_closed());
                if live {
                    return None;
                }
                streams.open.remove(&current);
            }
        }
        let (id, body) = self.open_stream();
        lock(&self.streams).standalone = Some(id);
        Some(body)
    }

    /// The session ended (DELETE): end every stream and every running request.
    pub fn close(&self) {
        *lock(&self.streams) = Streams::default();
        self.core.close();
    }
}

fn sse_channel() -> (Sink, Body) {
    let (sink, frames) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures::stream::unfold(frames, |mut frames| async move {
        let frame = frames.recv().await?;
        Some((Ok::<_, Infallible>(frame), frames))
    });
    (sink, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn read_all(body: Body) -> String {
        let bytes = body.collect().await.expect("body reads").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("SSE is UTF-8")
    }

    #[tokio::test]
    async fn a_detached_stream_resumes_after_the_last_event_id() {
        let session = HttpSession::new();
        let (stream, first) = session.open_stream();
        session.push(stream, &json!({"n": 1}));
        session.detach(stream);
        session.push(stream, &json!({"n": 2}));
        session.finish(stream);

        let first = read_all(first).await;
        assert!(first.starts_with(&format!("id: {stream}-0\nretry: 500\ndata: \n\n")));
        assert!(first.contains(r#"data: {"n":1}"#) && !first.contains(r#"{"n":2}"#));

        let resumed = session.resume(&format!("{stream}-1")).expect("stream kept");
        assert_eq!(
            read_all(resumed).await,
            format!("id: {stream}-2\nevent: message\ndata: {{\"n\":2}}\n\n")
        );
        assert!(
            session.resume(&format!("{stream}-1")).is_none(),
            "replayed once"
        );
    }

    #[tokio::test]
    async fn a_fully_delivered_stream_is_forgotten() {
        let session = HttpSession::new();
        let (stream, body) = session.open_stream();
        session.push(stream, &json!({}));
        session.finish(stream);
        drop(body);
        assert!(session.resume(&format!("{stream}-0")).is_none());
    }
}
