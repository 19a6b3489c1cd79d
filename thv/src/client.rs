//! `thv client setup|list|remove`: the entry of a forwarded MCPServer in a local MCP
//! client's configuration file (Claude Code, Cursor, VS Code), as ToolHive's CLI writes
//! it. The rest of the file is kept; a file that is not plain JSON (VS Code allows
//! comments) is refused rather than rewritten.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::cluster::ClusterArgs;
use crate::forward::Forward;
use crate::usage;

/// A local MCP client `thv` can configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Claude Code: `~/.claude.json`, `mcpServers`.
    ClaudeCode,
    /// Cursor: `~/.cursor/mcp.json`, `mcpServers`.
    Cursor,
    /// VS Code: the user profile's `mcp.json`, `servers`.
    Vscode,
}

impl Client {
    const ALL: [Self; 3] = [Self::ClaudeCode, Self::Cursor, Self::Vscode];

    fn label(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::Cursor => "cursor",
            Self::Vscode => "vscode",
        }
    }

    /// The user-level configuration file.
    fn default_path(self) -> Option<PathBuf> {
        match self {
            Self::ClaudeCode => dirs::home_dir().map(|h| h.join(".claude.json")),
            Self::Cursor => dirs::home_dir().map(|h| h.join(".cursor").join("mcp.json")),
            Self::Vscode => {
                dirs::config_dir().map(|c| c.join("Code").join("User").join("mcp.json"))
            }
        }
    }

    /// The key holding the servers.
    fn servers_key(self) -> &'static str {
        match self {
            Self::Vscode => "servers",
            Self::ClaudeCode | Self::Cursor => "mcpServers",
        }
    }

    /// The entry for a server at `url`.
    fn entry(self, url: &str) -> Value {
        let kind = if url.ends_with("/sse") { "sse" } else { "http" };
        match self {
            Self::Cursor => json!({"url": url}),
            Self::ClaudeCode | Self::Vscode => json!({"type": kind, "url": url}),
        }
    }
}

/// Arguments of `thv client`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a forwarded MCPServer to MCP clients' configuration.
    Setup(Args),
    /// Show the servers each MCP client's configuration lists.
    List(ListArgs),
    /// Remove an MCPServer from MCP clients' configuration.
    Remove(Args),
}

/// Arguments of `thv client setup|remove`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCPServer (forwarded by `thv run` or `thv proxy -d`).
    name: String,
    /// Which clients (default: every one whose configuration directory exists).
    #[arg(long = "client", value_enum)]
    clients: Vec<Client>,
    /// Use this configuration file instead of the client's default (one --client).
    #[arg(long, value_name = "FILE", requires = "clients")]
    config: Option<PathBuf>,
}

/// Arguments of `thv client list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Which clients (default: all).
    #[arg(long = "client", value_enum)]
    clients: Vec<Client>,
    /// Use this configuration file instead of the client's default (one --client).
    #[arg(long, value_name = "FILE", requires = "clients")]
    config: Option<PathBuf>,
}

/// The clients and files a command acts on.
fn targets(
    clients: &[Client],
    config: Option<&PathBuf>,
    only_present: bool,
) -> anyhow::Result<Vec<(Client, PathBuf)>> {
    if let Some(path) = config {
        if clients.len() != 1 {
            bail!(usage("--config names the file of one --client"));
        }
        return Ok(vec![(clients[0], path.clone())]);
    }
    let chosen: Vec<Client> = if clients.is_empty() {
        Client::ALL.to_vec()
    } else {
        clients.to_vec()
    };
    let explicit = !clients.is_empty();
    Ok(chosen
        .into_iter()
        .filter_map(|c| c.default_path().map(|p| (c, p)))
        .filter(|(_, p)| explicit || !only_present || p.parent().is_some_and(Path::exists))
        .collect())
}

/// The namespace the cluster flags resolve to, without contacting the cluster.
async fn namespace(args: &ClusterArgs) -> anyhow::Result<String> {
    if let Some(ns) = &args.namespace {
        return Ok(ns.clone());
    }
    Ok(crate::cluster::Cluster::connect(args).await?.namespace)
}

/// `thv client setup`.
pub async fn setup(args: &Args) -> anyhow::Result<()> {
    let namespace = namespace(&args.cluster).await?;
    let Some(forward) = Forward::find(&namespace, &args.name) else {
        bail!(
            "{} is not forwarded to this machine: `thv proxy {} -d` forwards it (namespace {namespace})",
            args.name,
            args.name
        );
    };
    let targets = targets(&args.clients, args.config.as_ref(), true)?;
    if targets.is_empty() {
        bail!("no MCP client configuration found; name one with --client");
    }
    for (client, path) in targets {
        edit(&path, client, |servers| {
            servers.insert(args.name.clone(), client.entry(&forward.url));
        })?;
        println!(
            "{}: {} → {} ({})",
            client.label(),
            args.name,
            forward.url,
            path.display()
        );
    }
    Ok(())
}

