//! The validating admission webhook on the real control plane: the webhook runs in this
//! process on 127.0.0.1 (a free port), registered by URL with its own CA, and `kubectl`
//! talks to the API server, which calls it.
//!
//! Webhook configurations are cluster-scoped and the cluster is shared with concurrently
//! running tests, so each test registers its own configuration (a unique name) that
//! applies only to namespaces carrying its own label, and deletes it at the end.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use e2e::{TestNamespace, client, install_crds, kubectl, repo_root};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DeleteParams;
use kube::{Api, Client};
use operator::metrics::Metrics;
use operator::webhook::catalog::ApiCatalogs;
use operator::webhook::certs::{Lifetimes, probe};
use operator::webhook::config::{FailurePolicy, Registration, Target, WEBHOOK_NAME};
use operator::webhook::{CertSource, Settings, Webhook};
use tokio::net::TcpListener;

/// Label scoping a test's webhook configuration to its namespace.
const SCOPE_LABEL: &str = "thv-e2e-webhook";
/// Name of the certificate Secret, in the test's system namespace.
const SECRET: &str = "thv-operator-webhook-tls";

/// One test's webhook: its namespaces, its configuration, the server.
struct Setup {
    client: Client,
    system: TestNamespace,
    ns: TestNamespace,
    configuration: String,
    settings: Settings,
    port: u16,
    webhook: Option<Webhook>,
}

