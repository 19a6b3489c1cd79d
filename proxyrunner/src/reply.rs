//! Response bodies and the replies the proxy writes itself (errors, JSON-RPC errors).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Errors of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the proxy sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response with a body and content type.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON reply.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    with_body(status, "application/json", value.to_string())
}

/// A plain error the proxy itself decided (not JSON-RPC): `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// A JSON-RPC error object for one request id (`null` when unknown).
pub fn jsonrpc_error_value(id: Option<&str>, code: i64, message: &str) -> serde_json::Value {
    let id = id
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    })
}

/// A JSON-RPC error reply.
pub fn jsonrpc_error(
    status: StatusCode,
    id: Option<&str>,
    code: i64,
    message: &str,
) -> Response<Body> {
    json(status, &jsonrpc_error_value(id, code, message))
}

/// JSON-RPC error codes the proxy uses.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method or tool.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The proxy or the server failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Refused by authorization (ToolHive's code for an authorization denial).
    pub const FORBIDDEN: i64 = -32001;
    /// The server is not reachable (child restarting, upstream down).
    pub const UNAVAILABLE: i64 = -32000;
    /// The session is unknown or gone (with HTTP 404; the code the TypeScript SDK's
    /// servers use for it).
    pub const SESSION_NOT_FOUND: i64 = -32001;
}
