//! Row 3: stdio on the real node. ToolHive's proxyrunner and ours, each a process on
//! this machine given the harness kubeconfig, `TOOLHIVE_RUNTIME=kubernetes` and a
//! namespace of its own (`POD_NAMESPACE`) on the real node, each with a stdio RunConfig
//! for the same image (`mcp-fixture echo --stdio`). Each proxy creates its StatefulSet,
//! waits for the pod and attaches to it (`pods/attach`, through the API server and the
//! kubelet), as it does when its operator deploys it; the proxies run outside the node
//! so that both are measured the same way, by this process, from `/proc`.
//!
//! The load: `BENCH_STDIO_SESSIONS` (100) MCP sessions at once, each calling `echo` in a
//! loop, each with its own text and its own id counter (ids collide across sessions, as
//! they do between real clients). An answer must carry the text its call sent: one that
//! carries another call's text is counted as wrong, a call unanswered after
//! [`ANSWER_TIMEOUT`] as lost.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use e2e::TestNamespace;
use e2e::bench::{Session, cpu_seconds, rss_kib, us};
use e2e::proxy::{Running, TempDir, free_port, start_listening};
use serde_json::json;

use crate::proxy::wait_serving;
use crate::{Row, ToolHive, env_number, print_table, record};

/// A call with no answer after this long is lost, and its session given up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a proxy may take to create its StatefulSet, see the pod run and attach.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// The server both proxies run: the fixture's echo over stdio.
const SERVER_ARGS: [&str; 2] = ["echo", "--stdio"];

struct Side {
    name: &'static str,
    addr: String,
    path: &'static str,
    process: Running,
}

/// What one load measured through one proxy.
struct Measured {
    /// Sessions that initialised.
    opened: usize,
    /// Right answers per second after the warm-up.
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// Answers carrying another call's text.
    wrong: u64,
    /// Calls answered with an HTTP or JSON-RPC error, and sessions that failed to open.
    failed: u64,
    /// Calls with no answer within [`ANSWER_TIMEOUT`].
    lost: u64,
    /// Proxy RSS with the sessions open, MiB.
    rss_mib: f64,
    /// Proxy CPU per right answer, µs.
    cpu_us: f64,
    /// CPU per right answer of each kind of process the attach stream passes through,
    /// in [`RELAY`]'s order (the API server, the kubelet, containerd, the shims), µs.
    relay_cpu_us: [f64; 4],
    /// CPU per right answer of the MCP servers (`mcp-fixture`), µs.
    server_cpu_us: f64,
    /// CPU per right answer of this process, the load generator, µs.
    client_cpu_us: f64,
}

/// The processes the attach stream passes through (names as `/proc/PID/comm` shows them,
/// at most 15 characters).
/// containerd serves the attach stream itself (its CRI streaming server) and reads the
/// container's stdout from the FIFOs its shim opened.
const RELAY: [&str; 4] = ["kube-apiserver", "kubelet", "containerd", "containerd-shim"];

/// CPU seconds used so far by each process of this machine named one of `names`.
fn cpu_of(names: &[&str]) -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| names.contains(&comm.trim_end()))
        })
        .filter_map(|pid| Some((pid, cpu_seconds(pid).ok()?)))
        .collect()
}

/// CPU seconds the processes of `after` used since `before` (a process that ended
/// meanwhile is not in `after`; one that started counts from zero).
fn cpu_since(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or_default())
        .sum()
}

