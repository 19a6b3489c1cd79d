//! Support for the proxy e2e tests (no cluster): builds `thv-proxyrunner` and
//! `mcp-fixture` once, installs the non-Rust MCP peers once (`scripts/peers.sh`), runs a
//! proxy from a RunConfig, the servers behind it and the client drivers in front of it.
//!
//! Every process started here runs in its own process group and is stopped with it
//! (SIGTERM, then SIGKILL) when its handle drops; a handle dropped by a failing test
//! prints the tail of the process's stderr.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::repo_root;

/// How long a process may take to print its `listening on` line.
const STARTUP: Duration = Duration::from_secs(60);
/// How long a client driver may run (they cut themselves at four request timeouts).
const DRIVER_DEADLINE: Duration = Duration::from_secs(180);

/// The binaries built from this workspace.
pub struct Binaries {
    /// `thv-proxyrunner`.
    pub proxyrunner: PathBuf,
    /// `mcp-fixture`.
    pub fixture: PathBuf,
    /// `thv`, the CLI.
    pub thv: PathBuf,
}

/// Builds the proxy, the fixture and `thv` once per test binary, in the profile of the tests.
pub fn binaries() -> &'static Binaries {
    static BUILT: OnceLock<Result<Binaries, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test binary>: the binaries land two levels up.
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("test binary outside target/<profile>/deps")?
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(repo_root()).args([
            "build",
            "--locked",
            "-p",
            "thv-proxyrunner",
            "-p",
            "mcp-fixture",
            "-p",
            "thv",
        ]);
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if !status.success() {
            return Err(format!(
                "cargo build of the proxy and fixture failed ({status})"
            ));
        }
        Ok(Binaries {
            proxyrunner: profile_dir.join("thv-proxyrunner"),
            fixture: profile_dir.join("mcp-fixture"),
            thv: profile_dir.join("thv"),
        })
    });
    match built {
        Ok(binaries) => binaries,
        Err(e) => panic!("{e}"),
    }
}

/// The non-Rust peers, as `scripts/peers.sh` reports them.
pub struct Peers {
    /// Node 22.
    pub node22: PathBuf,
    /// Its directory, put first on `PATH` for the conformance suite.
    pub node22_bin: PathBuf,
    /// The venv's Python (runs `py_client.py`).
    pub python: PathBuf,
    /// `mcp-server-time` (stdio only).
    pub server_time: PathBuf,
    /// `@modelcontextprotocol/server-everything`'s entry point.
    pub server_everything: PathBuf,
    /// `@modelcontextprotocol/conformance`'s entry point.
    pub conformance: PathBuf,
}

/// Installs the peers once per test binary (idempotent, ~1 s when installed).
pub fn peers() -> &'static Peers {
    static INSTALLED: OnceLock<Result<Peers, String>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        let script = repo_root().join("scripts/peers.sh");
        let output = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}); it needs npm and python3 with venv",
                script.display(),
                output.status
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(PathBuf::from)
                .ok_or_else(|| format!("peers.sh printed no {key}=: {stdout}"))
        };
        Ok(Peers {
            node22: value("NODE22")?,
            node22_bin: value("NODE22_BIN")?,
            python: value("PEERS_PYTHON")?,
            server_time: value("MCP_SERVER_TIME")?,
            server_everything: value("SERVER_EVERYTHING")?,
            conformance: value("CONFORMANCE")?,
        })
    });
    match installed {
        Ok(peers) => peers,
        Err(e) => panic!("{e}"),
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "thv-e2e-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process started by a test, stopped (with its process group) on drop.
pub struct Running {
    name: String,
    child: Child,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Running {
    /// Starts `command` with stderr to a file; stdout is piped for the caller.
    pub fn start(name: &str, mut command: Command) -> Self {
        let dir = TempDir::new(name);
        let stderr = dir.path().join("stderr.log");
        let file = File::create(&stderr).expect("creating the stderr log");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Self {
            name: name.to_owned(),
            child,
            stderr,
            _dir: dir,
        }
    }

    /// Reads and drops what it writes to stdout, so that it never blocks on a full pipe
    /// (a proxy's audit events).
    pub fn drain_stdout(&mut self) {
        if let Some(stdout) = self.child.stdout.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink());
            });
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The ids of its child processes (from `/proc`).
    pub fn children(&self) -> Vec<u32> {
        let parent = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
                let after_comm = &stat[stat.rfind(')')? + 1..];
                let ppid = after_comm.split_whitespace().nth(1)?;
                (ppid == parent).then_some(pid)
            })
            .collect()
    }

    /// The last `lines` lines the process wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a server the proxy started, if it hung).
        signal("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- {} stderr (last 60 lines) ---\n{}\n--- end of {} stderr ---",
                self.name,
                self.stderr_tail(60),
                self.name
            );
        }
    }
}

