//! Row 1: each operator, as its own process and ServiceAccount, given N MCPServers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use e2e::bench::audit::{AuditLog, Identity, Requests};
use e2e::bench::{cpu_seconds, peak_rss_kib, scale};
use e2e::{TEST_MANAGER, TestNamespace};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};

use crate::{Row, ToolHive, env_number, print_table, record};

/// In-flight applies: enough that the apply client is not what is measured.
const APPLY_IN_FLIGHT: usize = 64;

#[derive(Clone, Copy, PartialEq)]
pub enum Side {
    Ours,
    ToolHive,
}

impl Side {
    pub fn key(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::ToolHive => "toolhive",
        }
    }
}

/// What one operator run measured.
struct Measured {
    applied: f64,
    converged: f64,
    after_last_apply: f64,
    peak_rss_mib: f64,
    cpu_seconds: f64,
    requests: Requests,
    update_converged: f64,
    update_requests: Requests,
    idle_per_minute: f64,
    /// Requests per minute in the quiet period's last window.
    idle_last_window: f64,
    /// The same, leaving out the renewals of the leader-election Lease.
    idle_last_window_apart_from_lease: f64,
    /// Requests in each window of the quiet period.
    idle_windows: Vec<Requests>,
}

struct Bench<'a> {
    client: Client,
    audit: AuditLog,
    toolhive: &'a ToolHive,
    count: usize,
    quiet: Duration,
    logs: PathBuf,
}

pub async fn run(toolhive: &ToolHive, rounds: usize) -> anyhow::Result<()> {
    let client = e2e::client().await?;
    let bench = Bench {
        audit: AuditLog::harness()?,
        client,
        toolhive,
        count: env_number("BENCH_SERVERS", 1000)? as usize,
        quiet: Duration::from_secs(env_number("BENCH_QUIET_SECONDS", 300)?),
        logs: e2e::kubeconfig_path()
            .parent()
            .map(|p| p.join("logs"))
            .context("no harness state directory")?,
    };
    println!(
        "\noperator at scale: {} MCPServers applied at once ({APPLY_IN_FLIGHT} in flight), then {} spec updates, then {} s quiet; operator logs in {}",
        bench.count,
        bench.count,
        bench.quiet.as_secs(),
        bench.logs.display()
    );
    let mut rows = [
        Row::new("converged, from the first apply", "s", "≤ 0.20"),
        Row::new("converged, after the last apply", "s", "≤ 0.20"),
        Row::new("operator peak RSS", "MiB", "≤ 0.25"),
        Row::new("operator CPU until converged", "s", "≤ 0.25"),
        Row::new("API requests until converged", "", "≤ 0.33"),
        Row::new("spec updates converged, after the last apply", "s", ""),
        Row::new("API requests for the updates", "", ""),
        Row::new("API requests per minute, quiet period", "", ""),
        Row::new("API requests per minute, its last minute", "", "~0"),
        Row::new("  of them not the leader-election Lease", "", "~0"),
    ];
    // Only one side (BENCH_SIDES=ours), to iterate on one operator.
    let sides = std::env::var("BENCH_SIDES").unwrap_or_else(|_| "ours,toolhive".to_owned());
    let sides: Vec<&str> = sides.split(',').map(str::trim).collect();
    let mut applies = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [Side::Ours, Side::ToolHive]
        } else {
            [Side::ToolHive, Side::Ours]
        };
        for side in order.into_iter().filter(|s| sides.contains(&s.key())) {
            let m = bench
                .round(side, round)
                .await
                .with_context(|| format!("round {} of {}", round + 1, side.key()))?;
            println!(
                "  round {} {:<8}: applied in {:.1} s, converged {:.1} s ({:.1} s after the last apply), peak RSS {:.1} MiB, CPU {:.1} s, {} requests ({}); updates converged {:.1} s after the last apply with {} requests ({}); quiet: {:.0} requests/min ({:?} per window; the last: {})",
                round + 1,
                side.key(),
                m.applied,
                m.converged,
                m.after_last_apply,
                m.peak_rss_mib,
                m.cpu_seconds,
                m.requests.total,
                m.requests.verbs(),
                m.update_converged,
                m.update_requests.total,
                m.update_requests.verbs(),
                m.idle_per_minute,
                m.idle_windows.iter().map(|w| w.total).collect::<Vec<_>>(),
                m.idle_windows
                    .last()
                    .map(|w| w.verbs_and_resources())
                    .unwrap_or_default()
            );
            applies.push(m.applied);
            let values = [
                m.converged,
                m.after_last_apply,
                m.peak_rss_mib,
                m.cpu_seconds,
                m.requests.total as f64,
                m.update_converged,
                m.update_requests.total as f64,
                m.idle_per_minute,
                m.idle_last_window,
                m.idle_last_window_apart_from_lease,
            ];
            record(&mut rows, side == Side::Ours, values);
        }
    }
    print_table(
        &format!(
            "operator at scale, {} MCPServers (applying them took {:.1} s, median of both sides)",
            bench.count,
            e2e::bench::median(&applies)
        ),
        rounds,
        &rows,
    );
    // Leave the cluster with our CRDs, as the tests expect.
    e2e::install_crds(&bench.client).await
}

