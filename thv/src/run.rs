//! `thv run`: flags (or a RunConfig file) → RunConfig → the MCPServer and its config
//! objects (`admission::to_manifests`, the mapping `thv convert` uses) → the webhook's
//! checks, before anything is sent → server-side apply → wait for `Ready` → forward the
//! proxy to a local port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use api::Manifest;
use runconfig::config::{
    AuditConfig, ContainerWorkload, EnvVar, OidcConfig, ProxyConfig, RunConfig, SamplingRate,
    SecretRef, TelemetryConfig, ToolOverride, ToolsConfig, Workload,
};
use serde_json::Value;

use crate::cluster::{Cluster, ClusterArgs};
use crate::usage;

/// Arguments of `thv run`, named as ToolHive's CLI names them.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The MCP server's OCI image (`ghcr.io/example/fetch:1.2`), or the name of a server
    /// in an MCPRegistry of the namespace (`fetch`), whose image, transport, port,
    /// arguments and environment defaults are used unless the flags say otherwise.
    #[arg(
        value_name = "IMAGE|REGISTRY_NAME",
        required_unless_present = "from_config",
        conflicts_with = "from_config"
    )]
    image: Option<String>,
    /// Run what a RunConfig JSON file describes (ours, or ToolHive's schema v0.1.0 from
    /// `thv export`); `--name` renames it, the other server flags are refused with it.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "transport", "proxy_mode", "target_port", "env", "secrets", "tools", "tools_override",
        "authz_config", "oidc_issuer", "oidc_audience", "oidc_jwks_url", "oidc_introspection_url",
        "oidc_client_id", "oidc_scopes", "enable_audit", "otel_endpoint", "otel_service_name",
        "otel_sampling_rate", "otel_headers", "otel_insecure",
        "otel_enable_prometheus_metrics_path", "args",
    ])]
    from_config: Option<PathBuf>,
    /// Name of the MCPServer (default: the image's name, e.g. `fetch`).
    #[arg(long)]
    name: Option<String>,
    /// How the server speaks MCP (default: the registry's, else stdio).
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// What the proxy serves clients for a stdio server.
    #[arg(long, value_enum, default_value_t = ProxyModeArg::StreamableHttp)]
    proxy_mode: ProxyModeArg,
    /// Port an HTTP server listens on in its container.
    #[arg(long, value_name = "PORT")]
    target_port: Option<u16>,
    /// Environment variable of the server, `KEY=VALUE`; repeat for more.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A key of a Kubernetes Secret as an environment variable:
    /// `SECRET,key=KEY[,target=ENV]`; repeat for more.
    #[arg(long = "secret", value_name = "SECRET,key=KEY[,target=ENV]")]
    secrets: Vec<String>,
    /// Only these tools are listed and callable (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TOOL,...")]
    tools: Vec<String>,
    /// JSON file renaming or re-describing tools:
    /// `{"toolsOverride": {"fetch": {"name": "web-fetch", "description": "…"}}}`.
    #[arg(long, value_name = "FILE")]
    tools_override: Option<PathBuf>,
    /// Authorization config file (JSON or YAML), ToolHive's format:
    /// `{version: "1.0", type: cedarv1, cedar: {policies: […], entities_json: "[]"}}`.
    #[arg(long, value_name = "FILE")]
    authz_config: Option<PathBuf>,
    /// OIDC issuer whose JWTs clients must present.
    #[arg(long, value_name = "URL")]
    oidc_issuer: Option<String>,
    /// Expected `aud` of client tokens.
    #[arg(long, value_name = "AUDIENCE")]
    oidc_audience: Option<String>,
    /// JWKS URL (default: discovered from the issuer).
    #[arg(long, value_name = "URL")]
    oidc_jwks_url: Option<String>,
    /// Token introspection URL, for opaque tokens.
    #[arg(long, value_name = "URL")]
    oidc_introspection_url: Option<String>,
    /// OAuth client ID for introspection.
    #[arg(long, value_name = "ID")]
    oidc_client_id: Option<String>,
    /// Scopes advertised in the protected-resource metadata (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "SCOPE,...")]
    oidc_scopes: Vec<String>,
    /// Write audit events for every MCP request.
    #[arg(long)]
    enable_audit: bool,
    /// OTLP/HTTP endpoint for traces and metrics.
    #[arg(long, value_name = "HOST:PORT")]
    otel_endpoint: Option<String>,
    /// OpenTelemetry `service.name` (default: the server's name).
    #[arg(long, value_name = "NAME")]
    otel_service_name: Option<String>,
    /// Trace sampling rate, 0 to 1.
    #[arg(long, value_name = "RATE")]
    otel_sampling_rate: Option<f64>,
    /// Header sent with OTLP exports, `KEY=VALUE`; repeat for more.
    #[arg(long = "otel-headers", value_name = "KEY=VALUE")]
    otel_headers: Vec<String>,
    /// Export over plain HTTP.
    #[arg(long)]
    otel_insecure: bool,
    /// Serve Prometheus metrics at the proxy's `/metrics`.
    #[arg(long)]
    otel_enable_prometheus_metrics_path: bool,
    /// Local port of the forwarded URL (default: any free port).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Stay attached: forward until Ctrl-C instead of in the background.
    #[arg(long)]
    foreground: bool,
    /// How long to wait for the server to be Ready, e.g. `90s`, `5m`.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::parse_duration)]
    timeout: Duration,
    /// Arguments passed to the server's entrypoint (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Stdio,
    Sse,
    StreamableHttp,
}

