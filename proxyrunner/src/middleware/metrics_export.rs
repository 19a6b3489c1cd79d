//! OTLP metrics: the proxy's metrics (the same instruments `/metrics` shows) pushed
//! over OTLP/HTTP with the JSON encoding to `<endpoint>/v1/metrics` every
//! `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (60 s by default, as OpenTelemetry SDKs),
//! as cumulative data under ToolHive's OpenTelemetry instrument names:
//! `toolhive_mcp_requests`, `toolhive_mcp_tool_calls` (monotonic sums),
//! `toolhive_mcp_request_duration` (histogram, unit `s`) and
//! `toolhive_mcp_active_connections` (non-monotonic sum). Prometheus appends `_total`
//! and `_seconds` to the first three, which is why `/metrics` shows those names.
//!
//! Read from the Prometheus registry rather than kept twice; hand-written rather than
//! with `opentelemetry-otlp` for the reasons `tracing_export` gives.

use std::sync::Arc;
use std::time::Duration;

use prometheus::proto::{MetricFamily, MetricType};
use runconfig::middleware::telemetry::ValidatedTelemetry;
use serde_json::{Value, json};

use super::telemetry::Metrics;
use super::tracing_export::{attribute, now_ns, otlp_client, resource};

/// The export interval when `OTEL_METRIC_EXPORT_INTERVAL` does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The interval from `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds), else the default.
pub fn interval_from_env() -> Duration {
    match std::env::var("OTEL_METRIC_EXPORT_INTERVAL") {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                tracing::warn!(
                    value = %text,
                    "OTEL_METRIC_EXPORT_INTERVAL is not a positive number of milliseconds; using 60000"
                );
                DEFAULT_INTERVAL
            }
        },
        Err(_) => DEFAULT_INTERVAL,
    }
}

/// Pushes the proxy's metrics to an OTLP collector.
pub struct Exporter {
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    url: String,
    resource: Value,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Start of the cumulative data: when the exporter was made.
    start_ns: u128,
}

impl Exporter {
    /// The exporter, when metrics export is enabled with an endpoint.
    pub fn new(metrics: Arc<Metrics>, telemetry: &ValidatedTelemetry) -> Option<Arc<Self>> {
        let endpoint = telemetry
            .endpoint
            .as_ref()
            .filter(|_| telemetry.metrics_enabled)?;
        let client = otlp_client("metrics", telemetry.ca_bundle.as_deref())?;
        Some(Arc::new(Self {
            metrics,
            client,
            url: format!("{}/v1/metrics", endpoint.as_str().trim_end_matches('/')),
            resource: resource(telemetry),
            headers: telemetry.headers.clone(),
            start_ns: now_ns(),
        }))
    }

    /// Pushes every `every` (the first push after one interval), in the background.
    pub fn spawn(self: &Arc<Self>, every: Duration) {
        let exporter = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate: nothing to report yet
            loop {
                ticker.tick().await;
                exporter.push().await;
            }
        });
    }

    /// Pushes the current values once (also at shutdown, so a short-lived proxy's
    /// numbers are not lost).
    pub async fn push(&self) {
        let body = encode(
            &self.resource,
            &self.metrics.gather(),
            self.start_ns,
            now_ns(),
        );
        let mut request = self.client.post(&self.url).json(&body);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
            // Cumulative data: the next push carries everything this one had.
            tracing::warn!(error = %e, url = self.url, "metrics export failed; retried at the next interval");
        }
    }
}

/// The OpenTelemetry instrument name and unit of a Prometheus family.
fn instrument(family: &MetricFamily) -> (&str, Option<&'static str>) {
    let name = family.name();
    match family.get_field_type() {
        MetricType::COUNTER => (name.strip_suffix("_total").unwrap_or(name), None),
        MetricType::HISTOGRAM => match name.strip_suffix("_seconds") {
            Some(base) => (base, Some("s")),
            None => (name, None),
        },
        _ => (name, None),
    }
}

