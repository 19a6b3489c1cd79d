//! Audit events: one JSON line on stdout per MCP message the proxy handled (logs go to
//! stderr, so a collector can tell them apart): when, who, what, on which target, the
//! outcome and how long it took; request and response excerpts when configured.
//!
//! With response data, the event waits for the response: [`tap`] passes the body
//! through frame by frame (SSE events are not held back) while keeping its first
//! `maxDataSize` bytes, and writes the events when the body ends, fails, or is dropped
//! because the client went away — so no event is lost to a disconnect.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use runconfig::middleware::audit::ValidatedAudit;
use serde::Serialize;

use crate::reply::{Body, BoxError};

use super::authn::Principal;
use super::chain::{BuildContext, CLIENT_CLOSED, Exchange, Middleware};
use crate::mcp::Message;
use crate::runner::BuildError;

/// How a handled message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded and answered.
    Success,
    /// Refused by authorization or the tool filter.
    Denied,
    /// The server or the proxy failed.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
}

/// ToolHive's event type of a method.
pub fn event_type(method: &str) -> &'static str {
    match method {
        "initialize" => "mcp_initialize",
        "tools/call" => "mcp_tool_call",
        "tools/list" => "mcp_tools_list",
        "resources/read" => "mcp_resource_read",
        "resources/list" => "mcp_resources_list",
        "prompts/get" => "mcp_prompt_get",
        "prompts/list" => "mcp_prompts_list",
        "ping" => "mcp_ping",
        "logging/setLevel" => "mcp_logging",
        "completion/complete" => "mcp_completion",
        "notifications/roots/list_changed" => "mcp_roots_list_changed",
        m if m.starts_with("notifications/") => "mcp_notification",
        _ => "mcp_request",
    }
}

/// Where audit lines go.
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// Lines queued for stdout before a request waits for the writer: about a second of
/// events at the proxy's full rate.
const STDOUT_QUEUE: usize = 16_384;

/// What the stdout writer thread is sent.
enum Queued {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Drained(std::sync::mpsc::SyncSender<()>),
}

/// Audit lines to stdout, written by a thread of their own (std's `mpsc` and a thread
/// rather than a tokio task: a line must be queued from synchronous code, and a full
/// pipe must block that thread, not a runtime worker). A request only queues its line;
/// the lines that are waiting go out together in one `write`. When the queue is full, a
/// request waits: an event is never dropped.
struct StdoutLines(std::sync::mpsc::SyncSender<Queued>);

impl Write for StdoutLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(Queued::Line(line.to_vec()))
            .map_err(|_| std::io::Error::other("the audit writer thread has stopped"))?;
        Ok(line.len())
    }

    /// Lines are flushed by the writer as soon as its queue is empty; [`drain_stdout`]
    /// waits for that.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's one stdout writer, once an auditor has started it.
static STDOUT: std::sync::OnceLock<std::sync::mpsc::SyncSender<Queued>> =
    std::sync::OnceLock::new();

/// The process's one stdout writer, started on first use.
fn stdout_queue() -> &'static std::sync::mpsc::SyncSender<Queued> {
    STDOUT.get_or_init(|| {
        let (queue, lines) = std::sync::mpsc::sync_channel(STDOUT_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("audit-stdout".to_owned())
            .spawn(move || write_lines(&lines, &mut std::io::stdout()));
        if let Err(e) = spawned {
            // Without the thread every line is reported as not written, never dropped
            // silently.
            tracing::error!(error = %e, "starting the audit writer thread");
        }
        queue
    })
}

/// How long the writer lets lines gather after the first one woke it from an empty
/// queue. Waking the thread once per line cost the proxy about a tenth of its CPU at
/// 15,000 events/s (a futex wake and two context switches each, measured with `perf`);
/// gathering makes that one wake-up and one `write` per batch, and delays an event on
/// stdout by at most this much. A writer that is behind does not wait.
const GATHER: Duration = Duration::from_millis(2);

