//! Telemetry: OTLP endpoint and headers, sampling rate, service name, Prometheus.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use url::Url;

use crate::config::{SamplingRate, TelemetryConfig};
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::Check;

/// Default trace sampling rate.
pub const DEFAULT_SAMPLING_RATE: f64 = 0.05;

/// Validated telemetry settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedTelemetry {
    /// OTLP/HTTP base URL; `None` when only Prometheus is on.
    pub endpoint: Option<Url>,
    /// `service.name`.
    pub service_name: String,
    /// `service.version`.
    pub service_version: Option<String>,
    /// Export traces.
    pub tracing_enabled: bool,
    /// Export OTLP metrics.
    pub metrics_enabled: bool,
    /// Fraction of traces sampled.
    pub sampling_rate: f64,
    /// Export headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Serve Prometheus `/metrics`.
    pub prometheus_enabled: bool,
    /// Extra resource attributes.
    pub resource_attributes: BTreeMap<String, String>,
    /// Emit legacy attribute names too.
    pub use_legacy_attributes: bool,
    /// PEM CA bundle trusted for the collector besides the public roots.
    pub ca_bundle: Option<String>,
}

pub fn validate(
    telemetry: &TelemetryConfig,
    workload: &str,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedTelemetry> {
    let mut ok = true;
    let endpoint = match telemetry.endpoint.as_deref() {
        None | Some("") => {
            if telemetry.tracing_enabled || telemetry.metrics_enabled {
                ok = false;
                check.fail(
                    path.key("endpoint"),
                    Reason::Required,
                    "OTLP export is enabled but no endpoint is set",
                    "the collector's OTLP/HTTP address, e.g. otel-collector.observability:4318",
                );
            }
            None
        }
        Some(text) => {
            let endpoint = otlp_endpoint(text, telemetry.insecure);
            if endpoint.is_none() {
                ok = false;
                check.fail(path.key("endpoint"), Reason::InvalidFormat, format!("{text:?} is not an OTLP endpoint"), "host:port or an http(s) URL, e.g. otel-collector:4318 or https://otlp.example.com");
            }
            endpoint
        }
    };
    let sampling_rate = match &telemetry.sampling_rate {
        None => DEFAULT_SAMPLING_RATE,
        Some(rate) => {
            let (value, shown) = match rate {
                SamplingRate::Number(n) => (Some(*n), n.to_string()),
                SamplingRate::Text(t) => (t.trim().parse::<f64>().ok(), format!("{t:?}")),
            };
            match value {
                Some(v) if (0.0..=1.0).contains(&v) => v,
                _ => {
                    ok = false;
                    check.fail(
                        path.key("sampling_rate"),
                        Reason::OutOfRange,
                        format!("sampling rate {shown} is not a fraction"),
                        "a number from 0 to 1, e.g. 0.05",
                    );
                    DEFAULT_SAMPLING_RATE
                }
            }
        }
    };
    let mut headers = Vec::new();
    for (name, value) in &telemetry.headers {
        let header_path = path.key("headers").key(name.as_str());
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => headers.push((n, v)),
            (Err(_), _) => {
                ok = false;
                check.fail(
                    header_path,
                    Reason::InvalidFormat,
                    format!("{name:?} is not a valid HTTP header name"),
                    "a token of letters, digits and !#$%&'*+-.^_`|~",
                );
            }
            (_, Err(_)) => {
                ok = false;
                check.fail(
                    header_path,
                    Reason::InvalidFormat,
                    "the header value has control characters",
                    "visible ASCII and spaces",
                );
            }
        }
    }
    let service_name = telemetry
        .service_name
        .clone()
        .unwrap_or_else(|| workload.to_owned());
    if service_name.trim().is_empty() || service_name.len() > 255 {
        ok = false;
        check.fail(
            path.key("service_name"),
            Reason::InvalidFormat,
            "the service name is empty or longer than 255 characters",
            "a short name such as github-mcp",
        );
    }
    if let Some(bundle) = &telemetry.ca_bundle
        && !bundle.contains("-----BEGIN CERTIFICATE-----")
    {
        ok = false;
        check.fail(
            path.key("ca_bundle"),
            Reason::InvalidFormat,
            "the CA bundle holds no PEM certificate",
            "one or more PEM certificates",
        );
    }
    ok.then(|| ValidatedTelemetry {
        endpoint,
        service_name,
        service_version: telemetry.service_version.clone(),
        tracing_enabled: telemetry.tracing_enabled,
        metrics_enabled: telemetry.metrics_enabled,
        sampling_rate,
        headers,
        prometheus_enabled: telemetry.prometheus_enabled,
        resource_attributes: telemetry.resource_attributes.clone(),
        use_legacy_attributes: telemetry.use_legacy_attributes,
        ca_bundle: telemetry.ca_bundle.clone(),
    })
}

/// `host:port` (ToolHive's form) or a full http(s) URL.
fn otlp_endpoint(text: &str, insecure: bool) -> Option<Url> {
    let candidate = if text.contains("://") {
        text.to_owned()
    } else {
        format!("{}://{text}", if insecure { "http" } else { "https" })
    };
    let url = Url::parse(&candidate).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
        .then_some(url)
}
