//! A local child process as the workload: the stdio backend that needs no cluster.

use std::process::Stdio;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::process::Command;

use super::{Attached, Workload};

/// A command run as a child process, restarted by the bridge when it exits.
#[derive(Clone, Debug)]
pub struct LocalProcess {
    /// Program to run.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Workload for LocalProcess {
    fn start(&self) -> BoxFuture<'_, std::io::Result<Attached>> {
        async move {
            let mut child = Command::new(&self.program)
                .args(&self.args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let missing = || std::io::Error::other("child process without a piped stream");
            let stdin = child.stdin.take().ok_or_else(missing)?;
            let stdout = child.stdout.take().ok_or_else(missing)?;
            let stderr = child.stderr.take();
            let exited = async move {
                match child.wait().await {
                    Ok(status) => format!("exited with {status}"),
                    Err(e) => format!("could not be waited for: {e}"),
                }
            }
            .boxed();
            Ok(Attached {
                stdin: Box::pin(stdin),
                stdout: Box::pin(stdout),
                stderr: stderr.map(|s| Box::pin(s) as _),
                exited,
            })
        }
        .boxed()
    }

    fn describe(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