/// The writer thread: every line waiting is written, then flushed, in one go.
fn write_lines(lines: &std::sync::mpsc::Receiver<Queued>, out: &mut impl Write) {
    let mut batch = Vec::new();
    let mut answered = Vec::new();
    loop {
        let first = match lines.try_recv() {
            Ok(first) => first,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            Err(std::sync::mpsc::TryRecvError::Empty) => match lines.recv() {
                // Woken by a line: let the lines of the next moments join it. A drain
                // (the proxy is exiting) is answered at once.
                Ok(first @ Queued::Line(_)) => {
                    std::thread::sleep(GATHER);
                    first
                }
                Ok(first) => first,
                Err(_) => return,
            },
        };
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Queued::Line(line) => batch.extend_from_slice(&line),
                Queued::Drained(done) => answered.push(done),
            }
            next = (batch.len() < 1 << 16)
                .then(|| lines.try_recv().ok())
                .flatten();
        }
        if let Err(e) = out.write_all(&batch).and_then(|()| out.flush()) {
            tracing::error!(error = %e, lines = batch.iter().filter(|b| **b == b'\n').count(), "audit events could not be written");
        }
        batch.clear();
        for done in answered.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Waits (at most `within`) until every audit line queued for stdout so far is written:
/// the proxy calls it before it exits, so that no event is lost to the exit.
pub fn drain_stdout(within: Duration) {
    let Some(queue) = STDOUT.get() else {
        return;
    };
    let (done, written) = std::sync::mpsc::sync_channel(1);
    if queue.send(Queued::Drained(done)).is_ok() && written.recv_timeout(within).is_err() {
        tracing::warn!(?within, "audit events were still being written at exit");
    }
}

/// The audit log. Cloning it is cheap: an answer whose body is still streaming keeps a
/// clone to write its events when the body has passed.
#[derive(Clone)]
pub struct Auditor {
    config: Arc<ValidatedAudit>,
    sink: Sink,
}

/// One event to write.
pub struct Event<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The message.
    pub message: &'a Message,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status answered.
    pub status: u16,
    /// Time until the response started.
    pub duration: Duration,
    /// The request body.
    pub request: &'a [u8],
    /// The start of the response body, when response data is audited.
    pub response: Option<&'a [u8]>,
}

/// One audit line, in ToolHive's field order. Serialized straight from borrowed fields:
/// building it as a `serde_json::Value` first allocated every key and value again, per
/// event.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    component: &'a str,
    outcome: &'static str,
    subjects: Subjects<'a>,
    target: Target<'a>,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Data::is_empty")]
    data: Data,
}

#[derive(Serialize)]
struct Subjects<'a> {
    user: &'a str,
}

#[derive(Serialize)]
struct Target<'a> {
    method: &'a str,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Data {
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<String>,
}

impl Data {
    fn is_empty(&self) -> bool {
        self.request.is_none() && self.response.is_none()
    }
}

impl Auditor {
    /// The auditor, writing to stdout (through the process's one writer thread).
    pub fn new(config: &ValidatedAudit) -> Self {
        Self::with_sink(
            config,
            Arc::new(Mutex::new(StdoutLines(stdout_queue().clone()))),
        )
    }

    /// The auditor, writing to `sink` (tests, or a file).
    pub fn with_sink(config: &ValidatedAudit, sink: Sink) -> Self {
        Self {
            config: Arc::new(config.clone()),
            sink,
        }
    }

    /// Whether events carry response data (and so wait for the response body).
    pub fn wants_response(&self) -> bool {
        self.config.include_response_data
    }

    /// Largest excerpt, in bytes.
    pub fn max_data_size(&self) -> usize {
        self.config.max_data_size
    }

    /// Writes the event, unless its type is not audited.
    pub fn record(&self, event: &Event<'_>) {
        let Some(call) = event.message.call() else {
            return;
        };
        let kind = event_type(&call.method);
        if !self.config.audits(kind) {
            return;
        }
        let line = Line {
            time: now_rfc3339(),
            kind,
            component: &self.config.component,
            outcome: event.outcome.as_str(),
            subjects: Subjects {
                user: &event.principal.subject,
            },
            target: Target {
                method: &call.method,
                name: call.target.as_deref(),
            },
            status: event.status,
            duration_ms: event.duration.as_secs_f64() * 1000.0,
            data: Data {
                request: self
                    .config
                    .include_request_data
                    .then(|| self.excerpt(event.request)),
                response: event
                    .response
                    .filter(|_| self.config.include_response_data)
                    .map(|response| self.excerpt(response)),
            },
        };
        let mut text = match serde_json::to_vec(&line) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "audit event could not be serialized");
                return;
            }
        };
        text.push(b'\n');
        // An audit line that cannot be written is reported, never silently lost.
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.write_all(&text).and_then(|()| sink.flush()) {
            tracing::error!(error = %e, "audit event could not be written");
        }
    }

    fn excerpt(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut end = text.len().min(self.config.max_data_size);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    }
}

