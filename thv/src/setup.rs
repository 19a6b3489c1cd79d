//! `thv setup`: ToolHive on the current kind or k3d cluster, from this checkout: the
//! images `make images` built loaded into the cluster's nodes (`kind load
//! image-archive`, `k3d image import`), then the chart installed or upgraded (`helm
//! upgrade --install`, idempotent). A context that does not look like a local cluster
//! is refused before anything runs, unless `--force`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use kube::config::Kubeconfig;

/// Arguments of `thv setup`.
#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kube context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of the operator.
    #[arg(long, default_value = "toolhive-system")]
    operator_namespace: String,
    /// The chart (a directory or packaged chart).
    #[arg(long, value_name = "DIR", default_value = "charts/toolhive")]
    chart: PathBuf,
    /// Image archives to load into the cluster (`make images` writes them here).
    #[arg(long, value_name = "DIR", default_value = "target/images")]
    images: PathBuf,
    /// Extra `helm` values, `KEY=VALUE` (as `--set`); repeat for more.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Install even when the context is not a kind or k3d cluster.
    #[arg(long)]
    force: bool,
    /// Print the commands instead of running them.
    #[arg(long)]
    dry_run: bool,
}

/// The kind of cluster a context points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// kind cluster `name` (context `kind-<name>`).
    Kind(String),
    /// k3d cluster `name` (context `k3d-<name>`).
    K3d(String),
    /// Another cluster whose API server is on this machine (loopback).
    Loopback,
    /// Not a local cluster.
    Remote(String),
}

/// Classifies context `context` whose cluster's server is `server`.
pub fn classify(context: &str, server: &str) -> Local {
    if let Some(name) = context.strip_prefix("kind-") {
        return Local::Kind(name.to_owned());
    }
    if let Some(name) = context.strip_prefix("k3d-") {
        return Local::K3d(name.to_owned());
    }
    let host = url::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let loopback = host == "localhost"
        || host == "host.docker.internal"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if loopback {
        Local::Loopback
    } else {
        Local::Remote(server.to_owned())
    }
}

/// The context's name and its cluster's server, from the kubeconfig alone.
fn current(args: &Args) -> anyhow::Result<(String, String)> {
    let config = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .context("reading the kubeconfig")?;
    let name = args
        .context
        .clone()
        .or(config.current_context.clone())
        .context("the kubeconfig has no current context; pass --context")?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.clone())
        .with_context(|| format!("no context {name:?} in the kubeconfig"))?;
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    Ok((name, server))
}

/// `thv setup`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (context, server) = current(args)?;
    let local = classify(&context, &server);
    if let Local::Remote(server) = &local
        && !args.force
    {
        bail!(
            "context {context:?} points at {server}, which is not a kind or k3d cluster on \
             this machine; thv setup installs into local clusters only (pass --force to install there anyway)"
        );
    }
    if !args.chart.exists() && !args.dry_run {
        bail!(crate::usage(format!(
            "no chart at {}: run thv setup from a checkout of this repository, or pass --chart",
            args.chart.display()
        )));
    }
    let mut commands = Vec::new();
    let archives = archives(&args.images)?;
    match &local {
        Local::Kind(name) => {
            for archive in &archives {
                commands.push(command(
                    "kind",
                    &[
                        "load",
                        "image-archive",
                        &archive.to_string_lossy(),
                        "--name",
                        name,
                    ],
                ));
            }
        }
        Local::K3d(name) => {
            for archive in &archives {
                commands.push(command(
                    "k3d",
                    &["image", "import", &archive.to_string_lossy(), "-c", name],
                ));
            }
        }
        Local::Loopback | Local::Remote(_) => {
            if !archives.is_empty() {
                eprintln!(
                    "note: context {context:?} is neither kind nor k3d: the images are not \
                     loaded; its nodes must have them (or pull them)"
                );
            }
        }
    }
    if archives.is_empty() {
        eprintln!(
            "note: no image archives in {} (`make images` builds them); the nodes must pull \
             the images",
            args.images.display()
        );
    }
    let mut helm = vec![
        "upgrade".to_owned(),
        "--install".to_owned(),
        "toolhive".to_owned(),
        args.chart.to_string_lossy().into_owned(),
        "--namespace".to_owned(),
        args.operator_namespace.clone(),
        "--create-namespace".to_owned(),
        "--kube-context".to_owned(),
        context.clone(),
        "--wait".to_owned(),
    ];
    if let Some(path) = &args.kubeconfig {
        helm.extend([
            "--kubeconfig".to_owned(),
            path.to_string_lossy().into_owned(),
        ]);
    }
    for value in &args.set {
        helm.extend(["--set".to_owned(), value.clone()]);
    }
    let helm_refs: Vec<&str> = helm.iter().map(String::as_str).collect();
    commands.push(command("helm", &helm_refs));
    for (program, arguments) in &commands {
        println!("+ {program} {}", arguments.join(" "));
        if args.dry_run {
            continue;
        }
        let status = Command::new(program)
            .args(arguments)
            .status()
            .with_context(|| format!("running {program} (is it installed and on PATH?)"))?;
        if !status.success() {
            bail!("{program} failed ({status}); nothing after it ran");
        }
    }
    if !args.dry_run {
        println!("ToolHive is installed in {context}; `thv run IMAGE` runs an MCP server there");
    }
    Ok(())
}

fn command(program: &str, arguments: &[&str]) -> (String, Vec<String>) {
    (
        program.to_owned(),
        arguments.iter().map(|a| (*a).to_owned()).collect(),
    )
}

/// The operator's and proxy runner's archives in `dir` (the test-only fixture is left out).
fn archives(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let wanted = ["operator.tar", "proxyrunner.tar"];
    Ok(wanted
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_k3d_and_loopback_contexts_are_local() {
        assert_eq!(
            classify("kind-dev", "https://127.0.0.1:6443"),
            Local::Kind("dev".into())
        );
        assert_eq!(
            classify("k3d-mcp", "https://0.0.0.0:40000"),
            Local::K3d("mcp".into())
        );
        assert_eq!(
            classify("minikube", "https://127.0.0.1:8443"),
            Local::Loopback
        );
        assert_eq!(classify("x", "https://[::1]:6443"), Local::Loopback);
        assert_eq!(
            classify("prod", "https://api.prod.example.com:6443"),
            Local::Remote("https://api.prod.example.com:6443".into())
        );
    }
}
