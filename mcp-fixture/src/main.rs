//! `mcp-fixture`: test-only MCP servers for exercising the ToolHive proxy.
//!
//! - `mcp-fixture stdio`: the conformance server on stdin/stdout (logs on stderr).
//! - `mcp-fixture http --port N [--host 127.0.0.1]`: the same server over streamable
//!   HTTP at `/mcp`; prints `listening on http://HOST:PORT/mcp` once bound.
//! - `mcp-fixture sse --port N [--host 127.0.0.1]`: the same server over the legacy
//!   HTTP+SSE transport (`GET /sse`, `POST /messages?sessionId=`).
//! - `mcp-fixture echo --port N` or `echo --stdio`: a minimal, fast upstream for
//!   benchmarks.
//! - `mcp-fixture webhook --port N [--deny-tool T] [--hmac-key-env E]`: a request
//!   webhook server (ToolHive's protocol) for MCPWebhookConfig tests.
//!
//! The server passes every scenario of the `@modelcontextprotocol/conformance` 0.1.16
//! server suite (`npx conformance server --url http://127.0.0.1:PORT/mcp --suite all`):
//! server-initialize, logging-set-level, ping, completion-complete, tools-list,
//! tools-call-{simple-text, image, audio, embedded-resource, mixed-content,
//! with-logging, error, with-progress, sampling, elicitation}, json-schema-2020-12,
//! elicitation-sep1034-defaults, elicitation-sep1330-enums, server-sse-polling,
//! server-sse-multiple-streams, resources-{list, read-text, read-binary,
//! templates-read, subscribe, unsubscribe}, prompts-{list, get-simple, get-with-args,
//! get-embedded-resource, get-with-image}, dns-rebinding-protection. README.md has
//! the details of each mode.
//!
//! The JSON-RPC handling is written by hand on tokio, axum and hyper rather than with
//! the `rmcp` SDK: a fixture that tests a proxy needs control of every wire detail
//! (when to answer with JSON or SSE, priming events, closing a stream mid-call for
//! resumption, DNS rebinding checks), and it keeps the dependency tree small.

mod echo;
mod http;
mod jsonrpc;
mod server;
mod sse;
mod stdio;
mod webhook;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Test-only MCP servers: the conformance fixture and a fast echo upstream"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// MCP over stdio: newline-delimited JSON-RPC on stdin and stdout.
    Stdio,
    /// MCP over streamable HTTP at /mcp.
    Http {
        /// Port to listen on; 0 picks a free one (printed once bound).
        #[arg(long)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Accept any Host and Origin header. By default a server bound to loopback
        /// accepts only localhost names (DNS rebinding protection).
        #[arg(long)]
        allow_any_host: bool,
        /// Answer 401 to any request without this header and value (`NAME=VALUE`), as
        /// an API behind a key would: tests of headers a proxy adds. Repeatable.
        #[arg(long, value_name = "NAME=VALUE")]
        require_header: Vec<String>,
    },
    /// MCP over the legacy HTTP+SSE transport: GET /sse, POST /messages?sessionId=.
    Sse {
        /// Port to listen on; 0 picks a free one (printed once bound).
        #[arg(long)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Accept any Host and Origin header (see `http`).
        #[arg(long)]
        allow_any_host: bool,
    },
    /// A minimal upstream that answers every request at once, for benchmarks: streamable
    /// HTTP, or stdio with `--stdio`.
    Echo {
        /// Port to listen on; 0 picks a free one (printed once bound).
        #[arg(long, required_unless_present = "stdio")]
        port: Option<u16>,
        /// Answer on stdin/stdout instead of HTTP.
        #[arg(long, conflicts_with_all = ["port", "host"])]
        stdio: bool,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// A request webhook server (ToolHive's protocol v0.1.0): `POST /validate` denies
    /// calls of `--deny-tool`, `POST /mutate` upper-cases `echo`'s message.
    Webhook {
        /// Port to listen on; 0 picks a free one (printed once bound).
        #[arg(long)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// A tool whose calls `/validate` denies. Repeatable.
        #[arg(long)]
        deny_tool: Vec<String>,
        /// Environment variable holding the HMAC key requests must be signed with.
        #[arg(long)]
        hmac_key_env: Option<String>,
    },
    /// Open a TCP connection to `ADDR` (`host:port`) and report whether it was
    /// accepted; exits 1 if not. A pod running this shows what a NetworkPolicy lets
    /// through.
    Probe {
        /// Where to connect.
        addr: String,
        /// Seconds to wait for the connection (a dropped SYN never answers).
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Mode::Echo { stdio: true, .. } = cli.mode {
        // No runtime and no logging: the fastest stdio peer the bridge can have.
        return Ok(echo::serve_stdio()?);
    }
    serve(cli)
}

#[tokio::main]
async fn serve(cli: Cli) -> anyhow::Result<()> {
    let default_level = match cli.mode {
        Mode::Echo { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let run = async {
        match cli.mode {
            Mode::Stdio => stdio::run().await,
            Mode::Http {
                port,
                host,
                allow_any_host,
                require_header,
            } => {
                let hosts = allow_any_host.then_some(http::HostPolicy::Any);
                let required = require_header
                    .iter()
                    .map(|h| http::RequiredHeader::parse(h))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                http::serve(&host, port, hosts, required).await
            }
            Mode::Sse {
                port,
                host,
                allow_any_host,
            } => {
                let hosts = allow_any_host.then_some(http::HostPolicy::Any);
                sse::serve(&host, port, hosts).await
            }
            Mode::Echo { port, host, .. } => echo::serve(&host, port.unwrap_or(0)).await,
            Mode::Webhook {
                port,
                host,
                deny_tool,
                hmac_key_env,
            } => webhook::serve(&host, port, deny_tool, hmac_key_env).await,
            Mode::Probe { addr, timeout } => probe(&addr, timeout).await,
        }
    };
    tokio::select! {
        result = run => result,
        // Exit now: a runtime being dropped waits for its blocking stdin read, which
        // never ends while a stdio server's stdin stays open (pods/attach keeps it so).
        () = shutdown_signal() => std::process::exit(0),
    }
}

/// The `probe` mode: one line on stdout, `connected to ADDR` or why not.
async fn probe(addr: &str, timeout: u64) -> anyhow::Result<()> {
    let attempt = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(std::time::Duration::from_secs(timeout), attempt).await {
        Ok(Ok(_)) => {
            println!("connected to {addr}");
            Ok(())
        }
        Ok(Err(e)) => anyhow::bail!("not connected to {addr}: {e}"),
        Err(_) => anyhow::bail!("not connected to {addr}: no answer within {timeout}s"),
    }
}

/// Ctrl-C or SIGTERM: as PID 1 in a container, nothing else would stop us.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds on Unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