/// The audit middleware: one event per message, once the answer is known (or the
/// client went away).
impl Middleware for Auditor {
    type Config<'a> = &'a ValidatedAudit;

    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        Ok(Some(match &context.audit_sink {
            Some(sink) => Self::with_sink(config, sink.clone()),
            None => Self::new(config),
        }))
    }

    fn finish(&self, exchange: &mut Exchange, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        // A 202 carries no response: on legacy SSE the answers go to the session's
        // stream, and notifications have none.
        if !self.wants_response() || status == StatusCode::ACCEPTED {
            let duration = exchange.started.elapsed();
            for (i, message) in exchange.body.messages.iter().enumerate() {
                self.record(&Event {
                    principal: &exchange.principal,
                    message,
                    outcome: exchange.outcome(i, status),
                    status: status.as_u16(),
                    duration,
                    request: &exchange.request,
                    response: None,
                });
            }
            return response;
        }
        // The events wait for the body, so their duration covers the whole answer; they
        // own what they record, since the exchange ends before the body does.
        let outcomes: Vec<Outcome> = (0..exchange.body.messages.len())
            .map(|i| exchange.outcome(i, status))
            .collect();
        let (auditor, principal, body, request, started) = (
            self.clone(),
            exchange.principal.clone(),
            exchange.body.clone(),
            exchange.request.clone(),
            exchange.started,
        );
        // `ended` is false when the client went away before the whole answer passed
        // (then failure, with nginx's 499 "client closed request").
        tap(
            response,
            self.max_data_size(),
            move |seen: &[u8], ended: bool| {
                let duration = started.elapsed();
                for (message, outcome) in body.messages.iter().zip(&outcomes) {
                    auditor.record(&Event {
                        principal: &principal,
                        message,
                        outcome: if ended { *outcome } else { Outcome::Failure },
                        status: if ended {
                            status.as_u16()
                        } else {
                            CLIENT_CLOSED
                        },
                        duration,
                        request: &request,
                        response: Some(seen),
                    });
                }
            },
        )
    }

    fn abandon(&self, exchange: &Exchange, status: u16) {
        for message in &exchange.body.messages {
            self.record(&Event {
                principal: &exchange.principal,
                message,
                outcome: Outcome::Failure,
                status,
                duration: exchange.started.elapsed(),
                request: &exchange.request,
                response: None,
            });
        }
    }
}

/// Passes `response` through, keeping the first `limit` bytes of its body; `done`
/// gets them once, when the body ends (`true`), or fails or is dropped before its end
/// (`false`: the client did not get the whole answer).
pub fn tap(
    response: Response<Body>,
    limit: usize,
    done: impl FnOnce(&[u8], bool) + Send + 'static,
) -> Response<Body> {
    response.map(|inner| {
        Tap {
            inner,
            seen: Vec::new(),
            limit,
            done: Some(Box::new(done)),
        }
        .boxed_unsync()
    })
}

/// What a [`Tap`] calls with the start of the body once it has passed.
type Done = Box<dyn FnOnce(&[u8], bool) + Send>;

struct Tap {
    inner: Body,
    seen: Vec<u8>,
    limit: usize,
    done: Option<Done>,
}

impl Tap {
    fn finish(&mut self, ended: bool) {
        if let Some(done) = self.done.take() {
            done(&self.seen, ended);
        }
    }
}

