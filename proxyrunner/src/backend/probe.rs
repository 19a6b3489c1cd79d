//! The proxy's own MCP handshake with an HTTP server pod, for readiness and the report:
//! `initialize`, `notifications/initialized`, every page of `tools/list`, then the
//! session is ended. Streamable HTTP (POSTs answered with JSON or an SSE stream) and
//! legacy SSE (a GET stream whose `endpoint` event names where to POST; answers arrive on
//! the stream).
//!
//! One HTTP/1.1 connection per exchange over hyper's connection API: a probe is a few
//! requests every few seconds, and must reach the pod it names, never a pooled
//! connection to another.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use std::sync::Arc;

use tokio::sync::watch;

use super::pods::PodRouter;
use super::report::{Inputs, LinkState, Problem, Reason, ServerFacts, ToolPages};
use crate::sse::{self, Splitter};

/// How the server speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Streamable HTTP at this path (`/mcp`).
    Streamable(String),
    /// Legacy SSE with its stream at this path (`/sse`).
    Sse(String),
}

/// The longest a whole handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Shakes hands with the server at `address` (the `Host` it is sent is `host`); what it
/// said, or why not.
pub async fn handshake(
    address: SocketAddr,
    host: &str,
    dialect: &Dialect,
) -> Result<ServerFacts, String> {
    handshake_with(&Target::plain(address), host, dialect).await
}

/// [`handshake`] with the server at `target`.
pub async fn handshake_with(
    target: &Target,
    host: &str,
    dialect: &Dialect,
) -> Result<ServerFacts, String> {
    let run = async {
        match dialect {
            Dialect::Streamable(path) => streamable(target, host, path).await,
            Dialect::Sse(path) => legacy_sse(target, host, path).await,
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "no answer to initialize from {} within {HANDSHAKE_TIMEOUT:?}",
                target.address
            )
        })?
}

fn initialize() -> Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": "thv-probe-init", "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "thv-proxyrunner-probe", "version": env!("CARGO_PKG_VERSION")},
        },
    })
}

/// Page `page` of `tools/list`, as the request body.
fn list(page: usize, params: Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": list_id(page), "method": "tools/list", "params": params})
        .to_string()
}

fn list_id(page: usize) -> String {
    format!("thv-probe-list-{page}")
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Where a handshake connects: a pod's address, or a remote server's `host:port`, over
/// TLS for an `https://` server.
#[derive(Clone)]
pub struct Target {
    /// `ip:port` or `host:port` (resolved at each connection).
    pub address: String,
    /// The TLS connector and the name the certificate must carry, for `https://`.
    pub tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// Headers sent with every request (a remote server's configured headers).
    pub headers: Arc<Vec<(http::HeaderName, http::HeaderValue)>>,
}

impl Target {
    /// A plain HTTP target at `address`.
    pub fn plain(address: SocketAddr) -> Self {
        Self {
            address: address.to_string(),
            tls: None,
            headers: Arc::default(),
        }
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let address = &target.address;
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let _ = stream.set_nodelay(true);
    match &target.tls {
        None => {
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP with {address}: {e}"))?;
            tokio::spawn(connection);
            Ok(sender)
        }
        Some((connector, name)) => {
            let stream = connector
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {address}: {e}"))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP with {address}: {e}"))?;
            tokio::spawn(connection);
            Ok(sender)
        }
    }
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    added: &[(http::HeaderName, http::HeaderValue)],
    method: Method,
    path: &str,
    host: &str,
    session: Option<&str>,
    body: Option<String>,
) -> Result<hyper::Response<Incoming>, String> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json, text/event-stream");
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    if let Some(headers) = request.headers_mut() {
        for (name, value) in added {
            headers.insert(name.clone(), value.clone());
        }
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// The events of a response body, one at a time.
struct Events {
    body: Incoming,
    splitter: Splitter,
    ready: std::collections::VecDeque<Bytes>,
}

impl Events {
    fn new(body: Incoming) -> Self {
        Self {
            body,
            splitter: Splitter::default(),
            ready: std::collections::VecDeque::new(),
        }
    }

    async fn next(&mut self) -> Result<sse::Fields, String> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(sse::fields(&event));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.ready.extend(self.splitter.push(data));
                    }
                }
                Some(Err(e)) => return Err(format!("reading the event stream: {e}")),
                None => return Err("the event stream ended before the answer".to_owned()),
            }
        }
    }

    /// The result of the JSON-RPC answer with `id` on the stream (other messages are
    /// skipped); an error answer is an error.
    async fn answer(&mut self, id: &str) -> Result<Value, String> {
        loop {
            let event = self.next().await?;
            if let Ok(message) = serde_json::from_str::<Value>(&event.data)
                && message.get("id").and_then(Value::as_str) == Some(id)
            {
                return result_of(message);
            }
        }
    }
}

