//! MCP message parsing: what the middleware needs to know about a POSTed body
//! (method, id, the tool/prompt/resource addressed, the progress token), read
//! without re-serialising it, so the bytes forwarded are the bytes received.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One JSON-RPC message of a POST body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The request id as written (`1`, `"abc"`), `None` for notifications.
    pub id: Option<String>,
    /// What the message is.
    pub kind: Kind,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A request or notification.
    Call(Call),
    /// A response to a request the server sent (sampling, elicitation, roots).
    Response,
}

/// A request or notification, with what authorization and audit look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The JSON-RPC method.
    pub method: String,
    /// Tool name (`tools/call`), prompt name (`prompts/get`) or URI (`resources/read`).
    pub target: Option<String>,
    /// `params.arguments` of `tools/call` and `prompts/get`.
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
    /// `params._meta.progressToken`, as written.
    pub progress_token: Option<String>,
}

impl Call {
    /// The method and its target, as error messages and span names show it.
    pub fn describe(&self) -> String {
        match &self.target {
            Some(target) => format!("{} {target}", self.method),
            None => self.method.clone(),
        }
    }
}

impl Message {
    /// The call, unless this is a response.
    pub fn call(&self) -> Option<&Call> {
        match &self.kind {
            Kind::Call(call) => Some(call),
            Kind::Response => None,
        }
    }

    /// A request: a call with an id (the sender expects a response).
    pub fn is_request(&self) -> bool {
        self.id.is_some() && self.call().is_some()
    }

    /// The method, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        self.call().map(|c| c.method.as_str())
    }
}

/// A parsed POST body: one message or a batch (allowed by the 2025-03-26 revision).
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// Whether the body was a JSON array.
    pub batch: bool,
}

impl Body {
    /// Whether any message expects a response.
    pub fn has_requests(&self) -> bool {
        self.messages.iter().any(Message::is_request)
    }
}

/// Why a body is not JSON-RPC.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// Not JSON at all: JSON-RPC code -32700.
    #[error("parse error: {0}")]
    Json(String),
    /// JSON, but not a JSON-RPC 2.0 message: code -32600.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl ParseError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            Self::Json(_) => -32700,
            Self::Invalid(_) => -32600,
        }
    }
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
    arguments: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "_meta")]
    meta: Option<Meta>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(rename = "progressToken")]
    progress_token: Option<Box<RawValue>>,
}

/// Parses a POST body. The body itself is left untouched.
pub fn parse(bytes: &[u8]) -> Result<Body, ParseError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<&RawValue> =
            serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
        if items.is_empty() {
            return Err(ParseError::Invalid("empty batch".to_owned()));
        }
        let messages = items
            .iter()
            .map(|raw| parse_one(raw.get().as_bytes()))
            .collect::<Result<_, _>>()?;
        return Ok(Body {
            messages,
            batch: true,
        });
    }
    Ok(Body {
        messages: vec![parse_one(bytes)?],
        batch: false,
    })
}

/// Whether the JSON text is an object: serde reads a struct from an array too, field by
/// field in order, and `["2.0", 1, "tools/call"]` must not pass for a request.
fn is_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

fn parse_one(bytes: &[u8]) -> Result<Message, ParseError> {
    if !is_object(bytes) {
        // Not JSON at all is a parse error; JSON that is not an object is a wrong shape.
        serde_json::from_slice::<&RawValue>(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
        return Err(ParseError::Invalid(
            "a JSON-RPC message must be an object".to_owned(),
        ));
    }
    let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ParseError::Invalid(format!("not a JSON-RPC message: {e}"))
        } else {
            ParseError::Json(e.to_string())
        }
    })?;
    if wire.jsonrpc.as_deref() != Some("2.0") {
        return Err(ParseError::Invalid(
            "\"jsonrpc\" must be \"2.0\"".to_owned(),
        ));
    }
    let id = wire.id.map(|raw| raw.get().to_owned());
    if let Some(id) = &id
        && !(id.starts_with('"') || id.starts_with('-') || id.as_bytes()[0].is_ascii_digit())
    {
        return Err(ParseError::Invalid(format!(
            "\"id\" must be a string or a number, not {id}"
        )));
    }
    let Some(method) = wire.method else {
        if wire.result.is_some() || wire.error.is_some() {
            if id.is_none() {
                return Err(ParseError::Invalid("a response needs an \"id\"".to_owned()));
            }
            return Ok(Message {
                id,
                kind: Kind::Response,
            });
        }
        return Err(ParseError::Invalid(
            "a message needs a \"method\" (request, notification) or a \"result\"/\"error\" (response)"
                .to_owned(),
        ));
    };
    let params: Params = match wire.params {
        Some(raw) if raw.get().starts_with('{') => serde_json::from_str(raw.get())
            .map_err(|e| ParseError::Invalid(format!("\"params\" of {method}: {e}")))?,
        _ => Params::default(),
    };
    let target = match method.as_ref() {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => params.uri,
        _ => None,
    };
    Ok(Message {
        id,
        kind: Kind::Call(Call {
            method: method.into_owned(),
            target,
            arguments: params.arguments,
            progress_token: params
                .meta
                .and_then(|m| m.progress_token)
                .map(|t| t.get().to_owned()),
        }),
    })
}