/// Starts a process that prints `listening on URL` as its first stdout line; returns it
/// with the URL. Later stdout lines are drained (the proxy's audit events).
pub fn start_listening(name: &str, command: Command) -> (Running, String) {
    let mut running = Running::start(name, command);
    let stdout = running.child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines.map_while(Result::ok) {}
    });
    let first = rx.recv_timeout(STARTUP).unwrap_or_else(|e| {
        panic!(
            "{name} printed no first line within {STARTUP:?} ({e}); stderr:\n{}",
            running.stderr_tail(40)
        )
    });
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name}'s first line is not `listening on URL`: {first}"))
        .trim()
        .to_owned();
    (running, url)
}

/// A running proxy.
pub struct Proxy {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The process.
    pub process: Running,
    _config: TempDir,
}

impl Proxy {
    /// Runs `thv-proxyrunner run` with `config` (a RunConfig) on a free loopback port;
    /// `command`, when not empty, is the local workload (after `--`); `env` is added to
    /// the proxy's environment (and so the workload's).
    pub fn start(config: &Value, command: &[&OsStr], env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("runconfig");
        let path = dir.path().join("runconfig.json");
        std::fs::write(&path, config.to_string()).expect("writing the RunConfig");
        let mut run = Command::new(&binaries().proxyrunner);
        run.arg("run")
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied());
        if std::env::var_os("RUST_LOG").is_none() {
            run.env("RUST_LOG", "info,proxyrunner=debug");
        }
        if !command.is_empty() {
            run.arg("--").args(command);
        }
        let (process, url) = start_listening("thv-proxyrunner", run);
        Self {
            url,
            process,
            _config: dir,
        }
    }

    /// `URL + path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A RunConfig for a stdio workload served to clients as `mode` (`streamable-http`, `sse`).
pub fn stdio_config(name: &str, mode: &str) -> Value {
    json!({
        "schema_version": "v1",
        "name": name,
        "workload": {"container": {"image": format!("local/{name}"), "transport": "stdio"}},
        "proxy": {"host": "127.0.0.1", "port": 8080, "mode": mode},
    })
}

/// A RunConfig for a container workload speaking `transport` (`sse`, `streamable-http`)
/// on `127.0.0.1:port`.
pub fn http_config(name: &str, transport: &str, port: u16) -> Value {
    json!({
        "schema_version": "v1",
        "name": name,
        "workload": {"container": {
            "image": format!("local/{name}"),
            "transport": transport,
            "target_host": "127.0.0.1",
            "target_port": port,
        }},
        "proxy": {"host": "127.0.0.1", "port": 8080},
    })
}

/// A RunConfig for a remote workload at `url`.
pub fn remote_config(name: &str, url: &str, transport: &str) -> Value {
    json!({
        "schema_version": "v1",
        "name": name,
        "workload": {"remote": {"url": url, "transport": transport}},
        "proxy": {"host": "127.0.0.1", "port": 8080},
    })
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Waits until something accepts connections on `127.0.0.1:port` (a server the proxy
/// started prints nothing the test can read).
pub fn wait_for_port(port: u16, what: &str, logs: &Running) {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on port {port} within {STARTUP:?}; proxy stderr:\n{}",
        logs.stderr_tail(40)
    );
}

/// server-everything on `transport` (`streamableHttp`, `sse`), started by the test on a
/// free port; returns it with the port once it accepts connections.
pub fn start_server_everything(transport: &str) -> (Running, u16) {
    let peers = peers();
    let port = free_port();
    let mut command = Command::new(&peers.node22);
    command
        .arg(&peers.server_everything)
        .arg(transport)
        .env("PORT", port.to_string());
    let server = Running::start("server-everything", command);
    wait_for_port(port, "server-everything", &server);
    (server, port)
}

/// What a finished command printed.
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

/// Runs `command` to completion, killing it (and failing) after `deadline`.
pub fn run_until(mut command: Command, deadline: Duration) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let drain = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {deadline:?}; stderr so far:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// An MCP client driver of `e2e/peers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `ts-client.mjs`: the TypeScript SDK.
    Ts,
    /// `py_client.py`: the Python SDK.
    Py,
}

impl Driver {
    /// Both SDKs.
    pub const BOTH: [Driver; 2] = [Driver::Ts, Driver::Py];