impl Bench<'_> {
    async fn round(&self, side: Side, round: usize) -> anyhow::Result<Measured> {
        install_crds(&self.client, self.toolhive, side).await?;
        let identity = Identity::create(&self.client, side.key(), 4).await?;
        let ns = TestNamespace::create(&self.client, &format!("bench-{}-{round}", side.key()), &[])
            .await?;
        let log = self.logs.join(format!("bench-{}.log", side.key()));
        fresh_leases(&self.client).await?;
        let start_offset = self.audit.offset()?;
        let mut operator = self.spawn(side, &ns.name, &identity, &log)?;
        let pid = operator.id().context("operator pid")?;
        self.audit
            .wait_for_watch(
                start_offset,
                &identity.user,
                "mcpservers",
                Duration::from_secs(60),
            )
            .await
            .with_context(|| {
                format!("waiting for the operator to start (log: {})", log.display())
            })?;
        // A moment for the rest of its informers, so that start-up is not counted.
        tokio::time::sleep(Duration::from_secs(2)).await;

        let servers = scale::servers(&self.client, &ns.name);
        let (cpu0, offset0) = (cpu_seconds(pid)?, self.audit.offset()?);
        let start = Instant::now();
        let applied =
            scale::apply(&servers, TEST_MANAGER, self.count, &[], APPLY_IN_FLIGHT).await?;
        let last_apply = Instant::now();
        let timeout = Duration::from_secs(900);
        let done =
            scale::converged(&self.client, &ns.name, self.count, 1, true, pid, timeout).await?;
        let (cpu1, offset1) = (cpu_seconds(pid)?, self.audit.offset()?);
        let requests = self.audit.between(offset0, offset1, &identity.user)?;

        scale::apply(
            &servers,
            TEST_MANAGER,
            self.count,
            &["--bench-update"],
            APPLY_IN_FLIGHT,
        )
        .await?;
        let last_update = Instant::now();
        let updated =
            scale::converged(&self.client, &ns.name, self.count, 2, false, pid, timeout).await?;
        let offset2 = self.audit.offset()?;
        let update_requests = self.audit.between(offset1, offset2, &identity.user)?;

        // The quiet period in windows of a minute (or less): whether requests die down
        // once the Deployments' rollouts are over, or go on for ever.
        let window = self.quiet.min(Duration::from_secs(60));
        let mut windows = Vec::new();
        let mut from = offset2;
        let quiet_start = Instant::now();
        while quiet_start.elapsed() + window / 2 < self.quiet {
            tokio::time::sleep(window.min(self.quiet - quiet_start.elapsed())).await;
            let to = self.audit.offset()?;
            windows.push(self.audit.between(from, to, &identity.user)?);
            from = to;
        }
        let idle_total: u64 = windows.iter().map(|w| w.total).sum();
        let per_minute = |n: u64, d: Duration| n as f64 * 60.0 / d.as_secs_f64().max(1.0);
        let peak = peak_rss_kib(pid)?
            .max(done.peak_rss_kib)
            .max(updated.peak_rss_kib);

        // The namespace goes while the operator runs: ToolHive's finalizers need it.
        let name = ns.name.clone();
        ns.delete().await?;
        wait_namespace_gone(&self.client, &name, Duration::from_secs(600)).await?;
        operator.kill().await.ok();
        Ok(Measured {
            applied: applied.as_secs_f64(),
            converged: (done.at - start).as_secs_f64(),
            after_last_apply: done.at.saturating_duration_since(last_apply).as_secs_f64(),
            peak_rss_mib: peak as f64 / 1024.0,
            cpu_seconds: cpu1 - cpu0,
            requests,
            update_converged: updated
                .at
                .saturating_duration_since(last_update)
                .as_secs_f64(),
            update_requests,
            idle_per_minute: per_minute(idle_total, quiet_start.elapsed()),
            idle_last_window: windows
                .last()
                .map_or(f64::NAN, |w| per_minute(w.total, window)),
            idle_last_window_apart_from_lease: windows
                .last()
                .map_or(f64::NAN, |w| per_minute(w.apart_from("leases"), window)),
            idle_windows: windows,
        })
    }

    fn spawn(
        &self,
        side: Side,
        namespace: &str,
        identity: &Identity,
        log: &Path,
    ) -> anyhow::Result<tokio::process::Child> {
        spawn(self.toolhive, side, namespace, identity, log, &[])
    }
}

