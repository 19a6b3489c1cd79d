//! OTLP traces: one server span per MCP message, exported over OTLP/HTTP with the JSON
//! encoding to `<endpoint>/v1/traces`, batched (up to 512 spans or every second) by a
//! background task so a slow collector never delays a request. A W3C `traceparent` from
//! the client makes the span its child; the sampling decision is the parent's when
//! given, `samplingRate` otherwise.
//!
//! Hand-written rather than `opentelemetry-otlp`: that crate brings its own reqwest and
//! hyper generation and a protobuf/gRPC stack for what is, here, one JSON POST per
//! batch; OTLP/HTTP JSON is a stable part of the OTLP specification.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runconfig::middleware::telemetry::ValidatedTelemetry;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Spans held at most before new ones are dropped (counted in the log).
const QUEUE: usize = 8192;
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The caller's span, when a `traceparent` named one.
    pub parent_span_id: Option<String>,
    /// `mcp.method` (and the target), e.g. `tools/call echo`.
    pub name: String,
    /// Start, ns since the epoch.
    pub start_ns: u128,
    /// End, ns since the epoch.
    pub end_ns: u128,
    /// String attributes.
    pub attributes: Vec<(&'static str, String)>,
    /// An error status.
    pub error: bool,
}

/// The trace context of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The trace.
    pub trace_id: String,
    /// The caller's span.
    pub parent_span_id: Option<String>,
    /// Whether spans of this request are exported.
    pub sampled: bool,
}

/// A POST's span, started.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanStart {
    /// Its trace context.
    pub context: Context,
    /// The proxy's span id (the upstream's parent).
    pub span_id: String,
    /// Start, ns since the epoch.
    pub start_ns: u128,
}

/// Exports spans.
pub struct Tracer {
    tx: mpsc::Sender<Span>,
    sampling_rate: f64,
}

impl Tracer {
    /// The tracer, when tracing is enabled with an endpoint; starts the export task.
    pub fn new(telemetry: &ValidatedTelemetry) -> Option<Self> {
        let endpoint = telemetry
            .endpoint
            .as_ref()
            .filter(|_| telemetry.tracing_enabled)?;
        let url = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(QUEUE);
        let resource = resource(telemetry);
        let headers = telemetry.headers.clone();
        let client = otlp_client("trace", telemetry.ca_bundle.as_deref())?;
        tokio::spawn(export(rx, client, url, resource, headers));
        Some(Self {
            tx,
            sampling_rate: telemetry.sampling_rate,
        })
    }

    /// The context of a request, from its `traceparent` header when valid.
    pub fn context(&self, traceparent: Option<&str>) -> Context {
        if let Some((trace_id, parent, sampled)) = traceparent.and_then(parse_traceparent) {
            return Context {
                trace_id,
                parent_span_id: Some(parent),
                sampled,
            };
        }
        Context {
            trace_id: format!("{:032x}", rand::random::<u128>().max(1)),
            parent_span_id: None,
            sampled: rand::random::<f64>() < self.sampling_rate,
        }
    }

    /// Starts the span of a POST: its context comes from the client's `traceparent`,
    /// and the upstream gets the proxy's span as its parent (`headers` are the ones it
    /// receives).
    pub fn start(&self, headers: &mut http::HeaderMap) -> SpanStart {
        let context = self.context(headers.get("traceparent").and_then(|v| v.to_str().ok()));
        let span_id = span_id();
        let flags = if context.sampled { "01" } else { "00" };
        if let Ok(value) =
            http::HeaderValue::from_str(&format!("00-{}-{span_id}-{flags}", context.trace_id))
        {
            headers.insert("traceparent", value);
        }
        SpanStart {
            context,
            span_id,
            start_ns: now_ns(),
        }
    }