pub async fn run(toolhive: &ToolHive, rounds: usize) -> anyhow::Result<()> {
    let seconds = env_number("BENCH_STDIO_SECONDS", 10)?;
    let sessions = env_number("BENCH_STDIO_SESSIONS", 100)? as usize;
    let binary = e2e::repo_root().join("target/release/thv-proxyrunner");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p thv-proxyrunner",
        binary.display()
    );
    let image = format!(
        "ghcr.io/stacklok/toolhive-rs/mcp-fixture:{}",
        env!("CARGO_PKG_VERSION")
    );
    let client = e2e::client().await?;
    let ours_ns = TestNamespace::on_real_node(&client, "bench-stdio-ours", &[]).await?;
    let theirs_ns = TestNamespace::on_real_node(&client, "bench-stdio-toolhive", &[]).await?;
    let dir = TempDir::new("bench-vs-toolhive-stdio");

    let mut config = json!({
        "schema_version": "v1",
        "name": "echo",
        "workload": {"container": {"image": image, "transport": "stdio", "args": SERVER_ARGS}},
        "proxy": {"host": "127.0.0.1", "port": 8080, "mode": "streamable-http"},
    });
    let ours_path = dir.path().join("ours.json");
    std::fs::write(&ours_path, serde_json::to_vec(&config)?)?;
    let mut command = Command::new(&binary);
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&ours_path);
    in_namespace(&mut command, &ours_ns.name);
    let (process, url) = start_listening("thv-proxyrunner (ours)", command);
    let ours = Side {
        name: "ours",
        addr: host_port(&url)?,
        path: "/mcp",
        process,
    };

    // ToolHive's reads ./runconfig.json (its schema, from our exporter) and takes the
    // image from its first argument.
    let port = free_port();
    config["proxy"]["port"] = port.into();
    let parsed = runconfig::from_value(config).context("the bench's RunConfig")?;
    let (exported, lost) = runconfig::to_toolhive_json(&parsed);
    anyhow::ensure!(
        lost.is_empty(),
        "ToolHive's RunConfig cannot carry {lost:?}"
    );
    // Its operator names the workload in the RunConfig it writes (the StatefulSet's name);
    // our exporter leaves that to ToolHive's CLI, which derives it.
    let mut exported: serde_json::Value = serde_json::from_slice(&exported)?;
    exported["container_name"] = "echo".into();
    exported["base_name"] = "echo".into();
    let theirs_dir = dir.path().join("toolhive");
    std::fs::create_dir_all(&theirs_dir)?;
    std::fs::write(theirs_dir.join("runconfig.json"), exported.to_string())?;
    let mut command = Command::new(toolhive.bin.join("thv-proxyrunner"));
    command
        .args(["run", &image])
        .current_dir(&theirs_dir)
        .env("TOOLHIVE_SKIP_UPDATE_CHECK", "true")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost");
    in_namespace(&mut command, &theirs_ns.name);
    // Its log goes to stdout: drained, so a full pipe never stalls it mid-measurement.
    let mut process = Running::start("thv-proxyrunner (ToolHive)", command);
    process.drain_stdout();
    let theirs = Side {
        name: "ToolHive",
        addr: format!("127.0.0.1:{port}"),
        path: "/mcp",
        process,
    };

    let started = Instant::now();
    for side in [&ours, &theirs] {
        wait_serving(&side.addr, side.path, &side.process, START_TIMEOUT, None)
            .await
            .with_context(|| format!("{}'s stdio proxy", side.name))?;
        println!(
            "  {} serving a session {:.1} s after both proxies started",
            side.name,
            started.elapsed().as_secs_f64()
        );
    }

    println!(
        "\nstdio on the real node: mcp-fixture echo --stdio in a StatefulSet each proxy created, attached through the API server; {sessions} sessions at once, {seconds} s per load"
    );
    let mut rows = [
        Row::new("messages/s, 100 sessions", "msg/s", "≥ 5"),
        Row::new("latency p50, 100 sessions", "ms", ""),
        Row::new("latency p99, 100 sessions", "ms", ""),
        Row::new("proxy RSS, 100 sessions open", "MiB", ""),
        Row::new("proxy CPU per message", "µs", ""),
        Row::new("attach relay CPU per message", "µs", ""),
        Row::new("  of it the API server", "µs", ""),
        Row::new("  of it the kubelet", "µs", ""),
        Row::new("  of it containerd", "µs", ""),
        Row::new("  of it the containerd shims", "µs", ""),
        Row::new("MCP server CPU per message", "µs", ""),
        Row::new("load generator CPU per message", "µs", ""),
        Row::new("wrong + failed + lost answers", "", "0"),
    ];
    for round in 0..rounds {
        let sides = if round % 2 == 0 {
            [&ours, &theirs]
        } else {
            [&theirs, &ours]
        };
        for side in sides {
            let m = measure(side, sessions, seconds).await?;
            println!(
                "  round {} {:<8}: {} of {sessions} sessions opened; {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms; {} wrong, {} failed, {} lost; RSS {:.1} MiB; CPU/message: proxy {:.0} µs, relay {:.0} µs (API server {:.0}, kubelet {:.0}, containerd {:.0}, shims {:.0}), server {:.0} µs, load generator {:.0} µs",
                round + 1,
                side.name,
                m.opened,
                m.rps,
                us(m.p50) / 1e3,
                us(m.p99) / 1e3,
                m.wrong,
                m.failed,
                m.lost,
                m.rss_mib,
                m.cpu_us,
                m.relay_cpu_us.iter().sum::<f64>(),
                m.relay_cpu_us[0],
                m.relay_cpu_us[1],
                m.relay_cpu_us[2],
                m.relay_cpu_us[3],
                m.server_cpu_us,
                m.client_cpu_us,
            );
            let values = [
                m.rps,
                us(m.p50) / 1e3,
                us(m.p99) / 1e3,
                m.rss_mib,
                m.cpu_us,
                m.relay_cpu_us.iter().sum(),
                m.relay_cpu_us[0],
                m.relay_cpu_us[1],
                m.relay_cpu_us[2],
                m.relay_cpu_us[3],
                m.server_cpu_us,
                m.client_cpu_us,
                (m.wrong + m.failed + m.lost) as f64,
            ];
            record(&mut rows, side.name == "ours", values);
        }
    }
    print_table(
        &format!("stdio on the real node, {sessions} sessions"),
        rounds,
        &rows,
    );
    drop((ours, theirs));
    ours_ns.delete().await?;
    theirs_ns.delete().await?;
    Ok(())
}