impl HttpBody for Tap {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let room = this.limit.saturating_sub(this.seen.len());
                    this.seen.extend_from_slice(&data[..data.len().min(room)]);
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // Dropped before the end: the client went away. A body already at its end
        // (hyper may not poll an empty one) was delivered whole.
        let ended = self.inner.is_end_stream();
        self.finish(ended);
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a writer was given, and how many times it was flushed.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.lock().expect("lock").1 += 1;
            Ok(())
        }
    }

    #[test]
    fn the_stdout_writer_writes_every_line_in_order_in_batches_and_answers_a_drain() {
        let (queue, lines) = std::sync::mpsc::sync_channel(STDOUT_QUEUE);
        for i in 0..1000 {
            queue
                .send(Queued::Line(format!("{i}\n").into_bytes()))
                .expect("queued");
        }
        let (done, written) = std::sync::mpsc::sync_channel(1);
        queue.send(Queued::Drained(done)).expect("queued");
        drop(queue);
        let out = Recorded::default();
        let mut writer = out.clone();
        // Everything was queued before the writer started: it ends when the queue closes.
        write_lines(&lines, &mut writer);
        written.try_recv().expect("the drain was answered");
        let (text, flushes) = out.0.lock().expect("lock").clone();
        let expected: String = (0..1000).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8(text).expect("utf-8"), expected);
        assert!(
            flushes < 10,
            "1,000 lines queued together, {flushes} flushes"
        );
    }

    #[test]
    fn an_event_is_one_line_with_toolhives_fields_in_toolhives_order() {
        let out = Recorded::default();
        let config = ValidatedAudit {
            component: "github".to_owned(),
            event_types: Default::default(),
            exclude_event_types: Default::default(),
            include_request_data: true,
            include_response_data: false,
            max_data_size: 12,
        };
        let auditor = Auditor::with_sink(&config, Arc::new(Mutex::new(out.clone())));
        let request = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        let body = crate::mcp::parse(request).expect("parsed");
        let principal = Principal {
            subject: "alice".to_owned(),
            claims: Default::default(),
        };
        auditor.record(&Event {
            principal: &principal,
            message: &body.messages[0],
            outcome: Outcome::Denied,
            status: 200,
            duration: Duration::from_micros(1500),
            request,
            response: Some(b"not recorded: response data is off"),
        });
        let (text, _) = out.0.lock().expect("lock").clone();
        let text = String::from_utf8(text).expect("utf-8");
        let (line, rest) = text.split_once('\n').expect("one line");
        assert_eq!(rest, "");
        let time = line
            .strip_prefix(r#"{"time":""#)
            .and_then(|l| l.split_once('"'))
            .map(|(time, _)| time)
            .expect("time first");
        assert!(
            time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "RFC 3339 in UTC: {time}"
        );
        let expected = r#","type":"mcp_tool_call","component":"github","outcome":"denied","subjects":{"user":"alice"},"target":{"method":"tools/call","name":"echo"},"status":200,"duration_ms":1.5,"data":{"request":"{\"jsonrpc\":\""}}"#;
        assert!(line.ends_with(expected), "{line}");
    }

    #[test]
    fn an_auditor_on_stdout_only_queues_its_line() {
        let mut lines = StdoutLines(stdout_queue().clone());
        lines.write_all(b"").expect("queued");
        drain_stdout(Duration::from_secs(5));
    }

    /// A body whose frames the test sends one at a time.
    fn streamed() -> (tokio::sync::mpsc::UnboundedSender<Bytes>, Body) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, BoxError>(Frame::data(chunk)), rx))
        });
        (tx, http_body_util::StreamBody::new(stream).boxed_unsync())
    }

    type Seen = Arc<Mutex<Option<(Vec<u8>, bool)>>>;

    fn tapped(body: Body, limit: usize) -> (Body, Seen) {
        let seen = Arc::new(Mutex::new(None));
        let done = seen.clone();
        let response = tap(Response::new(body), limit, move |bytes: &[u8], ended| {
            *done.lock().expect("lock") = Some((bytes.to_vec(), ended));
        });
        (response.into_body(), seen)
    }

    #[tokio::test]
    async fn frames_pass_as_they_come_and_the_excerpt_is_recorded_at_the_end() {
        let (tx, body) = streamed();
        let (mut body, seen) = tapped(body, 10);
        tx.send(Bytes::from_static(b"data: one\n\n")).expect("open");
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().expect("data"), "data: one\n\n");
        assert!(seen.lock().expect("lock").is_none(), "not ended yet");
        tx.send(Bytes::from_static(b"data: two\n\n")).expect("open");
        body.frame().await.expect("a frame").expect("data");
        drop(tx);
        assert!(body.frame().await.is_none());
        assert_eq!(
            *seen.lock().expect("lock"),
            Some((b"data: one\n".to_vec(), true))
        );
    }

    #[tokio::test]
    async fn a_body_dropped_midway_still_records_what_passed() {
        let (tx, body) = streamed();
        let (mut body, seen) = tapped(body, 1024);
        tx.send(Bytes::from_static(b"partial")).expect("open");
        body.frame().await.expect("a frame").expect("data");
        drop(body);
        assert_eq!(
            *seen.lock().expect("lock"),
            Some((b"partial".to_vec(), false))
        );
    }

    #[tokio::test]
    async fn a_complete_body_records_once() {
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let response = tap(
            Response::new(crate::reply::full("{}")),
            1024,
            move |bytes: &[u8], ended| {
                assert_eq!(bytes, b"{}");
                assert!(ended);
                *counted.lock().expect("lock") += 1;
            },
        );
        let collected = response.into_body().collect().await.expect("body");
        assert_eq!(collected.to_bytes(), "{}");
        assert_eq!(*calls.lock().expect("lock"), 1);
    }
}
