//! The server over real TLS on loopback: limits, errors as JSON, a review end to end,
//! certificate swap, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::*;
use crate::webhook::catalog::MemoryCatalogs;
use crate::webhook::certs::{Bundle, Lifetimes, probe};

struct Running {
    addr: SocketAddr,
    bundle: Bundle,
    resolver: Arc<CertResolver>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> anyhow::Result<Running> {
    let names = vec!["127.0.0.1".to_owned()];
    let bundle = Bundle::issue(&names, Lifetimes::default(), SystemTime::now())?;
    let resolver = CertResolver::new(bundle.certified_key()?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(
        listener,
        tls_config(resolver.clone())?,
        Arc::new(MemoryCatalogs::default()),
        Arc::new(Metrics::new()?),
        Duration::from_secs(4),
        stopped,
        Arc::default(),
    ));
    Ok(Running {
        addr,
        bundle,
        resolver,
        stop,
        task,
    })
}

/// Sends raw HTTP/1.1 `head` + `body` over TLS; returns the status and the answer
/// (headers and body) as text.
async fn exchange(running: &Running, head: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(running.bundle.ca_bundle.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(running.addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    tls.write_all(head.as_bytes()).await?;
    // The server may answer (and close) before a refused body is fully sent.
    let _ = tls.write_all(body).await;
    let _ = tls.flush().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    Ok((status, answer))
}

fn post(length: &str) -> String {
    format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n{length}\r\n"
    )
}

#[tokio::test]
async fn oversized_review_is_a_400_with_a_json_reason_declared_or_streamed() -> anyhow::Result<()> {
    let running = start().await?;
    let big = MAX_REVIEW_BYTES + 1;
    let (status, answer) =
        exchange(&running, &post(&format!("content-length: {big}\r\n")), b"").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("\"message\":\"the AdmissionReview is 3145729 bytes"),
        "{answer}"
    );
    // Chunked, no length declared: cut off at the limit.
    let chunk = vec![b' '; 1 << 20];
    let mut body = Vec::new();
    for _ in 0..4 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (status, answer) =
        exchange(&running, &post("transfer-encoding: chunked\r\n"), &body).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("more than 3 MiB"), "{answer}");
    Ok(())
}

#[tokio::test]
async fn malformed_review_wrong_path_and_method_are_json_errors() -> anyhow::Result<()> {
    let running = start().await?;
    let (status, answer) = exchange(&running, &post("content-length: 5\r\n"), b"{nope").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("malformed AdmissionReview"), "{answer}");
    let (status, answer) = exchange(
        &running,
        "GET /validate HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"",
    )
    .await?;
    assert_eq!(status, 405, "{answer}");
    let (status, answer) = exchange(
        &running,
        "POST /mutate HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"",
    )
    .await?;
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    Ok(())
}

#[tokio::test]
async fn review_is_answered_with_its_server_timing() -> anyhow::Result<()> {
    let running = start().await?;
    let object = serde_json::json!({
        "apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPServer",
        "metadata": {"name": "everything", "namespace": "team"},
        "spec": {"image": "docker.io/mcp/everything:latest"}
    });
    let gvk = serde_json::json!({"group": "toolhive.stacklok.dev", "version": "v1beta1", "kind": "MCPServer"});
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u1", "kind": gvk, "resource": {"group": "toolhive.stacklok.dev", "version": "v1beta1", "resource": "mcpservers"},
            "name": "everything", "namespace": "team", "operation": "CREATE", "userInfo": {}, "object": object}
    })
    .to_string();
    let (status, answer) = exchange(
        &running,
        &post(&format!("content-length: {}\r\n", body.len())),
        body.as_bytes(),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("server-timing: admission;dur="), "{answer}");
    assert!(
        answer.contains("\"allowed\":true") && answer.contains("\"uid\":\"u1\""),
        "{answer}"
    );
    Ok(())
}

#[tokio::test]
async fn garbage_instead_of_tls_does_not_stop_the_server() -> anyhow::Result<()> {
    let running = start().await?;
    let mut raw = TcpStream::connect(running.addr).await?;
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
    drop(raw);
    let presented = probe(running.addr, &running.bundle.ca_bundle, "127.0.0.1").await?;
    assert_eq!(Some(presented), running.resolver.leaf());
    Ok(())
}

#[tokio::test]
async fn swapped_certificate_is_presented_to_new_connections() -> anyhow::Result<()> {
    let running = start().await?;
    // New names force a new certificate now, from the same CA.
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let next = running
        .bundle
        .renewed(&names, Lifetimes::default(), SystemTime::now())?
        .ok_or_else(|| anyhow::anyhow!("new names, new certificate"))?;
    let before = running.resolver.leaf();
    running.resolver.set(next.certified_key()?);
    let presented = probe(running.addr, &running.bundle.ca_bundle, "127.0.0.1").await?;
    assert_eq!(
        Some(presented),
        running.resolver.leaf(),
        "same CA, new leaf"
    );
    assert_ne!(running.resolver.leaf(), before);
    Ok(())
}

#[tokio::test]
async fn stopped_server_closes_its_port() -> anyhow::Result<()> {
    let running = start().await?;
    let _ = running.stop.send(true);
    running.task.await?;
    assert!(
        TcpStream::connect(running.addr).await.is_err(),
        "connection refused"
    );
    Ok(())
}