/// Starts an operator as its charts deploy it (leader election on, no webhook),
/// watching one namespace, authenticated as `identity`, its log to `log`, with `env`
/// added to its environment.
pub fn spawn(
    toolhive: &ToolHive,
    side: Side,
    namespace: &str,
    identity: &Identity,
    log: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<tokio::process::Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = match side {
        Side::Ours => {
            let binary = e2e::repo_root().join("target/release/thv-operator");
            anyhow::ensure!(
                binary.exists(),
                "{} is missing: cargo build --release -p thv-operator",
                binary.display()
            );
            let mut command = tokio::process::Command::new(binary);
            command
                .args(["--namespace", namespace, "--leader-elect"])
                .args(["--leader-elect-namespace", e2e::bench::audit::NAMESPACE])
                .args(["--metrics-addr", "127.0.0.1:0"])
                .env("RUST_LOG", "warn");
            command
        }
        Side::ToolHive => {
            let mut command = tokio::process::Command::new(toolhive.bin.join("thv-operator"));
            command
                .arg("--leader-elect")
                .args(["--metrics-bind-address", "127.0.0.1:0"])
                .args(["--health-probe-bind-address", "127.0.0.1:0"])
                .env("WATCH_NAMESPACE", namespace)
                .env("POD_NAMESPACE", e2e::bench::audit::NAMESPACE)
                // Its update check would call updates.stacklok.com: off (and any
                // other request that is not to loopback goes to a closed port).
                .env("TOOLHIVE_SKIP_UPDATE_CHECK", "true")
                .env("HTTPS_PROXY", "http://127.0.0.1:9")
                .env("HTTP_PROXY", "http://127.0.0.1:9")
                .env("NO_PROXY", "127.0.0.1,localhost");
            command
        }
    };
    command
        .envs(env.iter().copied())
        .env("KUBECONFIG", &identity.kubeconfig)
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true);
    command.spawn().context("starting the operator")
}

/// Deletes the leader-election Leases of `thv-bench`: an operator killed in an earlier
/// round still holds its Lease until it expires, and the next one of its side would wait
/// that long before reconciling anything.
pub async fn fresh_leases(client: &Client) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), e2e::bench::audit::NAMESPACE);
    leases
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .context("deleting the leader-election Leases of the earlier rounds")?;
    Ok(())
}

/// Puts `side`'s CRDs on the cluster (one field manager for both, so nothing of the
/// other side's schema is left).
pub async fn install_crds(client: &Client, toolhive: &ToolHive, side: Side) -> anyhow::Result<()> {
    match side {
        Side::Ours => e2e::install_crds(client).await,
        Side::ToolHive => e2e::apply_crds(client, crd_files(&toolhive.crds)?).await,
    }
}

/// ToolHive's CRD files (one CRD each, YAML) as JSON.
fn crd_files(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut crds = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(document)
                .with_context(|| format!("parsing {}", path.display()))?;
            if !value.is_null() {
                crds.push(value);
            }
        }
    }
    anyhow::ensure!(!crds.is_empty(), "no CRDs in {}", dir.display());
    Ok(crds)
}

pub async fn wait_namespace_gone(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    e2e::wait_gone(&namespaces, name, timeout).await
}