fn result_of(mut message: Value) -> Result<Value, String> {
    if let Some(error) = message.get("error") {
        return Err(format!(
            "the MCP server refused it: {}",
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
        ));
    }
    message
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| "an answer without result".to_owned())
}

/// The answer to a POST on streamable HTTP: the JSON body, or the event carrying `id`.
async fn posted_answer(response: hyper::Response<Incoming>, id: &str) -> Result<Value, String> {
    let status = response.status();
    let stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // No body: what a server says to a refused client is not the status's business.
        return Err(format!("HTTP {status}"));
    }
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    if stream {
        return Events::new(response.into_body()).answer(id).await;
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    result_of(
        serde_json::from_slice(&body).map_err(|e| format!("an answer that is not JSON: {e}"))?,
    )
}

async fn streamable(target: &Target, host: &str, path: &str) -> Result<ServerFacts, String> {
    let mut sender = connect(target).await?;
    let response = send(
        &mut sender,
        &target.headers,
        Method::POST,
        path,
        host,
        None,
        Some(initialize().to_string()),
    )
    .await?;
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let result = posted_answer(response, "thv-probe-init").await?;
    let mut facts = ServerFacts::from_initialize(&result);
    let session = session.as_deref();
    let notified = send(
        &mut sender,
        &target.headers,
        Method::POST,
        path,
        host,
        session,
        Some(INITIALIZED.to_owned()),
    )
    .await?;
    let _ = notified.into_body().collect().await;
    if ServerFacts::has_tools(&result) {
        let mut pages = ToolPages::default();
        while let Some((page, params)) = pages.next() {
            let response = send(
                &mut sender,
                &target.headers,
                Method::POST,
                path,
                host,
                session,
                Some(list(page, params)),
            )
            .await?;
            pages.add(&posted_answer(response, &list_id(page)).await?);
        }
        facts.tools = Some(pages.count());
    }
    if session.is_some()
        && let Ok(response) = send(
            &mut sender,
            &target.headers,
            Method::DELETE,
            path,
            host,
            session,
            None,
        )
        .await
    {
        let _ = response.into_body().collect().await;
    }
    Ok(facts)
}

async fn legacy_sse(target: &Target, host: &str, path: &str) -> Result<ServerFacts, String> {
    let mut stream_sender = connect(target).await?;
    let response = send(
        &mut stream_sender,
        &target.headers,
        Method::GET,
        path,
        host,
        None,
        None,
    )
    .await?;
    if response.status() != StatusCode::OK {
        return Err(format!("GET {path}: HTTP {}", response.status()));
    }
    let mut events = Events::new(response.into_body());
    let endpoint = loop {
        let event = events.next().await?;
        if event.event.as_deref() == Some("endpoint") {
            break event.data;
        }
    };
    // The endpoint may be a path or a URL; the POSTs go to this pod either way.
    let endpoint = match url::Url::parse(&endpoint) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => endpoint,
    };
    let mut sender = connect(target).await?;
    let mut post =
        async |body: String, events: &mut Events, id: Option<&str>| -> Result<Value, String> {
            let response = send(
                &mut sender,
                &target.headers,
                Method::POST,
                &endpoint,
                host,
                None,
                Some(body),
            )
            .await?;
            let status = response.status();
            let _ = response.into_body().collect().await;
            if !status.is_success() {
                return Err(format!("POST {endpoint}: HTTP {status}"));
            }
            match id {
                Some(id) => events.answer(id).await,
                None => Ok(Value::Null),
            }
        };
    let result = post(
        initialize().to_string(),
        &mut events,
        Some("thv-probe-init"),
    )
    .await?;
    let mut facts = ServerFacts::from_initialize(&result);
    post(INITIALIZED.to_owned(), &mut events, None).await?;
    if ServerFacts::has_tools(&result) {
        let mut pages = ToolPages::default();
        while let Some((page, params)) = pages.next() {
            let id = list_id(page);
            pages.add(&post(list(page, params), &mut events, Some(&id)).await?);
        }
        facts.tools = Some(pages.count());
    }
    Ok(facts)
}