impl Setup {
    async fn start(prefix: &str, lifetimes: Lifetimes) -> anyhow::Result<Self> {
        let client = client().await?;
        install_crds(&client).await?;
        let id = format!(
            "{prefix}-{:x}",
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos()
                ^ std::process::id())
                % 0xfffff
        );
        let system = TestNamespace::create(&client, &format!("{prefix}-sys"), &[]).await?;
        let ns = TestNamespace::create(&client, prefix, &[(SCOPE_LABEL, &id)]).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let selector: LabelSelector =
            serde_json::from_value(serde_json::json!({"matchLabels": {SCOPE_LABEL: id}}))?;
        let settings = Settings {
            registration: Registration {
                name: format!("thv-e2e-{id}"),
                target: Target::Url(format!("https://127.0.0.1:{port}").parse()?),
                failure_policy: FailurePolicy::Fail,
                namespace_selector: Some(selector),
                timeout_seconds: 5,
            },
            certs: CertSource::SelfSigned {
                namespace: system.name.clone(),
                secret: SECRET.to_owned(),
                lifetimes,
            },
            request_timeout: Duration::from_secs(4),
            resync: Duration::from_secs(1),
        };
        let mut setup = Self {
            configuration: settings.registration.name.clone(),
            client,
            system,
            ns,
            settings,
            port,
            webhook: None,
        };
        setup.serve(listener).await?;
        Ok(setup)
    }

    async fn serve(&mut self, listener: TcpListener) -> anyhow::Result<()> {
        let catalogs = Arc::new(ApiCatalogs::new(
            self.client.clone(),
            tokio::runtime::Handle::current(),
        ));
        let webhook = Webhook::start(
            self.client.clone(),
            self.settings.clone(),
            catalogs,
            Arc::new(Metrics::new()?),
            listener,
        )
        .await?;
        self.webhook = Some(webhook);
        self.wait_until_enforced().await
    }

    /// The API server loads a new configuration asynchronously: wait until a manifest
    /// only the webhook refuses is refused.
    async fn wait_until_enforced(&self) -> anyhow::Result<()> {
        let probe = invalid("cedar-syntax.yaml");
        let start = Instant::now();
        loop {
            let output = self
                .kubectl(&["apply", "--dry-run=server", "-f"], &probe)
                .await?;
            if !output.status.success() {
                return Ok(());
            }
            ensure!(
                start.elapsed() < Duration::from_secs(30),
                "the webhook configuration {} was not enforced within 30 s",
                self.configuration
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs `kubectl <args> <path> -n <namespace>` without blocking the runtime that
    /// serves the webhook.
    async fn kubectl(&self, args: &[&str], path: &Path) -> anyhow::Result<Output> {
        let mut command = tokio::process::Command::from(kubectl());
        command.args(args).arg(path).args(["-n", &self.ns.name]);
        command.output().await.context("running kubectl")
    }

    fn webhook(&self) -> anyhow::Result<&Webhook> {
        self.webhook.as_ref().context("the webhook is not running")
    }

    async fn secret(&self) -> anyhow::Result<Secret> {
        Ok(
            Api::<Secret>::namespaced(self.client.clone(), &self.system.name)
                .get(SECRET)
                .await?,
        )
    }

    /// The caBundle the API server trusts, from the configuration.
    async fn ca_bundle(&self) -> anyhow::Result<String> {
        let configuration = Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
            .get(&self.configuration)
            .await?;
        let bundle = configuration
            .webhooks
            .unwrap_or_default()
            .first()
            .and_then(|w| w.client_config.ca_bundle.clone())
            .context("no caBundle")?;
        Ok(String::from_utf8(bundle.0)?)
    }

    /// Stops the server, deletes the configuration and the namespaces.
    async fn cleanup(mut self) -> anyhow::Result<()> {
        if let Some(webhook) = self.webhook.take() {
            webhook.stop().await;
        }
        Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
            .delete(&self.configuration, &DeleteParams::default())
            .await?;
        self.ns.delete().await?;
        self.system.delete().await
    }
}

fn examples() -> PathBuf {
    repo_root().join("examples")
}

fn invalid(name: &str) -> PathBuf {
    examples().join("invalid").join(name)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `body`, then cleans up whatever happened.
async fn with_setup(
    setup: Setup,
    body: impl AsyncFnOnce(&mut Setup) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut setup = setup;
    let result = body(&mut setup).await;
    let cleaned = setup.cleanup().await;
    result.and(cleaned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_every_invalid_example_at_its_path_and_admits_the_valid_ones() -> anyhow::Result<()>
{
    let setup = Setup::start("webhook", Lifetimes::default()).await?;
    with_setup(setup, async |setup| {
        // Every invalid example, dry run and for real: refused, with the field path.
        let mut files: Vec<PathBuf> = std::fs::read_dir(examples().join("invalid"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort();
        let mut failures = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file)?;
            let expect = text
                .lines()
                .find_map(|l| l.strip_prefix("# expect: "))
                .with_context(|| format!("{} has no # expect: line", file.display()))?;
            for dry_run in ["--dry-run=server", "--dry-run=none"] {
                let output = setup.kubectl(&["apply", dry_run, "-f"], file).await?;
                let message = stderr(&output);
                if output.status.success() || !message.contains(expect) {
                    failures.push(format!(
                        "{} ({dry_run}): expected a refusal at {expect}, got: {}{message}",
                        file.display(),
                        String::from_utf8_lossy(&output.stdout)
                    ));
                }
            }
            // What a multi-document file created (a valid part) must not leak into the
            // next file.
            setup
                .kubectl(&["delete", "--ignore-not-found", "--wait=false", "-f"], file)
                .await?;
        }
        ensure!(failures.is_empty(), "{}", failures.join("\n"));

        // Every valid example, as one directory: admitted, dry run and for real; the
        // server applied before its MCPToolConfig gets a warning, not a refusal.
        for dry_run in ["--dry-run=server", "--dry-run=none"] {
            let output = setup.kubectl(&["apply", dry_run, "-f"], &examples()).await?;
            ensure!(
                output.status.success(),
                "examples/ ({dry_run}) refused: {}",
                stderr(&output)
            );
            ensure!(
                stderr(&output).contains("Warning: spec.toolConfigRef: MCPToolConfig github-tools does not exist yet"),
                "examples/ ({dry_run}): the missing reference is a warning: {}",
                stderr(&output)
            );
        }

        // Valid → invalid updates are refused, dry run and for real, for an MCPServer…
        let dir = tempfile_dir()?;
        let broken_server = dir.join("server.yaml");
        std::fs::write(
            &broken_server,
            std::fs::read_to_string(examples().join("mcpserver-minimal.yaml"))?
                + "  endpointPrefix: everything\n  env: [{name: GOOD, value: a}, {name: 1BAD, value: b}]\n",
        )?;
        // …and for an MCPToolConfig whose new version would break the MCPServer using it.
        let broken_tools = dir.join("tools.yaml");
        let text = std::fs::read_to_string(invalid("tool-config-breaks-server.yaml"))?;
        std::fs::write(&broken_tools, api::manifest::split_documents(&text)[0])?;
        for dry_run in ["--dry-run=server", "--dry-run=none"] {
            let output = setup.kubectl(&["apply", dry_run, "-f"], &broken_server).await?;
            let message = stderr(&output);
            ensure!(!output.status.success(), "invalid update admitted");
            for path in ["spec.endpointPrefix", "spec.env[1].name"] {
                ensure!(message.contains(path), "every problem is listed: {message}");
            }
            let output = setup.kubectl(&["apply", dry_run, "-f"], &broken_tools).await?;
            let message = stderr(&output);
            ensure!(!output.status.success(), "breaking MCPToolConfig update admitted");
            ensure!(
                message.contains("would make the objects referencing it invalid: MCPServer github"),
                "the affected MCPServer is named: {message}"
            );
        }
        std::fs::remove_dir_all(dir)?;
        Ok(())
    })
    .await
}

/// A scratch directory for manifests written by a test.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "thv-e2e-webhook-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_webhook_with_fail_policy_refuses_with_a_clear_message() -> anyhow::Result<()> {
    let setup = Setup::start("webhook-down", Lifetimes::default()).await?;
    with_setup(setup, async |setup| {
        let valid = examples().join("mcpserver-minimal.yaml");
        let output = setup.kubectl(&["apply", "-f"], &valid).await?;
        ensure!(
            output.status.success(),
            "admitted while up: {}",
            stderr(&output)
        );

        if let Some(webhook) = setup.webhook.take() {
            webhook.stop().await;
        }
        // A new object (kubectl sends nothing for an unchanged one).
        let other = examples().join("mcpserver-full.yaml");
        let output = setup
            .kubectl(&["apply", "--dry-run=server", "-f"], &other)
            .await?;
        let message = stderr(&output);
        ensure!(
            !output.status.success(),
            "failurePolicy Fail: refused while down"
        );
        ensure!(
            message.contains(&format!("failed calling webhook \"{WEBHOOK_NAME}\""))
                && message.contains(&format!("127.0.0.1:{}", setup.port)),
            "the message names the webhook and where it was called: {message}"
        );

        // Serving again on the same port (same Secret, same CA) restores admission.
        let listener = TcpListener::bind(("127.0.0.1", setup.port)).await?;
        setup.serve(listener).await?;
        let output = setup.kubectl(&["apply", "-f"], &other).await?;
        ensure!(
            output.status.success(),
            "admitted again: {}",
            stderr(&output)
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_keeps_admission_working() -> anyhow::Result<()> {
    // Serving certificates rotate every 10 s, the CA every 30 s.
    let lifetimes = Lifetimes {
        ca: Duration::from_secs(45),
        serving: Duration::from_secs(15),
    };
    let setup = Setup::start("webhook-rotation", lifetimes).await?;
    with_setup(setup, async |setup| {
        let first = setup.secret().await?;
        let first_leaf = setup.webhook()?.serving_certificate();
        admits_and_refuses(setup).await?;

        // The serving certificate rotates, signed by the same CA.
        let rotated = wait_for_secret(setup, Duration::from_secs(30), |s| {
            data(s, "tls.crt") != data(&first, "tls.crt")
        })
        .await?;
        ensure!(
            data(&rotated, "ca-signer.crt") == data(&first, "ca-signer.crt"),
            "same CA"
        );
        wait_until_served(setup, &first_leaf).await?;
        admits_and_refuses(setup).await?;

        // The CA rotates; the configuration trusts both CAs, the new one is served.
        let before_ca = setup.webhook()?.serving_certificate();
        let renewed = wait_for_secret(setup, Duration::from_secs(45), |s| {
            data(s, "ca-signer.crt") != data(&first, "ca-signer.crt")
        })
        .await?;
        // The operator writes the Secret, then re-applies the configuration with the new
        // bundle (before it serves a certificate of the new CA): wait for the second step.
        let (new_ca, old_ca) = (
            data(&renewed, "ca-signer.crt"),
            data(&first, "ca-signer.crt"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let bundle = setup.ca_bundle().await?;
            if bundle.contains(&new_ca) && bundle.contains(&old_ca) {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the caBundle does not hold the new and the previous CA within 15 s:\n{bundle}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_until_served(setup, &before_ca).await?;
        admits_and_refuses(setup).await
    })
    .await
}

/// A valid MCPServer is admitted and an invalid one refused by the webhook.
async fn admits_and_refuses(setup: &Setup) -> anyhow::Result<()> {
    let output = setup
        .kubectl(&["apply", "-f"], &examples().join("mcpserver-minimal.yaml"))
        .await?;
    ensure!(
        output.status.success(),
        "valid refused: {}",
        stderr(&output)
    );
    let output = setup
        .kubectl(&["apply", "-f"], &invalid("cedar-syntax.yaml"))
        .await?;
    ensure!(
        !output.status.success() && stderr(&output).contains("spec.authzConfig.inline.policies[1]"),
        "invalid refused by the webhook: {}",
        stderr(&output)
    );
    Ok(())
}

fn data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

async fn wait_for_secret(
    setup: &Setup,
    timeout: Duration,
    changed: impl Fn(&Secret) -> bool,
) -> anyhow::Result<Secret> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let secret = setup.secret().await?;
        if changed(&secret) {
            return Ok(secret);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the certificate Secret did not rotate within {timeout:?}")
}

/// Waits until the server presents a certificate other than `old` on the wire, to a
/// client trusting exactly the configuration's caBundle, as the API server does.
async fn wait_until_served(setup: &Setup, old: &Option<Vec<u8>>) -> anyhow::Result<()> {
    let addr = setup.webhook()?.local_addr();
    let start = Instant::now();
    loop {
        let bundle = setup.ca_bundle().await?;
        let presented = probe(addr, &bundle, "127.0.0.1").await;
        if let Ok(leaf) = &presented
            && Some(leaf) != old.as_ref()
        {
            ensure!(
                Some(leaf) == setup.webhook()?.serving_certificate().as_ref(),
                "the wire shows the certificate being served"
            );
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(15),
            "the new certificate was not served within 15 s: {presented:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The chart renders the configuration the operator applies (the operator re-applies
/// its own over the chart's, so a difference would flap on every `helm upgrade`).
#[test]
fn chart_renders_the_configuration_the_operator_applies() -> anyhow::Result<()> {
    let output = e2e::helm()
        .args([
            "template",
            "thv",
            "-n",
            "toolhive",
            "--set",
            "webhook.enabled=true",
        ])
        .arg(repo_root().join("charts/toolhive"))
        .output()
        .context("running helm")?;
    ensure!(
        output.status.success(),
        "helm template: {}",
        stderr(&output)
    );
    let rendered = String::from_utf8(output.stdout)?;
    let mut chart = None;
    let mut args = Vec::new();
    for document in api::manifest::split_documents(&rendered) {
        let value: serde_json::Value = serde_yaml_ng::from_str(document)?;
        match value["kind"].as_str() {
            Some("ValidatingWebhookConfiguration") => {
                chart = Some(serde_json::from_value::<ValidatingWebhookConfiguration>(
                    value,
                )?);
            }
            Some("Deployment") => {
                args = serde_json::from_value(
                    value["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
                )?;
            }
            _ => {}
        }
    }
    let chart = chart.context("the chart renders a ValidatingWebhookConfiguration")?;
    let operator = operator::webhook::config::build(
        &Registration {
            name: "thv-operator-toolhive".into(),
            target: Target::Service {
                namespace: "toolhive".into(),
                name: "thv-operator-webhook".into(),
                port: 443,
            },
            failure_policy: FailurePolicy::Fail,
            namespace_selector: None,
            timeout_seconds: 5,
        },
        None,
    );
    ensure!(chart.metadata.name == operator.metadata.name, "same name");
    let (mut chart, mut operator) = (
        chart.webhooks.unwrap_or_default(),
        operator.webhooks.unwrap_or_default(),
    );
    for webhook in chart.iter_mut().chain(operator.iter_mut()) {
        webhook.object_selector = None; // {} and absent mean the same
    }
    ensure!(
        chart == operator,
        "chart: {chart:#?}\noperator: {operator:#?}"
    );
    for flag in [
        "--webhook",
        "--webhook-configuration-name=thv-operator-toolhive",
        "--webhook-service-name=thv-operator-webhook",
        "--webhook-failure-policy=Fail",
    ] {
        ensure!(
            args.iter().any(|a: &String| a == flag),
            "{flag} in {args:?}"
        );
    }
    Ok(())
}

/// Kinds of `toolhive.stacklok.dev` this operator serves.
const SERVED: &[&str] = api::manifest::KINDS;
/// Kubernetes kinds ToolHive's examples create next to theirs.
const CORE: [&str; 8] = [
    "Secret",
    "ConfigMap",
    "ServiceAccount",
    "Service",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];
/// ToolHive examples refused here on purpose, with the field the refusal names; each is
/// a row of docs/decisions.md §22, or refused by ToolHive's own CRDs too: its three
/// token exchange examples spell the fields in snake_case (`token_url`, `client_id`),
/// which neither its schema (`tokenUrl`, required) nor ours has.
const REFUSED_ON_PURPOSE: [(&str, &str); 10] = [
    ("complete_example.yaml", "tokenExchange.token"),
    ("mcpexternalauthconfig_basic.yaml", "tokenExchange.token"),
    ("mcpexternalauthconfig_minimal.yaml", "tokenExchange.token"),
    (
        "mcpexternalauthconfig-redis-storage.yaml",
        "embeddedAuthServer is not supported yet",
    ),
    ("mcpregistry-configyaml-api.yaml", "configYAML"),
    ("mcpregistry-configyaml-configmap.yaml", "configYAML"),
    ("mcpregistry-configyaml-git-auth.yaml", "configYAML"),
    ("mcpregistry-configyaml-minimal.yaml", "configYAML"),
    ("mcpregistry-configyaml-oauth.yaml", "configYAML"),
    ("mcpregistry-configyaml-pgpass.yaml", "configYAML"),
];

/// ToolHive's example manifests (`examples/` of its Go module at the version the parity
/// test pins) applied unchanged with `--dry-run=server` against our CRDs and webhook:
/// every example made only of kinds we serve is admitted, but for the ones refused on
/// purpose (§22), which are refused naming the field. Examples using kinds we do not
/// serve yet are listed as skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolhive_examples_apply_unchanged() -> anyhow::Result<()> {
    let module = e2e::parity::toolhive_module()?;
    let mut files = Vec::new();
    collect_yaml(&module.join("examples"), &mut files)?;
    files.sort();
    let setup = Setup::start("toolhive-examples", Lifetimes::default()).await?;
    with_setup(setup, async |setup| {
        let dir = tempfile_dir()?;
        let mut failures = Vec::new();
        let (mut admitted, mut refused) = (0, 0);
        for file in &files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let text = std::fs::read_to_string(file)?;
            let documents: Vec<serde_json::Value> = api::manifest::split_documents(&text)
                .into_iter()
                .filter_map(|document| serde_yaml_ng::from_str(document).ok())
                .filter(|document: &serde_json::Value| document.is_object())
                .collect();
            let kinds: Vec<&str> = documents
                .iter()
                .filter_map(|d| d.get("kind").and_then(|k| k.as_str()))
                .collect();
            if !kinds.iter().any(|kind| SERVED.contains(kind)) {
                println!("  skipped  {name}: {kinds:?}, no kind we serve (docs/decisions.md §22)");
                continue;
            }
            if let Some(kind) = kinds
                .iter()
                .find(|kind| !SERVED.contains(kind) && !CORE.contains(kind))
            {
                println!("  skipped  {name}: {kind} not served (docs/decisions.md §22)");
                continue;
            }
            // Their examples name their own namespace; the test applies into its own.
            let mut copy = String::new();
            for mut document in documents {
                if let Some(metadata) = document
                    .get_mut("metadata")
                    .and_then(|m| m.as_object_mut())
                {
                    metadata.remove("namespace");
                }
                copy.push_str("---\n");
                copy.push_str(&serde_yaml_ng::to_string(&document)?);
            }
            let path = dir.join(name);
            std::fs::write(&path, copy)?;
            let output = setup
                .kubectl(&["apply", "--dry-run=server", "-f"], &path)
                .await?;
            let message = stderr(&output);
            let expected = REFUSED_ON_PURPOSE
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, field)| *field);
            match (output.status.success(), expected) {
                (true, None) => {
                    admitted += 1;
                    println!("  admitted {name}");
                }
                (false, Some(field)) if message.contains(field) => {
                    refused += 1;
                    println!("  refused  {name} on purpose ({field})");
                }
                (false, _) => failures.push(format!("{name} refused: {message}")),
                (true, Some(field)) => failures.push(format!(
                    "{name} was expected to be refused at {field} (docs/decisions.md §22) but was admitted; update REFUSED_ON_PURPOSE and §22"
                )),
            }
        }
        std::fs::remove_dir_all(dir)?;
        println!("ToolHive's examples: {admitted} admitted unchanged, {refused} refused on purpose");
        ensure!(failures.is_empty(), "{}", failures.join("\n"));
        ensure!(admitted > 10, "too few examples found under {}", module.display());
        Ok(())
    })
    .await
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    Ok(())
}
