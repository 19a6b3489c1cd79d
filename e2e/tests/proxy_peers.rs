//! The proxy between real MCP peers: the TypeScript and Python SDK clients
//! (`e2e/peers`) drive `@modelcontextprotocol/server-everything` and `mcp-server-time`
//! through `thv-proxyrunner`, over every transport the proxy bridges. Each driver runs
//! initialize, tools/list, tools/call, a tool call with progress notifications (which
//! must arrive while the call runs, not with its result), a sampling round-trip and
//! the end of the session. No cluster needed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use e2e::proxy::{
    Driver, Proxy, both_drivers_pass_every_step, free_port, http_config, peers, remote_config,
    start_server_everything, stdio_config, wait_for_port,
};

/// A proxy serving server-everything, run as its stdio child, to clients as `mode`.
fn everything_over_stdio(mode: &str) -> Proxy {
    everything_child(&stdio_config("everything", mode))
}

/// A proxy from `config` with server-everything as its stdio child.
fn everything_child(config: &Value) -> Proxy {
    let peers = peers();
    Proxy::start(
        config,
        &[
            peers.node22.as_os_str(),
            peers.server_everything.as_os_str(),
            OsStr::new("stdio"),
        ],
        &[],
    )
}

/// A proxy that starts server-everything on `transport` (`streamableHttp`, `sse`) as a
/// local HTTP server (a container workload speaking `workload`), once it listens.
fn everything_started_by_the_proxy(transport: &str, workload: &str) -> Proxy {
    let peers = peers();
    let port = free_port();
    let proxy = Proxy::start(
        &http_config("everything", workload, port),
        &[
            peers.node22.as_os_str(),
            peers.server_everything.as_os_str(),
            OsStr::new(transport),
        ],
        &[("PORT", &port.to_string())],
    );
    wait_for_port(
        port,
        "server-everything (started by the proxy)",
        &proxy.process,
    );
    proxy
}

/// A RunConfig for server-everything on `port` as a remote workload (`path` is `/mcp`
/// or `/sse`).
fn everything_remote(port: u16, path: &str, workload: &str) -> Value {
    remote_config(
        "everything",
        &format!("http://127.0.0.1:{port}{path}"),
        workload,
    )
}

#[test]
fn stdio_server_served_as_streamable_http_passes_every_step_with_both_sdks() {
    let proxy = everything_over_stdio("streamable-http");
    both_drivers_pass_every_step(&proxy.at("/mcp"), "streamable-http");
}

#[test]
fn stdio_server_served_as_legacy_sse_passes_every_step_with_both_sdks() {
    let proxy = everything_over_stdio("sse");
    both_drivers_pass_every_step(&proxy.at("/sse"), "sse");
}

#[test]
fn streamable_http_server_started_by_the_proxy_passes_every_step_with_both_sdks() {
    let proxy = everything_started_by_the_proxy("streamableHttp", "streamable-http");
    both_drivers_pass_every_step(&proxy.at("/mcp"), "streamable-http");
}

#[test]
fn sse_server_started_by_the_proxy_passes_every_step_with_both_sdks() {
    let proxy = everything_started_by_the_proxy("sse", "sse");
    both_drivers_pass_every_step(&proxy.at("/sse"), "sse");
}

#[test]
fn remote_streamable_http_server_passes_every_step_with_both_sdks() {
    let (_server, port) = start_server_everything("streamableHttp");
    let proxy = Proxy::start(
        &everything_remote(port, "/mcp", "streamable-http"),
        &[],
        &[],
    );
    both_drivers_pass_every_step(&proxy.at("/mcp"), "streamable-http");
}

#[test]
fn remote_sse_server_passes_every_step_with_both_sdks() {
    let (_server, port) = start_server_everything("sse");
    let proxy = Proxy::start(&everything_remote(port, "/sse", "sse"), &[], &[]);
    both_drivers_pass_every_step(&proxy.at("/sse"), "sse");
}