impl TransportArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Sse => "sse",
            Self::StreamableHttp => "streamable-http",
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProxyModeArg {
    Sse,
    StreamableHttp,
}

/// Which flag produced which CRD field: admission findings are shown in flag terms.
const FLAGS: &[(&str, &str)] = &[
    ("metadata.name", "--name"),
    ("spec.image", "IMAGE"),
    ("spec.transport", "--transport"),
    ("spec.proxyMode", "--proxy-mode"),
    ("spec.mcpPort", "--target-port"),
    ("spec.args", "-- ARGS"),
    ("spec.env", "--env"),
    ("spec.secrets", "--secret"),
    ("spec.authzConfig", "--authz-config"),
    ("spec.toolConfigRef", "--tools/--tools-override"),
    ("spec.oidcConfigRef", "--oidc-*"),
    ("spec.telemetryConfigRef", "--otel-*"),
    ("spec.audit", "--enable-audit"),
];

/// The flag that produced the CRD field at `path`, if one did.
fn flag_of(path: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .find(|(prefix, _)| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[', ' ']))
        })
        .map(|(_, flag)| *flag)
}

/// The RunConfig `thv run` builds from the flags, over the catalogue `entry` when the
/// server comes from an MCPRegistry (its name is then the default server name).
pub fn runconfig(
    args: &Args,
    entry: Option<(&str, &crate::registry::Entry)>,
) -> anyhow::Result<RunConfig> {
    let image = match entry {
        Some((_, entry)) => entry.image.clone(),
        None => args.image.clone().unwrap_or_default(),
    };
    let name = match (&args.name, entry) {
        (Some(name), _) => name.clone(),
        (None, Some((name, _))) => name_from_image(name).unwrap_or_else(|| name.to_owned()),
        (None, None) => name_from_image(&image).ok_or_else(|| {
            usage(format!(
                "cannot derive a server name from image {image:?}: pass --name"
            ))
        })?,
    };
    let mut env: Vec<EnvVar> = args
        .env
        .iter()
        .map(|e| {
            let (name, value) = key_value(e, "--env")?;
            Ok(EnvVar { name, value })
        })
        .collect::<anyhow::Result<_>>()?;
    let secrets: Vec<SecretRef> = args
        .secrets
        .iter()
        .map(|s| secret(s))
        .collect::<anyhow::Result<_>>()?;
    let mut transport = args.transport.map(TransportArg::as_str);
    let mut target_port = args.target_port;
    let mut server_args = args.args.clone();
    if let Some((source, entry)) = entry {
        transport = transport.or(Some(entry.transport.as_str()));
        target_port = target_port.or(entry.target_port);
        if server_args.is_empty() {
            server_args = entry.args.clone();
        }
        let mut missing = Vec::new();
        for spec in &entry.env_vars {
            let given = env.iter().any(|e| e.name == spec.name)
                || secrets.iter().any(|s| {
                    s.target_env.as_deref().or(s.key.as_deref()) == Some(spec.name.as_str())
                });
            if given {
                continue;
            }
            match &spec.default {
                Some(value) if !spec.secret => env.push(EnvVar {
                    name: spec.name.clone(),
                    value: value.clone(),
                }),
                _ if spec.required => missing.push(if spec.secret {
                    format!("--secret SECRET,key=KEY,target={}", spec.name)
                } else {
                    format!("--env {}=…", spec.name)
                }),
                _ => {}
            }
        }
        if !missing.is_empty() {
            return Err(usage(format!(
                "{source} needs these variables its catalogue marks required: {}",
                missing.join(", ")
            )));
        }
    }
    let container = ContainerWorkload {
        image,
        args: server_args,
        transport: transport.unwrap_or("stdio").to_owned(),
        target_port: target_port.map(i64::from),
        env,
        secrets,
        ..ContainerWorkload::default()
    };
    let proxy = ProxyConfig {
        mode: match args.proxy_mode {
            ProxyModeArg::Sse => "sse",
            ProxyModeArg::StreamableHttp => "streamable-http",
        }
        .to_owned(),
        oidc: oidc(args),
        authz: match &args.authz_config {
            Some(path) => Some(
                runconfig::authz_from_value(read_structured(path)?)
                    .map_err(|e| usage(format!("--authz-config {}: {e}", path.display())))?,
            ),
            None => None,
        },
        audit: args.enable_audit.then(AuditConfig::default),
        telemetry: telemetry(args)?,
        tools: ToolsConfig {
            filter: args.tools.clone(),
            overrides: match &args.tools_override {
                Some(path) => tools_override(path)?,
                None => BTreeMap::new(),
            },
        },
        ..ProxyConfig::default()
    };
    Ok(RunConfig {
        schema_version: runconfig::SCHEMA_VERSION.to_owned(),
        name,
        group: None,
        debug: false,
        workload: Workload::Container(container),
        proxy,
    })
}

