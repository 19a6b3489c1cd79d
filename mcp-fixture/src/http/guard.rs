//! Checks every streamable HTTP request passes before it reaches a session: DNS
//! rebinding protection (Host and Origin), content negotiation, and the
//! `MCP-Protocol-Version` header.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::jsonrpc::{self, RpcError};
use crate::server::SUPPORTED_VERSIONS;

/// Which Host and Origin values a request may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostPolicy {
    /// Only localhost names: a server on loopback must refuse requests a browser
    /// was tricked into sending (DNS rebinding).
    Loopback,
    /// Any: for a server reached through other names (a Service, a proxy).
    Any,
}

/// A request refused before it reached the server: an HTTP error status with a
/// JSON-RPC error body, as MCP SDKs send them.
#[derive(Debug)]
pub struct Rejection {
    status: StatusCode,
    error: RpcError,
}

impl Rejection {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self::rpc(status, RpcError::new(-32000, message))
    }

    pub fn rpc(status: StatusCode, error: RpcError) -> Self {
        Self { status, error }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = jsonrpc::response(&Value::Null, Err(self.error));
        let content_type = [(header::CONTENT_TYPE, "application/json")];
        (self.status, content_type, body.to_string()).into_response()
    }
}

/// `host[:port]` → whether host is a loopback name.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host = host.to_ascii_lowercase();
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1")
}

pub fn check_host_and_origin(headers: &HeaderMap, policy: HostPolicy) -> Result<(), Rejection> {
    if policy == HostPolicy::Any {
        return Ok(());
    }
    let forbidden = |what: &str| {
        Rejection::new(
            StatusCode::FORBIDDEN,
            format!("Forbidden: {what} is not a localhost name"),
        )
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(is_loopback_authority) {
        return Err(forbidden("Host"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
        if !authority.is_some_and(is_loopback_authority) {
            return Err(forbidden("Origin"));
        }
    }
    Ok(())
}

/// Whether the Accept header admits `mime` (wildcards included).
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let kind = mime.split('/').next().unwrap_or_default();
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|range| range.split(';').next().unwrap_or_default().trim())
        .any(|range| range == mime || range == "*/*" || range.strip_suffix("/*") == Some(kind))
}

pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(';').next().unwrap_or_default().trim() == "application/json"
        })
}

/// Refuses a protocol version this server does not speak; a missing header means
/// 2025-03-26, as the specification says.
pub fn check_protocol_version(headers: &HeaderMap) -> Result<(), Rejection> {
    match headers.get("mcp-protocol-version").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(version)) if SUPPORTED_VERSIONS.contains(&version) => Ok(()),
        Some(_) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Bad Request: unsupported MCP-Protocol-Version (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn loopback_policy_refuses_foreign_host_or_origin() {
        let ok = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://localhost:8080"),
        ]);
        assert!(check_host_and_origin(&ok, HostPolicy::Loopback).is_ok());
        let ipv6 = headers(&[(header::HOST, "[::1]:8080")]);
        assert!(check_host_and_origin(&ipv6, HostPolicy::Loopback).is_ok());
        let evil_host = headers(&[(header::HOST, "evil.example.com")]);
        assert!(check_host_and_origin(&evil_host, HostPolicy::Loopback).is_err());
        let evil_origin = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "http://evil.example.com"),
        ]);
        assert!(check_host_and_origin(&evil_origin, HostPolicy::Loopback).is_err());
        assert!(check_host_and_origin(&evil_origin, HostPolicy::Any).is_ok());
    }

    #[test]
    fn accept_matches_exact_types_and_wildcards() {
        let both = headers(&[(header::ACCEPT, "application/json, text/event-stream;q=0.9")]);
        assert!(accepts(&both, "application/json") && accepts(&both, "text/event-stream"));
        let json_only = headers(&[(header::ACCEPT, "application/json")]);
        assert!(!accepts(&json_only, "text/event-stream"));
        let any = headers(&[(header::ACCEPT, "*/*")]);
        assert!(accepts(&any, "text/event-stream"));
    }
}
