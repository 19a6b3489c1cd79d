//! Request body size limit: a body over the limit is refused with 413 before it is
//! read into memory (declared `Content-Length`) or as soon as it passes the limit
//! (chunked bodies), through `http_body_util::Limited`.

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Limited};

/// Default limit: 4 MiB, well above any MCP request a client sends.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Over the limit: 413.
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// The client went away or sent garbage: 400.
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// Reads a request body of at most `limit` bytes.
pub async fn read<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}
