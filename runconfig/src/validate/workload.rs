//! Workload rules: transport, image reference, ports, environment, secrets, volumes and
//! the permission profile.

use std::collections::BTreeSet;

use crate::config::{self, Workload};
use crate::error::Reason;
use crate::image::ImageReference;
use crate::path::FieldPath;
use crate::validate::Check;

/// How the MCP server speaks MCP: the one parsed form of a transport's spelling (the
/// RunConfig's, the CRD's and the registry document's are the same three words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// stdin/stdout.
    Stdio,
    /// Legacy HTTP+SSE.
    Sse,
    /// Streamable HTTP.
    StreamableHttp,
}

impl Transport {
    /// Every accepted spelling, for error messages.
    pub const ALLOWED: &'static str = "stdio, sse or streamable-http";

    /// Parses the RunConfig spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stdio" => Some(Self::Stdio),
            "sse" => Some(Self::Sse),
            "streamable-http" => Some(Self::StreamableHttp),
            _ => None,
        }
    }

    /// The spelling [`Transport::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Sse => "sse",
            Self::StreamableHttp => "streamable-http",
        }
    }
}

/// A validated workload.
#[derive(Clone, Debug)]
pub enum ValidatedWorkload {
    /// A container to run.
    Container(ContainerWorkload),
    /// A remote server to reach.
    Remote(RemoteWorkload),
}

/// A validated container workload.
#[derive(Clone, Debug)]
pub struct ContainerWorkload {
    /// The parsed image reference.
    pub image: ImageReference,
    /// Transport of the server.
    pub transport: Transport,
    /// Port of an HTTP server (defaults to 8080 for HTTP transports).
    pub target_port: Option<u16>,
    /// Permission profile.
    pub permission_profile: Option<PermissionProfile>,
    /// Headers added to every request toward an HTTP server.
    pub headers: Vec<ForwardedHeader>,
}

/// A validated permission profile.
#[derive(Clone, Debug, PartialEq)]
pub enum PermissionProfile {
    /// No network access.
    None,
    /// Outbound network allowed.
    Network,
    /// A full profile.
    Inline(config::Profile),
}

/// A validated remote workload.
#[derive(Clone, Debug)]
pub struct RemoteWorkload {
    /// The server's MCP endpoint.
    pub url: url::Url,
    /// Its transport (never stdio).
    pub transport: Transport,
    /// Headers added to every request toward it.
    pub headers: Vec<ForwardedHeader>,
}

/// A header added toward a remote server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedHeader {
    /// The name, lower-cased (an HTTP token).
    pub name: String,
    /// Where the value comes from.
    pub value: HeaderValueSource,
}

/// Where a forwarded header's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValueSource {
    /// The RunConfig's literal value.
    Literal(String),
    /// The environment variable of this name, read when the proxy starts.
    Env(String),
}

/// Headers the proxy owns on the way to a server: routing, hop-by-hop and framing
/// headers, the client identity it reports, MCP's own session headers, and the content
/// negotiation it relies on (a compressed `tools/list` would pass the tool filter and
/// Cedar's list rewrite unread). ToolHive refuses the same set, less the last two groups.
pub const RESTRICTED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "mcp-session-id",
    "mcp-protocol-version",
    "accept",
    "accept-encoding",
    "content-type",
];

/// An HTTP token (RFC 9110 §5.6.2): what a header name may be.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

fn headers(
    headers: &[config::ForwardedHeader],
    path: &FieldPath,
    check: &mut Check,
) -> Vec<ForwardedHeader> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let at = path.index(i);
        let name = header.name.to_ascii_lowercase();
        if !is_token(&header.name) {
            check.fail(
                at.key("name"),
                Reason::InvalidFormat,
                format!("{:?} is not an HTTP header name", header.name),
                "letters, digits and !#$%&'*+-.^_`|~, e.g. X-API-Key",
            );
            continue;
        }
        if RESTRICTED_HEADERS.contains(&name.as_str()) {
            check.fail(
                at.key("name"),
                Reason::NotSupported,
                format!(
                    "{} is set by the proxy and cannot be forwarded",
                    header.name
                ),
                "a header of the server's own, e.g. X-API-Key or X-Tenant-ID",
            );
            continue;
        }
        if !seen.insert(name.clone()) {
            check.fail(
                at.key("name"),
                Reason::Duplicate,
                format!("{} is given twice", header.name),
                "each header once",
            );
            continue;
        }
        let value = match (&header.value, &header.value_env) {
            (Some(value), None) => {
                if value.chars().any(|c| c.is_control() && c != '\t') {
                    check.fail(
                        at.key("value"),
                        Reason::InvalidFormat,
                        "the value holds a control character (a line break?)",
                        "one line of visible characters",
                    );
                    continue;
                }
                HeaderValueSource::Literal(value.clone())
            }
            (None, Some(env)) => {
                if !check.env_name(&at.key("value_env"), env) {
                    continue;
                }
                HeaderValueSource::Env(env.clone())
            }
            _ => {
                check.fail(
                    at.clone(),
                    Reason::InvalidFormat,
                    "a header needs exactly one of value and value_env",
                    "value (literal) or value_env (an environment variable)",
                );
                continue;
            }
        };
        out.push(ForwardedHeader { name, value });
    }
    out
}