/// A RunConfig file; `--name` renames what it runs.
pub fn read_runconfig(path: &Path, name: Option<&str>) -> anyhow::Result<RunConfig> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut config =
        runconfig::from_json(&bytes).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if let Some(name) = name {
        config.name = name.to_owned();
    }
    Ok(config)
}

/// ToolHive's default name: the image's last path segment without tag or digest.
fn name_from_image(image: &str) -> Option<String> {
    let last = image.rsplit('/').next()?;
    let bare = last.split(['@', ':']).next()?;
    let name: String = bare
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    (!name.is_empty()).then(|| name.to_owned())
}

fn key_value(text: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(usage(format!("{flag} {text:?}: expected KEY=VALUE"))),
    }
}

/// `SECRET,key=KEY[,target=ENV]`.
fn secret(text: &str) -> anyhow::Result<SecretRef> {
    let mut parts = text.split(',');
    let name = parts.next().unwrap_or_default().to_owned();
    let mut reference = SecretRef {
        name,
        key: None,
        target_env: None,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("key", key)) => reference.key = Some(key.to_owned()),
            Some(("target", env)) => reference.target_env = Some(env.to_owned()),
            _ => {
                return Err(usage(format!(
                    "--secret {text:?}: unknown part {part:?}; expected SECRET,key=KEY[,target=ENV]"
                )));
            }
        }
    }
    if reference.name.is_empty() || reference.key.is_none() {
        return Err(usage(format!(
            "--secret {text:?}: expected SECRET,key=KEY[,target=ENV] (a Kubernetes Secret and one of its keys)"
        )));
    }
    Ok(reference)
}

fn oidc(args: &Args) -> Option<OidcConfig> {
    let any = args.oidc_issuer.is_some()
        || args.oidc_audience.is_some()
        || args.oidc_jwks_url.is_some()
        || args.oidc_introspection_url.is_some()
        || args.oidc_client_id.is_some();
    any.then(|| OidcConfig {
        issuer: args.oidc_issuer.clone(),
        audience: args.oidc_audience.clone(),
        jwks_url: args.oidc_jwks_url.clone(),
        introspection_url: args.oidc_introspection_url.clone(),
        client_id: args.oidc_client_id.clone(),
        scopes: args.oidc_scopes.clone(),
        ..OidcConfig::default()
    })
}

