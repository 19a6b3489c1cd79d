//! The MCP conformance suite (`@modelcontextprotocol/conformance`, active server
//! scenarios) through `thv-proxyrunner`, with our Rust fixture (`mcp-fixture`, which
//! passes every scenario when run directly) behind it. No expected failures: every
//! failure here is the proxy's.

use std::process::Command;

use e2e::proxy::{
    Proxy, binaries, conformance, free_port, http_config, remote_config, start_listening,
    stdio_config, wait_for_port,
};

/// Runs the suite against `url` and fails with its summary unless every scenario passed.
fn suite_passes(url: &str) {
    let run = conformance(url);
    let summary = run
        .stdout
        .rfind("=== SUMMARY ===")
        .map_or(run.stdout.as_str(), |at| &run.stdout[at..]);
    assert!(
        run.status.success(),
        "conformance against {url} failed ({}):\n{summary}\nstderr:\n{}",
        run.status,
        run.stderr
    );
    assert!(
        run.stdout.contains("Running active suite"),
        "not the active suite:\n{}",
        run.stdout
    );
    assert!(
        summary.contains(" passed, 0 failed") && !summary.contains('✗'),
        "{summary}"
    );
}

#[test]
fn fixture_as_stdio_child_passes_every_active_scenario() {
    let fixture = binaries().fixture.as_os_str();
    let proxy = Proxy::start(
        &stdio_config("fixture", "streamable-http"),
        &[fixture, "stdio".as_ref()],
        &[],
    );
    suite_passes(&proxy.at("/mcp"));
}

#[test]
fn fixture_as_streamable_http_server_started_by_the_proxy_passes_every_active_scenario() {
    let port = free_port();
    let proxy = Proxy::start(
        &http_config("fixture", "streamable-http", port),
        &[
            binaries().fixture.as_os_str(),
            "http".as_ref(),
            "--port".as_ref(),
            port.to_string().as_ref(),
        ],
        &[],
    );
    wait_for_port(
        port,
        "mcp-fixture http (started by the proxy)",
        &proxy.process,
    );
    suite_passes(&proxy.at("/mcp"));
}

#[test]
fn fixture_as_remote_streamable_http_server_passes_every_active_scenario() {
    let mut command = Command::new(&binaries().fixture);
    command.args(["http", "--port", "0"]);
    let (_fixture, url) = start_listening("mcp-fixture", command);
    let proxy = Proxy::start(&remote_config("fixture", &url, "streamable-http"), &[], &[]);
    suite_passes(&proxy.at("/mcp"));
}
