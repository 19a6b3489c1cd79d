//! What the benchmarks share: an MCP load generator (one session per worker, each on its
//! own HTTP/1.1 connection over hyper's connection API rather than a pooled client, as an
//! MCP client is) and a process's CPU time and memory from `/proc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

pub mod audit;
pub mod scale;

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench-k8s","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
pub const CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;

/// One MCP session on its own connection.
pub struct Session {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    path: String,
    id: Option<String>,
    /// `Authorization: Bearer` value sent with every request, if any.
    bearer: Option<String>,
}

impl Session {
    /// Connects to `addr` (`ip:port`) and initialises a session at `path`.
    pub async fn open(addr: &str, path: &str) -> anyhow::Result<Self> {
        Self::open_as(addr, path, None).await
    }

    /// [`Session::open`], sending `bearer` (a token) with every request when given.
    pub async fn open_as(addr: &str, path: &str, bearer: Option<&str>) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(connection);
        let mut session = Self {
            sender,
            host: addr.to_owned(),
            path: path.to_owned(),
            id: None,
            bearer: bearer.map(|t| format!("Bearer {t}")),
        };
        let id = session.post(INITIALIZE).await?;
        session.id = id;
        session.post(INITIALIZED).await?;
        Ok(session)
    }

    /// POSTs `body`; the response's session id, if any. Fails on a non-2xx answer.
    pub async fn post(&mut self, body: &'static str) -> anyhow::Result<Option<String>> {
        let (id, _) = self.exchange(Bytes::from_static(body.as_bytes())).await?;
        Ok(id)
    }

    /// POSTs `body`; the response's session id, if any, and its body (JSON or an SSE
    /// stream, as the server chose). Fails on a non-2xx answer.
    pub async fn exchange(&mut self, body: Bytes) -> anyhow::Result<(Option<String>, Bytes)> {
        let mut request = hyper::Request::post(self.path.as_str())
            .header("host", self.host.as_str())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(id) = &self.id {
            request = request.header("mcp-session-id", id.as_str());
        }
        if let Some(bearer) = &self.bearer {
            request = request.header("authorization", bearer.as_str());
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&answer));
        }
        Ok((id, answer))
    }
}

/// Latency quantiles and throughput of one load phase.
pub struct Run {
    pub p50: Duration,
    pub p99: Duration,
    pub rps: f64,
    /// Requests completed, warm-up included (for CPU per request).
    pub total: u64,
}

/// `concurrency` sessions calling `echo` for `seconds` (after half a second of warm-up).
pub async fn load(addr: &str, path: &str, concurrency: usize, seconds: u64) -> anyhow::Result<Run> {
    load_as(addr, path, concurrency, seconds, None).await
}

/// [`load`] with `bearer` (a token) sent with every request when given.
pub async fn load_as(
    addr: &str,
    path: &str,
    concurrency: usize,
    seconds: u64,
    bearer: Option<&str>,
) -> anyhow::Result<Run> {
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    let total = Arc::new(AtomicU64::new(0));
    for _ in 0..concurrency {
        let mut session = Session::open_as(addr, path, bearer).await?;
        let total = total.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let started = Instant::now();
                session.post(CALL).await?;
                total.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if now >= end {
                    return Ok::<_, anyhow::Error>(samples);
                }
                if started >= warm {
                    samples.push(now - started);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort_unstable();
    let Some(last) = all.len().checked_sub(1) else {
        bail!("no request completed against {addr}{path}");
    };
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(last)];
    Ok(Run {
        p50: at(0.50),
        p99: at(0.99),
        rps: all.len() as f64 / seconds as f64,
        total: total.load(Ordering::Relaxed),
    })
}

/// Microseconds, for printing.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of some measurements (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Resident memory of a process now, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Peak resident memory of a process so far, KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat` (`CLK_TCK` is
/// 100 on Linux).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let rest = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short stat line")?.parse()?)
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).expect("cpu") >= 0.0);
        // The peak is read after the RSS: other tests in this process allocate meanwhile,
        // and only a later peak bounds an earlier RSS.
        let rss = rss_kib(pid).expect("rss");
        assert!(rss > 0);
        assert!(peak_rss_kib(pid).expect("peak") >= rss);
    }
}
