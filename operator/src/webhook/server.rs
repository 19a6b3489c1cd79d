//! The webhook's HTTPS server: TLS (rustls, the certificate from a swappable resolver)
//! and HTTP/1.1 (hyper) on one port, `POST /validate` only.
//!
//! Bounded everywhere a client could hold it: the TLS handshake, the request headers,
//! the body (3 MiB, refused with a JSON reason), the time to a decision. Reviews run on
//! blocking threads (the catalog blocks on lookups; Cedar validation is CPU work), and
//! a panic there becomes a 500, never a dead server. On shutdown the listener closes
//! and open connections finish their request and close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

use super::catalog::Catalogs;
use super::certs::CertResolver;
use super::config::PATH;
use super::handler::{Answer, MAX_REVIEW_BYTES, ReviewedKind, review};
use crate::metrics::Metrics;

/// Longest a client may take to finish the TLS handshake or send its headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reviews run at once at most; more wait (until their deadline). Bounds the blocking
/// threads a flood of requests can occupy.
const MAX_CONCURRENT_REVIEWS: usize = 64;

/// What every request needs.
struct Shared<C> {
    reviews: tokio::sync::Semaphore,
    catalogs: Arc<C>,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
    draining: Arc<AtomicBool>,
}

/// The TLS settings: TLS 1.2 and 1.3 with the ring provider, the certificate from
/// `resolver`, HTTP/1.1 by ALPN.
pub fn tls_config(
    resolver: Arc<CertResolver>,
) -> Result<ServerConfig, tokio_rustls::rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves reviews on `listener` until `stop` turns true, then lets each connection
/// finish the review it is answering (at most the request timeout). While `draining`
/// is set every response carries `Connection: close`, so the API server opens its next
/// connection to another replica.
pub async fn serve<C: Catalogs>(
    listener: TcpListener,
    tls: ServerConfig,
    catalogs: Arc<C>,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
    stop: watch::Receiver<bool>,
    draining: Arc<AtomicBool>,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let shared = Arc::new(Shared {
        reviews: tokio::sync::Semaphore::new(MAX_CONCURRENT_REVIEWS),
        catalogs,
        metrics,
        request_timeout,
        draining,
    });
    let mut connections = tokio::task::JoinSet::new();
    let mut watching = stop.clone();
    let stopping = async move {
        let _ = watching.wait_for(|s| *s).await;
    };
    tokio::pin!(stopping);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "webhook: accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(
            stream,
            peer,
            acceptor.clone(),
            shared.clone(),
            stop.clone(),
        ));
    }
    let finish = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(request_timeout + Duration::from_secs(1), finish)
        .await
        .is_err()
    {
        tracing::warn!("webhook: connections still open at shutdown; closing them");
    }
    tracing::info!("webhook server stopped");
}

async fn connection<C: Catalogs>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared<C>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "webhook: TLS handshake timed out");
            return;
        }
    };
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "webhook: connection ended");
            }
            return;
        }
        () = stopping => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

async fn handle<C: Catalogs>(
    request: Request<Incoming>,
    shared: &Shared<C>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let answer = answer(request, shared, start).await;
    let elapsed = start.elapsed();
    shared.metrics.admission(
        answer.kind.label(),
        answer.verdict.label(),
        elapsed.as_secs_f64(),
    );
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, "application/json");
    if shared.draining.load(Ordering::Relaxed) {
        response = response.header(CONNECTION, "close");
    }
    response
        // Server-side latency, for the benchmark and for anyone debugging with curl.
        .header(
            "server-timing",
            format!("admission;dur={:.3}", elapsed.as_secs_f64() * 1000.0),
        )
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn answer<C: Catalogs>(
    request: Request<Incoming>,
    shared: &Shared<C>,
    start: Instant,
) -> Answer {
    if request.uri().path() != PATH {
        let message = format!("no such path {}; POST {PATH}", request.uri().path());
        return Answer::error(404, ReviewedKind::Other, &message);
    }
    if request.method() != Method::POST {
        let message = format!("method {} is not allowed; POST {PATH}", request.method());
        return Answer::error(405, ReviewedKind::Other, &message);
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REVIEW_BYTES as u64) {
        return too_large(declared);
    }
    let deadline = start + shared.request_timeout;
    let body = Limited::new(request.into_body(), MAX_REVIEW_BYTES);
    let bytes = match tokio::time::timeout_at(deadline.into(), body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(None),
        Ok(Err(e)) => {
            return Answer::error(400, ReviewedKind::Other, &format!("reading the body: {e}"));
        }
        Err(_) => {
            return Answer::error(400, ReviewedKind::Other, "the body did not arrive in time");
        }
    };
    let Ok(Ok(_permit)) = tokio::time::timeout_at(deadline.into(), shared.reviews.acquire()).await
    else {
        return Answer::error(500, ReviewedKind::Other, "too many reviews at once; retry");
    };
    let catalogs = shared.catalogs.clone();
    let review = tokio::task::spawn_blocking(move || review(&bytes, &*catalogs, deadline));
    match tokio::time::timeout_at(deadline.into(), review).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "webhook: the review panicked");
            Answer::error(
                500,
                ReviewedKind::Other,
                "internal error while reviewing; see the operator's log",
            )
        }
        Err(_) => Answer::error(
            500,
            ReviewedKind::Other,
            &format!("no decision within {:?}", shared.request_timeout),
        ),
    }
}

fn too_large(declared: Option<u64>) -> Answer {
    let size = declared.map_or("more than 3 MiB".to_owned(), |n| format!("{n} bytes"));
    let message =
        format!("the AdmissionReview is {size}; at most {MAX_REVIEW_BYTES} bytes (3 MiB)");
    Answer::error(400, ReviewedKind::Other, &message)
}

#[cfg(test)]
mod tests;
