//! Port-forwarding a server's proxy to a local port through the API server (kube's
//! pods/portforward, no `kubectl`): in the foreground, or as a detached `thv proxy`
//! process whose pid, port and log live in the XDG state directory, as ToolHive's CLI
//! runs its proxies.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use api::MCPServer;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{Cluster, ClusterArgs};

/// A detached forwarder, as its state file records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// Process id of the `thv proxy` process.
    pub pid: i32,
    /// Local port on 127.0.0.1.
    pub port: u16,
    /// The URL a local MCP client uses.
    pub url: String,
    /// Where the forwarder logs.
    pub log: PathBuf,
}

impl Forward {
    /// The live forwarder of `name` in `namespace`, if one runs; a stale state file
    /// (its process gone) is removed.
    pub fn find(namespace: &str, name: &str) -> Option<Self> {
        let path = state_file(namespace, name).ok()?;
        let forward: Self = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        if forward.is_alive(name) {
            Some(forward)
        } else {
            let _ = fs::remove_file(path);
            None
        }
    }

    /// Whether the process is still the forwarder of `name` (on Linux the command line
    /// is checked, so a recycled pid is not mistaken for it).
    fn is_alive(&self, name: &str) -> bool {
        let Some(pid) = rustix::process::Pid::from_raw(self.pid) else {
            return false;
        };
        if rustix::process::test_kill_process(pid).is_err() {
            return false;
        }
        match fs::read(format!("/proc/{}/cmdline", self.pid)) {
            Ok(cmdline) => {
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.contains(&b"proxy".as_slice()) && args.contains(&name.as_bytes())
            }
            Err(_) => true, // no procfs (macOS): trust the pid
        }
    }
}

/// Stops the detached forwarder of `name`, if any; whether one was running.
pub fn stop(namespace: &str, name: &str) -> bool {
    let Some(forward) = Forward::find(namespace, name) else {
        return false;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(forward.pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if let Ok(path) = state_file(namespace, name) {
        let _ = fs::remove_file(path);
    }
    true
}

/// `$XDG_STATE_HOME/toolhive/forwards` (`~/.local/state/…`), or the local data
/// directory where the platform has no state directory.
fn state_dir() -> anyhow::Result<PathBuf> {
    let base = dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .context("no state directory: set $XDG_STATE_HOME or $HOME")?;
    Ok(base.join("toolhive").join("forwards"))
}

fn state_file(namespace: &str, name: &str) -> anyhow::Result<PathBuf> {
    Ok(state_dir()?.join(namespace).join(format!("{name}.json")))
}

/// The URL a client on this machine uses for `server` forwarded to `port`.
pub fn local_url(server: &MCPServer, port: u16) -> String {
    format!(
        "http://127.0.0.1:{port}{}",
        admission::endpoint_path(server)
    )
}

/// A free local port, for a detached forwarder that must be told its port.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `thv proxy NAME --port PORT` in the background, detached from the terminal,
/// replacing a forwarder already running for the server; returns once the port accepts
/// connections.
pub fn spawn_detached(
    args: &ClusterArgs,
    namespace: &str,
    server: &MCPServer,
    port: u16,
) -> anyhow::Result<Forward> {
    let name = server.metadata.name.clone().unwrap_or_default();
    stop(namespace, &name);
    let path = state_file(namespace, &name)?;
    let dir = path.parent().context("state file has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = path.with_extension("log");
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let exe = std::env::current_exe().context("finding the thv executable")?;
    let mut command = Command::new(exe);
    command
        .arg("proxy")
        .arg(&name)
        .arg("--port")
        .arg(port.to_string())
        .args(args.to_args(namespace))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // Its own process group: Ctrl-C in this terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .context("starting the background forwarder")?;
    let forward = Forward {
        pid: i32::try_from(child.id()).context("pid out of range")?,
        port,
        url: local_url(server, port),
        log: log.clone(),
    };
    fs::write(&path, serde_json::to_vec_pretty(&forward)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let start = Instant::now();
    while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Some(status) = child.try_wait()? {
            let _ = fs::remove_file(&path);
            let tail = fs::read_to_string(&log).unwrap_or_default();
            bail!("the forwarder exited ({status}): {}", tail.trim());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!(
                "the forwarder did not listen on port {port} within 20 s; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(forward)
}

/// Forwards 127.0.0.1:`port` (0: any free port) to the proxy of MCPServer `name` until
/// Ctrl-C or SIGTERM. Each connection goes to a ready proxy pod chosen when it opens, so
/// a rolled or restarted proxy is followed without restarting the forwarder.
pub async fn serve(
    cluster: &Cluster,
    server: &MCPServer,
    port: u16,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let name = server.metadata.name.clone().unwrap_or_default();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    on_listening(listener.local_addr()?);
    let target = Target {
        cluster_pods: cluster.api::<Pod>(),
        services: cluster.api::<Service>(),
        name,
        port: u16::try_from(server.spec.proxy_port).context("spec.proxyPort out of range")?,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = accepted.context("accepting a connection")?;
                let target = target.clone();
                tokio::spawn(async move {
                    if let Err(e) = target.connect(stream).await {
                        eprintln!("thv: connection from {peer}: {e:#}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}

/// The proxy pods of one MCPServer.
#[derive(Clone)]
struct Target {
    cluster_pods: kube::Api<Pod>,
    services: kube::Api<Service>,
    name: String,
    port: u16,
}

impl Target {
    async fn connect(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        let pod = self.ready_pod().await?;
        let mut forwarder = self
            .cluster_pods
            .portforward(&pod, &[self.port])
            .await
            .with_context(|| format!("port-forwarding to pod {pod}"))?;
        let mut upstream = forwarder
            .take_stream(self.port)
            .context("the port-forward has no stream")?;
        // Either side closing ends the connection; errors here are the peer hanging up.
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        drop(upstream);
        forwarder.join().await.ok();
        Ok(())
    }

    /// A ready pod behind the proxy Service (the Service's selector is the source of
    /// truth for which pods serve).
    async fn ready_pod(&self) -> anyhow::Result<String> {
        let labels = crate::cluster::proxy_pods_selector(&self.services, &self.name).await?;
        let pods = self
            .cluster_pods
            .list(&ListParams::default().labels(&labels))
            .await?;
        pods.items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
            .find_map(|p| p.metadata.name)
            .with_context(|| format!("no ready proxy pod for {} yet", self.name))
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
