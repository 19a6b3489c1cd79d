//! Row 2: the same upstream reached directly, through ToolHive's proxyrunner and
//! through ours, on loopback: first with no middleware on either side, then with the
//! middleware both have (OIDC token validation, Cedar authorization, audit).

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use e2e::bench::{Session, cpu_seconds, load, load_as, peak_rss_kib, rss_kib, us};
use e2e::proxy::{Running, TempDir, free_port, remote_config, start_listening};

use crate::{Row, ToolHive, env_number, print_table, record};

/// `http://HOST:PORT/PATH` → (`HOST:PORT`, `/PATH`).
fn split(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((addr.to_owned(), format!("/{path}")))
}

struct Side {
    addr: String,
    path: String,
    process: Running,
}

pub async fn run(toolhive: &ToolHive, rounds: usize) -> anyhow::Result<()> {
    let seconds = env_number("BENCH_PROXY_SECONDS", 10)?;
    let release = e2e::repo_root().join("target/release");
    for binary in ["mcp-fixture", "thv-proxyrunner"] {
        anyhow::ensure!(
            release.join(binary).exists(),
            "{} is missing: cargo build --release -p {binary}",
            release.join(binary).display()
        );
    }
    let mut echo = Command::new(release.join("mcp-fixture"));
    echo.args(["echo", "--port", "0"]);
    let (_echo, echo_url) = start_listening("echo", echo);
    let bench = Variant {
        toolhive,
        rounds,
        seconds,
        echo_url: &echo_url,
    };
    bench.measure(None).await?;

    // The same with the middleware both proxies have: a token checked against a JWKS
    // (an issuer on loopback), a Cedar policy allowing the one tool, an audit event per
    // request.
    let issuer = e2e::issuer::Issuer::start("127.0.0.1:0").await?;
    let middleware = Middleware {
        proxy: serde_json::json!({
            "oidc": {
                "issuer": issuer.url, "audience": "bench",
                "jwks_url": format!("{}/jwks.json", issuer.url),
                "allow_private_ip": true, "insecure_allow_http": true,
            },
            "authz": {"type": "cedarv1", "policies": [
                "permit(principal, action == Action::\"call_tool\", resource == Tool::\"echo\");",
            ]},
            "audit": {},
        }),
        token: issuer.token("bench-client", "bench", 3600, false),
    };
    bench.measure(Some(&middleware)).await
}

/// What the second measurement adds to both proxies' RunConfig, and the token its
/// clients send.
struct Middleware {
    /// Merged into the RunConfig's `proxy`.
    proxy: serde_json::Value,
    token: String,
}

/// One measurement of both proxies in front of the same echo upstream.
struct Variant<'a> {
    toolhive: &'a ToolHive,
    rounds: usize,
    seconds: u64,
    echo_url: &'a str,
}

