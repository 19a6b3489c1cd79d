//! The operator's controllers running inside the test process, limited to one
//! namespace, stopped when the guard is dropped.

use std::sync::Arc;

use kube::Client;
use operator::metrics::Metrics;
use operator::{Context, OperatorConfig};
use tokio::sync::oneshot;

/// A running controller; dropping it stops the controller.
pub struct InProcess {
    stop: Option<oneshot::Sender<()>>,
}

/// What stops an in-process controller: the guard's drop.
type Shutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>>;

/// The operator's settings for objects that stay on kwok nodes (no image is pulled).
fn kwok_config() -> OperatorConfig {
    OperatorConfig {
        proxy_image: "example.com/thv-proxyrunner:test".into(),
        ..OperatorConfig::default()
    }
}

/// The operator's settings for namespaces whose pods run on the real node: the proxy
/// image `make images` built (the operator's default), never pulled.
fn real_node_config() -> OperatorConfig {
    OperatorConfig {
        proxy_image_pull_policy: Some("IfNotPresent".into()),
        ..OperatorConfig::default()
    }
}

impl InProcess {
    /// The MCPServer controller, watching `namespace` with `client`'s permissions.
    pub fn mcpserver(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        Self::start(client, namespace, kwok_config(), |ctx, ns, stop| {
            operator::controllers::mcpserver::run(ctx, ns, stop)
        })
    }

    /// The MCPServer controller deploying the proxy image `make images` built, for
    /// namespaces whose pods run on the real node.
    pub fn mcpserver_with_real_proxy(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        Self::start(client, namespace, real_node_config(), |ctx, ns, stop| {
            operator::controllers::mcpserver::run(ctx, ns, stop)
        })
    }

    /// The MCPRemoteProxy controller, watching `namespace` with `client`'s permissions.
    pub fn mcpremoteproxy(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        Self::start(client, namespace, kwok_config(), |ctx, ns, stop| {
            operator::controllers::mcpremoteproxy::run(ctx, ns, stop)
        })
    }

    /// The MCPRemoteProxy controller deploying the proxy image `make images` built, for
    /// namespaces whose pods run on the real node.
    pub fn mcpremoteproxy_with_real_proxy(
        client: &Client,
        namespace: &str,
    ) -> anyhow::Result<Self> {
        Self::start(client, namespace, real_node_config(), |ctx, ns, stop| {
            operator::controllers::mcpremoteproxy::run(ctx, ns, stop)
        })
    }

    /// The MCPGroup controller, watching `namespace`.
    pub fn mcpgroup(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        Self::start(
            client,
            namespace,
            OperatorConfig::default(),
            operator::controllers::mcpgroup::run,
        )
    }

    /// The MCPRegistry controller, watching `namespace`.
    pub fn mcpregistry(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        Self::start(
            client,
            namespace,
            OperatorConfig::default(),
            operator::controllers::mcpregistry::run,
        )
    }

    /// Spawns `run` (a controller's `run`) for `namespace` with `config`.
    fn start<F, Fut>(
        client: &Client,
        namespace: &str,
        config: OperatorConfig,
        run: F,
    ) -> anyhow::Result<Self>
    where
        F: FnOnce(Arc<Context>, Option<String>, Shutdown) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let ctx = Context::new(client.clone(), Arc::new(Metrics::new()?), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        tokio::spawn(run(ctx, Some(namespace.to_owned()), shutdown));
        Ok(Self { stop: Some(stop) })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A namespace `<prefix>-…` whose pods run on the real node under the `restricted` Pod
/// Security Standard, with the CRDs installed and the MCPServer controller running in
/// this process with the proxy image `make images` built: the set-up of every test of
/// the Kubernetes backend. Keep the controller alive as long as the test runs.
pub async fn real_node_with_operator(
    prefix: &str,
) -> anyhow::Result<(kube::Client, crate::TestNamespace, InProcess)> {
    real_node_with_operator_config(prefix, real_node_config()).await
}

/// The same set-up with NetworkPolicies per MCPServer on, as the chart installs the
/// operator (`networkPolicy.enabled: true`, the `--network-policies` flag).
pub async fn real_node_with_isolating_operator(
    prefix: &str,
) -> anyhow::Result<(kube::Client, crate::TestNamespace, InProcess)> {
    let config = OperatorConfig {
        network_policies: true,
        ..real_node_config()
    };
    real_node_with_operator_config(prefix, config).await
}

async fn real_node_with_operator_config(
    prefix: &str,
    config: OperatorConfig,
) -> anyhow::Result<(kube::Client, crate::TestNamespace, InProcess)> {
    let client = crate::client().await?;
    crate::install_crds(&client).await?;
    let ns = crate::TestNamespace::on_real_node(
        &client,
        prefix,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let controller = InProcess::start(&client, &ns.name, config, |ctx, ns, stop| {
        operator::controllers::mcpserver::run(ctx, ns, stop)
    })?;
    Ok((client, ns, controller))
}
