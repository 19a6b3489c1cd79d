//! JSON-RPC 2.0 as MCP uses it: classifying what a client sends, and building what
//! the server sends back.

// `Invalid` carries the reply to send (id and error object), built once per bad
// message; its size depends on serde_json's features across the workspace.
#![allow(clippy::result_large_err)]

use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP's code for `resources/read` of a URI the server does not have.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    fn to_value(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        Value::Object(error)
    }
}

/// One message from the peer, classified.
#[derive(Debug, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// The peer's answer to a request this server sent (sampling, elicitation).
    Response {
        id: Value,
        outcome: Result<Value, RpcError>,
    },
}

/// A message that is not valid JSON-RPC; `id` is set when one could be read, so the
/// error response can name the request.
#[derive(Debug, PartialEq)]
pub struct Invalid {
    pub id: Option<Value>,
    pub error: RpcError,
}

impl Invalid {
    pub fn into_response(self) -> Value {
        response(&self.id.unwrap_or(Value::Null), Err(self.error))
    }
}

/// What one transport frame (a line, a POST body) carried.
#[derive(Debug, PartialEq)]
pub enum Payload {
    Single(Value),
    /// A JSON-RPC batch (allowed by MCP 2025-03-26, removed in 2025-06-18).
    Batch(Vec<Value>),
}

impl Payload {
    pub fn parse(bytes: &[u8]) -> Result<Self, RpcError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) if items.is_empty() => {
                Err(RpcError::invalid_request("empty batch"))
            }
            Ok(Value::Array(items)) => Ok(Self::Batch(items)),
            Ok(value) => Ok(Self::Single(value)),
            Err(e) => Err(RpcError::new(PARSE_ERROR, format!("parse error: {e}"))),
        }
    }

    pub fn into_messages(self) -> Vec<Result<Message, Invalid>> {
        match self {
            Self::Single(value) => vec![Message::from_value(value)],
            Self::Batch(values) => values.into_iter().map(Message::from_value).collect(),
        }
    }
}

#[derive(Deserialize)]
struct Wire {
    jsonrpc: Option<String>,
    id: Option<Value>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl Message {
    pub fn from_value(value: Value) -> Result<Self, Invalid> {
        let invalid = |id: Option<Value>, why: &str| Invalid {
            id,
            error: RpcError::invalid_request(why),
        };
        // serde reads `"id": null` as no id, which would turn it into a notification.
        if value.get("id").is_some_and(Value::is_null) {
            return Err(invalid(None, "id must be a string or a number"));
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| invalid(None, &format!("not a JSON-RPC message: {e}")))?;
        let id = wire.id;
        if wire.jsonrpc.as_deref() != Some("2.0") {
            return Err(invalid(id, "jsonrpc must be \"2.0\""));
        }
        if let Some(id) = &id
            && !(id.is_string() || id.is_number())
        {
            return Err(invalid(None, "id must be a string or a number"));
        }
        if let Some(params) = &wire.params
            && !(params.is_object() || params.is_array())
        {
            return Err(invalid(id, "params must be an object or an array"));
        }
        match (wire.method, id) {
            (Some(method), Some(id)) => Ok(Self::Request {
                id,
                method,
                params: wire.params,
            }),
            (Some(method), None) => Ok(Self::Notification {
                method,
                params: wire.params,
            }),
            (None, Some(id)) => match (wire.result, wire.error) {
                (Some(result), None) => Ok(Self::Response {
                    id,
                    outcome: Ok(result),
                }),
                (None, Some(e)) => Ok(Self::Response {
                    id,
                    outcome: Err(RpcError {
                        code: e.code,
                        message: e.message,
                        data: e.data,
                    }),
                }),
                _ => Err(invalid(
                    Some(id),
                    "a response has exactly one of result and error",
                )),
            },
            (None, None) => Err(invalid(None, "neither a request nor a response")),
        }
    }
}

/// The response to request `id`.
pub fn response(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_value()}),
    }
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(text: &str) -> Result<Message, Invalid> {
        Message::from_value(serde_json::from_str(text).expect("test input is JSON"))
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            Ok(Message::Request {
                id: json!("a"),
                method: "ping".into(),
                params: None
            })
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification {
                method: "notifications/initialized".into(),
                params: None
            })
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#),
            Ok(Message::Response {
                id: json!(3),
                outcome: Err(RpcError::new(-1, "no"))
            })
        );
    }

    #[test]
    fn rejects_messages_that_are_not_json_rpc_2() {
        let wrong_version = classify(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#);
        assert_eq!(wrong_version.expect_err("invalid").id, Some(json!(1)));
        let null_id = classify(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
        assert_eq!(
            null_id.expect_err("a null id is neither a request nor a notification"),
            Invalid {
                id: None,
                error: RpcError::invalid_request("id must be a string or a number")
            }
        );
    }

    #[test]
    fn reads_batches_and_reports_parse_errors() {
        let batch =
            Payload::parse(br#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"b"}]"#);
        assert!(matches!(batch, Ok(Payload::Batch(items)) if items.len() == 2));
        let garbage = Payload::parse(b"{not json");
        assert_eq!(garbage.expect_err("garbage").code, PARSE_ERROR);
        assert_eq!(
            Payload::parse(b"[]").expect_err("empty").code,
            INVALID_REQUEST
        );
    }
}
