//! The server's facts read from the RunConfig (name, transport, port, replicas), and the
//! `mcp` container configured from them, as ToolHive's runner configures it.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, SecretKeySelector,
};
use runconfig::config::{ContainerWorkload, Workload};
use runconfig::validate::Transport;
use runconfig::{FieldPath, Reason, RunConfig};

use crate::findings::Findings;
use crate::{names, security};

/// Port of an HTTP server whose RunConfig sets none (ToolHive's `mcpPort` default).
pub const DEFAULT_PORT: u16 = 8080;

/// Variables ToolHive's transport setup sets; a RunConfig value for one is replaced.
const TRANSPORT_ENV: &str = "MCP_TRANSPORT";
const HTTP_ENV: &[&str] = &["MCP_PORT", "FASTMCP_PORT", "MCP_HOST"];

/// The container workload of a RunConfig, with the facts every object needs.
pub(crate) struct Server<'a> {
    pub name: &'a str,
    pub workload: &'a ContainerWorkload,
    pub transport: Transport,
    /// The port an HTTP server listens on; `None` for stdio.
    pub port: Option<u16>,
    /// Where the workload's fields are: `workload.container`.
    pub path: FieldPath,
}

impl<'a> Server<'a> {
    /// Reads the facts, recording what no object could be built from. `None` for a
    /// remote workload, which runs no pod.
    pub fn read(run: &'a RunConfig, f: &mut Findings) -> Option<Self> {
        let root = FieldPath::root();
        let workload = match &run.workload {
            Workload::Container(c) => c,
            Workload::Remote(_) => {
                f.error(
                    root.key("workload").key("remote"),
                    Reason::NotSupported,
                    "a remote MCP server runs no pod in this cluster",
                    "a container workload",
                );
                return None;
            }
        };
        let path = root.key("workload").key("container");
        let transport = Transport::parse(&workload.transport).unwrap_or_else(|| {
            f.error(
                path.key("transport"),
                Reason::NotSupported,
                format!("unknown transport {:?}", workload.transport),
                Transport::ALLOWED,
            );
            Transport::Stdio
        });
        let port = (transport != Transport::Stdio).then(|| match workload.target_port {
            None => DEFAULT_PORT,
            Some(port) => u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .unwrap_or_else(|| {
                    f.error(
                        path.key("target_port"),
                        Reason::OutOfRange,
                        format!("port {port} is out of range"),
                        "a port from 1 to 65535",
                    );
                    DEFAULT_PORT
                }),
        });
        let server = Self {
            name: &run.name,
            workload,
            transport,
            port,
            path,
        };
        server.check_name(f);
        server.check_pod_fields(f);
        Some(server)
    }

