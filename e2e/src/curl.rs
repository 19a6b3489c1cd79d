//! MCP over streamable HTTP with curl, as an outside client reaches a Service's
//! ClusterIP from the machine: one POST at a time, the answer's head and body as text.

use anyhow::Context;

/// One POST to `url` with curl: the response head and body.
pub fn post(url: &str, session: Option<&str>, body: &str) -> anyhow::Result<(String, String)> {
    let mut command = std::process::Command::new("curl");
    command.args([
        "-sS",
        "-i",
        "-m",
        "10",
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "-H",
        "mcp-protocol-version: 2025-06-18",
        "-d",
        body,
    ]);
    if let Some(session) = session {
        command.args(["-H", &format!("mcp-session-id: {session}")]);
    }
    let out = command.arg(url).output().context("running curl")?;
    anyhow::ensure!(
        out.status.success(),
        "curl POST {url}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    Ok((head.to_owned(), body.to_owned()))
}

/// A new session through `url` (initialize, then initialized): its id.
pub fn open_session(url: &str) -> anyhow::Result<String> {
    let (head, body) = post(
        url,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#,
    )?;
    let session = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .with_context(|| format!("no session from initialize: {head}\n{body}"))?;
    post(
        url,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )?;
    Ok(session)
}

/// A new session through a Service that just became routable: retried every 500 ms
/// until `within`. The MCPServer turns Ready when its proxy pod is Ready; kube-proxy
/// programs the Service's ClusterIP from the EndpointSlice a moment later, and until then
/// the node rejects the connection. The last error names what was tried.
pub async fn first_session(url: &str, within: std::time::Duration) -> anyhow::Result<String> {
    let start = std::time::Instant::now();
    loop {
        match open_session(url) {
            Ok(session) => return Ok(session),
            Err(e) if start.elapsed() >= within => {
                return Err(e.context(format!("no session through {url} within {within:?}")));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// Calls `tool` with `arguments` (a JSON object) in `session`: the answer's body.
pub fn call(url: &str, session: &str, tool: &str, arguments: &str) -> anyhow::Result<String> {
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    );
    Ok(post(url, Some(session), &call)?.1)
}

/// Calls `tool` without arguments in a new session through `url`: the answer's body.
pub fn call_tool(url: &str, tool: &str) -> anyhow::Result<String> {
    let session = open_session(url)?;
    call(url, &session, tool, "{}")
}