/// The environment that puts a proxy's StatefulSet into `namespace` of the harness.
fn in_namespace(command: &mut Command, namespace: &str) {
    command
        .env("TOOLHIVE_RUNTIME", "kubernetes")
        .env("KUBECONFIG", e2e::kubeconfig_path())
        .env("POD_NAMESPACE", namespace)
        .env("RUST_LOG", "warn");
}

/// `http://HOST:PORT/...` → `HOST:PORT`.
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

/// How one call ended.
enum Answer {
    Right,
    /// The answer, which does not carry the call's text.
    Wrong(String),
    Failed,
    Lost,
}

/// One call of `echo` with a text no other call sends.
async fn call(session: &mut Session, id: u64, text: &str) -> Answer {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    });
    let exchange = session.exchange(Bytes::from(body.to_string()));
    match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Err(_) => Answer::Lost,
        Ok(Err(_)) => Answer::Failed,
        Ok(Ok((_, answer))) => {
            let answer = String::from_utf8_lossy(&answer);
            if answer.contains(text) {
                Answer::Right
            } else if answer.contains("\"error\"") {
                Answer::Failed
            } else {
                Answer::Wrong(answer.into_owned())
            }
        }
    }
}

/// `sessions` sessions through `side`, each calling `echo` for `seconds` after half a
/// second of warm-up. A session whose call fails or is lost stops there.
async fn measure(side: &Side, sessions: usize, seconds: u64) -> anyhow::Result<Measured> {
    let pid = side.process.id();
    let opening = (0..sessions).map(|_| async {
        tokio::time::timeout(ANSWER_TIMEOUT, Session::open(&side.addr, side.path)).await
    });
    let opened: Vec<Session> = futures::future::join_all(opening)
        .await
        .into_iter()
        .filter_map(|s| s.ok().and_then(Result::ok))
        .collect();
    let failed_to_open = (sessions - opened.len()) as u64;
    let opened_count = opened.len();
    anyhow::ensure!(
        opened_count > 0,
        "{}: no session opened; its stderr:\n{}",
        side.name,
        side.process.stderr_tail(30)
    );

    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let first_wrong: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let cpu0 = cpu_seconds(pid)?;
    let relay0 = RELAY.map(|name| cpu_of(&[name]));
    let server0 = cpu_of(&["mcp-fixture"]);
    let client0 = cpu_seconds(std::process::id())?;
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + Duration::from_secs(seconds);
    let workers: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(i, mut session)| {
            let counts = counts.clone();
            let first_wrong = first_wrong.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for id in 2.. {
                    // Characters no JSON encoder escapes (Go's escapes `<`, `>`, `&`).
                    let text = format!("(s{i}-{id})");
                    let started = Instant::now();
                    let answer = call(&mut session, id, &text).await;
                    let slot = match answer {
                        Answer::Right => 0,
                        Answer::Wrong(body) => {
                            if let Ok(mut first) = first_wrong.lock() {
                                first.get_or_insert(body);
                            }
                            1
                        }
                        Answer::Failed => 2,
                        Answer::Lost => 3,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    if slot >= 2 || now >= end {
                        break;
                    }
                    if slot == 0 && started >= warm {
                        samples.push(now - started);
                    }
                }
                (samples, session)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut sessions_left = Vec::new();
    for worker in workers {
        let (mine, session) = worker.await.context("a load worker panicked")?;
        samples.extend(mine);
        sessions_left.push(session);
    }
    // Measured while the sessions are still open.
    let rss_mib = rss_kib(pid)? as f64 / 1024.0;
    let cpu = cpu_seconds(pid)? - cpu0;
    let relay: [f64; 4] = std::array::from_fn(|i| cpu_since(&relay0[i], &cpu_of(&[RELAY[i]])));
    let server = cpu_since(&server0, &cpu_of(&["mcp-fixture"]));
    let client = cpu_seconds(std::process::id())? - client0;
    drop(sessions_left);

    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .len()
            .checked_sub(1)
            .map(|last| samples[((samples.len() as f64 * q) as usize).min(last)])
            .unwrap_or_default()
    };
    let read = |slot: usize| counts[slot].load(Ordering::Relaxed);
    if let Some(body) = first_wrong.lock().ok().and_then(|mut first| first.take()) {
        println!(
            "  {}: a wrong answer (the first): {}",
            side.name,
            body.chars().take(300).collect::<String>()
        );
    }
    Ok(Measured {
        opened: opened_count,
        rps: samples.len() as f64 / seconds as f64,
        p50: at(0.50),
        p99: at(0.99),
        wrong: read(1),
        failed: read(2) + failed_to_open,
        lost: read(3),
        rss_mib,
        cpu_us: cpu * 1e6 / read(0).max(1) as f64,
        relay_cpu_us: std::array::from_fn(|i| relay[i] * 1e6 / read(0).max(1) as f64),
        server_cpu_us: server * 1e6 / read(0).max(1) as f64,
        client_cpu_us: client * 1e6 / read(0).max(1) as f64,
    })
}
