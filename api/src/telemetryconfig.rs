//! The `MCPTelemetryConfig` kind: OpenTelemetry and Prometheus settings shared by servers.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{CABundleSource, ConfigStatus, SecretKeyRef};

/// Default trace sampling rate, as ToolHive writes it.
pub const DEFAULT_SAMPLING_RATE: &str = "0.05";

/// Telemetry shared by the MCPServers that reference it through `spec.telemetryConfigRef`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "toolhive.stacklok.dev",
    version = "v1beta1",
    kind = "MCPTelemetryConfig",
    plural = "mcptelemetryconfigs",
    singular = "mcptelemetryconfig",
    namespaced,
    status = "ConfigStatus",
    shortname = "mcpotel",
    category = "toolhive",
    doc = "MCPTelemetryConfig holds the OpenTelemetry (OTLP) and Prometheus settings shared by the MCPServers that reference it.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".spec.openTelemetry.endpoint"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Valid')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    label("toolhive.stacklok.dev/auto-migrate-storage-version", "true")
)]
#[serde(rename_all = "camelCase")]
pub struct MCPTelemetryConfigSpec {
    /// OpenTelemetry export over OTLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OpenTelemetryConfig>,
    /// Prometheus scrape endpoint on the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
}

/// OpenTelemetry export over OTLP.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("!self.enabled || has(self.endpoint)").message("endpoint is required when OpenTelemetry is enabled").field_path(".endpoint"),
    validation = Rule::new("!has(self.headers) || !has(self.sensitiveHeaders) || self.sensitiveHeaders.all(sh, !(sh.name in self.headers))").message("a header name cannot appear in both headers and sensitiveHeaders"),
)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryConfig {
    /// Export telemetry over OTLP.
    #[serde(default)]
    pub enabled: bool,
    /// OTLP/HTTP collector endpoint, e.g. `otel-collector.observability:4318` or a full URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Send to the collector without TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub insecure: bool,
    /// Extra headers sent with every export, e.g. a tenant ID. Use `sensitiveHeaders` for credentials.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Headers whose values come from Secrets, e.g. `Authorization`. Not supported yet:
    /// refused at apply time (in ToolHive's schema so its manifests get that message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub sensitive_headers: Vec<SensitiveHeader>,
    /// Extra OpenTelemetry resource attributes, e.g. `deployment.environment: prod`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<String, String>,
    /// OTLP metrics export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<OpenTelemetryMetricsConfig>,
    /// OTLP trace export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<OpenTelemetryTracingConfig>,
    /// Also emit the attribute names ToolHive used before the OpenTelemetry MCP semantic
    /// conventions, for dashboards that still use them.
    #[serde(default = "default_true")]
    pub use_legacy_attributes: bool,
    /// CA bundle to trust for the collector's TLS certificate, besides the public CAs: a
    /// ConfigMap key holding PEM certificates (`ca.crt` by default), copied into the
    /// proxy's RunConfig. A change of the ConfigMap reaches the proxies at the operator's
    /// next resync (within 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CABundleSource>,
}

fn default_true() -> bool {
    true
}

/// A header whose value comes from a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SensitiveHeader {
    /// Header name, e.g. `Authorization`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Secret key holding the header value.
    pub secret_key_ref: SecretKeyRef,
}

/// OTLP metrics export.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryMetricsConfig {
    /// Export metrics over OTLP.
    #[serde(default)]
    pub enabled: bool,
}

/// OTLP trace export.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryTracingConfig {
    /// Export traces over OTLP.
    #[serde(default)]
    pub enabled: bool,
    /// Fraction of traces sampled, from `0` to `1`, as a string (`"0.05"`), as ToolHive writes it.
    #[serde(default = "default_sampling_rate")]
    #[schemars(regex(pattern = r"^(0(\.\d+)?|1(\.0+)?)$"))]
    pub sampling_rate: String,
}

fn default_sampling_rate() -> String {
    DEFAULT_SAMPLING_RATE.to_owned()
}

/// Prometheus scrape endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusConfig {
    /// Serve `/metrics` in Prometheus format on the proxy's metrics port.
    #[serde(default)]
    pub enabled: bool,
}