fn telemetry(args: &Args) -> anyhow::Result<Option<TelemetryConfig>> {
    if args.otel_endpoint.is_none() && !args.otel_enable_prometheus_metrics_path {
        return Ok(None);
    }
    let exporting = args.otel_endpoint.is_some();
    Ok(Some(TelemetryConfig {
        endpoint: args.otel_endpoint.clone(),
        service_name: args.otel_service_name.clone(),
        tracing_enabled: exporting,
        metrics_enabled: exporting,
        sampling_rate: args.otel_sampling_rate.map(SamplingRate::Number),
        headers: args
            .otel_headers
            .iter()
            .map(|h| key_value(h, "--otel-headers"))
            .collect::<anyhow::Result<_>>()?,
        insecure: args.otel_insecure,
        prometheus_enabled: args.otel_enable_prometheus_metrics_path,
        ..TelemetryConfig::default()
    }))
}

/// ToolHive's tools-override file: `{"toolsOverride": {TOOL: {name, description}}}`.
fn tools_override(path: &Path) -> anyhow::Result<BTreeMap<String, ToolOverride>> {
    let value = read_structured(path)?;
    let map = value.get("toolsOverride").cloned().unwrap_or(value);
    serde_json::from_value(map).map_err(|e| {
        usage(format!(
            "--tools-override {}: {e}; expected {{\"toolsOverride\": {{TOOL: {{\"name\": …, \"description\": …}}}}}}",
            path.display()
        ))
    })
}

/// A JSON or YAML file as a JSON value.
fn read_structured(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// The manifests of `config` in `namespace`, labelled as created by `thv`, after the
/// webhook's checks: the first error is refused here, in flag terms where a flag
/// produced the field, before anything reaches the cluster. Warnings are printed.
pub fn manifests(
    config: &RunConfig,
    namespace: &str,
    from_file: bool,
) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = admission::to_manifests(config).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        usage(format!(
            "this RunConfig has no MCPServer form:\n{}",
            lines.join("\n")
        ))
    })?;
    let mut catalog = admission::InMemoryCatalog::default();
    for manifest in &mut manifests {
        let meta = manifest.meta_mut();
        meta.namespace = Some(namespace.to_owned());
        meta.labels.get_or_insert_with(BTreeMap::new).insert(
            crate::cluster::CREATED_BY.to_owned(),
            crate::cluster::FIELD_MANAGER.to_owned(),
        );
        catalog.add(manifest.clone());
    }
    let api_version = format!("{}/{}", api::GROUP, api::VERSION);
    let mut errors = Vec::new();
    for manifest in &manifests {
        let report = admission::check_manifest(manifest, &api_version, &catalog);
        for warning in &report.warnings {
            eprintln!("warning: {}", in_flag_terms(warning, from_file));
        }
        errors.extend(report.errors.iter().map(|e| in_flag_terms(e, from_file)));
    }
    if !errors.is_empty() {
        bail!(usage(format!(
            "the cluster would refuse this server:\n  {}",
            errors.join("\n  ")
        )));
    }
    Ok(manifests)
}

fn in_flag_terms(finding: &admission::Finding, from_file: bool) -> String {
    match flag_of(&finding.path) {
        Some(flag) if !from_file => format!("{flag} ({finding})"),
        _ => finding.to_string(),
    }
}

