//! Telemetry: Prometheus metrics under ToolHive's names, served on their own port so
//! scraping never competes with, or is exposed by, the MCP port.
//!
//! - `toolhive_mcp_requests_total{server,transport,mcp_method,status,status_code}`
//! - `toolhive_mcp_request_duration_seconds{server,transport,mcp_method}`
//! - `toolhive_mcp_tool_calls_total{server,tool,status}`
//! - `toolhive_mcp_active_connections{server,transport}` (open streams)

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The proxy's metrics.
pub struct Metrics {
    registry: Registry,
    server: String,
    transport: String,
    requests: IntCounterVec,
    duration: HistogramVec,
    tool_calls: IntCounterVec,
    active: IntGaugeVec,
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
        registry.register(Box::new(active.clone()))?;
        Ok(Self {
            registry,
            server: server.to_owned(),
            transport: transport.to_owned(),
            requests,
            duration,
            tool_calls,
            active,
        })
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
