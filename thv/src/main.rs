//! `thv`: the local ToolHive CLI. It drives MCP servers on a Kubernetes cluster (a kind or
//! k3d one on a laptop) through the same MCPServer objects a GitOps user applies, and
//! checks manifests offline.

mod client;
mod cluster;
mod convert;
mod export;
mod forward;
mod logs;
mod proxy;
mod registry;
mod resources;
mod run;
mod servers;
mod setup;
mod validate;
mod wait;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

/// The local ToolHive CLI: run MCP servers on your cluster and reach them from here.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Examples:
  thv run ghcr.io/example/fetch:1.2           # apply an MCPServer, wait until Ready, forward it
  thv list                                    # the MCPServers of the namespace
  thv logs fetch -f                           # the MCP server's output
  thv export fetch --format mcpserver > fetch.yaml
  thv validate -f fetch.yaml                  # the webhook's checks, offline

Exit status: 0 success, 1 failure, 2 usage error (bad flags or input files)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MCP server on the cluster: apply an MCPServer, wait until it is Ready, and
    /// forward its proxy to a local URL (in the background unless --foreground).
    #[command(after_help = "Examples:
  thv run ghcr.io/example/fetch:1.2
  thv run --name gh --secret github,key=token,target=GITHUB_TOKEN ghcr.io/github/github-mcp-server
  thv run --transport streamable-http --target-port 8000 ghcr.io/example/http-server -- --verbose
  thv run --from-config runconfig.json")]
    Run(Box<run::Args>),
    /// List MCPServers.
    #[command(alias = "ls")]
    List(servers::ListArgs),
    /// Show one MCPServer's state: phase, conditions, what its MCP server answered.
    Status(servers::NameArgs),
    /// Print the MCP server's logs (or the proxy's, with --proxy).
    Logs(logs::Args),
    /// Scale an MCPServer to zero; the object and its configuration stay.
    Stop(servers::NameArgs),
    /// Start an MCPServer stopped with `thv stop`.
    Start(servers::NameArgs),
    /// Restart an MCPServer's pods (ToolHive's restarted-at annotation).
    Restart(servers::NameArgs),
    /// Delete an MCPServer and the config objects `thv run` created for it.
    #[command(alias = "remove")]
    Rm(servers::NameArgs),
    /// Forward an MCPServer's proxy to a local port (also one created by a GitOps tool).
    Proxy(proxy::Args),
    /// Write an MCPServer as a RunConfig JSON or as its manifests.
    Export(export::Args),
    /// Convert a RunConfig JSON to MCPServer YAML or back, offline; fields with no
    /// counterpart are named in warnings.
    Convert(convert::Args),
    /// Add a forwarded MCPServer to a local MCP client (Claude Code, Cursor, VS Code),
    /// list or remove such entries.
    #[command(subcommand)]
    Client(client::Command),
    /// Check manifests offline with the admission webhook's rules: the same findings,
    /// with the same field paths, that `kubectl apply` would be refused with.
    ///
    /// Exit status: 0 when every document is admissible (warnings do not count), 1 when
    /// any document has an error, 2 on usage or read errors.
    Validate(validate::Args),
    /// Install ToolHive into the current kind or k3d cluster: load the images `make
    /// images` built, then `helm upgrade --install` the chart. Idempotent.
    Setup(setup::Args),
    /// Print a shell completion script, e.g. `thv completion bash > /etc/bash_completion.d/thv`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit status for usage and I/O errors; clap uses it for bad arguments too.
const EXIT_USAGE: u8 = 2;

/// A mistake in the command line or its input files: exit status 2, not 1.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error with `message`.
fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// `90s`, `5m`, `1h30m` (Go's duration syntax, as ToolHive's flags take it).
fn parse_duration(text: &str) -> Result<Duration, String> {
    admission::go_duration(text).ok_or_else(|| format!("{text:?} is not a duration like 90s or 5m"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Validate(args) => {
            return validate::run(args).unwrap_or_else(|e| {
                eprintln!("thv: {e:#}");
                ExitCode::from(EXIT_USAGE)
            });
        }
        Command::Convert(args) => convert::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Client(client::Command::List(args)) => client::list(args),
        Command::Client(client::Command::Remove(args)) => client::remove(args),
        Command::Completion { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "thv", &mut std::io::stdout());
            Ok(())
        }
        command => cluster_command(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thv: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn cluster_command(command: &Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            Command::Run(args) => run::run(args).await,
            Command::List(args) => servers::list(args).await,
            Command::Status(args) => servers::status(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Stop(args) => servers::stop(args).await,
            Command::Start(args) => servers::start(args).await,
            Command::Restart(args) => servers::restart(args).await,
            Command::Rm(args) => servers::rm(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Client(client::Command::Setup(args)) => client::setup(args).await,
            Command::Validate(_)
            | Command::Completion { .. }
            | Command::Convert(_)
            | Command::Setup(_)
            | Command::Client(_) => Ok(()),
        }
    })
}