/// `thv run`.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    if args.from_config.is_some() && args.image.is_some() {
        bail!(usage("IMAGE and --from-config exclude each other"));
    }
    let cluster = Cluster::connect(&args.cluster).await?;
    cluster.require_crds().await?;
    let config = match (&args.from_config, &args.image) {
        (Some(path), _) => read_runconfig(path, args.name.as_deref())?,
        (None, Some(source)) if !crate::registry::is_image_reference(source) => {
            let (registry, entry) = crate::registry::find(&cluster, source).await?;
            println!("{source}: {} from MCPRegistry {registry}", entry.image);
            runconfig(args, Some((source, &entry)))?
        }
        (None, _) => runconfig(args, None)?,
    };
    let manifests = manifests(&config, &cluster.namespace, args.from_config.is_some())?;
    crate::resources::refuse_foreign(&cluster, &manifests).await?;
    for manifest in &manifests {
        crate::resources::apply(&cluster, manifest).await?;
    }
    let name = config.name.clone();
    println!(
        "MCPServer {name} applied in namespace {}",
        cluster.namespace
    );
    let server = crate::wait::ready(&cluster, &name, args.timeout).await?;
    crate::proxy::forward(&cluster, &args.cluster, &server, args.port, args.foreground).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_image_like_toolhives() {
        assert_eq!(
            name_from_image("ghcr.io/example/fetch:1.2").as_deref(),
            Some("fetch")
        );
        assert_eq!(
            name_from_image("docker.io/mcp/Git_Hub@sha256:ab").as_deref(),
            Some("git-hub")
        );
        assert_eq!(name_from_image("localhost:5000/x").as_deref(), Some("x"));
        assert_eq!(name_from_image(":"), None);
    }

    fn args(line: &[&str]) -> Args {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: Args,
        }
        Cli::parse_from(std::iter::once("thv").chain(line.iter().copied())).run
    }

    fn entry(json: &str) -> crate::registry::Entry {
        serde_json::from_str(json).expect("an entry")
    }

    #[test]
    fn a_registry_entry_gives_the_defaults_and_flags_win() {
        let time = entry(
            r#"{"image": "docker.io/mcp/time:1", "transport": "streamable-http", "target_port": 8000,
                "args": ["--serve"], "env_vars": [{"name": "TZ", "default": "UTC"}, {"name": "LANG", "default": "C"}]}"#,
        );
        let config = runconfig(
            &args(&["time", "--env", "TZ=Europe/Paris"]),
            Some(("time", &time)),
        )
        .expect("builds");
        assert_eq!(config.name, "time");
        let Workload::Container(c) = &config.workload else {
            panic!("a container")
        };
        assert_eq!(
            (c.image.as_str(), c.transport.as_str(), c.target_port),
            ("docker.io/mcp/time:1", "streamable-http", Some(8000))
        );
        assert_eq!(c.args, ["--serve"]);
        let env: Vec<(&str, &str)> = c
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(env, [("TZ", "Europe/Paris"), ("LANG", "C")]);
        let overridden = runconfig(
            &args(&["time", "--transport", "sse", "--", "--other"]),
            Some(("time", &time)),
        )
        .expect("builds");
        let Workload::Container(c) = &overridden.workload else {
            panic!("a container")
        };
        assert_eq!(
            (c.transport.as_str(), c.args.as_slice()),
            ("sse", ["--other".to_owned()].as_slice())
        );
    }

    #[test]
    fn a_required_variable_without_a_value_is_a_usage_error_naming_the_flag() {
        let gh = entry(
            r#"{"image": "ghcr.io/github/github-mcp-server:1", "transport": "stdio",
                "env_vars": [{"name": "GITHUB_TOKEN", "required": true, "secret": true}]}"#,
        );
        let error = runconfig(&args(&["github"]), Some(("github", &gh))).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("--secret SECRET,key=KEY,target=GITHUB_TOKEN"),
            "{error}"
        );
        runconfig(
            &args(&["github", "--secret", "gh,key=token,target=GITHUB_TOKEN"]),
            Some(("github", &gh)),
        )
        .expect("given as a secret");
    }

    #[test]
    fn secrets_need_a_key() {
        let s = secret("github,key=token,target=GITHUB_TOKEN").expect("valid");
        assert_eq!(
            (s.name.as_str(), s.key.as_deref(), s.target_env.as_deref()),
            ("github", Some("token"), Some("GITHUB_TOKEN"))
        );
        assert!(secret("github").is_err());
        assert!(secret("github,value=x").is_err());
    }

    #[test]
    fn findings_name_the_flag_that_produced_the_field() {
        assert_eq!(flag_of("spec.env[0].name"), Some("--env"));
        assert_eq!(
            flag_of("spec.toolConfigRef (MCPToolConfig x-tools): spec.toolsFilter[1]"),
            Some("--tools/--tools-override")
        );
        assert_eq!(flag_of("spec.envFrom"), None);
        assert_eq!(flag_of("spec.proxyPort"), None);
    }
}