pub fn validate(
    workload: &Workload,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedWorkload> {
    match workload {
        Workload::Container(c) => {
            container(c, &path.key("container"), check).map(ValidatedWorkload::Container)
        }
        Workload::Remote(r) => remote(r, &path.key("remote"), check).map(ValidatedWorkload::Remote),
    }
}

fn transport(text: &str, path: &FieldPath, check: &mut Check) -> Option<Transport> {
    let parsed = Transport::parse(text);
    if parsed.is_none() {
        check.fail(
            path.clone(),
            Reason::NotSupported,
            format!("unknown transport {text:?}"),
            Transport::ALLOWED,
        );
    }
    parsed
}

fn container(
    c: &config::ContainerWorkload,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ContainerWorkload> {
    let image = image(&c.image, &path.key("image"), check);
    let transport = transport(&c.transport, &path.key("transport"), check);
    let target_port = match c.target_port {
        Some(port) => check.port(&path.key("target_port"), port).map(Some),
        None => Some(None),
    };
    // More than one replica of a stdio server is run as one (`workload_k8s` caps it and
    // says so): ToolHive accepts such manifests, so they are not refused.
    if let Some(replicas) = c.replicas
        && replicas < 0
    {
        check.fail(
            path.key("replicas"),
            Reason::OutOfRange,
            format!("{replicas} replicas"),
            "zero or more",
        );
    }

    let mut env_names = BTreeSet::new();
    for (i, var) in c.env.iter().enumerate() {
        let var_path = path.key("env").index(i).key("name");
        if check.env_name(&var_path, &var.name) && !env_names.insert(var.name.as_str()) {
            check.fail(
                var_path,
                Reason::Duplicate,
                format!("{:?} is set twice", var.name),
                "each variable once",
            );
        }
    }
    for (i, secret) in c.secrets.iter().enumerate() {
        let secret_path = path.key("secrets").index(i);
        check.required(
            &secret_path.key("name"),
            Some(&secret.name),
            "the secret's name",
        );
        if let Some(key) = &secret.key {
            check.required(&secret_path.key("key"), Some(key), "the secret's key");
        }
        let target = secret.target_env.as_deref().or(secret.key.as_deref());
        match target {
            None => check.fail(
                secret_path.key("target_env"),
                Reason::Required,
                "no environment variable to receive the secret",
                "set target_env, or key (which it defaults to)",
            ),
            Some(target) => {
                let target_path = secret_path.key(if secret.target_env.is_some() {
                    "target_env"
                } else {
                    "key"
                });
                if check.env_name(&target_path, target) && !env_names.insert(target) {
                    check.fail(
                        target_path,
                        Reason::Duplicate,
                        format!("{target:?} is already set by env or another secret"),
                        "each variable once",
                    );
                }
            }
        }
    }
    let mut mount_paths = BTreeSet::new();
    for (i, volume) in c.volumes.iter().enumerate() {
        let volume_path = path.key("volumes").index(i);
        check.required(
            &volume_path.key("host_path"),
            Some(&volume.host_path),
            "the host path",
        );
        if !volume.mount_path.starts_with('/') {
            check.fail(
                volume_path.key("mount_path"),
                Reason::InvalidFormat,
                format!("{:?} is not an absolute path", volume.mount_path),
                "an absolute path such as /data",
            );
        } else if !mount_paths.insert(volume.mount_path.trim_end_matches('/')) {
            check.fail(
                volume_path.key("mount_path"),
                Reason::Duplicate,
                format!("{:?} is mounted twice", volume.mount_path),
                "one volume per mount path",
            );
        }
    }
    if let Some(patch) = &c.pod_template_patch
        && !patch.is_object()
    {
        check.fail(
            path.key("pod_template_patch"),
            Reason::InvalidFormat,
            "the pod template patch is not an object",
            "a PodTemplateSpec object",
        );
    }
    let permission_profile = match &c.permission_profile {
        None => Some(None),
        Some(profile) => {
            permission_profile(profile, &path.key("permission_profile"), check).map(Some)
        }
    };
    let headers = headers(&c.headers, &path.key("headers"), check);
    if !c.headers.is_empty() && transport == Some(Transport::Stdio) {
        check.fail(
            path.key("headers"),
            Reason::Ineffective,
            "headers are sent to a server over HTTP, but a stdio server reads no headers",
            "a server on sse or streamable-http, or no headers",
        );
    }
    Some(ContainerWorkload {
        image: image?,
        transport: transport?,
        target_port: target_port?,
        permission_profile: permission_profile?,
        headers,
    })
}

/// An OCI image reference: `[registry/]repository[:tag][@digest]`.
fn image(text: &str, path: &FieldPath, check: &mut Check) -> Option<ImageReference> {
    if text.trim().is_empty() {
        check.fail(
            path.clone(),
            Reason::Required,
            "the image is empty",
            "an image reference such as ghcr.io/org/server:1.0",
        );
        return None;
    }
    match ImageReference::parse(text) {
        Ok(reference) => Some(reference),
        Err(e) => {
            check.fail(
                path.clone(),
                Reason::InvalidFormat,
                format!("{text:?} is not an image reference: {e}"),
                "[registry/]repository[:tag][@sha256:digest], lowercase repository",
            );
            None
        }
    }
}

fn permission_profile(
    profile: &config::PermissionProfile,
    path: &FieldPath,
    check: &mut Check,
) -> Option<PermissionProfile> {
    match profile {
        config::PermissionProfile::Builtin(name) => match name.as_str() {
            "none" => Some(PermissionProfile::None),
            "network" => Some(PermissionProfile::Network),
            other => {
                check.fail(
                    path.key("builtin"),
                    Reason::NotSupported,
                    format!("unknown built-in profile {other:?}"),
                    "none or network, or an inline profile",
                );
                None
            }
        },
        config::PermissionProfile::Inline(inline) => {
            let inline_path = path.key("inline");
            let mut ok = true;
            for (list, entries) in [("read", &inline.read), ("write", &inline.write)] {
                for (i, entry) in entries.iter().enumerate() {
                    let (host, container) = entry.split_once(':').unwrap_or((entry, entry));
                    if host.is_empty() || !container.starts_with('/') {
                        ok = false;
                        check.fail(
                            inline_path.key(list).index(i),
                            Reason::InvalidFormat,
                            format!("cannot read mount {entry:?}"),
                            "/path or /host/path:/container/path",
                        );
                    }
                }
            }
            if inline.privileged {
                ok = false;
                check.fail(
                    inline_path.key("privileged"),
                    Reason::Forbidden,
                    "privileged MCP servers are not allowed",
                    "remove privileged; grant paths and hosts explicitly",
                );
            }
            if let Some(outbound) = inline.network.as_ref().and_then(|n| n.outbound.as_ref()) {
                for (i, port) in outbound.allow_port.iter().enumerate() {
                    ok &= check
                        .port(
                            &inline_path
                                .key("network")
                                .key("outbound")
                                .key("allow_port")
                                .index(i),
                            *port,
                        )
                        .is_some();
                }
                for (i, host) in outbound.allow_host.iter().enumerate() {
                    if host.trim().is_empty() || host.contains(['/', ' ']) {
                        ok = false;
                        check.fail(
                            inline_path
                                .key("network")
                                .key("outbound")
                                .key("allow_host")
                                .index(i),
                            Reason::InvalidFormat,
                            format!("{host:?} is not a host name"),
                            "a host such as api.github.com or .example.com",
                        );
                    }
                }
            }
            ok.then(|| PermissionProfile::Inline(inline.clone()))
        }
    }
}

fn remote(
    r: &config::RemoteWorkload,
    path: &FieldPath,
    check: &mut Check,
) -> Option<RemoteWorkload> {
    let url = check.url(&path.key("url"), &r.url, true, "").filter(|url| {
        // The proxy sends each request to the URL's path; a query, a fragment or
        // credentials in it would be dropped, not sent.
        let dropped = [
            (url.query().is_some(), "a query"),
            (url.fragment().is_some(), "a fragment"),
            (
                !url.username().is_empty() || url.password().is_some(),
                "user info",
            ),
        ]
        .into_iter()
        .find_map(|(present, what)| present.then_some(what));
        if let Some(what) = dropped {
            check.fail(
                path.key("url"),
                Reason::NotSupported,
                format!("the remote URL has {what}, which the proxy would not send"),
                "scheme://host[:port]/path; send keys and credentials as headers",
            );
        }
        dropped.is_none()
    });
    let transport = transport(&r.transport, &path.key("transport"), check);
    if transport == Some(Transport::Stdio) {
        check.fail(
            path.key("transport"),
            Reason::NotSupported,
            "a remote server cannot use stdio",
            "sse or streamable-http",
        );
        return None;
    }
    if let Some(auth) = &r.auth {
        check.url(
            &path.key("auth").key("issuer"),
            &auth.issuer,
            false,
            "an https issuer",
        );
        if let Some(env) = &auth.client_secret_env {
            check.env_name(&path.key("auth").key("client_secret_env"), env);
        }
    }
    let headers = headers(&r.headers, &path.key("headers"), check);
    Some(RemoteWorkload {
        url: url?,
        transport: transport?,
        headers,
    })
}