/// The OTLP/HTTP JSON body for `families`, cumulative since `start_ns`.
pub fn encode(resource: &Value, families: &[MetricFamily], start_ns: u128, now_ns: u128) -> Value {
    let (start, now) = (start_ns.to_string(), now_ns.to_string());
    let metrics: Vec<Value> = families
        .iter()
        .filter_map(|family| {
            let (name, unit) = instrument(family);
            let point = |metric: &prometheus::proto::Metric| {
                let attributes: Vec<Value> = metric
                    .get_label()
                    .iter()
                    .map(|l| attribute(l.name(), l.value()))
                    .collect();
                json!({
                    "attributes": attributes,
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                })
            };
            let mut metric = json!({ "name": name, "description": family.help() });
            if let Some(unit) = unit {
                metric["unit"] = Value::from(unit);
            }
            match family.get_field_type() {
                MetricType::COUNTER | MetricType::GAUGE => {
                    let monotonic = family.get_field_type() == MetricType::COUNTER;
                    let points: Vec<Value> = family
                        .get_metric()
                        .iter()
                        .map(|m| {
                            let value = if monotonic {
                                m.get_counter().get_value()
                            } else {
                                m.get_gauge().get_value()
                            };
                            let mut p = point(m);
                            // Integer instruments: counts and open streams.
                            p["asInt"] = Value::from((value as i64).to_string());
                            p
                        })
                        .collect();
                    metric["sum"] = json!({
                        "dataPoints": points,
                        "aggregationTemporality": 2,
                        "isMonotonic": monotonic,
                    });
                }
                MetricType::HISTOGRAM => {
                    let points: Vec<Value> = family
                        .get_metric()
                        .iter()
                        .map(|m| {
                            let h = m.get_histogram();
                            let buckets = h.get_bucket();
                            let mut counts = Vec::with_capacity(buckets.len() + 1);
                            let mut bounds = Vec::with_capacity(buckets.len());
                            let mut below = 0;
                            for bucket in buckets {
                                if bucket.upper_bound().is_infinite() {
                                    continue;
                                }
                                counts.push(
                                    bucket.cumulative_count().saturating_sub(below).to_string(),
                                );
                                below = bucket.cumulative_count();
                                bounds.push(bucket.upper_bound());
                            }
                            counts.push(h.get_sample_count().saturating_sub(below).to_string());
                            let mut p = point(m);
                            p["count"] = Value::from(h.get_sample_count().to_string());
                            p["sum"] = Value::from(h.get_sample_sum());
                            p["bucketCounts"] = Value::from(counts);
                            p["explicitBounds"] = Value::from(bounds);
                            p
                        })
                        .collect();
                    metric["histogram"] = json!({
                        "dataPoints": points,
                        "aggregationTemporality": 2,
                    });
                }
                _ => return None,
            }
            Some(metric)
        })
        .collect();
    json!({ "resourceMetrics": [{
        "resource": resource,
        "scopeMetrics": [{
            "scope": { "name": "thv-proxyrunner", "version": env!("CARGO_PKG_VERSION") },
            "metrics": metrics,
        }],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric<'a>(body: &'a Value, name: &str) -> &'a Value {
        body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    }

    #[test]
    fn prometheus_families_become_otlp_instruments_under_toolhive_names() {
        let metrics = Metrics::new("github", "streamable-http").expect("metrics");
        metrics.request(
            "tools/call",
            200,
            true,
            Duration::from_millis(3),
            Some("echo"),
        );
        metrics.request(
            "tools/call",
            200,
            true,
            Duration::from_millis(30),
            Some("echo"),
        );
        metrics.request("tools/list", 403, false, Duration::from_micros(100), None);
        let _open = metrics.connection();
        let body = encode(&json!({"attributes": []}), &metrics.gather(), 1, 2);

        let requests = metric(&body, "toolhive_mcp_requests");
        assert_eq!(requests["sum"]["isMonotonic"], true);
        assert_eq!(requests["sum"]["aggregationTemporality"], 2);
        let points = requests["sum"]["dataPoints"].as_array().expect("points");
        assert_eq!(points.len(), 2);
        let call = points
            .iter()
            .find(|p| p["attributes"].to_string().contains("tools/call"))
            .expect("the tools/call series");
        assert_eq!(call["asInt"], "2");
        assert_eq!(call["startTimeUnixNano"], "1");
        assert!(call["attributes"].to_string().contains(r#""key":"server""#));

        let duration = metric(&body, "toolhive_mcp_request_duration");
        assert_eq!(duration["unit"], "s");
        let point = duration["histogram"]["dataPoints"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .find(|p| p["attributes"].to_string().contains("tools/call"))
            })
            .expect("the tools/call histogram");
        assert_eq!(point["count"], "2");
        let counts: Vec<u64> = point["bucketCounts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| c.as_str().and_then(|c| c.parse().ok()).expect("a count"))
            .collect();
        let bounds = point["explicitBounds"].as_array().expect("bounds");
        // One count per bound plus the overflow bucket, summing to the total.
        assert_eq!(counts.len(), bounds.len() + 1);
        assert_eq!(counts.iter().sum::<u64>(), 2);

        assert_eq!(
            metric(&body, "toolhive_mcp_tool_calls")["sum"]["dataPoints"][0]["asInt"],
            "2"
        );
        let active = metric(&body, "toolhive_mcp_active_connections");
        assert_eq!(active["sum"]["isMonotonic"], false);
        assert_eq!(active["sum"]["dataPoints"][0]["asInt"], "1");
    }
}
