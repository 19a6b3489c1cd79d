//! `thv` against the harness cluster with its real node (or the cluster of
//! `THV_E2E_USE_EXISTING=1`): run a fixture image → Ready → an MCP SDK client lists its
//! tools through the forwarded URL; list, status, logs, stop, start, restart; export →
//! rm → run --from-config reproduces the server; and the refusals: a name taken by an
//! object thv did not create, a flag the webhook would refuse, an unknown server, an
//! unreachable cluster. Every command runs the real `thv` binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::proxy::Driver;
use e2e::{apply_yaml, wait_until};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;

fn fixture_image() -> String {
    format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// What one `thv` invocation did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(self, what: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.code == 0,
            "thv {what} exited {}:\n{}\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        Ok(self)
    }
}

/// Runs `thv SUBCOMMAND -n NS ARGS…` (no `-n` when `ns` is empty) with its state under `state` (the test's own XDG
/// state directory, so background forwarders are the test's).
async fn thv(state: &Path, ns: &str, args: &[&str]) -> anyhow::Result<Ran> {
    let binary = &e2e::proxy::binaries().thv;
    // `thv client setup` is a subcommand of a subcommand.
    let words = if args.first() == Some(&"client") {
        2
    } else {
        1
    };
    anyhow::ensure!(args.len() >= words, "a subcommand");
    let (subcommand, rest) = args.split_at(words);
    let namespace: Vec<&str> = if ns.is_empty() {
        Vec::new()
    } else {
        vec!["-n", ns]
    };
    let out = tokio::process::Command::new(binary)
        .args(subcommand)
        .args(namespace)
        .args(rest)
        .env("KUBECONFIG", e2e::kubeconfig_path())
        .env("XDG_STATE_HOME", state)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output()
        .await
        .context("running thv")?;
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The URL `thv run` printed.
fn printed_url(stdout: &str) -> anyhow::Result<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .map(|u| u.trim().to_owned())
        .with_context(|| format!("no URL in {stdout:?}"))
}

/// The TypeScript SDK client initialises and lists the fixture's tools at `url`.
async fn sdk_lists_tools(url: String) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        Driver::Ts.run(&url, "streamable-http", &["--steps", "initialize,list"]);
    })
    .await?;
    Ok(())
}

async fn phase(
    servers: &kube::Api<MCPServer>,
    name: &str,
    want: MCPServerPhase,
) -> anyhow::Result<MCPServer> {
    wait_until(servers, name, Duration::from_secs(180), |s| {
        s.status.as_ref().and_then(|s| s.phase) == Some(want)
            && s.status.as_ref().and_then(|s| s.observed_generation) == s.metadata.generation
    })
    .await
}

