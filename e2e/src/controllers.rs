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

impl InProcess {
    /// The MCPServer controller, watching `namespace` with `client`'s permissions.
    pub fn mcpserver(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        let config = OperatorConfig {
            proxy_image: "example.com/thv-proxyrunner:test".into(),
            ..OperatorConfig::default()
        };
        Self::mcpserver_with(client, namespace, config)
    }

    /// The MCPServer controller deploying the proxy image `make images` built (the
    /// operator's default), for namespaces whose pods run on the real node.
    pub fn mcpserver_with_real_proxy(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        let config = OperatorConfig {
            proxy_image_pull_policy: Some("IfNotPresent".into()),
            ..OperatorConfig::default()
        };
        Self::mcpserver_with(client, namespace, config)
    }

    fn mcpserver_with(
        client: &Client,
        namespace: &str,
        config: OperatorConfig,
    ) -> anyhow::Result<Self> {
        let (ctx, guard, stopped) = Self::prepare(client, config)?;
        tokio::spawn(operator::controllers::mcpserver::run(
            ctx,
            Some(namespace.to_owned()),
            stopped,
        ));
        Ok(guard)
    }

    /// The MCPRemoteProxy controller, watching `namespace` with `client`'s permissions.
    pub fn mcpremoteproxy(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        let config = OperatorConfig {
            proxy_image: "example.com/thv-proxyrunner:test".into(),
            ..OperatorConfig::default()
        };
        let (ctx, guard, stopped) = Self::prepare(client, config)?;
        tokio::spawn(operator::controllers::mcpremoteproxy::run(
            ctx,
            Some(namespace.to_owned()),
            stopped,
        ));
        Ok(guard)
    }

    /// The MCPRemoteProxy controller deploying the proxy image `make images` built, for
    /// namespaces whose pods run on the real node.
    pub fn mcpremoteproxy_with_real_proxy(
        client: &Client,
        namespace: &str,
    ) -> anyhow::Result<Self> {
        let config = OperatorConfig {
            proxy_image_pull_policy: Some("IfNotPresent".into()),
            ..OperatorConfig::default()
        };
        let (ctx, guard, stopped) = Self::prepare(client, config)?;
        tokio::spawn(operator::controllers::mcpremoteproxy::run(
            ctx,
            Some(namespace.to_owned()),
            stopped,
        ));
        Ok(guard)
    }

    /// The MCPGroup controller, watching `namespace`.
    pub fn mcpgroup(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        let (ctx, guard, stopped) = Self::prepare(client, OperatorConfig::default())?;
        tokio::spawn(operator::controllers::mcpgroup::run(
            ctx,
            Some(namespace.to_owned()),
            stopped,
        ));
        Ok(guard)
    }

    /// The MCPRegistry controller, watching `namespace`.
    pub fn mcpregistry(client: &Client, namespace: &str) -> anyhow::Result<Self> {
        let (ctx, guard, stopped) = Self::prepare(client, OperatorConfig::default())?;
        tokio::spawn(operator::controllers::mcpregistry::run(
            ctx,
            Some(namespace.to_owned()),
            stopped,
        ));
        Ok(guard)
    }

    #[allow(clippy::type_complexity)] // a private constructor's parts
    fn prepare(
        client: &Client,
        config: OperatorConfig,
    ) -> anyhow::Result<(
        Arc<Context>,
        Self,
        impl std::future::Future<Output = ()> + Send + Sync + 'static,
    )> {
        let ctx = Context::new(client.clone(), Arc::new(Metrics::new()?), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        Ok((ctx, Self { stop: Some(stop) }, shutdown))
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
    let client = crate::client().await?;
    crate::install_crds(&client).await?;
    let ns = crate::TestNamespace::on_real_node(
        &client,
        prefix,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await?;
    let controller = InProcess::mcpserver_with_real_proxy(&client, &ns.name)?;
    Ok((client, ns, controller))
}
