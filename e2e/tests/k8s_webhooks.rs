//! MCPWebhookConfig on the real node: an MCPServer whose proxy calls request webhooks
//! running in the cluster (the fixture's webhook mode, a plain Deployment and Service).
//! The mutating webhook upper-cases `echo`'s message, and the server answers with the
//! changed message; the validating webhook denies one tool, and the client gets a
//! JSON-RPC error that names the webhook. The webhook checks the HMAC signature with the
//! key from the same Secret the proxy gets it from, so an answer at all proves the key
//! reached the proxy by `secretKeyRef`. A server whose webhook Secret does not exist
//! waits, naming `spec.webhookConfigRef`, and gets no proxy.

use std::time::Duration;

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::{apply_yaml, wait_until};
use k8s_openapi::api::apps::v1::Deployment;

/// The fixture's webhook mode as a Deployment and Service `hooks`, its HMAC key from the
/// Secret `hooks`.
fn webhook_server_yaml() -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: hooks
stringData:
  hmac: e2e-hmac-key
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hooks
spec:
  replicas: 1
  selector:
    matchLabels: {{app: hooks}}
  template:
    metadata:
      labels: {{app: hooks}}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: hooks
          image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
          imagePullPolicy: Never
          args: [webhook, --port, "8080", --host, 0.0.0.0, --deny-tool, test_simple_text, --hmac-key-env, HMAC_KEY]
          env:
            - name: HMAC_KEY
              valueFrom: {{secretKeyRef: {{name: hooks, key: hmac}}}}
          ports: [{{containerPort: 8080, name: http}}]
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {{drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata:
  name: hooks
spec:
  selector: {{app: hooks}}
  ports: [{{port: 8080, targetPort: http, name: http}}]
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// An MCPWebhookConfig `name` with both webhooks at `base`, signed with `hmac_secret`.
fn webhook_config_yaml(name: &str, base: &str, hmac_secret: &str) -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPWebhookConfig
metadata:
  name: {name}
spec:
  mutating:
    - name: upper
      url: {base}/mutate
      timeout: 5s
      hmacSecretRef: {{name: {hmac_secret}, key: hmac}}
      tlsConfig: {{insecureSkipVerify: true}}
  validating:
    - name: policy
      url: {base}/validate
      timeout: 5s
      hmacSecretRef: {{name: {hmac_secret}, key: hmac}}
      tlsConfig: {{insecureSkipVerify: true}}
"#
    )
}

fn server_yaml(name: &str, webhook_config: &str) -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: {name}
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
  transport: streamable-http
  mcpPort: 8080
  args: [http, --port, "8080", --host, 0.0.0.0, --allow-any-host]
  webhookConfigRef: {{name: {webhook_config}}}
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

#[tokio::test]
async fn request_webhooks_in_the_cluster_change_and_judge_each_call() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-webhooks");
    let (client, ns, _controller) =
        e2e::controllers::real_node_with_operator("k8s-webhooks").await?;
    apply_yaml(&client, &ns.name, &webhook_server_yaml()).await?;
    // No cluster DNS on the harness node: the webhook server by its ClusterIP.
    let base = format!("http://{}:8080", ns.cluster_ip("hooks").await?);
    apply_yaml(
        &client,
        &ns.name,
        &webhook_config_yaml("policy", &base, "hooks"),
    )
    .await?;
    apply_yaml(&client, &ns.name, &server_yaml("guarded", "policy")).await?;

    // A server whose webhook key is in a Secret that does not exist waits for it.
    apply_yaml(
        &client,
        &ns.name,
        &webhook_config_yaml("keyless", &base, "absent"),
    )
    .await?;
    apply_yaml(&client, &ns.name, &server_yaml("waiting", "keyless")).await?;

    let servers = ns.api::<MCPServer>();
    let ready = wait_until(&servers, "guarded", Duration::from_secs(180), |s| {
        s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready)
    })
    .await
    .context("the MCPServer with webhooks Ready")?;
    anyhow::ensure!(
        ready
            .status
            .as_ref()
            .is_some_and(|s| s.webhook_config_hash.is_some()),
        "status.webhookConfigHash: {:?}",
        ready.status
    );
    watch.lap("MCPServer with an MCPWebhookConfig Ready");

    let url = format!(
        "http://{}:8080/mcp",
        ns.cluster_ip("mcp-guarded-proxy").await?
    );
    let session = e2e::curl::first_session(&url, Duration::from_secs(30)).await?;
    let echoed = e2e::curl::call(&url, &session, "echo", r#"{"message":"hello webhooks"}"#)?;
    anyhow::ensure!(
        echoed.contains("HELLO WEBHOOKS"),
        "the mutating webhook's patch reached the server: {echoed}"
    );
    let denied = e2e::curl::call(&url, &session, "test_simple_text", "{}")?;
    anyhow::ensure!(
        denied.contains("-32001")
            && denied.contains(r#"validating webhook \"policy\""#)
            && denied.contains("test_simple_text is not allowed"),
        "the validating webhook's denial: {denied}"
    );
    let allowed = e2e::curl::call(&url, &session, "whoami", "{}")?;
    anyhow::ensure!(
        allowed.contains(r#""result""#),
        "another tool passes: {allowed}"
    );
    watch.lap(
        "mutated call served, denied call refused naming the webhook, signed with the Secret's key",
    );

    let waiting = wait_until(&servers, "waiting", Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("absent") && m.contains("spec.webhookConfigRef"))
    })
    .await
    .context("the server without its webhook Secret waits, naming it")?;
    anyhow::ensure!(
        waiting.status.as_ref().and_then(|s| s.phase) != Some(MCPServerPhase::Ready),
        "{:?}",
        waiting.status
    );
    anyhow::ensure!(
        ns.api::<Deployment>().get_opt("waiting").await?.is_none(),
        "no proxy for a server waiting for its Secret"
    );
    watch.lap("a missing webhook Secret: waiting, naming spec.webhookConfigRef, no proxy");
    Ok(())
}
