//! What every reconcile shares: the client, the event recorder, metrics and settings.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;

/// Settings of the operator process that shape the objects it builds.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Image of the proxy runner container.
    pub proxy_image: String,
    /// Pull policy of the proxy runner image.
    pub proxy_image_pull_policy: Option<String>,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            proxy_image: DEFAULT_PROXY_IMAGE.to_owned(),
            proxy_image_pull_policy: None,
        }
    }
}

/// Default proxy runner image.
pub const DEFAULT_PROXY_IMAGE: &str = "ghcr.io/stacklok/toolhive/proxyrunner:latest";

/// Shared state of the controllers.
#[derive(Clone)]
pub struct Context {
    /// API client.
    pub client: Client,
    /// Kubernetes events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Operator settings.
    pub config: OperatorConfig,
    /// What the MCPServer controller last applied (skips unchanged re-applies).
    pub applied: Arc<crate::controllers::mcpserver::apply::Applied>,
}

impl Context {
    /// A context for the given client.
    pub fn new(client: Client, metrics: Arc<Metrics>, config: OperatorConfig) -> Arc<Self> {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            config,
            applied: Arc::default(),
        })
    }
}
