//! Telemetry: Prometheus metrics under ToolHive's names, served on their own port so
//! scraping never competes with, or is exposed by, the MCP port.
//!
//! - `toolhive_mcp_requests_total{server,transport,mcp_method,status,status_code}`
//! - `toolhive_mcp_request_duration_seconds{server,transport,mcp_method}`
//! - `toolhive_mcp_tool_calls_total{server,tool,status}`
//! - `toolhive_mcp_active_connections{server,transport}` (open streams)

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Response};
use runconfig::middleware::telemetry::ValidatedTelemetry;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::audit::Outcome;
use super::chain::{BuildContext, Exchange, Middleware};
use super::tracing_export::{SpanStart, Tracer};
use crate::reply::Body;
use crate::runner::BuildError;

/// The telemetry middleware, outermost: every parsed MCP message is counted and timed
/// whatever the outcome, and each POST is a trace span.
pub struct Telemetry {
    metrics: Option<Arc<Metrics>>,
    tracer: Option<Tracer>,
}

impl Middleware for Telemetry {
    type Config<'a> = &'a ValidatedTelemetry;

    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        let (metrics, tracer) = (context.metrics.clone(), Tracer::new(config));
        Ok((metrics.is_some() || tracer.is_some()).then_some(Self { metrics, tracer }))
    }

    fn begin(&self, exchange: &mut Exchange, headers: &mut HeaderMap) {
        if let Some(tracer) = &self.tracer {
            exchange.extensions.insert(tracer.start(headers));
        }
    }

    fn finish(&self, exchange: &mut Exchange, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        if let (Some(tracer), Some(span)) =
            (&self.tracer, exchange.extensions.remove::<SpanStart>())
        {
            tracer.finish(span, &exchange.body, status);
        }
        if let Some(metrics) = &self.metrics {
            let elapsed = exchange.started.elapsed();
            for (i, message) in exchange.body.messages.iter().enumerate() {
                let Some(call) = message.call() else { continue };
                let tool = (call.method == "tools/call")
                    .then_some(call.target.as_deref())
                    .flatten();
                let success = exchange.outcome(i, status) == Outcome::Success;
                metrics.request(&call.method, status.as_u16(), success, elapsed, tool);
            }
        }
        response
    }
}

/// The proxy's metrics.
pub struct Metrics {
    registry: Registry,
    server: String,
    transport: String,
    requests: IntCounterVec,
    duration: HistogramVec,
    tool_calls: IntCounterVec,
    active: IntGaugeVec,
    token_exchanges: IntCounterVec,
    webhooks: IntCounterVec,
}

/// What became of a caller's token at the token exchange stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeOutcome {
    /// Exchanged at the authorization server.
    Issued,
    /// An earlier exchange of the same token was reused.
    Cached,
    /// The authorization server refused the caller's token (403).
    Refused,
    /// The exchange failed: the proxy's client refused, no answer (502).
    Failed,
}

impl ExchangeOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Cached => "cached",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

impl Metrics {
    /// Registers the metrics for `server` on `transport`.
    pub fn new(server: &str, transport: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "toolhive_mcp_requests_total",
                "MCP requests handled by the proxy",
            ),
            &["server", "transport", "mcp_method", "status", "status_code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "toolhive_mcp_request_duration_seconds",
                "Time until the proxy started answering an MCP request",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["server", "transport", "mcp_method"],
        )?;
        let tool_calls = IntCounterVec::new(
            Opts::new("toolhive_mcp_tool_calls_total", "MCP tool calls by tool"),
            &["server", "tool", "status"],
        )?;
        let active = IntGaugeVec::new(
            Opts::new("toolhive_mcp_active_connections", "Open MCP streams"),
            &["server", "transport"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(tool_calls.clone()))?;
        let token_exchanges = IntCounterVec::new(
            Opts::new(
                "toolhive_token_exchanges_total",
                "Callers' tokens at the token exchange stage, by outcome (issued, cached, refused, failed)",
            ),
            &["server", "outcome"],
        )?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(token_exchanges.clone()))?;
        let webhooks = IntCounterVec::new(
            Opts::new(
                "toolhive_webhook_calls_total",
                "MCP requests sent to request webhooks, by outcome (allowed, mutated, denied, failed)",
            ),
            &["server", "kind", "webhook", "outcome"],
        )?;
        registry.register(Box::new(webhooks.clone()))?;
        Ok(Self {
            registry,
            server: server.to_owned(),
            transport: transport.to_owned(),
            requests,
            duration,
            tool_calls,
            active,
            token_exchanges,
            webhooks,
        })
    }

    /// Counts one MCP request sent to a request webhook (`kind` mutating or validating).
    pub fn webhook(&self, kind: &str, webhook: &str, outcome: &str) {
        self.webhooks
            .with_label_values(&[&self.server, kind, webhook, outcome])
            .inc();
    }

    /// Counts one caller's token at the token exchange stage.
    pub fn token_exchange(&self, outcome: ExchangeOutcome) {
        self.token_exchanges
            .with_label_values(&[&self.server, outcome.label()])
            .inc();
    }

    /// Counts one handled message.
    pub fn request(
        &self,
        method: &str,
        status_code: u16,
        ok: bool,
        elapsed: Duration,
        tool: Option<&str>,
    ) {
        let status = if ok { "success" } else { "error" };
        let code = status_code.to_string();
        self.requests
            .with_label_values(&[&self.server, &self.transport, method, status, &code])
            .inc();
        self.duration
            .with_label_values(&[&self.server, &self.transport, method])
            .observe(elapsed.as_secs_f64());
        if let Some(tool) = tool {
            self.tool_calls
                .with_label_values(&[&self.server, tool, status])
                .inc();
        }
    }

    /// Counts an open stream until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard {
        let gauge = self
            .active
            .with_label_values(&[&self.server, &self.transport]);
        gauge.inc();
        ConnectionGuard(gauge)
    }

    /// The current values, for OTLP export.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Decrements the active-connections gauge when dropped.
pub struct ConnectionGuard(prometheus::IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
