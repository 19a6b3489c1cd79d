//! `make bench-webhook`: the admission webhook's latency under a steady load. Prints
//! numbers; not a test.
//!
//! The webhook's own HTTPS server runs in this process on 127.0.0.1 with a fresh CA and
//! an in-memory catalog holding every file of `examples/` (so all references of the
//! full MCPServer resolve: the work per review is what a real cluster costs, minus the
//! API lookups). Clients send AdmissionReviews for `examples/mcpserver-full.yaml` over
//! TLS with keep-alive, open loop at a fixed rate: request i is due at i/rate seconds,
//! and latency counts from when it was sent. Server-side latency is what the server
//! measures from request to answer (its `server-timing` header, the same interval as
//! its `thv_operator_admission_duration_seconds` histogram); client-side latency adds
//! TLS, loopback and the client.
//!
//! Usage: bench_webhook [RATE per second, default 500] [SECONDS, default 30] [CONNECTIONS, default 4]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use operator::metrics::Metrics;
use operator::webhook::catalog::MemoryCatalogs;
use operator::webhook::certs::{Bundle, CertResolver, Lifetimes};
use operator::webhook::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const NAMESPACE: &str = "bench";

/// One answered request.
struct Sample {
    client: Duration,
    server: Duration,
    allowed: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = |i: usize, default: u64| -> anyhow::Result<u64> {
        std::env::args()
            .nth(i)
            .map(|a| a.parse().context("arguments are numbers"))
            .transpose()
            .map(|a| a.unwrap_or(default))
    };
    let (rate, seconds, connections) = (arg(1, 500)?, arg(2, 30)?, arg(3, 4)?.max(1));

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut catalogs = MemoryCatalogs::default();
    for entry in std::fs::read_dir(root.join("examples"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)?;
            for document in api::manifest::split_documents(&text) {
                let value: serde_json::Value = serde_yaml_ng::from_str(document)?;
                if value["kind"] == "ConfigMap" {
                    let name = value["metadata"]["name"].as_str().unwrap_or_default();
                    let data = serde_json::from_value(value["data"].clone()).unwrap_or_default();
                    catalogs.namespace(NAMESPACE).add_config_map(name, data);
                } else {
                    catalogs
                        .namespace(NAMESPACE)
                        .add(api::Manifest::from_yaml(document)?);
                }
            }
        }
    }
    let server_yaml = std::fs::read_to_string(root.join("examples/mcpserver-full.yaml"))?;
    let body = Arc::new(review(&server_yaml)?);

    let names = vec!["127.0.0.1".to_owned()];
    let bundle = Bundle::issue(&names, Lifetimes::default(), SystemTime::now())?;
    let resolver = CertResolver::new(bundle.certified_key()?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(server::serve(
        listener,
        server::tls_config(resolver)?,
        Arc::new(catalogs),
        metrics.clone(),
        Duration::from_secs(4),
        stopped,
        Arc::default(),
    ));

    let tls = Arc::new(client_config(&bundle.ca_bundle)?);
    // Warm up: connections, the blocking pool, the Cedar cache.
    let mut warm = connect(addr, tls.clone()).await?;
    for _ in 0..50 {
        send(&mut warm, &body).await?;
    }

    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let mut clients = Vec::new();
    for c in 0..connections {
        let (tls, body) = (tls.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut stream = connect(addr, tls).await?;
            let mut samples = Vec::new();
            let mut i = c;
            while i < total {
                tokio::time::sleep_until((start + interval * i as u32).into()).await;
                let sent = Instant::now();
                let (server, allowed) = send(&mut stream, &body).await?;
                samples.push(Sample {
                    client: sent.elapsed(),
                    server,
                    allowed,
                });
                i += connections;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for client in clients {
        samples.extend(client.await??);
    }
    let elapsed = start.elapsed();
    let _ = stop.send(true);
    let _ = serving.await;

    let denied = samples.iter().filter(|s| !s.allowed).count();
    let mut server: Vec<Duration> = samples.iter().map(|s| s.server).collect();
    let mut client: Vec<Duration> = samples.iter().map(|s| s.client).collect();
    println!(
        "bench-webhook: {} AdmissionReviews of examples/mcpserver-full.yaml (all references resolved) over loopback TLS, {connections} keep-alive connections, target {rate}/s for {seconds} s",
        samples.len()
    );
    println!(
        "achieved rate: {:.1} requests/s ({} not allowed)",
        samples.len() as f64 / elapsed.as_secs_f64(),
        denied
    );
    println!(
        "server-side latency (request to answer): {}",
        quantiles(&mut server)
    );
    println!(
        "client-side latency (send to answer):    {}",
        quantiles(&mut client)
    );
    let p99 = percentile(&server, 0.99);
    println!(
        "target p99 <= 2 ms server-side: {}",
        if p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("--- the server's histogram ---");
    for line in metrics.render().lines() {
        if line.starts_with("thv_operator_admission") {
            println!("{line}");
        }
    }
    Ok(())
}

/// An AdmissionReview (CREATE) for the object in `yaml`.
fn review(yaml: &str) -> anyhow::Result<Vec<u8>> {
    let object: serde_json::Value = serde_yaml_ng::from_str(yaml)?;
    let gvk = serde_json::json!({"group": "toolhive.stacklok.dev", "version": "v1beta1", "kind": "MCPServer"});
    Ok(serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench", "kind": gvk, "requestKind": gvk,
            "resource": {"group": "toolhive.stacklok.dev", "version": "v1beta1", "resource": "mcpservers"},
            "name": object["metadata"]["name"], "namespace": NAMESPACE, "operation": "CREATE",
            "userInfo": {"username": "bench"}, "object": object, "dryRun": false,
        }
    }))?)
}

fn client_config(ca_bundle: &str) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn connect(addr: SocketAddr, tls: Arc<ClientConfig>) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("127.0.0.1")?;
    Ok(tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?)
}

/// Sends one review on a keep-alive connection; the server's timing and the verdict.
async fn send(stream: &mut TlsStream<TcpStream>, body: &[u8]) -> anyhow::Result<(Duration, bool)> {
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body].concat()).await?;
    stream.flush().await?;
    let mut buffer = Vec::with_capacity(8192);
    let end = loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        bail!("answer: {}", head.lines().next().unwrap_or_default());
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .map(str::to_owned)
    };
    let length: usize = header("content-length:")
        .context("content-length")?
        .parse()?;
    let server_ms: f64 = header("server-timing:")
        .and_then(|v| v.split("dur=").nth(1).map(str::to_owned))
        .context("server-timing")?
        .parse()?;
    while buffer.len() < end + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection mid-answer");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let answer: serde_json::Value = serde_json::from_slice(&buffer[end..end + length])?;
    let allowed = answer["response"]["allowed"] == true;
    Ok((Duration::from_secs_f64(server_ms / 1000.0), allowed))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn quantiles(values: &mut [Duration]) -> String {
    values.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(percentile(values, 0.50)),
        ms(percentile(values, 0.90)),
        ms(percentile(values, 0.99)),
        ms(values.last().copied().unwrap_or_default())
    )
}
