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
    /// Isolate MCP server pods with a NetworkPolicy unless an MCPServer says otherwise.
    pub network_policies: bool,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            proxy_image: DEFAULT_PROXY_IMAGE.to_owned(),
            proxy_image_pull_policy: None,
            network_policies: false,
        }
    }
}

/// Default proxy runner image: the one `make images` builds from this version, and
/// the chart's default (`proxyRunner.image`, tag = appVersion).
pub const DEFAULT_PROXY_IMAGE: &str = concat!(
    "ghcr.io/stacklok/toolhive-rs/proxyrunner:",
    env!("CARGO_PKG_VERSION")
);

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
    /// Namespaces found being deleted (their reconciles pause).
    pub terminating: Arc<crate::controllers::Terminating>,
    /// The watches the controllers share.
    pub feeds: Arc<crate::controllers::feeds::Feeds>,
}

impl Context {
    /// A context for the given client.
    pub fn new(client: Client, metrics: Arc<Metrics>, config: OperatorConfig) -> Arc<Self> {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let applied = Arc::<crate::controllers::mcpserver::apply::Applied>::default();
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            feeds: Arc::new(crate::controllers::feeds::Feeds::new(
                client.clone(),
                applied.clone(),
            )),
            client,
            metrics,
            config,
            applied,
            terminating: Arc::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_PROXY_IMAGE;

    fn repo_file(path: &str) -> String {
        let full = concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_owned() + path;
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// The operator's default, the chart's values and `make images` name one image, so a
    /// `helm install` or a bare `thv-operator` deploys the proxy that `make images` built.
    #[test]
    fn default_proxy_image_is_the_one_make_images_and_the_chart_name() {
        let (repo, tag) = DEFAULT_PROXY_IMAGE
            .rsplit_once(':')
            .expect("image has a tag");
        let chart = repo_file("charts/toolhive/Chart.yaml");
        assert!(
            chart.contains(&format!("appVersion: \"{tag}\"")),
            "Chart.yaml appVersion must be the crate version {tag}"
        );
        let values = repo_file("charts/toolhive/values.yaml");
        assert!(
            values.contains(&format!("repository: {repo}\n")),
            "values.yaml proxyRunner.image.repository must be {repo}"
        );
        let images = repo_file("scripts/images.sh");
        let prefix = repo
            .strip_suffix("/proxyrunner")
            .expect("repository ends in /proxyrunner");
        assert!(
            images.contains(&format!("THV_IMAGES_REPO:-{prefix}}}")),
            "scripts/images.sh must default to {prefix}"
        );
    }
}