/// `thv client remove`.
pub fn remove(args: &Args) -> anyhow::Result<()> {
    for (client, path) in targets(&args.clients, args.config.as_ref(), true)? {
        if !path.exists() {
            continue;
        }
        let mut removed = false;
        edit(&path, client, |servers| {
            removed = servers.remove(&args.name).is_some()
        })?;
        if removed {
            println!(
                "{}: removed {} ({})",
                client.label(),
                args.name,
                path.display()
            );
        }
    }
    Ok(())
}

/// `thv client list`.
pub fn list(args: &ListArgs) -> anyhow::Result<()> {
    for (client, path) in targets(&args.clients, args.config.as_ref(), false)? {
        let servers = match read(&path)? {
            Some(document) => document
                .get(client.servers_key())
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            None => {
                println!("{}: {} (none)", client.label(), path.display());
                continue;
            }
        };
        println!("{}: {}", client.label(), path.display());
        for (name, entry) in servers {
            let url = entry.get("url").and_then(Value::as_str).unwrap_or("-");
            println!("  {name}  {url}");
        }
    }
    Ok(())
}

/// The JSON document at `path`, `None` when there is no file.
fn read(path: &Path) -> anyhow::Result<Option<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Some(json!({})));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not plain JSON ({e}); thv leaves it untouched: add the entry by hand",
            path.display()
        )
    })?;
    if !value.is_object() {
        bail!(
            "{} is not a JSON object; thv leaves it untouched",
            path.display()
        );
    }
    Ok(Some(value))
}

/// Applies `change` to the client's server map in `path` and writes the file back
/// atomically (a temporary file renamed over it).
fn edit(
    path: &Path,
    client: Client,
    change: impl FnOnce(&mut Map<String, Value>),
) -> anyhow::Result<()> {
    let mut document = read(path)?.unwrap_or_else(|| json!({}));
    let root = document.as_object_mut().context("a JSON object")?;
    let servers = root
        .entry(client.servers_key())
        .or_insert_with(|| json!({}));
    let Some(servers) = servers.as_object_mut() else {
        bail!(
            "{}: {} is not an object; thv leaves the file untouched",
            path.display(),
            client.servers_key()
        );
    };
    change(servers);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let temporary = path.with_extension("thv-tmp");
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("thv-client-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("mcp.json")
    }

    #[test]
    fn setup_adds_an_entry_and_keeps_the_rest_of_the_file() {
        let path = scratch("keep");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        std::fs::write(
            &path,
            r#"{"theme": "dark", "mcpServers": {"other": {"url": "http://x"}}}"#,
        )
        .expect("write");
        edit(&path, Client::ClaudeCode, |s| {
            s.insert(
                "fetch".into(),
                Client::ClaudeCode.entry("http://127.0.0.1:4000/mcp"),
            );
        })
        .expect("edit");
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(written["theme"], "dark");
        assert_eq!(written["mcpServers"]["other"]["url"], "http://x");
        assert_eq!(
            written["mcpServers"]["fetch"],
            json!({"type": "http", "url": "http://127.0.0.1:4000/mcp"})
        );
        edit(&path, Client::ClaudeCode, |s| {
            s.remove("fetch");
        })
        .expect("remove");
        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert!(after["mcpServers"].get("fetch").is_none());
        assert_eq!(after["mcpServers"]["other"]["url"], "http://x");
    }

    #[test]
    fn each_client_gets_its_own_shape() {
        assert_eq!(Client::Vscode.servers_key(), "servers");
        assert_eq!(
            Client::Vscode.entry("http://h/sse"),
            json!({"type": "sse", "url": "http://h/sse"})
        );
        assert_eq!(
            Client::Cursor.entry("http://h/mcp"),
            json!({"url": "http://h/mcp"})
        );
    }

    #[test]
    fn a_file_with_comments_is_refused_not_rewritten() {
        let path = scratch("jsonc");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        let original = "{\n  // my servers\n  \"servers\": {}\n}\n";
        std::fs::write(&path, original).expect("write");
        let error = edit(&path, Client::Vscode, |_| {}).expect_err("refused");
        assert!(error.to_string().contains("not plain JSON"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
    }
}