/// The uid of the MCP server's pod, once one runs.
async fn server_pod(
    pods: &kube::Api<Pod>,
    name: &str,
    not: Option<&str>,
) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await?;
        let running = list.items.into_iter().find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.uid.as_deref() != not
        });
        if let Some(uid) = running.and_then(|p| p.metadata.uid) {
            return Ok(uid);
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "no new running pod of {name}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn thv_runs_forwards_and_manages_a_server_on_the_real_node() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("thv");
    let (_, ns, _controller) = e2e::controllers::real_node_with_operator("thv").await?;
    let state = tempdir("thv-state")?;
    let st = state.as_path();
    let n = ns.name.as_str();
    let servers = ns.api::<MCPServer>();
    let pods = ns.api::<Pod>();

    // run → Ready → a local URL an SDK client uses.
    let image = fixture_image();
    let ran = thv(
        st,
        n,
        &[
            "run",
            &image,
            "--name",
            "fixture",
            "--timeout",
            "3m",
            "--",
            "stdio",
        ],
    )
    .await?
    .ok("run")?;
    let url = printed_url(&ran.stdout)?;
    anyhow::ensure!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    anyhow::ensure!(ran.stdout.contains("is Ready"), "{}", ran.stdout);
    watch.lap(&format!("thv run: Ready and forwarded at {url}"));
    sdk_lists_tools(url.clone()).await?;
    watch.lap("the TypeScript SDK listed the tools through the forwarded URL");

    // list and status show it, with its local URL.
    let listed = thv(st, n, &["list", "-o", "json"]).await?.ok("list")?;
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout)?;
    let row = &rows[0];
    anyhow::ensure!(
        row["name"] == "fixture"
            && row["phase"] == "Ready"
            && row["localUrl"] == url.as_str()
            && row["createdByThv"] == true,
        "{row}"
    );
    let table = thv(st, n, &["list"]).await?.ok("list")?;
    anyhow::ensure!(
        table.stdout.contains("fixture") && table.stdout.contains("Ready"),
        "{}",
        table.stdout
    );
    let status = thv(st, n, &["status", "fixture"]).await?.ok("status")?;
    anyhow::ensure!(
        status.stdout.contains("Status:     Ready") && status.stdout.contains("tools"),
        "{}",
        status.stdout
    );
    thv(st, n, &["logs", "fixture", "--proxy", "--tail", "20"])
        .await?
        .ok("logs --proxy")?;
    thv(st, n, &["logs", "fixture", "--tail", "20"])
        .await?
        .ok("logs")?;
    watch.lap("list, status and logs");

    // stop: proxy and server scaled to zero, object kept; start: Ready again.
    thv(st, n, &["stop", "fixture"]).await?.ok("stop")?;
    phase(&servers, "fixture", MCPServerPhase::Stopped).await?;
    let sets = ns.api::<StatefulSet>();
    let start = Instant::now();
    while sets.get("fixture").await?.spec.and_then(|s| s.replicas) != Some(0) {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "the server's StatefulSet was not scaled to zero"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    watch.lap("thv stop: phase Stopped, the MCP server's StatefulSet at zero");
    let stopped = thv(st, n, &["list", "-o", "json"]).await?.ok("list")?;
    anyhow::ensure!(
        stopped.stdout.contains("\"localUrl\": null"),
        "the forwarder ends with stop: {}",
        stopped.stdout
    );
    thv(st, n, &["start", "fixture"]).await?.ok("start")?;
    phase(&servers, "fixture", MCPServerPhase::Ready).await?;
    let first_pod = server_pod(&pods, "fixture", None).await?;
    watch.lap("thv start: Ready again");

    // restart: ToolHive's annotation rolls the server's pod.
    thv(st, n, &["restart", "fixture"]).await?.ok("restart")?;
    server_pod(&pods, "fixture", Some(&first_pod)).await?;
    phase(&servers, "fixture", MCPServerPhase::Ready).await?;
    watch.lap("thv restart: a new MCP server pod, Ready");

    // proxy -d forwards again; export → rm → run --from-config gives the same server.
    let forwarded = thv(st, n, &["proxy", "fixture", "-d"]).await?.ok("proxy")?;
    let forwarded_url = printed_url(&forwarded.stdout)?;
    sdk_lists_tools(forwarded_url.clone()).await?;
    // client setup writes the forwarded URL into a client's config, keeping the rest.
    let claude = state.join("claude.json");
    std::fs::write(&claude, r#"{"theme": "dark"}"#)?;
    let claude_path = claude.to_string_lossy().into_owned();
    let client = ["--client", "claude-code", "--config", claude_path.as_str()];
    thv(
        st,
        n,
        &[&["client", "setup", "fixture"][..], &client].concat(),
    )
    .await?
    .ok("client setup")?;
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&claude)?)?;
    anyhow::ensure!(
        written["mcpServers"]["fixture"]["url"] == forwarded_url.as_str()
            && written["theme"] == "dark",
        "{written}"
    );
    let clients = thv(st, "", &[&["client", "list"][..], &client].concat())
        .await?
        .ok("client list")?;
    anyhow::ensure!(
        clients.stdout.contains(&forwarded_url),
        "{}",
        clients.stdout
    );
    thv(
        st,
        n,
        &[&["client", "remove", "fixture"][..], &client].concat(),
    )
    .await?
    .ok("client remove")?;
    let removed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&claude)?)?;
    anyhow::ensure!(removed["mcpServers"].get("fixture").is_none(), "{removed}");
    watch.lap("thv proxy -d, client setup/list/remove");
    let exported = state.join("fixture.json");
    let export_path = exported.to_string_lossy().into_owned();
    thv(st, n, &["export", "fixture", &export_path])
        .await?
        .ok("export")?;
    let toolhive = thv(st, n, &["export", "fixture", "--format", "toolhive"])
        .await?
        .ok("export --format toolhive")?;
    anyhow::ensure!(
        toolhive.stdout.contains("\"schema_version\": \"v0.1.0\""),
        "{}",
        toolhive.stdout
    );
    let manifests = thv(st, n, &["export", "fixture", "--format", "mcpserver"])
        .await?
        .ok("export")?;
    anyhow::ensure!(
        manifests.stdout.contains("kind: MCPServer") && !manifests.stdout.contains("managedFields"),
        "{}",
        manifests.stdout
    );
    let before = servers.get("fixture").await?.spec;
    thv(st, n, &["rm", "fixture"]).await?.ok("rm")?;
    e2e::wait_gone(&servers, "fixture", Duration::from_secs(60)).await?;
    let again = thv(
        st,
        n,
        &["run", "--from-config", &export_path, "--timeout", "3m"],
    )
    .await?
    .ok("run --from-config")?;
    let after = servers.get("fixture").await?.spec;
    anyhow::ensure!(
        (
            after.image.as_str(),
            &after.args,
            after.transport,
            after.proxy_mode
        ) == (
            before.image.as_str(),
            &before.args,
            before.transport,
            before.proxy_mode
        ),
        "run --from-config of the export differs: {after:?} vs {before:?}"
    );
    sdk_lists_tools(printed_url(&again.stdout)?).await?;
    watch.lap("export → rm → run --from-config: the same server, served again");

    // A server of an MCPRegistry's catalogue, by name: the normalised catalogue the
    // registry controller writes (tested in registry.rs) gives image, transport, args.
    let kube_client = e2e::client().await?;
    let catalogue = serde_json::json!({"version": "1.0.0", "servers": {"echo": {
        "image": image, "description": "the test fixture", "transport": "stdio", "args": ["stdio"],
        "env_vars": [{"name": "GREETING", "default": "hi"}]}}});
    apply_yaml(
        &kube_client,
        n,
        &format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRegistry\nmetadata: {{name: team}}\nspec:\n  source: {{type: configmap, configMap: {{name: team-catalog}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: team-registry}}\ndata:\n  registry.json: '{catalogue}'\n"
        ),
    )
    .await?;
    let from_registry = thv(st, n, &["run", "echo", "--timeout", "3m"])
        .await?
        .ok("run echo")?;
    anyhow::ensure!(
        from_registry.stdout.contains("from MCPRegistry team"),
        "{}",
        from_registry.stdout
    );
    let echo = servers.get("echo").await?.spec;
    anyhow::ensure!(
        echo.image == image
            && echo.args == ["stdio"]
            && echo
                .env
                .iter()
                .any(|e| e.name == "GREETING" && e.value == "hi"),
        "{echo:?}"
    );
    sdk_lists_tools(printed_url(&from_registry.stdout)?).await?;
    thv(st, n, &["rm", "echo"]).await?.ok("rm echo")?;
    let unknown_entry = thv(st, n, &["run", "nosuchserver"]).await?;
    anyhow::ensure!(
        unknown_entry.code == 2
            && unknown_entry
                .stderr
                .contains("no server \"nosuchserver\" in the MCPRegistries"),
        "{}",
        unknown_entry.stderr
    );
    watch.lap("thv run REGISTRY_NAME: the catalogue's server, Ready; an unknown name refused");

    // Refusals: nothing is changed, the message says why.
    apply_yaml(
        &kube_client,
        n,
        &format!("apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: gitops}}\nspec: {{image: {image}, args: [stdio]}}\n"),
    )
    .await?;
    let taken = thv(st, n, &["run", &image, "--name", "gitops"]).await?;
    anyhow::ensure!(
        taken.code == 1 && taken.stderr.contains("was not created by thv"),
        "{}",
        taken.stderr
    );
    let rm_foreign = thv(st, n, &["rm", "gitops"]).await?;
    anyhow::ensure!(
        rm_foreign.code == 1 && rm_foreign.stderr.contains("--force"),
        "{}",
        rm_foreign.stderr
    );
    anyhow::ensure!(
        servers.get_opt("gitops").await?.is_some(),
        "a refused rm deleted nothing"
    );
    let bad_port = thv(
        st,
        n,
        &[
            "run",
            &image,
            "--name",
            "badport",
            "--transport",
            "streamable-http",
            "--target-port",
            "0",
        ],
    )
    .await?;
    anyhow::ensure!(
        bad_port.code == 2 && bad_port.stderr.contains("--target-port (spec.mcpPort"),
        "{}",
        bad_port.stderr
    );
    anyhow::ensure!(
        servers.get_opt("badport").await?.is_none(),
        "a refused run applies nothing"
    );
    // A server that crashes at start: thv stops waiting with the cause, not a symptom.
    let crashing = thv(
        st,
        n,
        &[
            "run",
            &image,
            "--name",
            "crashing",
            "--timeout",
            "3m",
            "--",
            "no-such-mode",
        ],
    )
    .await?;
    anyhow::ensure!(
        crashing.code == 1
            && crashing.stderr.contains("CrashLoop")
            && crashing.stderr.contains("thv logs crashing"),
        "{}",
        crashing.stderr
    );
    let unknown = thv(st, n, &["status", "nope"]).await?;
    anyhow::ensure!(
        unknown.code == 1 && unknown.stderr.contains("no MCPServer \"nope\""),
        "{}",
        unknown.stderr
    );
    let usage = thv(st, n, &["run", &image, "--env", "NOEQUALS"]).await?;
    anyhow::ensure!(
        usage.code == 2 && usage.stderr.contains("KEY=VALUE"),
        "{}",
        usage.stderr
    );
    let dead = state.join("dead-kubeconfig");
    std::fs::write(&dead, DEAD_KUBECONFIG)?;
    let unreachable = thv(st, n, &["list", "--kubeconfig", &dead.to_string_lossy()]).await?;
    anyhow::ensure!(
        unreachable.code == 1 && unreachable.stderr.contains("cannot reach the cluster"),
        "{}",
        unreachable.stderr
    );
    watch.lap("refusals: a foreign name, a foreign rm, a bad flag, a crashing server, an unknown server, no cluster");

    // setup: the harness cluster is on loopback (local): the commands it would run; a
    // remote context is refused before anything runs or is contacted.
    let plan = thv(st, "", &["setup", "--dry-run"])
        .await?
        .ok("setup --dry-run")?;
    anyhow::ensure!(
        plan.stdout
            .contains("+ helm upgrade --install toolhive charts/toolhive"),
        "{}",
        plan.stdout
    );
    let remote = state.join("remote-kubeconfig");
    std::fs::write(
        &remote,
        DEAD_KUBECONFIG.replace("https://127.0.0.1:1", "https://api.prod.example.com:6443"),
    )?;
    let refused = thv(
        st,
        "",
        &["setup", "--kubeconfig", &remote.to_string_lossy()],
    )
    .await?;
    anyhow::ensure!(
        refused.code == 1 && refused.stderr.contains("not a kind or k3d cluster"),
        "{}",
        refused.stderr
    );
    watch.lap("setup: a local cluster's plan; a remote context refused");

    thv(st, n, &["rm", "fixture"]).await?.ok("rm")?;
    ns.delete().await
}

/// A kubeconfig whose API server is a closed loopback port.
const DEAD_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:1'}}]
users: [{name: dead, user: {token: x}}]
contexts: [{name: dead, context: {cluster: dead, user: dead}}]
current-context: dead
";

/// A fresh directory under the system's temporary directory.
fn tempdir(label: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
