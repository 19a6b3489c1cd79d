//! Leader election on the real control plane: of two thv-operator processes both report
//! ready (every replica serves the webhook) and exactly one runs the controllers
//! (`thv_operator_leader 1`): the Lease holder. When it shuts down it releases the Lease
//! and the other takes over; when it is killed (no release), a third takes over once the
//! Lease has gone unrenewed for its duration.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{TestNamespace, client, kubeconfig_path, repo_root};
use k8s_openapi::api::coordination::v1::Lease;

/// Builds (if needed) and returns the debug thv-operator binary.
fn operator_binary() -> anyhow::Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "thv-operator"])
        .current_dir(repo_root())
        .status()?;
    anyhow::ensure!(status.success(), "building thv-operator failed");
    Ok(repo_root().join("target/debug/thv-operator"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Replica {
    name: &'static str,
    port: u16,
    child: Child,
}

impl Replica {
    fn start(
        binary: &std::path::Path,
        name: &'static str,
        namespace: &str,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(binary)
            .args([
                "--leader-elect",
                "--leader-elect-namespace",
                namespace,
                "--namespace",
                namespace,
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig_path())
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { name, port, child })
    }

    async fn get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response).await;
        response.starts_with("HTTP/1.1 200").then_some(response)
    }

    async fn ready(&self) -> bool {
        self.get("/readyz").await.is_some()
    }

    /// Whether this replica runs the controllers, by its `thv_operator_leader` gauge.
    async fn leads(&self) -> bool {
        self.get("/metrics")
            .await
            .is_some_and(|m| m.lines().any(|l| l == "thv_operator_leader 1"))
    }

    /// SIGTERM: the graceful path that releases the Lease. The replica must exit within
    /// 30 s (its controllers get 10 s to finish); one that does not is killed and the
    /// test fails, rather than waiting for ever.
    fn terminate(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(30) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        anyhow::bail!("{} did not exit within 30 s of SIGTERM", self.name)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &kube::Api<Lease>) -> Option<String> {
    leases
        .get_opt("thv-operator-leader")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        // `<pod>_<random per process start>`: the pod.
        .map(|h| h.split('_').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn one_replica_leads_and_hands_over_on_shutdown() -> anyhow::Result<()> {
    let client = client().await?;
    e2e::install_crds(&client).await?;
    let ns = TestNamespace::create(&client, "leader", &[]).await?;
    let binary = operator_binary()?;
    let mut replicas = vec![
        Replica::start(&binary, "replica-a", &ns.name)?,
        Replica::start(&binary, "replica-b", &ns.name)?,
    ];
    let leases = ns.api::<Lease>();

    // Both replicas are ready; exactly one leads, and it is the Lease holder.
    let start = Instant::now();
    let leader = loop {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no replica became leader within 60 s"
        );
        if let Some(holder) = holder(&leases).await {
            let leads = [replicas[0].leads().await, replicas[1].leads().await];
            if leads[0] != leads[1] {
                let index = usize::from(leads[1]);
                assert_eq!(
                    replicas[index].name, holder,
                    "the leading replica holds the Lease"
                );
                break index;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        replicas[0].ready().await && replicas[1].ready().await,
        "every replica is ready, the follower too (it serves the webhook)"
    );
    let follower = 1 - leader;

    // A graceful shutdown releases the Lease (the operator logs it); the follower's lease
    // manager notices on its next check, at most one lease duration (10 s) later.
    replicas[leader].terminate()?;
    let handover = Instant::now();
    wait_for_holder(&leases, replicas[follower].name).await?;
    let took = handover.elapsed();
    println!("handover after SIGTERM: {:.1} s", took.as_secs_f64());
    let leads_by = Instant::now();
    while !replicas[follower].leads().await {
        anyhow::ensure!(
            leads_by.elapsed() < Duration::from_secs(30),
            "the new leader never started its controllers"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A crash: SIGKILL releases nothing. A new replica may take the Lease only once its
    // last renewal is 10 s old; the killed one renewed every 5 s, so 5 to 10 s (and some
    // scheduling) after the kill.
    let third = Replica::start(&binary, "replica-c", &ns.name)?;
    replicas.push(third);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        holder(&leases).await.as_deref(),
        Some(replicas[follower].name),
        "a new replica waits while the leader renews"
    );
    let _ = replicas[follower].child.kill();
    let _ = replicas[follower].child.wait();
    let killed = Instant::now();
    wait_for_holder(&leases, replicas[2].name).await?;
    let took = killed.elapsed();
    println!("take-over after SIGKILL: {:.1} s", took.as_secs_f64());
    assert!(
        took >= Duration::from_secs(4),
        "the Lease was taken {took:?} after the kill, before it could have expired"
    );
    drop(replicas);
    ns.delete().await
}

async fn wait_for_holder(leases: &kube::Api<Lease>, name: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        if holder(leases).await.as_deref() == Some(name) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("{name} did not take over the Lease within 90 s")
}
