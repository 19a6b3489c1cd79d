//! `echo`: a minimal streamable HTTP upstream for benchmarks. Every JSON-RPC POST on
//! `/mcp` gets a JSON answer at once: `initialize` a valid result and a session id,
//! `tools/call` its arguments back as text, any other request `{}`, notifications
//! and responses 202. No session is checked and nothing streams: the point is to
//! cost as little as possible next to the proxy being measured. hyper directly;
//! ids and arguments pass through as raw JSON text.

use std::borrow::Cow;
use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;

use crate::server::{LATEST_VERSION, SUPPORTED_VERSIONS};

const TOOLS: &str = r#"{"tools":[{"name":"echo","description":"Returns its arguments as text","inputSchema":{"type":"object"}}]}"#;
const PARSE_ERROR: &str =
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

pub async fn serve(host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors under load: wait for connections to close.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let connection =
                http1::Builder::new().serve_connection(TokioIo::new(tcp), service_fn(answer));
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/mcp" {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    }
    match *request.method() {
        Method::POST => {}
        Method::DELETE => return Ok(reply(StatusCode::OK, Bytes::new())),
        _ => return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new())),
    }
    let Ok(body) = request.into_body().collect().await.map(|b| b.to_bytes()) else {
        return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
    };
    Ok(respond(&body))
}

fn respond(body: &[u8]) -> Response<Full<Bytes>> {
    let json = HeaderValue::from_static("application/json");
    match answer_message(body) {
        Answer::ParseError => {
            let mut error = reply(StatusCode::BAD_REQUEST, PARSE_ERROR);
            error.headers_mut().insert(CONTENT_TYPE, json);
            error
        }
        Answer::None => reply(StatusCode::ACCEPTED, Bytes::new()),
        Answer::Response { body, initialized } => {
            let mut response = reply(StatusCode::OK, body);
            response.headers_mut().insert(CONTENT_TYPE, json);
            if initialized
                && let Ok(session) =
                    HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
            {
                response.headers_mut().insert("mcp-session-id", session);
            }
            response
        }
    }
}

/// What the echo server answers to one JSON-RPC message.
enum Answer {
    /// Not JSON-RPC.
    ParseError,
    /// A notification or a response: nothing to answer.
    None,
    /// The response; `initialized` when it answers `initialize`.
    Response { body: Vec<u8>, initialized: bool },
}

fn answer_message(body: &[u8]) -> Answer {
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return Answer::ParseError;
    };
    let (Some(id), Some(method)) = (envelope.id, envelope.method) else {
        return Answer::None;
    };
    let mut out = Vec::with_capacity(96 + body.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(br#","result":"#);
    let mut initialized = false;
    match &*method {
        "initialize" => {
            let asked = envelope
                .params
                .as_ref()
                .and_then(|p| p.protocol_version.as_deref());
            let version = SUPPORTED_VERSIONS
                .into_iter()
                .find(|v| Some(*v) == asked)
                .unwrap_or(LATEST_VERSION);
            out.extend_from_slice(br#"{"protocolVersion":""#);
            out.extend_from_slice(version.as_bytes());
            out.extend_from_slice(br#"","capabilities":{"tools":{}},"serverInfo":{"name":"mcp-fixture-echo","version":""#);
            out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
            out.extend_from_slice(br#""}}"#);
            initialized = true;
        }
        "tools/list" => out.extend_from_slice(TOOLS.as_bytes()),
        "tools/call" => {
            let arguments = envelope
                .params
                .as_ref()
                .and_then(|p| p.arguments)
                .map_or("{}", RawValue::get);
            out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
            // A str always serializes; the arguments become one JSON string.
            let _ = serde_json::to_writer(&mut out, arguments);
            out.extend_from_slice(b"}]}");
        }
        _ => out.extend_from_slice(b"{}"),
    }
    out.push(b'}');
    Answer::Response {
        body: out,
        initialized,
    }
}

/// `echo --stdio`: the same answers over stdin/stdout, one message a line, on the
/// calling thread with blocking I/O (tokio's stdin/stdout go through its blocking
/// pool, a thread hop per read and write: too slow for measuring the stdio bridge).
/// Output is flushed whenever no further whole line is already buffered, so a burst
/// of requests is answered with one write. Batches are not supported (echo is for
/// benchmarks); an unparsable line gets the parse error.
pub fn serve_stdio() -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(64 * 1024, stdin.lock());
    let mut output = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return output.flush();
        }
        let message = line.trim_ascii();
        if !message.is_empty() {
            match answer_message(message) {
                Answer::ParseError => {
                    output.write_all(PARSE_ERROR.as_bytes())?;
                    output.write_all(b"\n")?;
                }
                Answer::None => {}
                Answer::Response { body, .. } => {
                    output.write_all(&body)?;
                    output.write_all(b"\n")?;
                }
            }
        }
        // Flush unless a whole further line is already buffered (a partial one may
        // wait for its client, which may wait for these answers).
        if !input.buffer().contains(&b'\n') {
            output.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(response: Response<Full<Bytes>>) -> serde_json::Value {
        let bytes = futures::executor::block_on(response.into_body().collect())
            .expect("full body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON answer")
    }

    #[test]
    fn tools_call_echoes_arguments_as_text() {
        let call = br#"{"jsonrpc":"2.0","id":"x\"1","method":"tools/call","params":{"name":"echo","arguments":{"a":[1,"b"]}}}"#;
        let answer = body_of(respond(call));
        assert_eq!(answer["id"], "x\"1");
        assert_eq!(answer["result"]["content"][0]["text"], r#"{"a":[1,"b"]}"#);
    }

    #[test]
    fn initialize_names_a_session_and_notifications_are_accepted() {
        let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        let response = respond(init);
        assert!(response.headers().contains_key("mcp-session-id"));
        assert_eq!(body_of(response)["result"]["protocolVersion"], "2025-06-18");
        let notification = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(respond(notification).status(), StatusCode::ACCEPTED);
    }

    #[test]
    fn a_line_that_is_not_json_gets_the_parse_error() {
        assert!(matches!(answer_message(b"{nope"), Answer::ParseError));
    }
}