impl Variant<'_> {
    async fn measure(&self, middleware: Option<&Middleware>) -> anyhow::Result<()> {
        let (toolhive, rounds, seconds) = (self.toolhive, self.rounds, self.seconds);
        let release = e2e::repo_root().join("target/release");
        let (direct_addr, direct_path) = split(self.echo_url)?;
        let config_dir = TempDir::new("bench-vs-toolhive");
        let mut config = remote_config("bench", self.echo_url, "streamable-http");
        if let Some(middleware) = middleware
            && let (Some(proxy), Some(extra)) = (
                config["proxy"].as_object_mut(),
                middleware.proxy.as_object(),
            )
        {
            proxy.extend(extra.clone());
        }
        let token = middleware.map(|m| m.token.as_str());

        let ours_path = config_dir.path().join("ours.json");
        std::fs::write(&ours_path, serde_json::to_vec(&config)?)?;
        let mut command = Command::new(release.join("thv-proxyrunner"));
        command
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&ours_path)
            .env("RUST_LOG", "warn");
        let (process, url) = start_listening("thv-proxyrunner (ours)", command);
        let (addr, _) = split(&url)?;
        let ours = Side {
            addr,
            path: "/mcp".to_owned(),
            process,
        };

        // ToolHive's proxyrunner reads ./runconfig.json (ToolHive's schema, written by our
        // exporter) and needs a container runtime to start even for a remote URL: the
        // Kubernetes one, with the harness's kubeconfig.
        let port = free_port();
        let mut theirs_config = config.clone();
        theirs_config["proxy"]["port"] = port.into();
        let parsed = runconfig::from_value(theirs_config).context("the bench's RunConfig")?;
        let (json, lost) = runconfig::to_toolhive_json(&parsed);
        anyhow::ensure!(
            lost.is_empty(),
            "ToolHive's RunConfig cannot carry {lost:?}"
        );
        let theirs_dir = config_dir.path().join("toolhive");
        std::fs::create_dir_all(&theirs_dir)?;
        std::fs::write(theirs_dir.join("runconfig.json"), json)?;
        let mut command = Command::new(toolhive.bin.join("thv-proxyrunner"));
        command
            .args(["run", "remote"])
            .current_dir(&theirs_dir)
            .env("TOOLHIVE_RUNTIME", "kubernetes")
            .env("KUBECONFIG", e2e::kubeconfig_path())
            .env("TOOLHIVE_SKIP_UPDATE_CHECK", "true")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost");
        let mut process = Running::start("thv-proxyrunner (ToolHive)", command);
        process.drain_stdout();
        let theirs = Side {
            addr: format!("127.0.0.1:{port}"),
            path: "/mcp".to_owned(),
            process,
        };
        for (name, side) in [("ours", &ours), ("ToolHive", &theirs)] {
            wait_serving(
                &side.addr,
                &side.path,
                &side.process,
                Duration::from_secs(60),
                token,
            )
            .await
            .with_context(|| format!("{name}'s proxy"))?;
        }

        if let Some(token) = token {
            for (name, side) in [("ours", &ours), ("ToolHive", &theirs)] {
                middleware_in_effect(side, token)
                    .await
                    .with_context(|| format!("{name}'s proxy"))?;
            }
        }
        let what = if middleware.is_some() {
            "OIDC (a JWT checked against a JWKS) + Cedar + audit"
        } else {
            "no middleware"
        };
        println!(
            "\nproxy data path, {what}: mcp-fixture echo (streamable HTTP, tools/call answered as JSON) direct and behind each proxy; {seconds} s per load"
        );
        let mut rows = [
            Row::new("added latency p50, c=1", "µs", "≤ 0.20"),
            Row::new("added latency p99, c=1", "µs", "≤ 0.20"),
            Row::new("throughput, c=32", "req/s", "≥ 5"),
            Row::new("proxy CPU per request, c=32", "µs", ""),
            Row::new("proxy RSS after the loads", "MiB", ""),
        ];
        let mut direct_rps = Vec::new();
        for round in 0..rounds {
            let sides = if round % 2 == 0 {
                [(true, &ours), (false, &theirs)]
            } else {
                [(false, &theirs), (true, &ours)]
            };
            let direct1 = load(&direct_addr, &direct_path, 1, seconds).await?;
            let direct32 = load(&direct_addr, &direct_path, 32, seconds).await?;
            direct_rps.push(direct32.rps);
            for (is_ours, side) in sides {
                let pid = side.process.id();
                let c1 = load_as(&side.addr, &side.path, 1, seconds, token).await?;
                let cpu0 = cpu_seconds(pid)?;
                let c32 = load_as(&side.addr, &side.path, 32, seconds, token).await?;
                let cpu_us = (cpu_seconds(pid)? - cpu0) * 1e6 / c32.total.max(1) as f64;
                let rss = rss_kib(pid)? as f64 / 1024.0;
                let values = [
                    us(c1.p50.saturating_sub(direct1.p50)),
                    us(c1.p99.saturating_sub(direct1.p99)),
                    c32.rps,
                    cpu_us,
                    rss,
                ];
                println!(
                    "  round {} {:<8}: c=1 p50 {:.0} µs p99 {:.0} µs (direct {:.0}/{:.0}); c=32 {:.0} req/s (direct {:.0}), {cpu_us:.0} µs CPU/request; RSS {rss:.1} MiB (peak {:.1})",
                    round + 1,
                    if is_ours { "ours" } else { "ToolHive" },
                    us(c1.p50),
                    us(c1.p99),
                    us(direct1.p50),
                    us(direct1.p99),
                    c32.rps,
                    direct32.rps,
                    peak_rss_kib(pid)? as f64 / 1024.0
                );
                record(&mut rows, is_ours, values);
            }
        }
        print_table(
            &format!(
                "proxy data path, {what} (direct: {:.0} req/s at c=32)",
                e2e::bench::median(&direct_rps)
            ),
            rounds,
            &rows,
        );
        Ok(())
    }
}

/// Fails unless `side` refuses a session without a token (401) and a call of a tool
/// the Cedar policy does not permit (an HTTP or JSON-RPC error): a measurement of
/// middleware that is not running would mean nothing.
async fn middleware_in_effect(side: &Side, token: &str) -> anyhow::Result<()> {
    match Session::open(&side.addr, &side.path).await {
        Err(e) if format!("{e:#}").contains("401") => {}
        Err(e) => anyhow::bail!("a session without a token failed, but not with 401: {e:#}"),
        Ok(_) => anyhow::bail!("a session without a token was opened"),
    }
    let mut session = Session::open_as(&side.addr, &side.path, Some(token)).await?;
    let call = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"not-permitted","arguments":{}}}"#;
    match session.exchange(Bytes::from_static(call)).await {
        Err(_) => Ok(()),
        Ok((_, answer)) if String::from_utf8_lossy(&answer).contains("\"error\"") => Ok(()),
        Ok((_, answer)) => anyhow::bail!(
            "a tool the policy does not permit was called: {}",
            String::from_utf8_lossy(&answer)
        ),
    }
}

/// Waits until an MCP session can be opened through a proxy.
pub async fn wait_serving(
    addr: &str,
    path: &str,
    process: &Running,
    within: Duration,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match Session::open_as(addr, path, token).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).with_context(|| {
                    format!(
                        "not serving at {addr}{path} after {within:?}; its stderr:\n{}",
                        process.stderr_tail(30)
                    )
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
