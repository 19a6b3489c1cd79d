//! `thv`: the local ToolHive CLI.

mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The local ToolHive CLI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests offline with the admission webhook's rules: the same findings,
    /// with the same field paths, that `kubectl apply` would be refused with.
    ///
    /// Exit status: 0 when every document is admissible (warnings do not count), 1 when
    /// any document has an error, 2 on usage or read errors.
    Validate(validate::Args),
}

/// Exit status for usage and I/O errors; clap uses it for bad arguments too.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Validate(args) => validate::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("thv: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