    fn command(self) -> Command {
        let peers = peers();
        let drivers = repo_root().join("e2e/peers");
        match self {
            Driver::Ts => {
                let mut command = Command::new(&peers.node22);
                command.arg(drivers.join("ts-client.mjs"));
                command
            }
            Driver::Py => {
                let mut command = Command::new(&peers.python);
                command.arg(drivers.join("py_client.py"));
                command
            }
        }
    }

    /// Runs the driver against `url` over `transport` (`streamable-http`, `sse`) with
    /// `args` (`--steps ...`, ...). Fails with the driver's summary and stderr unless
    /// every step passed; returns the summary.
    pub fn run(self, url: &str, transport: &str, args: &[&str]) -> Value {
        let (finished, summary) = self.attempt(url, transport, args);
        assert!(
            finished.status.success() && summary["ok"] == true,
            "{self:?} driver against {url} ({transport}, {args:?}) failed ({}): {}\nsummary: {summary}\nstderr:\n{}",
            finished.status,
            summary["error"],
            finished.stderr
        );
        summary
    }

    /// Like [`Driver::run`] for a run that must fail: returns the failure (`STEP:
    /// reason`), or fails when every step passed.
    pub fn run_failing(self, url: &str, transport: &str, args: &[&str]) -> String {
        let (finished, summary) = self.attempt(url, transport, args);
        assert!(
            !finished.status.success() && summary["ok"] == false,
            "{self:?} driver against {url} ({transport}, {args:?}) passed, but should not: {summary}"
        );
        summary["error"].as_str().unwrap_or_default().to_owned()
    }

    fn attempt(self, url: &str, transport: &str, args: &[&str]) -> (Finished, Value) {
        let mut command = self.command();
        command
            .args(["--url", url, "--transport", transport, "--quiet"])
            .args(args);
        let finished = run_until(command, DRIVER_DEADLINE);
        let summary: Value = finished
            .stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or(Value::Null);
        (finished, summary)
    }
}

/// Every step of the drivers (initialize, tools/list, tools/call, progress, sampling,
/// session end).
pub const ALL_STEPS: &str = "initialize,list,call,progress,sampling,delete";

/// Runs both drivers, one after the other, with every step.
pub fn both_drivers_pass_every_step(url: &str, transport: &str) {
    for driver in Driver::BOTH {
        driver.run(url, transport, &["--steps", ALL_STEPS]);
    }
}

/// The MCP conformance suite's server scenarios (the active suite) against `url`;
/// returns the finished run (its stdout ends with the summary).
pub fn conformance(url: &str) -> Finished {
    let peers = peers();
    let dir = TempDir::new("conformance");
    let path = std::env::join_paths(std::iter::once(peers.node22_bin.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH entries without separators");
    let mut command = Command::new(&peers.node22);
    command
        .current_dir(dir.path())
        .env("PATH", path)
        .arg(&peers.conformance)
        .args(["server", "--url", url, "-o"])
        .arg(dir.path().join("results"));
    run_until(command, Duration::from_secs(600))
}

/// The conformance suite against `url` (the Kubernetes path `path`): every scenario
/// passes but one. `dns-rebinding-protection` tests "localhost MCP servers" and fails any
/// URL that is not localhost by its own definition (here a ClusterIP); the proxy's
/// Host/Origin checks pass it on loopback (tests/proxy_conformance.rs).
pub async fn conformance_passes_through_the_cluster(url: &str, path: &str) -> anyhow::Result<()> {
    let target = url.to_owned();
    let run = tokio::task::spawn_blocking(move || conformance(&target)).await?;
    let summary = run
        .stdout
        .rfind("=== SUMMARY ===")
        .map_or(run.stdout.as_str(), |at| &run.stdout[at..])
        .to_owned();
    println!("conformance through the Kubernetes path ({path}):\n{summary}");
    let failing: Vec<&str> = summary.lines().filter(|l| l.starts_with('✗')).collect();
    anyhow::ensure!(
        failing.len() == 1 && failing[0].contains("dns-rebinding-protection"),
        "conformance against {url} ({}):\n{summary}\nstderr:\n{}",
        run.status,
        run.stderr
    );
    anyhow::ensure!(
        summary.contains("✓ tools-call-sampling")
            && summary.contains("✓ server-sse-multiple-streams"),
        "{summary}"
    );
    Ok(())
}

/// The fixture's tools for the drivers' steps (their defaults fit server-everything).
pub const FIXTURE_STEPS: &[&str] = &[
    "--steps",
    "initialize,list,call,progress,sampling,delete",
    "--tool",
    "test_simple_text",
    "--expect",
    "simple text response",
    "--progress-tool",
    "test_tool_with_progress",
    "--progress-args",
    "{}",
    "--sampling-tool",
    "test_sampling",
    "--sampling-args",
    r#"{"prompt":"say hi"}"#,
];