    fn check_name(&self, f: &mut Findings) {
        let (limit, why) = if self.port.is_some() {
            (names::MAX_HTTP_NAME, "its Service mcp-<name>-headless")
        } else {
            (names::MAX_NAME, "its pods' controller-revision-hash label")
        };
        let path = FieldPath::root().key("name");
        if !names::is_dns_label(self.name) {
            f.error(
                path,
                Reason::InvalidFormat,
                format!("{:?} cannot name a StatefulSet", self.name),
                "lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        } else if self.name.len() > limit {
            f.error(
                path,
                Reason::OutOfRange,
                format!("{} characters is too long for {why}", self.name.len()),
                format!("at most {limit} characters"),
            );
        }
    }

    fn check_pod_fields(&self, f: &mut Findings) {
        let w = self.workload;
        if w.image.trim().is_empty() {
            f.error(
                self.path.key("image"),
                Reason::Required,
                "the image is empty",
                "an image reference such as ghcr.io/org/server:1.0",
            );
        } else if w.image.trim() != w.image {
            f.error(
                self.path.key("image"),
                Reason::InvalidFormat,
                "the image has leading or trailing whitespace",
                "the image reference alone",
            );
        }
        if let Some(account) = &w.service_account
            && !names::is_dns_subdomain(account)
        {
            f.error(
                self.path.key("service_account"),
                Reason::InvalidFormat,
                format!("{account:?} is not a ServiceAccount name"),
                "lowercase letters, digits, '-' and '.'",
            );
        }
        crate::patch::labels_are_valid(&w.labels, &self.path.key("labels"), f);
        for (key, value) in &w.labels {
            if names::required_labels(self.name)
                .get(key)
                .is_some_and(|required| required != value)
            {
                f.note(
                    self.path.key("labels").key(key.as_str()),
                    Reason::Conflict,
                    format!("label {key} is set by ToolHive; {value:?} is replaced"),
                    "another label key",
                );
            }
        }
    }

    /// Replicas for the StatefulSet: unset stays unset (an HPA or the default of 1 then
    /// decides); a stdio server gets at most one, the process the proxy attaches to.
    pub fn replicas(&self, f: &mut Findings) -> Option<i32> {
        let replicas = self.workload.replicas?;
        let path = self.path.key("replicas");
        let Some(count) = i32::try_from(replicas).ok().filter(|r| *r >= 0) else {
            f.error(
                path,
                Reason::OutOfRange,
                format!("{replicas} replicas"),
                "from 0 to 2147483647",
            );
            return None;
        };
        if self.transport == Transport::Stdio && count > 1 {
            f.note(
                path,
                Reason::OutOfRange,
                format!("{count} replicas of a stdio server: running 1"),
                "at most 1: the proxy attaches to a single process's stdin and stdout",
            );
            return Some(1);
        }
        Some(count)
    }

    /// Configures the `mcp` container (the patch's, or a new one) as ToolHive's runner
    /// does: image replaced, RunConfig args and env appended after the patch's, stdin
    /// for stdio, the port for HTTP, restricted defaults where the patch sets none.
    /// `patch_index`: the container's index in the patch, when it comes from there.
    pub fn configure(
        &self,
        container: &mut Container,
        patch_index: Option<usize>,
        f: &mut Findings,
    ) {
        let w = self.workload;
        if let (Some(image), Some(i)) = (container.image.as_deref(), patch_index)
            && image != w.image
        {
            f.note(
                self.path
                    .key("pod_template_patch")
                    .key("spec")
                    .key("containers")
                    .index(i)
                    .key("image"),
                Reason::Ineffective,
                format!("image {image:?} of the mcp container is replaced by the RunConfig's"),
                "set the image in the RunConfig (MCPServer spec.image)",
            );
        }
        container.image = Some(w.image.clone());
        container
            .args
            .get_or_insert_with(Vec::new)
            .extend(w.args.iter().cloned());
        let env = container.env.get_or_insert_with(Vec::new);
        env.extend(self.env(f));
        let stdio = self.transport == Transport::Stdio;
        container.stdin = Some(stdio);
        container.stdin_once = Some(false);
        container.tty = Some(false);
        // ToolHive declares the port for sse only; declaring it for streamable-http too is
        // additive and documents what the headless Service targets.
        if let Some(port) = self.port {
            let ports = container.ports.get_or_insert_with(Vec::new);
            if !ports.iter().any(|p| p.container_port == i32::from(port)) {
                ports.push(ContainerPort {
                    container_port: i32::from(port),
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                });
            }
        }
        // A server that exits says why on stderr: the kubelet keeps the end of its log
        // as the termination message, which the proxy reports on a crash loop.
        if container.termination_message_policy.is_none() {
            container.termination_message_policy = Some("FallbackToLogsOnError".to_owned());
        }
        security::fill_server(container);
    }

    /// RunConfig env in order, then secrets as references, then the transport's
    /// variables (which replace a RunConfig value of the same name, as in ToolHive).
    fn env(&self, f: &mut Findings) -> Vec<EnvVar> {
        let mut reserved = vec![TRANSPORT_ENV];
        if self.port.is_some() {
            reserved.extend_from_slice(HTTP_ENV);
        }
        let mut env = Vec::new();
        let usable = |name: &str, path: FieldPath, f: &mut Findings| {
            if !names::is_env_name(name) {
                f.error(
                    path,
                    Reason::InvalidFormat,
                    format!("{name:?} is not an environment variable name"),
                    "printable characters without '='",
                );
                false
            } else if reserved.contains(&name) {
                f.note(
                    path,
                    Reason::Conflict,
                    format!(
                        "{name} is set by ToolHive for the {} transport; this value is replaced",
                        self.workload.transport
                    ),
                    "another variable name",
                );
                false
            } else {
                true
            }
        };
        for (i, var) in self.workload.env.iter().enumerate() {
            if usable(&var.name, self.path.key("env").index(i).key("name"), f) {
                env.push(EnvVar {
                    name: var.name.clone(),
                    value: Some(var.value.clone()),
                    ..EnvVar::default()
                });
            }
        }
        for (i, secret) in self.workload.secrets.iter().enumerate() {
            let path = self.path.key("secrets").index(i);
            let ok_name = names::is_dns_subdomain(&secret.name);
            if !ok_name {
                f.error(
                    path.key("name"),
                    Reason::InvalidFormat,
                    format!("{:?} is not a Secret name", secret.name),
                    "lowercase letters, digits, '-' and '.'",
                );
            }
            let Some(key) = &secret.key else {
                f.error(
                    path.key("key"),
                    Reason::Required,
                    "a Kubernetes Secret is read by key",
                    "the key inside the Secret",
                );
                continue;
            };
            if !names::is_config_key(key) {
                f.error(
                    path.key("key"),
                    Reason::InvalidFormat,
                    format!("{key:?} is not a Secret key"),
                    "letters, digits, '-', '_' and '.'",
                );
                continue;
            }
            let (target, target_path) = match &secret.target_env {
                Some(target) => (target, path.key("target_env")),
                None => (key, path.key("key")),
            };
            if usable(target, target_path, f) && ok_name {
                env.push(EnvVar {
                    name: target.clone(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret.name.clone(),
                            key: key.clone(),
                            optional: Some(false),
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                });
            }
        }
        let literal = |name: &str, value: String| EnvVar {
            name: name.to_owned(),
            value: Some(value),
            ..EnvVar::default()
        };
        env.push(literal(TRANSPORT_ENV, self.workload.transport.clone()));
        if let Some(port) = self.port {
            env.push(literal("MCP_PORT", port.to_string()));
            env.push(literal("FASTMCP_PORT", port.to_string()));
            // All interfaces: the Service reaches the pod by its IP. `target_host` names
            // where the proxy connects (the Service), not an address the server can bind,
            // and ToolHive's empty value leaves many servers on 127.0.0.1.
            env.push(literal("MCP_HOST", "0.0.0.0".to_owned()));
        }
        env
    }
}
