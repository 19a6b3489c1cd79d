//! `thv convert FILE`: a RunConfig JSON (ours, or ToolHive's schema `v0.1.0`) into the
//! MCPServer YAML with the config objects it needs, or such YAML into a RunConfig, both
//! offline. Where the formats overlap the conversion is lossless; every field that has
//! no counterpart is named in a warning (found by converting back and comparing), never
//! dropped silently.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use api::{MCPServer, Manifest};
use runconfig::RunConfig;
use serde_json::Value;

use crate::usage;

/// Arguments of `thv convert`.
#[derive(clap::Args)]
pub struct Args {
    /// A RunConfig JSON file or an MCPServer YAML file (with its config objects); `-`
    /// for standard input. The direction follows from the content.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Write here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Namespace to put on the manifests written.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

/// `thv convert`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let (output, warnings) = if is_runconfig(&text) {
        let config = runconfig::from_json(text.as_bytes())
            .map_err(|e| usage(format!("{}: {e}", args.file.display())))?;
        let (mut manifests, warnings) = to_manifests(&config)?;
        if let Some(namespace) = &args.namespace {
            for m in &mut manifests {
                m.meta_mut().namespace = Some(namespace.clone());
            }
        }
        (crate::export::to_yaml(&mut manifests)?, warnings)
    } else {
        let (config, warnings) = to_runconfig(&text)?;
        let mut json = String::from_utf8(runconfig::to_json(&config))?;
        json.push('\n');
        (json, warnings)
    };
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    crate::export::write(args.output.as_ref(), &output)
}

/// A JSON object with `schema_version` is a RunConfig; anything else is read as YAML
/// manifests.
fn is_runconfig(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("schema_version").is_some())
}

/// RunConfig → manifests, with a warning per RunConfig field the manifests cannot carry.
pub fn to_manifests(config: &RunConfig) -> anyhow::Result<(Vec<Manifest>, Vec<String>)> {
    let manifests = admission::to_manifests(config).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        usage(format!(
            "this RunConfig has no MCPServer form:\n{}",
            lines.join("\n")
        ))
    })?;
    let back = mapped(&manifests)?;
    let mut lost = Vec::new();
    differences(&to_value(config), &to_value(&back), "", &mut lost);
    let warnings = lost
        .into_iter()
        .map(|(path, was, now)| {
            format!("{path}: {was} has no MCPServer counterpart (converts back as {now})")
        })
        .collect();
    Ok((manifests, warnings))
}

/// Manifests → RunConfig, with a warning per MCPServer field the RunConfig cannot carry.
pub fn to_runconfig(text: &str) -> anyhow::Result<(RunConfig, Vec<String>)> {
    let mut manifests = Vec::new();
    for (i, document) in Manifest::all_from_yaml(text).into_iter().enumerate() {
        manifests.push(document.map_err(|e| usage(format!("document {}: {e}", i + 1)))?);
    }
    let config = mapped(&manifests)?;
    let again = admission::to_manifests(&config).unwrap_or_default();
    let mut warnings = Vec::new();
    for original in &manifests {
        let Some(rebuilt) = again
            .iter()
            .find(|m| m.kind() == original.kind() && m.meta().name == original.meta().name)
        else {
            continue;
        };
        let mut lost = Vec::new();
        differences(
            &original.to_value()["spec"],
            &rebuilt.to_value()["spec"],
            "spec",
            &mut lost,
        );
        let name = original.meta().name.clone().unwrap_or_default();
        warnings.extend(lost.into_iter().map(|(path, was, _)| {
            format!(
                "{} {name}: {path}: {was} has no RunConfig counterpart",
                original.kind()
            )
        }));
    }
    Ok((config, warnings))
}