    /// Exports the span of a POST answered with `status`, when it is sampled.
    pub fn finish(&self, start: SpanStart, body: &crate::mcp::Body, status: http::StatusCode) {
        let SpanStart {
            context,
            span_id,
            start_ns,
        } = start;
        if !context.sampled {
            return;
        }
        let call = body.messages.iter().find_map(crate::mcp::Message::call);
        let method = call.map_or("response", |c| c.method.as_str());
        let mut attributes = vec![
            ("mcp.method", method.to_owned()),
            ("rpc.system", "jsonrpc".to_owned()),
            ("http.response.status_code", status.as_u16().to_string()),
        ];
        if let Some(target) = call.and_then(|c| c.target.clone()) {
            attributes.push(("mcp.target", target));
        }
        if let Some(id) = body.messages.first().and_then(|m| m.id.clone()) {
            attributes.push(("mcp.request.id", id));
        }
        self.record(Span {
            trace_id: context.trace_id,
            span_id,
            parent_span_id: context.parent_span_id,
            name: call.map_or_else(|| method.to_owned(), crate::mcp::Call::describe),
            start_ns,
            end_ns: now_ns(),
            attributes,
            error: !status.is_success(),
        });
    }

    /// Queues a span; never waits.
    pub fn record(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            tracing::debug!("trace export queue full; span dropped");
        }
    }
}

/// A fresh span id.
pub fn span_id() -> String {
    format!("{:016x}", rand::random::<u64>().max(1))
}

/// Now, in ns since the epoch.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `00-<trace>-<parent>-<flags>` → (trace, parent, sampled).
fn parse_traceparent(value: &str) -> Option<(String, String, bool)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
    };
    if version != "00" || !hex(trace, 32) || !hex(parent, 16) || flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((
        trace.to_ascii_lowercase(),
        parent.to_ascii_lowercase(),
        flags & 1 == 1,
    ))
}

/// The HTTP client of an OTLP exporter (`what`: "trace", "metrics"), trusting
/// `ca_bundle` besides the public roots, or `None`, logged.
pub(crate) fn otlp_client(what: &str, ca_bundle: Option<&str>) -> Option<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(pem) = ca_bundle {
        match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
            Ok(certs) => {
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "{what} export disabled: the collector's CA bundle is not PEM");
                return None;
            }
        }
    }
    match builder.build() {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::error!(error = %e, "{what} export disabled: no HTTP client");
            None
        }
    }
}

pub(crate) fn resource(telemetry: &ValidatedTelemetry) -> Value {
    let mut attributes = vec![attribute("service.name", &telemetry.service_name)];
    if let Some(version) = &telemetry.service_version {
        attributes.push(attribute("service.version", version));
    }
    for (k, v) in &telemetry.resource_attributes {
        attributes.push(attribute(k, v));
    }
    json!({ "attributes": attributes })
}

pub(crate) fn attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// The OTLP/HTTP JSON body of a batch.
pub fn encode(resource: &Value, spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": 2,
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
                "status": { "code": if s.error { 2 } else { 1 } },
            });
            if let Some(parent) = &s.parent_span_id {
                span["parentSpanId"] = Value::String(parent.clone());
            }
            span
        })
        .collect();
    json!({ "resourceSpans": [{
        "resource": resource,
        "scopeSpans": [{ "scope": { "name": "thv-proxyrunner", "version": env!("CARGO_PKG_VERSION") }, "spans": spans }],
    }]})
}

async fn export(
    mut rx: mpsc::Receiver<Span>,
    client: reqwest::Client,
    url: String,
    resource: Value,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            span = rx.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() < BATCH {
                        continue;
                    }
                }
                None => {
                    send(&client, &url, &headers, &resource, &mut batch).await;
                    return;
                }
            },
            _ = ticker.tick() => {}
        }
        send(&client, &url, &headers, &resource, &mut batch).await;
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    resource: &Value,
    batch: &mut Vec<Span>,
) {
    if batch.is_empty() {
        return;
    }
    let body = encode(resource, batch);
    batch.clear();
    let mut request = client.post(url).json(&body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
        tracing::warn!(error = %e, url, "trace export failed; batch dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_or_refused() {
        let parsed = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            parsed,
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                "00f067aa0ba902b7".to_owned(),
                true
            ))
        );
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(parse_traceparent("garbage"), None);
    }
}