/// The id of a JSON-RPC message from a server (the response id, or a server request's id),
/// and whether it is a response; read without a full parse.
pub fn peek_server_message(bytes: &[u8]) -> Option<ServerMessage> {
    if !is_object(bytes) {
        return None;
    }
    let wire: Wire<'_> = serde_json::from_slice(bytes).ok()?;
    let id = wire.id.map(|raw| raw.get().to_owned());
    let progress_token = match (&wire.method, wire.params) {
        (Some(m), Some(p)) if m == "notifications/progress" => {
            #[derive(Deserialize)]
            struct Progress {
                #[serde(rename = "progressToken")]
                progress_token: Option<Box<RawValue>>,
            }
            serde_json::from_str::<Progress>(p.get())
                .ok()
                .and_then(|p| p.progress_token)
                .map(|t| t.get().to_owned())
        }
        _ => None,
    };
    Some(ServerMessage {
        id,
        method: wire.method.map(Cow::into_owned),
        progress_token,
    })
}

/// What the proxy needs to know to route a message a server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMessage {
    /// The id (responses and server requests).
    pub id: Option<String>,
    /// The method (server requests and notifications); `None` for responses.
    pub method: Option<String>,
    /// `params.progressToken` of a progress notification.
    pub progress_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tool_call_target_arguments_and_progress_token() {
        let body = parse(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"m":"hi"},"_meta":{"progressToken":"t1"}}}"#,
        )
        .expect("parses");
        assert!(!body.batch);
        let message = &body.messages[0];
        assert_eq!(message.id.as_deref(), Some("7"));
        let call = message.call().expect("a call");
        assert_eq!(call.method, "tools/call");
        assert_eq!(call.target.as_deref(), Some("echo"));
        assert_eq!(call.progress_token.as_deref(), Some("\"t1\""));
        assert_eq!(call.arguments.as_ref().map(|a| a.len()), Some(1));
    }

    #[test]
    fn reads_batches_notifications_and_responses() {
        let body = parse(
            br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"s1","result":{}}]"#,
        )
        .expect("parses");
        assert!(body.batch);
        assert!(!body.has_requests());
        assert_eq!(body.messages[1].kind, Kind::Response);
    }

    #[test]
    fn malformed_json_is_a_parse_error_and_wrong_shape_an_invalid_request() {
        assert_eq!(parse(b"{not json").map_err(|e| e.code()), Err(-32700));
        assert_eq!(parse(b"[]").map_err(|e| e.code()), Err(-32600));
        assert_eq!(
            parse(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#).map_err(|e| e.code()),
            Err(-32600)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#).map_err(|e| e.code()),
            Err(-32600)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1}"#).map_err(|e| e.code()),
            Err(-32600)
        );
    }

    #[test]
    fn an_array_is_not_a_message_though_serde_would_read_it_field_by_field() {
        // With all six fields in order (jsonrpc, id, method, params, result, error),
        // each would otherwise read as {"jsonrpc":"2.0","id":1,"method":"tools/call"},
        // and the bridge's id rewrite panics on an array.
        assert_eq!(
            parse(br#"[["2.0",1,"tools/call",null,null,null]]"#).map_err(|e| e.code()),
            Err(-32600)
        );
        assert_eq!(
            parse(br#"[["2.0",1,"tools/call"]]"#).map_err(|e| e.code()),
            Err(-32600)
        );
        assert_eq!(parse(br#"[[1,"#).map_err(|e| e.code()), Err(-32700));
        assert_eq!(peek_server_message(br#"["2.0",1,null,null,{},null]"#), None);
        assert!(peek_server_message(br#" {"jsonrpc":"2.0","id":1,"result":{}}"#).is_some());
    }

    #[test]
    fn peeks_server_progress_notifications() {
        let message = peek_server_message(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1}}"#,
        )
        .expect("parses");
        assert_eq!(message.progress_token.as_deref(), Some("5"));
        assert_eq!(message.id, None);
    }
}