/// The RunConfig of the one MCPServer among `manifests`, its references resolved
/// among them.
fn mapped(manifests: &[Manifest]) -> anyhow::Result<RunConfig> {
    let servers: Vec<&MCPServer> = manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::MCPServer(s) => Some(s),
            _ => None,
        })
        .collect();
    let [server] = servers.as_slice() else {
        bail!(usage(format!(
            "expected one MCPServer, found {}",
            servers.len()
        )));
    };
    let mut catalog = admission::InMemoryCatalog::default();
    for manifest in manifests {
        catalog.add(manifest.clone());
    }
    let referenced = admission::Referenced::from_catalog(server, &catalog);
    let mapped = admission::from_mcpserver(server, &referenced.references());
    if let Some(missing) = mapped.missing.first() {
        bail!(usage(format!(
            "{} {} referenced by {} is not in the file; add it to the file",
            missing.kind, missing.name, missing.field
        )));
    }
    if !mapped.problems.is_empty() {
        let lines: Vec<String> = mapped.problems.iter().map(|p| format!("  {p}")).collect();
        bail!(usage(format!("cannot convert:\n{}", lines.join("\n"))));
    }
    Ok(mapped.config)
}

fn to_value(config: &RunConfig) -> Value {
    serde_json::from_slice(&runconfig::to_json(config)).unwrap_or_default()
}

