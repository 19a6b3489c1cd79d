//! URL sources: an HTTP(S) GET with a timeout, reading at most
//! [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES) so a wrong URL (a video, an endless
//! stream) cannot exhaust the operator's memory.

use std::time::Duration;

use super::{Fetched, MAX_DOCUMENT_BYTES, too_large};
use crate::controllers::mcpregistry::failure::SyncError;

/// The HTTP client of URL sources: rustls with the ring provider, the platform's trust
/// roots, a connect timeout. Built once per controller; cloning shares its pool.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("thv-operator/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Makes ring the process's rustls provider (reqwest and gix's https transport find it
/// there). The workspace builds rustls with ring only; installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// GETs `url`.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Fetched, SyncError> {
    let unreachable =
        |e: reqwest::Error| SyncError::SourceUnreachable(format!("GET {url}: {}", chain(&e)));
    let response = tokio::time::timeout(timeout, client.get(url).send())
        .await
        .map_err(|_| {
            SyncError::SourceUnreachable(format!("GET {url}: no response within {timeout:?}"))
        })?
        .map_err(unreachable)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(SyncError::SourceNotFound {
            message: format!("spec.source.url.url: GET {url}: HTTP {status}"),
            waiting: false,
        });
    }
    if !status.is_success() {
        return Err(SyncError::SourceUnreachable(format!(
            "GET {url}: HTTP {status}"
        )));
    }
    if let Some(length) = response.content_length()
        && length > MAX_DOCUMENT_BYTES as u64
    {
        return Err(too_large(
            format!("the document at {url}"),
            usize::try_from(length).unwrap_or(usize::MAX),
        ));
    }
    let read = async {
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large(format!("the document at {url}"), body.len()));
            }
        }
        Ok(body)
    };
    let bytes = tokio::time::timeout(timeout, read).await.map_err(|_| {
        SyncError::SourceUnreachable(format!("GET {url}: body not received within {timeout:?}"))
    })??;
    Ok(Fetched {
        bytes,
        origin: format!("URL {url}"),
    })
}

/// An error with its causes ("error sending request: connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves one canned HTTP response per connection on 127.0.0.1.
    async fn serve(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{address}/registry.json")
    }

    fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn downloads_the_document() {
        let url = serve(response("200 OK", b"{\"servers\":{}}")).await;
        let fetched = fetch(&client().expect("client"), &url, Duration::from_secs(5)).await;
        assert_eq!(fetched.map(|f| f.bytes), Ok(b"{\"servers\":{}}".to_vec()));
    }

    #[tokio::test]
    async fn not_found_is_source_not_found() {
        let url = serve(response("404 Not Found", b"nope")).await;
        let error = fetch(&client().expect("client"), &url, Duration::from_secs(5)).await;
        assert!(
            matches!(
                &error,
                Err(SyncError::SourceNotFound { waiting: false, .. })
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn server_errors_are_unreachable() {
        let url = serve(response("503 Service Unavailable", b"")).await;
        let error = fetch(&client().expect("client"), &url, Duration::from_secs(5)).await;
        assert_eq!(
            error.map_err(|e| e.reason().as_str()),
            Err("SourceUnreachable")
        );
    }

    #[tokio::test]
    async fn refuses_documents_over_the_limit() {
        let header = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_DOCUMENT_BYTES + 1
        );
        let url = serve(header.into_bytes()).await;
        let error = fetch(&client().expect("client"), &url, Duration::from_secs(5)).await;
        assert_eq!(
            error.map_err(|e| e.reason().as_str()),
            Err("SourceTooLarge")
        );
    }

    #[tokio::test]
    async fn refuses_streams_over_the_limit_without_a_length() {
        let mut body = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b' ', MAX_DOCUMENT_BYTES + 10));
        let url = serve(body).await;
        let error = fetch(&client().expect("client"), &url, Duration::from_secs(20)).await;
        assert_eq!(
            error.map_err(|e| e.reason().as_str()),
            Err("SourceTooLarge")
        );
    }

    #[tokio::test]
    async fn closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let url = format!("http://{address}/registry.json");
        let error = fetch(&client().expect("client"), &url, Duration::from_secs(5)).await;
        assert_eq!(
            error.map_err(|e| e.reason().as_str()),
            Err("SourceUnreachable")
        );
    }
}
