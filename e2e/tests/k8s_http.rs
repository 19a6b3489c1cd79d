//! The proxy runner's Kubernetes backend for HTTP servers, on the real node: the proxy
//! pod applies the StatefulSet and headless Service of a `streamable-http` or `sse`
//! MCPServer, discovers its pods by watch and sends each MCP session to the pod that
//! created it. 30 streamable HTTP sessions over `backendReplicas: 3` are each served by
//! one pod throughout and use all three; a session whose pod is deleted is answered
//! 404 (initialize again); a legacy SSE server answers initialize and tools/list, its
//! sessions spread over its pods.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use api::MCPServer;
use api::mcpserver::MCPServerPhase;
use e2e::{TestNamespace, apply_yaml, wait_until};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
const WHOAMI: &str =
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

fn server_yaml(name: &str, transport: &str, mode: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: {name}
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:{version}
  transport: {transport}
  mcpPort: 8080
  args: [{mode}, --port, "8080", --host, 0.0.0.0, --allow-any-host]
  backendReplicas: {replicas}
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// One HTTP answer as curl saw it.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The first text content of a tool result.
    fn text(&self) -> Option<String> {
        let (_, rest) = self.body.split_once(r#""text":""#)?;
        Some(rest.split('"').next()?.to_owned())
    }
}

/// A request to the proxy's Service; `body` makes it a POST.
fn request(url: &str, method: &str, session: Option<&str>, body: Option<&str>) -> Answer {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "-i",
        "-m",
        "10",
        "-X",
        method,
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "-H",
        "mcp-protocol-version: 2025-06-18",
    ]);
    if let Some(session) = session {
        command.args(["-H", &format!("mcp-session-id: {session}")]);
    }
    if let Some(body) = body {
        command.args(["-d", body]);
    }
    let out = match command.arg(url).output() {
        Ok(out) => out,
        Err(e) => {
            return Answer {
                status: 0,
                head: String::new(),
                body: e.to_string(),
            };
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_owned(),
        body: format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn post(url: &str, session: Option<&str>, body: &str) -> Answer {
    request(url, "POST", session, Some(body))
}

/// A session through the proxy: initialize, initialized, tools/list; its id.
fn open_session(url: &str) -> anyhow::Result<String> {
    let init = post(url, None, INITIALIZE);
    anyhow::ensure!(
        init.status == 200,
        "initialize: {} {}",
        init.status,
        init.body
    );
    let session = init.header("mcp-session-id").context("Mcp-Session-Id")?;
    let ack = post(url, Some(&session), INITIALIZED);
    anyhow::ensure!(
        ack.status == 202,
        "initialized: {} {}",
        ack.status,
        ack.body
    );
    let tools = post(url, Some(&session), TOOLS_LIST);
    anyhow::ensure!(
        tools.status == 200 && tools.body.contains(r#""name":"whoami""#),
        "tools/list: {} {}",
        tools.status,
        tools.body
    );
    Ok(session)
}

/// The pod that answers `whoami` in `session`.
fn whoami(url: &str, session: &str) -> anyhow::Result<String> {
    let answer = post(url, Some(session), WHOAMI);
    anyhow::ensure!(
        answer.status == 200,
        "whoami: {} {}",
        answer.status,
        answer.body
    );
    answer.text().context("whoami's text")
}

async fn proxy_ip(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    ns.api::<Service>()
        .get(&format!("mcp-{name}-proxy"))
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("proxy Service ClusterIP")
}

/// Waits until MCPServer `name` is Ready because a pod answered the proxy's own
/// `initialize` (its name and tool count in `status.backend`); a summary of that.
async fn ready_with_facts(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    let server = wait_until(&ns.api::<MCPServer>(), name, Duration::from_secs(60), |s| {
        s.status.as_ref().and_then(|s| s.phase) == Some(MCPServerPhase::Ready)
    })
    .await?;
    let backend = server
        .status
        .and_then(|s| s.backend)
        .context("status.backend written by the proxy")?;
    anyhow::ensure!(
        backend.reason == "Initialized"
            && backend.server_name.as_deref() == Some("mcp-fixture")
            && backend.tools.is_some_and(|n| n > 0),
        "{backend:?}"
    );
    Ok(format!(
        "{} {}, {} tools",
        backend.server_name.unwrap_or_default(),
        backend.server_version.unwrap_or_default(),
        backend.tools.unwrap_or_default()
    ))
}

/// Waits until `count` pods of the server are Ready; their names.
async fn ready_pods(
    ns: &TestNamespace,
    name: &str,
    count: usize,
    within: Duration,
) -> anyhow::Result<BTreeSet<String>> {
    let start = Instant::now();
    loop {
        let pods = ns
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await?;
        let ready: BTreeSet<String> = pods
            .items
            .iter()
            .filter(|p| e2e::pod_ready(p))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if ready.len() >= count {
            return Ok(ready);
        }
        anyhow::ensure!(
            start.elapsed() < within,
            "{count} Ready pods of {name} within {within:?}: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Retries until a session opens through the proxy.
async fn first_session(url: &str, within: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        match open_session(url) {
            Ok(_) => return Ok(start.elapsed()),
            Err(e) if start.elapsed() > within => {
                return Err(e.context(format!("no session through {url} within {within:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

fn proxy_log(ns: &TestNamespace, name: &str) {
    if let Ok(logs) = e2e::kubectl_ok(&[
        "logs",
        "-n",
        &ns.name,
        &format!("deploy/{name}"),
        "--tail=30",
    ]) {
        eprintln!("--- proxy log ---\n{logs}");
    }
}

#[tokio::test]
async fn streamable_http_sessions_are_pinned_to_the_pod_that_created_them() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-http");
    let (client, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-http").await?;
    apply_yaml(
        &client,
        &ns.name,
        &server_yaml("web", "streamable-http", "http", 3),
    )
    .await?;

    // The proxy pod applies the StatefulSet and the headless Service.
    wait_until(
        &ns.api::<StatefulSet>(),
        "web",
        Duration::from_secs(120),
        |_| true,
    )
    .await?;
    wait_until(
        &ns.api::<Service>(),
        "mcp-web-headless",
        Duration::from_secs(30),
        |_| true,
    )
    .await?;
    watch.lap("StatefulSet and headless Service applied by the proxy");
    let pods = ready_pods(&ns, "web", 3, Duration::from_secs(120)).await?;
    watch.lap(&format!("3 pods Ready: {pods:?}"));
    let url = format!("http://{}:8080/mcp", proxy_ip(&ns, "web").await?);
    let took = first_session(&url, Duration::from_secs(60)).await?;
    watch.lap(&format!(
        "first session through the proxy ({took:?} of retries)"
    ));
    let backend = ready_with_facts(&ns, "web").await?;
    watch.lap(&format!("Ready: {backend}"));

    // 30 sessions, each asked three times which pod serves it.
    let started = Instant::now();
    let mut home: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..30 {
        let session = open_session(&url)?;
        let pod = whoami(&url, &session)?;
        for _ in 0..2 {
            let again = whoami(&url, &session)?;
            anyhow::ensure!(
                again == pod,
                "session {session} moved from {pod} to {again}"
            );
        }
        home.insert(session, pod);
    }
    let elapsed = started.elapsed();
    let mut per_pod: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in home.values() {
        *per_pod.entry(pod).or_default() += 1;
    }
    println!(
        "30 sessions (initialize, initialized, tools/list, 3 x tools/call) in {elapsed:?} \
         ({:?} per session); sessions per pod: {per_pod:?}",
        elapsed / 30
    );
    assert_eq!(
        per_pod
            .keys()
            .map(|p| (*p).to_owned())
            .collect::<BTreeSet<_>>(),
        pods,
        "all three pods serve sessions"
    );
    // Every session is still served by its pod after all were opened.
    for (session, pod) in &home {
        assert_eq!(&whoami(&url, session)?, pod, "session {session}");
    }
    watch.lap("30 sessions, each on one pod throughout, all pods used");

    // DELETE ends a session: the proxy forgets it and answers 404 after.
    let (ended, _) = home.pop_first().context("a session")?;
    let delete = request(&url, "DELETE", Some(&ended), None);
    assert_eq!(delete.status, 200, "DELETE: {}", delete.body);
    let after = post(&url, Some(&ended), TOOLS_LIST);
    assert_eq!(after.status, 404, "{}", after.body);
    assert!(after.body.contains(r#""jsonrpc":"2.0""#), "{}", after.body);

    // A pod deleted: its sessions get 404 (initialize again), never a hang; the
    // others are still served by their pods.
    let victim = home.values().next().context("a session")?.clone();
    ns.api::<Pod>()
        .delete(&victim, &DeleteParams::default().grace_period(0))
        .await?;
    let deleted_at = Instant::now();
    let orphan = home
        .iter()
        .find(|(_, p)| **p == victim)
        .map(|(s, _)| s.clone())
        .context("a session on the deleted pod")?;
    let mut last = post(&url, Some(&orphan), TOOLS_LIST);
    while last.status != 404 && deleted_at.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = post(&url, Some(&orphan), TOOLS_LIST);
    }
    assert_eq!(last.status, 404, "{}", last.body);
    println!(
        "a session of the deleted pod {victim} answered 404 {:?} after the deletion",
        deleted_at.elapsed()
    );
    for (session, pod) in home.iter().filter(|(_, p)| **p != victim) {
        assert_eq!(&whoami(&url, session)?, pod, "session {session}");
    }
    let again = open_session(&url)?;
    println!("a new session opens on {}", whoami(&url, &again)?);
    watch.lap("deleted pod's sessions answered 404, the others unaffected");
    proxy_log(&ns, "web");
    if std::env::var_os("THV_E2E_KEEP").is_some() {
        return Ok(());
    }
    ns.delete().await
}

/// Reads a legacy SSE stream through the proxy (curl in the background), line by line.
struct SseStream {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl SseStream {
    fn open(url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new("curl")
            .args(["-sN", "-m", "60", "-H", "accept: text/event-stream", url])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("curl's stdout")?;
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The next `data:` line containing `needle`.
    fn data_with(&self, needle: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("an event with {needle}"))?;
            if let Some(data) = line.strip_prefix("data:")
                && data.contains(needle)
            {
                return Ok(data.trim().to_owned());
            }
        }
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_legacy_sse_server_is_served_through_the_proxy() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-sse");
    let (client, ns, _controller) = e2e::controllers::real_node_with_operator("k8s-sse").await?;
    apply_yaml(&client, &ns.name, &server_yaml("legacy", "sse", "sse", 2)).await?;
    let pods = ready_pods(&ns, "legacy", 2, Duration::from_secs(180)).await?;
    watch.lap(&format!("pods Ready: {pods:?}"));
    let base = format!("http://{}:8080", proxy_ip(&ns, "legacy").await?);

    let start = Instant::now();
    let (stream, endpoint) = loop {
        let stream = SseStream::open(&format!("{base}/sse"))?;
        match stream.data_with("sessionId=") {
            Ok(endpoint) => break (stream, endpoint),
            Err(e) if start.elapsed() > Duration::from_secs(60) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    watch.lap(&format!(
        "SSE stream open through the proxy: endpoint {endpoint}"
    ));
    let backend = ready_with_facts(&ns, "legacy").await?;
    watch.lap(&format!("Ready: {backend}"));
    let messages = format!("{base}{endpoint}");
    for body in [INITIALIZE, INITIALIZED, TOOLS_LIST, WHOAMI] {
        let answer = post(&messages, None, body);
        assert_eq!(answer.status, 202, "{body}: {}", answer.body);
    }
    let init = stream.data_with(r#""id":1"#)?;
    assert!(init.contains(r#""serverInfo""#), "{init}");
    let tools = stream.data_with(r#""id":2"#)?;
    assert!(tools.contains(r#""name":"whoami""#), "{tools}");
    let pod = stream.data_with(r#""id":3"#)?;
    assert!(
        pods.iter().any(|p| pod.contains(p.as_str())),
        "answered by one of {pods:?}: {pod}"
    );
    println!("legacy SSE session served by {pod}");
    watch.lap("initialize, tools/list and tools/call answered on the stream");

    // More sessions, open at once: they spread over both pods, and each stream's POSTs
    // reach the pod holding it (any other pod would answer 404 to its sessionId).
    let mut served: BTreeSet<String> = pods
        .iter()
        .filter(|p| pod.contains(p.as_str()))
        .cloned()
        .collect();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(SseStream::open(&format!("{base}/sse"))?);
    }
    for stream in &open {
        let endpoint = stream.data_with("sessionId=")?;
        let messages = format!("{base}{endpoint}");
        for body in [INITIALIZE, INITIALIZED, WHOAMI] {
            let answer = post(&messages, None, body);
            assert_eq!(answer.status, 202, "{body}: {}", answer.body);
        }
        let pod = stream.data_with(r#""id":3"#)?;
        served.extend(pods.iter().filter(|p| pod.contains(p.as_str())).cloned());
    }
    assert_eq!(served, pods, "legacy SSE sessions on both pods");
    watch.lap("4 legacy SSE sessions at once, spread over both pods");
    drop((stream, open));
    proxy_log(&ns, "legacy");
    if std::env::var_os("THV_E2E_KEEP").is_some() {
        return Ok(());
    }
    ns.delete().await
}

/// The Ready proxy pods of MCPServer `name` (its Deployment's, not the server's), by
/// name, with their `http://<ip>:8080/mcp`.
async fn proxy_pods(
    ns: &TestNamespace,
    name: &str,
    count: usize,
    within: Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    let start = Instant::now();
    loop {
        let pods = ns
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/name=mcpserver,app.kubernetes.io/instance={name}"
            )))
            .await?;
        let ready: BTreeMap<String, String> = pods
            .items
            .iter()
            .filter(|p| e2e::pod_ready(p) && p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "ReplicaSet")
            })
            .filter_map(|p| {
                let ip = p.status.as_ref()?.pod_ip.clone()?;
                Some((p.metadata.name.clone()?, format!("http://{ip}:8080/mcp")))
            })
            .collect();
        if ready.len() == count {
            return Ok(ready);
        }
        anyhow::ensure!(
            start.elapsed() < within,
            "{count} Ready proxy pods of {name} within {within:?}: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `SessionStorageWarning`'s status and reason on MCPServer `name`.
async fn session_storage_condition(
    ns: &TestNamespace,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let server = ns.api::<MCPServer>().get(name).await?;
    server
        .status
        .into_iter()
        .flat_map(|s| s.conditions)
        .find(|c| c.type_ == "SessionStorageWarning")
        .map(|c| (c.status, c.reason))
        .context("SessionStorageWarning condition")
}

/// Two proxy replicas behind a Service without affinity: with `sessionStorage` in Redis,
/// a session opened through one replica is served through the other, on the same
/// server pod, and outlives the replica that opened it. Without it (the control), the
/// other replica answers 404 and the operator says so in `SessionStorageWarning`.
#[tokio::test]
async fn with_redis_session_storage_any_proxy_replica_serves_any_session() -> anyhow::Result<()> {
    let watch = e2e::Stopwatch::start("k8s-sessions");
    let (client, ns, _controller) =
        e2e::controllers::real_node_with_operator("k8s-sessions").await?;
    apply_yaml(&client, &ns.name, e2e::REDIS_MANIFEST).await?;
    let redis_ip = ns
        .api::<Service>()
        .get("redis")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("redis ClusterIP")?;
    // The harness runs no cluster DNS: the Service is named by its ClusterIP.
    // `echo` is limited to 5 calls an hour across both replicas (the other tools are not).
    let shared = format!(
        "{}  replicas: 2\n  sessionAffinity: None\n  sessionStorage:\n    provider: redis\n    address: \"{redis_ip}:6379\"\n    keyPrefix: e2e-\n    passwordRef: {{name: redis, key: password}}\n  rateLimiting:\n    tools:\n    - name: echo\n      shared: {{maxTokens: 5, refillPeriod: 1h}}\n",
        server_yaml("shared", "streamable-http", "http", 2)
    );
    let alone = format!(
        "{}  replicas: 2\n  sessionAffinity: None\n",
        server_yaml("alone", "streamable-http", "http", 1)
    );
    apply_yaml(&client, &ns.name, &shared).await?;
    apply_yaml(&client, &ns.name, &alone).await?;
    ready_pods(&ns, "redis", 1, Duration::from_secs(120)).await?;
    let backends = ready_pods(&ns, "shared", 2, Duration::from_secs(180)).await?;
    let proxies = proxy_pods(&ns, "shared", 2, Duration::from_secs(120)).await?;
    let urls: Vec<String> = proxies.values().cloned().collect();
    for url in &urls {
        first_session(url, Duration::from_secs(60)).await?;
    }
    ready_with_facts(&ns, "shared").await?;
    assert_eq!(
        session_storage_condition(&ns, "shared").await?,
        ("False".to_owned(), "SessionStorageConfigured".to_owned())
    );
    watch.lap(&format!(
        "Redis, 2 proxy replicas {:?} and 2 server pods {backends:?} Ready",
        proxies.keys().collect::<Vec<_>>()
    ));

    // 10 sessions, opened alternately through each replica, each used through both.
    let mut home: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for i in 0..10 {
        let opener = i % 2;
        let session = open_session(&urls[opener])?;
        let pod = whoami(&urls[opener], &session)?;
        let other = whoami(&urls[1 - opener], &session)
            .with_context(|| format!("session {session} through the other replica"))?;
        anyhow::ensure!(
            other == pod,
            "session {session}: {pod} through one replica, {other} through the other"
        );
        home.insert(session, (opener, pod));
    }
    let pods_used: BTreeSet<&String> = home.values().map(|(_, p)| p).collect();
    assert_eq!(
        pods_used.len(),
        2,
        "both server pods serve sessions: {home:?}"
    );
    watch.lap("10 sessions, each served through both replicas by its own server pod");

    // Rate limits live in Redis too: 8 calls of `echo`, alternately through each
    // replica, and exactly 5 pass; the others are 429 with Retry-After.
    let echo = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"n":1}}}"#;
    let sessions: Vec<&String> = home.keys().collect();
    let mut passed = 0;
    for i in 0..8 {
        let answer = post(&urls[i % 2], Some(sessions[i % sessions.len()]), echo);
        match answer.status {
            200 => passed += 1,
            429 => {
                anyhow::ensure!(
                    answer.header("retry-after").is_some() && answer.body.contains(r#""code":429"#),
                    "a rate-limited call: {} {}",
                    answer.head,
                    answer.body
                );
            }
            other => anyhow::bail!("echo: {other} {}", answer.body),
        }
    }
    assert_eq!(passed, 5, "5 calls of echo an hour, across both replicas");
    watch.lap("rate limit shared by both replicas: 5 of 8 calls of echo passed, 3 answered 429");

    // The replica that opened half of them is deleted: its sessions go on through the
    // other one, and through its replacement.
    let (victim, victim_url) = proxies.iter().next().context("a proxy pod")?;
    let victim_index = urls
        .iter()
        .position(|u| u == victim_url)
        .context("its url")?;
    ns.api::<Pod>()
        .delete(victim, &DeleteParams::default().grace_period(0))
        .await?;
    let survivor = &urls[1 - victim_index];
    for (session, (_, pod)) in &home {
        assert_eq!(
            &whoami(survivor, session)?,
            pod,
            "session {session} after {victim} went"
        );
    }
    watch.lap(&format!(
        "{victim} deleted: all 10 sessions served by the other replica"
    ));
    let start = Instant::now();
    let replacement = loop {
        let now = proxy_pods(&ns, "shared", 2, Duration::from_secs(120)).await?;
        if let Some((name, url)) = now
            .into_iter()
            .find(|(n, _)| n != victim && !proxies.contains_key(n))
        {
            break (name, url);
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "no replacement for {victim}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    first_session(&replacement.1, Duration::from_secs(60)).await?;
    for (session, (_, pod)) in &home {
        assert_eq!(
            &whoami(&replacement.1, session)?,
            pod,
            "session {session} through {}",
            replacement.0
        );
    }
    watch.lap(&format!(
        "replacement {} serves all 10 sessions it never saw",
        replacement.0
    ));

    // The control: the same two replicas without session storage.
    let alone_proxies = proxy_pods(&ns, "alone", 2, Duration::from_secs(180)).await?;
    let alone_urls: Vec<String> = alone_proxies.values().cloned().collect();
    for url in &alone_urls {
        first_session(url, Duration::from_secs(60)).await?;
    }
    let session = open_session(&alone_urls[0])?;
    whoami(&alone_urls[0], &session)?;
    let elsewhere = post(&alone_urls[1], Some(&session), WHOAMI);
    assert_eq!(
        elsewhere.status, 404,
        "without Redis the other replica does not know it: {}",
        elsewhere.body
    );
    assert_eq!(
        session_storage_condition(&ns, "alone").await?,
        (
            "True".to_owned(),
            "SessionStorageMissingForReplicas".to_owned()
        )
    );
    watch.lap(
        "control without sessionStorage: 404 on the other replica, SessionStorageWarning True",
    );
    proxy_log(&ns, "shared");
    if std::env::var_os("THV_E2E_KEEP").is_some() {
        return Ok(());
    }
    ns.delete().await
}