/// Where `before` and `after` differ: (dotted path, value before, value after), at the
/// deepest object level that differs.
fn differences(before: &Value, after: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                differences(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    &at,
                    out,
                );
            }
        }
        _ if before == after => {}
        (Value::Null, _) => {} // a default filled in on the way back is not a loss
        _ => out.push((path.to_owned(), before.to_string(), after.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLHIVE: &str = include_str!("../tests/fixtures/toolhive-runconfig.json");

    #[test]
    fn a_toolhive_runconfig_converts_both_ways() {
        let config = runconfig::from_json(TOOLHIVE.as_bytes()).expect("ToolHive v0.1.0 reads");
        let (mut manifests, warnings) = to_manifests(&config).expect("converts");
        let yaml = crate::export::to_yaml(&mut manifests).expect("yaml");
        assert!(yaml.contains("kind: MCPServer"), "{yaml}");
        let (back, _) = to_runconfig(&yaml).expect("converts back");
        let mut lost = Vec::new();
        differences(&to_value(&config), &to_value(&back), "", &mut lost);
        let named: Vec<&str> = lost.iter().map(|(p, _, _)| p.as_str()).collect();
        for (path, _, _) in &lost {
            assert!(
                warnings.iter().any(|w| w.starts_with(path.as_str())),
                "{path} changed without a warning: {warnings:?}"
            );
        }
        assert!(!named.contains(&"workload.container.image"), "{named:?}");
    }

    #[test]
    fn mcpserver_fields_without_a_runconfig_counterpart_are_named() {
        let yaml = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec:\n  image: ghcr.io/example/fetch:1\n  replicas: 2\n  proxyResources: {limits: {cpu: 200m}}\n";
        let (config, warnings) = to_runconfig(yaml).expect("converts");
        assert_eq!(config.name, "fetch");
        let text = warnings.join("\n");
        assert!(text.contains("spec.replicas"), "{text}");
        assert!(text.contains("spec.proxyResources"), "{text}");
    }

    #[test]
    fn an_mcpserver_converts_back_to_itself() {
        let yaml = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec:\n  image: ghcr.io/example/fetch:1\n  args: [stdio]\n  env: [{name: A, value: b}]\n";
        let original = match Manifest::from_yaml(yaml).expect("reads") {
            Manifest::MCPServer(s) => s,
            _ => unreachable!(),
        };
        let (config, warnings) = to_runconfig(yaml).expect("converts");
        assert!(warnings.is_empty(), "{warnings:?}");
        let (manifests, warnings) = to_manifests(&config).expect("converts back");
        assert!(warnings.is_empty(), "{warnings:?}");
        let Some(Manifest::MCPServer(back)) = manifests.first() else {
            panic!("an MCPServer first");
        };
        assert_eq!(
            back.spec, original.spec,
            "the operator-created ServiceAccount stays implicit"
        );
    }

    #[test]
    fn a_missing_reference_is_an_error_that_names_it() {
        let yaml = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec:\n  image: x\n  toolConfigRef: {name: tools}\n";
        let error = to_runconfig(yaml).expect_err("missing");
        assert!(error.to_string().contains("MCPToolConfig tools"), "{error}");
    }

    mod properties {
        use proptest::collection::{btree_map, vec};
        use proptest::option;
        use proptest::prelude::*;
        use runconfig::config::*;

        use super::*;

        fn word() -> impl Strategy<Value = String> {
            "[a-z][a-z0-9-]{0,10}"
        }

        prop_compose! {
            /// RunConfigs in the part of the schema an MCPServer can express.
            fn representable()(
                name in "[a-z][a-z0-9]{0,20}",
                image in "[a-z]{1,8}\\.io/[a-z]{1,8}/[a-z]{1,8}:[0-9]{1,3}",
                transport in prop_oneof![Just("stdio"), Just("sse"), Just("streamable-http")],
                mode in prop_oneof![Just("sse"), Just("streamable-http")],
                args in vec("[a-z-]{1,8}", 0..3),
                env in vec(("[A-Z][A-Z_]{0,8}", word()).prop_map(|(name, value)| EnvVar { name, value }), 0..3),
                secrets in vec((word(), word(), option::of("[A-Z][A-Z_]{0,8}"))
                    .prop_map(|(name, key, target_env)| SecretRef { name, key: Some(key), target_env }), 0..2),
                target_port in option::of(1i64..65535),
                filter in vec(word(), 0..3),
                overrides in btree_map(word(), (option::of(word()), option::of(word()))
                    .prop_map(|(name, description)| ToolOverride { name, description }), 0..2),
                audit in any::<bool>(),
                oidc in option::of((word(), word())),
                telemetry in option::of((word(), any::<bool>(), any::<bool>())),
                service_account in option::of(word()),
            ) -> RunConfig {
                let http = transport != "stdio";
                RunConfig {
                    schema_version: runconfig::SCHEMA_VERSION.to_owned(),
                    name,
                    group: None,
                    debug: false,
                    workload: Workload::Container(ContainerWorkload {
                        image, args, transport: transport.to_owned(),
                        target_port: if http { target_port } else { None },
                        env, secrets, service_account,
                        ..ContainerWorkload::default()
                    }),
                    proxy: ProxyConfig {
                        mode: if http { transport.to_owned() } else { mode.to_owned() },
                        audit: audit.then(AuditConfig::default),
                        oidc: oidc.map(|(host, audience)| OidcConfig {
                            issuer: Some(format!("https://{host}.example.com")),
                            audience: Some(audience),
                            ..OidcConfig::default()
                        }),
                        telemetry: telemetry.map(|(host, tracing, metrics)| TelemetryConfig {
                            endpoint: Some(format!("{host}:4318")),
                            tracing_enabled: tracing,
                            metrics_enabled: metrics,
                            ..TelemetryConfig::default()
                        }),
                        tools: ToolsConfig { filter, overrides },
                        ..ProxyConfig::default()
                    },
                }
            }
        }

        proptest! {
            /// RunConfig → manifests → RunConfig → manifests: the manifests are a fixed
            /// point, and every field that came back different was warned about.
            #[test]
            fn runconfigs_round_trip_through_manifests(config in representable()) {
                let (manifests, warnings) = to_manifests(&config).expect("representable");
                let back = mapped(&manifests).expect("maps back");
                let (again, _) = to_manifests(&back).expect("still representable");
                let values = |m: &[Manifest]| m.iter().map(Manifest::to_value).collect::<Vec<_>>();
                prop_assert_eq!(values(&again), values(&manifests));
                let mut lost = Vec::new();
                differences(&to_value(&config), &to_value(&back), "", &mut lost);
                for (path, _, _) in &lost {
                    prop_assert!(warnings.iter().any(|w| w.starts_with(path.as_str())), "{} unwarned", path);
                }
            }
        }
    }
}