/// The tool filter and override hold over every transport, for both SDKs: clients
/// list and call only what the filter lets through, under the override's name, and a
/// hidden tool is refused at once. On legacy SSE the list result and the refusal travel
/// on the session's stream, not in the POST's response.
#[test]
fn filtered_and_renamed_tools_are_all_sdk_clients_see_and_call_over_every_transport() {
    let (_sse_server, sse_port) = start_server_everything("sse");
    let (_http_server, http_port) = start_server_everything("streamableHttp");
    let filtered = |mut config: Value| {
        config["proxy"]["tools"] = json!({
            "filter": ["echo", "get-sum"],
            "overrides": {"echo": {"name": "say"}},
        });
        config
    };
    let proxies = [
        (
            everything_child(&filtered(stdio_config("everything", "streamable-http"))),
            "/mcp",
        ),
        (
            everything_child(&filtered(stdio_config("everything", "sse"))),
            "/sse",
        ),
        (
            Proxy::start(
                &filtered(everything_remote(http_port, "/mcp", "streamable-http")),
                &[],
                &[],
            ),
            "/mcp",
        ),
        (
            Proxy::start(
                &filtered(everything_remote(sse_port, "/sse", "sse")),
                &[],
                &[],
            ),
            "/sse",
        ),
    ];
    for (proxy, path) in &proxies {
        let transport = if *path == "/sse" {
            "sse"
        } else {
            "streamable-http"
        };
        let url = proxy.at(path);
        for driver in Driver::BOTH {
            let summary = driver.run(
                &url,
                transport,
                &[
                    "--steps",
                    "initialize,list,call",
                    "--tool",
                    "say",
                    "--args",
                    r#"{"message":"only what the filter lets through"}"#,
                    "--expect",
                    "only what the filter lets through",
                ],
            );
            let mut names: Vec<&str> = summary["steps"]["list"]["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            names.sort_unstable();
            assert_eq!(names, ["get-sum", "say"], "{driver:?} at {url}: {summary}");
            let refused = driver.run_failing(
                &url,
                transport,
                &[
                    "--steps",
                    "initialize,call",
                    "--tool",
                    "get-env",
                    "--timeout-ms",
                    "15000",
                ],
            );
            assert!(
                refused.contains("unknown tool"),
                "{driver:?} at {url}: a hidden tool must be refused at once, got: {refused}"
            );
        }
    }
}

#[test]
fn python_stdio_time_server_answers_tool_calls_with_both_sdks_over_both_transports() {
    let peers = peers();
    let command = [
        peers.server_time.as_os_str(),
        OsStr::new("--local-timezone"),
        OsStr::new("UTC"),
    ];
    let call = [
        "--tool",
        "get_current_time",
        "--args",
        r#"{"timezone":"UTC"}"#,
        "--expect",
        "\"timezone\": \"UTC\"",
    ];
    for (mode, path) in [("streamable-http", "/mcp"), ("sse", "/sse")] {
        let proxy = Proxy::start(&stdio_config("time", mode), &command, &[]);
        for driver in Driver::BOTH {
            let summary = driver.run(
                &proxy.at(path),
                mode,
                &[&["--steps", "initialize,list,call,delete"][..], &call].concat(),
            );
            assert_eq!(
                summary["steps"]["initialize"]["server"]["name"], "mcp-time",
                "{driver:?} over {mode}: {summary}"
            );
        }
    }
}

/// Both SDKs number their requests from 0 and use the request id as the progress token,
/// so concurrent sessions send the same ids and tokens to the one stdio server.
/// Sampling is not part of this run: a server request over stdio carries nothing that
/// names the call it belongs to, so with calls of several sessions overlapping the
/// bridge can only guess (docs/proxy.md, "Limits of sharing one stdio server"); the
/// per-transport tests check the sampling round trip one session at a time.
#[test]
fn concurrent_sessions_over_one_stdio_server_each_get_only_their_own_progress() {
    for (mode, path) in [("streamable-http", "/mcp"), ("sse", "/sse")] {
        let proxy = everything_over_stdio(mode);
        let url = proxy.at(path);
        let drivers = [Driver::Ts, Driver::Py, Driver::Ts, Driver::Py];
        let summaries: Vec<_> = std::thread::scope(|scope| {
            let runs: Vec<_> = drivers
                .iter()
                .map(|driver| {
                    let url = &url;
                    scope.spawn(move || driver.run(url, mode, &["--steps", "initialize,progress"]))
                })
                .collect();
            runs.into_iter()
                .map(|run| run.join().expect("a driver thread panicked; see above"))
                .collect()
        });
        for summary in summaries {
            // Exactly the call's own three, none of another session's.
            assert_eq!(
                summary["steps"]["progress"]["notifications"], 3,
                "over {mode}: {summary}"
            );
        }
    }
}

#[test]
fn a_stdio_server_that_exits_is_restarted_and_reinitialized_for_every_session() {
    let proxy = everything_over_stdio("streamable-http");
    let url = proxy.at("/mcp");
    Driver::Ts.run(&url, "streamable-http", &["--steps", "initialize,list"]);
    let first = only_child(&proxy, None);
    let killed = std::process::Command::new("kill")
        .arg(first.to_string())
        .status()
        .expect("running kill");
    assert!(killed.success(), "kill {first}: {killed}");
    only_child(&proxy, Some(first));
    // The new server knows the client's capabilities from the replayed handshake, so it
    // offers the sampling tool again, and answers sessions old and new.
    both_drivers_pass_every_step(&url, "streamable-http");
}

/// The proxy's one child process, once it is not `not` (a restarted one).
fn only_child(proxy: &Proxy, not: Option<u32>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let children = proxy.process.children();
        if let [child] = children[..]
            && Some(child) != not
        {
            return child;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy's children are {children:?}, waiting for one other than {not:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn streamable_http_sessions_end_with_delete_and_are_then_unknown() {
    let proxy = everything_over_stdio("streamable-http");
    for driver in Driver::BOTH {
        let summary = driver.run(
            &proxy.at("/mcp"),
            "streamable-http",
            &["--steps", "initialize,delete"],
        );
        let delete = &summary["steps"]["delete"];
        assert_eq!(delete["status"], 200, "{driver:?}: {summary}");
        assert_eq!(delete["afterDeleteStatus"], 404, "{driver:?}: {summary}");
    }
}

/// Behind an ingress that serves the proxy under `/everything` (and strips it), clients
/// must be told to POST to `/everything/message?...`, not to the server's own path.
#[test]
fn sse_server_endpoint_event_is_rewritten_to_the_proxy_path_under_the_endpoint_prefix() {
    let (_server, port) = start_server_everything("sse");
    let mut config = everything_remote(port, "/sse", "sse");
    config["proxy"]["endpoint_prefix"] = "/everything".into();
    let proxy = Proxy::start(&config, &[], &[]);
    let endpoint = first_endpoint_event(&proxy.url);
    assert!(
        endpoint.starts_with("/everything/message?sessionId="),
        "endpoint event data: {endpoint:?}"
    );
}

/// GETs `/sse` on `base` and returns the data of its `endpoint` event.
fn first_endpoint_event(base: &str) -> String {
    let authority = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connecting to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("setting a read timeout");
    write!(
        stream,
        "GET /sse HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("sending GET /sse");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(after) = text.split("event: endpoint").nth(1)
            && let Some(data) = after.split("data: ").nth(1)
            && let Some((line, _)) = data.split_once('\n')
        {
            return line.trim_end_matches('\r').to_owned();
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading GET /sse: {e}"),
        }
    }
    panic!(
        "no endpoint event on GET /sse; received:\n{}",
        String::from_utf8_lossy(&seen)
    )
}