/// Keeps shaking hands with the server's pods and reports the result: when the routable
/// pods change (at once) and, while the handshake fails, every [`RETRY`]. The router is
/// ready only while the last handshake succeeded. No routable pod for
/// [`NO_ENDPOINTS_AFTER`] is reported as `NoEndpoints`; shorter, as starting.
pub fn keep_probing(
    router: Arc<PodRouter>,
    dialect: Dialect,
    headers: Arc<Vec<(http::HeaderName, http::HeaderValue)>>,
    inputs: watch::Sender<Inputs>,
) {
    tokio::spawn(async move {
        let mut targets = router.subscribe();
        let mut without_since = Some(tokio::time::Instant::now());
        loop {
            let current = targets.borrow_and_update().clone();
            let link = match current.first() {
                None => {
                    let since = *without_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= NO_ENDPOINTS_AFTER {
                        LinkState::Failed(Problem::new(
                            Reason::NoEndpoints,
                            format!(
                                "no pod of the MCP server has been ready for {NO_ENDPOINTS_AFTER:?}"
                            ),
                        ))
                    } else {
                        LinkState::Connecting
                    }
                }
                Some(target) => {
                    without_since = None;
                    let host = target.address.to_string();
                    let probe = Target {
                        address: host.clone(),
                        tls: None,
                        headers: headers.clone(),
                    };
                    match handshake_with(&probe, &host, &dialect).await {
                        Ok(facts) => LinkState::Up(facts),
                        // The server answers, and wants each caller's credentials (with
                        // token exchange, a token of the server's audience per caller).
                        Err(why) if refused_credentials(&why) => LinkState::Failed(Problem::new(
                            Reason::AuthenticationRequired,
                            format!(
                                "pod {} answered the proxy's initialize with {why}: the server authenticates each caller (token exchange), and the proxy has no credentials of its own; callers' requests are served",
                                target.name
                            ),
                        )),
                        Err(why) => LinkState::Failed(Problem::new(
                            Reason::InitializeFailed,
                            format!("pod {}: {why}", target.name),
                        )),
                    }
                }
            };
            let up = matches!(link, LinkState::Up(_));
            // Routable when it answered: `initialize`, or a refusal of the proxy's
            // own (missing) credentials.
            let answering = up
                || matches!(&link, LinkState::Failed(p) if p.reason == Reason::AuthenticationRequired);
            router.set_initialized(answering);
            inputs.send_if_modified(|i| {
                let changed = i.link != link;
                i.link = link;
                changed
            });
            if up {
                if targets.changed().await.is_err() {
                    return;
                }
            } else {
                let wait = if answering { RECHECK } else { RETRY };
                let _ = tokio::time::timeout(wait, targets.changed()).await;
            }
        }
    });
}

/// Keeps shaking hands with a remote server (an MCPRemoteProxy's) and reports the
/// result: every [`RETRY`] while it fails, every [`RECHECK`] while it answers, so the
/// report follows a remote server that goes away or comes back. The proxy keeps serving
/// either way: a client then gets the remote server's error, not a closed port.
pub fn keep_probing_remote(
    target: Target,
    host: String,
    dialect: Dialect,
    url: String,
    inputs: watch::Sender<Inputs>,
) {
    tokio::spawn(async move {
        loop {
            let link = match handshake_with(&target, &host, &dialect).await {
                Ok(facts) => LinkState::Up(facts),
                Err(why) if refused_credentials(&why) => LinkState::Failed(Problem::new(
                    Reason::AuthenticationRequired,
                    format!(
                        "the remote server {url} answered the proxy's initialize with {why}: it wants credentials the proxy does not send on its own (externalAuthConfigRef or headerForward give them; with token exchange, or when every client brings its own, only callers' requests carry them, and this stays so while they are served)"
                    ),
                )),
                Err(why) => LinkState::Failed(Problem::new(
                    Reason::InitializeFailed,
                    format!("the remote server {url}: {why}"),
                )),
            };
            let up = matches!(link, LinkState::Up(_));
            inputs.send_if_modified(|i| {
                let changed = i.link != link;
                i.link = link;
                changed
            });
            if inputs.is_closed() {
                return;
            }
            tokio::time::sleep(if up { RECHECK } else { RETRY }).await;
        }
    });
}

/// Whether a handshake failed because the server refused the proxy's credentials (401
/// or 403 to a request: [`posted_answer`] and the legacy SSE exchange say `HTTP 4xx`).
fn refused_credentials(why: &str) -> bool {
    why.contains("HTTP 401") || why.contains("HTTP 403")
}

/// How often a remote server that answers is checked again.
const RECHECK: Duration = Duration::from_secs(30);

/// How often a failed handshake is tried again.
const RETRY: Duration = Duration::from_secs(2);
/// How long the server may have no routable pod before that is a problem.
pub const NO_ENDPOINTS_AFTER: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use tokio::sync::mpsc;

    type TestBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

    fn full(text: String) -> TestBody {
        Full::new(Bytes::from(text)).boxed()
    }

    /// Serves `handler` on a loopback port for each connection; its address.
    async fn serve<F, Fut>(handler: F) -> SocketAddr
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = hyper::Response<TestBody>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |r| {
                        let handler = handler.clone();
                        async move { Ok::<_, std::convert::Infallible>(handler(r).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        address
    }

    async fn json_body(request: Request<Incoming>) -> Value {
        let bytes = request
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    fn answer(id: &Value, result: Value) -> String {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
    }

    fn init_result() -> Value {
        serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                           "serverInfo": {"name": "probed", "version": "3.1"}})
    }

    /// A server that answers only requests bearing `Authorization: Bearer caller`.
    async fn authenticating_server() -> SocketAddr {
        serve(|request: Request<Incoming>| async move {
            let authorized = request
                .headers()
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == b"Bearer caller");
            if !authorized {
                return hyper::Response::builder()
                    .status(401)
                    .body(full(String::new()))
                    .expect("response");
            }
            let message = json_body(request).await;
            let id = message["id"].clone();
            let body = match message["method"].as_str() {
                Some("initialize") => answer(&id, init_result()),
                Some("tools/list") => answer(&id, serde_json::json!({"tools": []})),
                _ => String::new(),
            };
            hyper::Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(body))
                .expect("response")
        })
        .await
    }

    /// Probes `address` as the only pod of a router, with `headers`; the router's
    /// readiness and the link once the first handshake is over.
    async fn probed_pod(
        address: SocketAddr,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    ) -> (bool, LinkState) {
        let router = PodRouter::new();
        router.set_targets(vec![super::super::pods::PodTarget {
            name: "server-0".to_owned(),
            instance: "server-0/uid".to_owned(),
            address,
        }]);
        let inputs = watch::Sender::new(Inputs::default());
        let mut seen = inputs.subscribe();
        keep_probing(
            router.clone(),
            Dialect::Streamable("/mcp".to_owned()),
            Arc::new(headers),
            inputs,
        );
        let link = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                seen.changed().await.expect("probing");
                let link = seen.borrow_and_update().link.clone();
                if link != LinkState::Connecting {
                    return link;
                }
            }
        })
        .await
        .expect("a handshake within 10 s");
        (router.is_ready(), link)
    }

    #[tokio::test]
    async fn a_pod_that_wants_each_callers_credentials_is_routable_not_initialized() {
        let address = authenticating_server().await;
        // Token exchange: the proxy has no token of its own; the pod refuses it, so it
        // answers, and callers' requests (with their exchanged tokens) are routed to it.
        let (ready, link) = probed_pod(address, Vec::new()).await;
        assert!(ready, "the proxy serves while the pod answers");
        match link {
            LinkState::Failed(problem) => {
                assert_eq!(problem.reason, Reason::AuthenticationRequired);
                assert!(
                    problem.message.contains("token exchange"),
                    "{}",
                    problem.message
                );
            }
            other => panic!("expected AuthenticationRequired, got {other:?}"),
        }
        // A bearer token from a Secret: the proxy's own handshake carries it.
        let bearer = (
            header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer caller"),
        );
        let (ready, link) = probed_pod(address, vec![bearer]).await;
        assert!(ready);
        assert!(matches!(link, LinkState::Up(_)), "{link:?}");
    }

    #[tokio::test]
    async fn a_streamable_server_tells_its_name_version_and_every_page_of_tools() {
        let address = serve(|request: Request<Incoming>| async move {
            if request.method() == Method::DELETE {
                return hyper::Response::new(full(String::new()));
            }
            let message = json_body(request).await;
            let id = message["id"].clone();
            let body = match message["method"].as_str() {
                Some("initialize") => answer(&id, init_result()),
                // Pages answered as SSE, the way streaming servers answer.
                Some("tools/list") if message["params"]["cursor"].is_null() => format!(
                    "event: message\ndata: {}\n\n",
                    answer(&id, serde_json::json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "p2"}))
                ),
                Some("tools/list") => format!(
                    "event: message\ndata: {}\n\n",
                    answer(&id, serde_json::json!({"tools": [{"name": "c"}]}))
                ),
                _ => return hyper::Response::builder().status(202).body(full(String::new())).expect("response"),
            };
            let stream = body.starts_with("event:");
            hyper::Response::builder()
                .header("mcp-session-id", "s1")
                .header(
                    header::CONTENT_TYPE,
                    if stream { "text/event-stream" } else { "application/json" },
                )
                .body(full(body))
                .expect("response")
        })
        .await;
        let facts = handshake(address, "pod", &Dialect::Streamable("/mcp".to_owned()))
            .await
            .expect("handshake");
        assert_eq!(facts.name.as_deref(), Some("probed"));
        assert_eq!(facts.version.as_deref(), Some("3.1"));
        assert_eq!(facts.protocol_version.as_deref(), Some("2025-06-18"));
        assert_eq!(facts.tools, Some(3));
    }

    #[tokio::test]
    async fn a_refused_initialize_says_why() {
        let address = serve(|request: Request<Incoming>| async move {
            let id = json_body(request).await["id"].clone();
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32602, "message": "unsupported protocol version"}});
            hyper::Response::new(full(body.to_string()))
        })
        .await;
        let why = handshake(address, "pod", &Dialect::Streamable("/mcp".to_owned()))
            .await
            .expect_err("refused");
        assert!(why.contains("unsupported protocol version"), "{why}");
    }

    #[tokio::test]
    async fn a_legacy_sse_server_answers_on_its_stream() {
        let streams: Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<String>>>> = Arc::default();
        let address = serve(move |request: Request<Incoming>| {
            let streams = streams.clone();
            async move {
                if request.method() == Method::GET {
                    let (tx, rx) = mpsc::unbounded_channel::<String>();
                    let _ = tx.send("event: endpoint\ndata: /messages?sessionId=x1\n\n".to_owned());
                    *streams.lock().expect("lock") = Some(tx);
                    let frames = futures::stream::unfold(rx, |mut rx| async move {
                        let event = rx.recv().await?;
                        Some((Ok(Frame::data(Bytes::from(event))), rx))
                    });
                    return hyper::Response::builder()
                        .header(header::CONTENT_TYPE, "text/event-stream")
                        .body(StreamBody::new(frames).boxed())
                        .expect("response");
                }
                assert_eq!(
                    request.uri().path_and_query().map(|p| p.as_str()),
                    Some("/messages?sessionId=x1")
                );
                let message = json_body(request).await;
                let id = message["id"].clone();
                let result = match message["method"].as_str() {
                    Some("initialize") => Some(init_result()),
                    Some("tools/list") => Some(serde_json::json!({"tools": [{"name": "only"}]})),
                    _ => None,
                };
                if let (Some(result), Some(stream)) =
                    (result, streams.lock().expect("lock").as_ref())
                {
                    let _ =
                        stream.send(format!("event: message\ndata: {}\n\n", answer(&id, result)));
                }
                hyper::Response::builder()
                    .status(202)
                    .body(full(String::new()))
                    .expect("response")
            }
        })
        .await;
        let facts = handshake(address, "pod", &Dialect::Sse("/sse".to_owned()))
            .await
            .expect("handshake");
        assert_eq!(facts.name.as_deref(), Some("probed"));
        assert_eq!(facts.tools, Some(1));
    }
}
