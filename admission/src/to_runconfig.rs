//! MCPServer + referenced config objects → RunConfig: the function the operator uses to
//! write `<name>-runconfig` and the webhook uses to validate exactly what would run.
//! Pure: referenced objects are passed in; nothing is fetched here.

use api::authzconfig::AuthzBackend;
use api::common::SessionStorageProvider;
use api::externalauth::ExternalAuthType;
use api::mcpserver::{
    AuthzConfigSource, PermissionProfileType, ProxyMode as CrdProxyMode, Transport as CrdTransport,
};
use api::oidcconfig::OIDCConfigSource;
use api::remoteproxy::{HeaderForwardConfig, RemoteTransport};
use api::{
    MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig, MCPRemoteProxy, MCPServer,
    MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig,
};

use crate::ConfigKind;
use crate::front::{Front, Fronted};
use crate::paths::{Location, PathMap, Via};
use runconfig::config::{
    AuditConfig, AuthzConfig, CedarConfig, ContainerWorkload, EnvVar, ForwardedHeader,
    HttpAuthzConfig, KubernetesServiceAccount, OidcConfig, PermissionProfile, Profile, ProxyConfig,
    RateLimit, RateLimitBucket, RemoteWorkload, RunConfig, SCHEMA_VERSION,
    SESSION_REDIS_PASSWORD_ENV, SamplingRate, SecretRef, SessionRedis, TelemetryConfig,
    ToolOverride, ToolRateLimit, ToolsConfig, VolumeMount, Workload,
};
use runconfig::error::{Reason, Violation, Violations};
use runconfig::path::FieldPath;

/// Environment variable through which the proxy receives the OIDC client secret (set
/// from `clientSecretRef` with a `secretKeyRef`, so the value never enters the RunConfig).
pub const OIDC_CLIENT_SECRET_ENV: &str = "TOOLHIVE_OIDC_CLIENT_SECRET";

/// The objects an MCPServer references, as far as they exist. `None` means "not found".
#[derive(Clone, Debug, Default)]
pub struct References<'a> {
    /// The MCPToolConfig named by `spec.toolConfigRef`.
    pub tool_config: Option<&'a MCPToolConfig>,
    /// The MCPOIDCConfig named by `spec.oidcConfigRef`.
    pub oidc_config: Option<&'a MCPOIDCConfig>,
    /// The MCPAuthzConfig named by `spec.authzConfigRef`.
    pub authz_config: Option<&'a MCPAuthzConfig>,
    /// The content of the ConfigMap key named by `spec.authzConfig.configMap`.
    pub authz_config_map: Option<&'a str>,
    /// The MCPTelemetryConfig named by `spec.telemetryConfigRef`.
    pub telemetry_config: Option<&'a MCPTelemetryConfig>,
    /// The content of the ConfigMap key named by a `configmap` permission profile.
    pub permission_profile_map: Option<&'a str>,
    /// The MCPGroup named by `spec.groupRef`.
    pub group: Option<&'a MCPGroup>,
    /// The MCPExternalAuthConfig named by `spec.externalAuthConfigRef`.
    pub external_auth_config: Option<&'a MCPExternalAuthConfig>,
    /// The MCPWebhookConfig named by `spec.webhookConfigRef`.
    pub webhook_config: Option<&'a MCPWebhookConfig>,
    /// The PEM bundle in the ConfigMap key the MCPOIDCConfig's `caBundleRef` names.
    pub oidc_ca_bundle: Option<&'a str>,
    /// The PEM bundle in the ConfigMap key the MCPTelemetryConfig's `caBundleRef` names.
    pub telemetry_ca_bundle: Option<&'a str>,
}

/// The objects an MCPServer references, owned: what the operator fetched from the
/// cluster, what the webhook found in its catalog (with one object replaced by a
/// proposed new version when a config update is re-checked), what `thv` read from files.
#[derive(Clone, Debug, Default)]
pub struct Referenced {
    /// The MCPToolConfig named by `spec.toolConfigRef`.
    pub tool_config: Option<MCPToolConfig>,
    /// The MCPOIDCConfig named by `spec.oidcConfigRef`.
    pub oidc_config: Option<MCPOIDCConfig>,
    /// The MCPAuthzConfig named by `spec.authzConfigRef`.
    pub authz_config: Option<MCPAuthzConfig>,
    /// The MCPTelemetryConfig named by `spec.telemetryConfigRef`.
    pub telemetry_config: Option<MCPTelemetryConfig>,
    /// The content of the ConfigMap key named by `spec.authzConfig.configMap`.
    pub authz_config_map: Option<String>,
    /// The content of the ConfigMap key named by a `configmap` permission profile.
    pub permission_profile_map: Option<String>,
    /// The MCPGroup named by `spec.groupRef`.
    pub group: Option<MCPGroup>,
    /// The MCPExternalAuthConfig named by `spec.externalAuthConfigRef`.
    pub external_auth_config: Option<MCPExternalAuthConfig>,
    /// The MCPWebhookConfig named by `spec.webhookConfigRef`.
    pub webhook_config: Option<MCPWebhookConfig>,
    /// The PEM bundle in the ConfigMap key the MCPOIDCConfig's `caBundleRef` names.
    pub oidc_ca_bundle: Option<String>,
    /// The PEM bundle in the ConfigMap key the MCPTelemetryConfig's `caBundleRef` names.
    pub telemetry_ca_bundle: Option<String>,
}

impl Referenced {
    /// The borrowed view [`from_mcpserver`] takes.
    pub fn references(&self) -> References<'_> {
        References {
            tool_config: self.tool_config.as_ref(),
            oidc_config: self.oidc_config.as_ref(),
            authz_config: self.authz_config.as_ref(),
            authz_config_map: self.authz_config_map.as_deref(),
            telemetry_config: self.telemetry_config.as_ref(),
            permission_profile_map: self.permission_profile_map.as_deref(),
            group: self.group.as_ref(),
            external_auth_config: self.external_auth_config.as_ref(),
            webhook_config: self.webhook_config.as_ref(),
            oidc_ca_bundle: self.oidc_ca_bundle.as_deref(),
            telemetry_ca_bundle: self.telemetry_ca_bundle.as_deref(),
        }
    }

    /// Whether the referenced `kind` object was found.
    pub fn found(&self, kind: ConfigKind) -> bool {
        match kind {
            ConfigKind::ToolConfig => self.tool_config.is_some(),
            ConfigKind::OidcConfig => self.oidc_config.is_some(),
            ConfigKind::AuthzConfig => self.authz_config.is_some(),
            ConfigKind::TelemetryConfig => self.telemetry_config.is_some(),
            ConfigKind::Group => self.group.is_some(),
            ConfigKind::ExternalAuthConfig => self.external_auth_config.is_some(),
            ConfigKind::WebhookConfig => self.webhook_config.is_some(),
        }
    }
}

/// A reference whose object was not provided (not found in the cluster, or not among
/// the files given to `thv validate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingReference {
    /// The MCPServer field holding the reference.
    pub field: String,
    /// Kind of the missing object.
    pub kind: ReferencedKind,
    /// Its name.
    pub name: String,
}

/// The kind of object an MCPServer reference names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferencedKind {
    /// One of our config kinds.
    Config(ConfigKind),
    /// A ConfigMap (authorization or permission-profile data).
    ConfigMap,
    /// A Secret (a value the proxy receives by environment).
    Secret,
}

impl ReferencedKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config(kind) => kind.kind(),
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
        }
    }
}

impl std::fmt::Display for ReferencedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of mapping an MCPServer.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// The RunConfig; sections whose reference is missing are left out.
    pub config: RunConfig,
    /// Where each RunConfig field came from.
    pub paths: PathMap,
    /// References that could not be resolved.
    pub missing: Vec<MissingReference>,
    /// Content that could not be mapped (e.g. a ConfigMap that is not an authorization
    /// file), located by RunConfig path like validation problems.
    pub problems: Violations,
}

/// Maps an MCPServer and the referenced objects that exist into a RunConfig.
pub fn from_mcpserver(server: &MCPServer, refs: &References<'_>) -> Mapped {
    let mut m = Mapper {
        paths: PathMap::default(),
        missing: Vec::new(),
        problems: Violations::default(),
    };
    let name = server.metadata.name.clone().unwrap_or_default();
    let spec = &server.spec;
    m.paths.local("name", "metadata.name");
    m.paths.local("schema_version", "apiVersion");
    m.front(&server.front(), refs);
    let workload = Workload::Container(m.container(server, refs));
    let transport = spec.transport;
    let mode = match transport {
        CrdTransport::Stdio => {
            m.paths.local("proxy.mode", "spec.proxyMode");
            match spec.proxy_mode {
                CrdProxyMode::Sse => "sse",
                CrdProxyMode::StreamableHttp => "streamable-http",
            }
        }
        // An HTTP server is exposed with its own transport.
        CrdTransport::Sse | CrdTransport::StreamableHttp => {
            m.paths.local("proxy.mode", "spec.transport");
            crate::transport::from_crd(transport).as_str()
        }
    };
    let mut proxy = m.proxy(&server.front(), mode, refs);
    proxy.rate_limit = spec.rate_limiting.as_ref().map(|limit| m.rate_limit(limit));
    proxy.token_exchange = m.token_exchange(&server.front(), refs);
    (proxy.mutating_webhooks, proxy.validating_webhooks) = m.webhooks(&server.front(), refs);
    let config = RunConfig {
        schema_version: SCHEMA_VERSION.to_owned(),
        name,
        group: None,
        debug: false,
        workload,
        proxy,
    };
    Mapped {
        config,
        paths: m.paths,
        missing: m.missing,
        problems: m.problems,
    }
}

/// Maps an MCPRemoteProxy and the referenced objects that exist into a RunConfig: the
/// remote server as the workload, the same proxy settings and middleware as an
/// MCPServer's.
pub fn from_mcpremoteproxy(proxy: &MCPRemoteProxy, refs: &References<'_>) -> Mapped {
    let mut m = Mapper {
        paths: PathMap::default(),
        missing: Vec::new(),
        problems: Violations::default(),
    };
    let front = proxy.front();
    let spec = &proxy.spec;
    m.paths.local("name", "metadata.name");
    m.paths.local("schema_version", "apiVersion");
    m.front(&front, refs);
    if let Some(template) = &spec.pod_template_spec {
        // Merged into the proxy's pod by the operator, not part of the RunConfig: checked
        // here as the MCP server's pod template is, so a pod the namespace would refuse
        // is refused at apply time.
        m.paths.local("proxy.pod_template", "spec.podTemplateSpec");
        let (_, findings) =
            workload_k8s::pod_template(template, &FieldPath::parse("proxy.pod_template"));
        m.problems.0.extend(
            findings
                .into_iter()
                .filter(|f| f.severity == workload_k8s::Severity::Error)
                .map(|f| f.violation),
        );
    }
    m.paths.local("workload.remote", "spec");
    m.paths.local("workload.remote.url", "spec.remoteUrl");
    m.paths.local("workload.remote.transport", "spec.transport");
    m.paths.local("proxy.mode", "spec.transport");
    let transport = match spec.transport {
        RemoteTransport::Sse => "sse",
        RemoteTransport::StreamableHttp => "streamable-http",
    };
    let workload = Workload::Remote(RemoteWorkload {
        url: spec.remote_url.clone(),
        transport: transport.to_owned(),
        // The external authentication header first: a header of `headerForward` that
        // repeats it is reported where the user wrote it.
        headers: {
            let mut headers: Vec<ForwardedHeader> = m
                .external_auth(&front, refs, "workload.remote.headers", 0)
                .into_iter()
                .collect();
            headers.extend(m.forwarded_headers(spec.header_forward.as_ref(), headers.len()));
            headers
        },
        ..RemoteWorkload::default()
    });
    let mut proxy_config = m.proxy(&front, transport, refs);
    proxy_config.token_exchange = m.token_exchange(&front, refs);
    (
        proxy_config.mutating_webhooks,
        proxy_config.validating_webhooks,
    ) = m.webhooks(&front, refs);
    Mapped {
        config: RunConfig {
            schema_version: SCHEMA_VERSION.to_owned(),
            name: front.name().to_owned(),
            group: None,
            debug: false,
            workload,
            proxy: proxy_config,
        },
        paths: m.paths,
        missing: m.missing,
        problems: m.problems,
    }
}

/// What a webhook's Secret holds, for [`webhook_secret_env`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookSecret {
    /// `hmacSecretRef`.
    Hmac,
    /// `tlsConfig.caSecretRef`.
    Ca,
    /// `tlsConfig.clientCertSecretRef`.
    ClientCert,
    /// `tlsConfig.clientKeySecretRef`.
    ClientKey,
}

/// The environment variable through which the proxy receives one Secret value of the
/// `index`th webhook of the MCPWebhookConfig's `mutating` (or `validating`) list.
pub fn webhook_secret_env(mutating: bool, index: usize, secret: WebhookSecret) -> String {
    let list = if mutating { "MUTATING" } else { "VALIDATING" };
    let what = match secret {
        WebhookSecret::Hmac => "HMAC",
        WebhookSecret::Ca => "CA",
        WebhookSecret::ClientCert => "CLIENT_CERT",
        WebhookSecret::ClientKey => "CLIENT_KEY",
    };
    format!("TOOLHIVE_WEBHOOK_{list}_{index}_{what}")
}

/// Every Secret key an MCPWebhookConfig reads, each with the environment variable that
/// carries its value to the proxy ([`webhook_secret_env`]), in the order of the lists.
pub fn webhook_secrets(
    spec: &api::MCPWebhookConfigSpec,
) -> Vec<(String, &api::common::SecretKeyRef)> {
    let mut secrets = Vec::new();
    for (mutating, list) in [(true, &spec.mutating), (false, &spec.validating)] {
        for (i, webhook) in list.iter().enumerate() {
            let tls = webhook.tls_config.as_ref();
            for (secret, reference) in [
                (WebhookSecret::Hmac, webhook.hmac_secret_ref.as_ref()),
                (
                    WebhookSecret::Ca,
                    tls.and_then(|t| t.ca_secret_ref.as_ref()),
                ),
                (
                    WebhookSecret::ClientCert,
                    tls.and_then(|t| t.client_cert_secret_ref.as_ref()),
                ),
                (
                    WebhookSecret::ClientKey,
                    tls.and_then(|t| t.client_key_secret_ref.as_ref()),
                ),
            ] {
                if let Some(reference) = reference {
                    secrets.push((webhook_secret_env(mutating, i, secret), reference));
                }
            }
        }
    }
    secrets
}

/// The environment variable holding the Secret value of an MCPRemoteProxy's
/// MCPExternalAuthConfig (`bearerToken.tokenSecretRef`, `headerInjection.valueSecretRef`).
pub const EXTERNAL_AUTH_SECRET_ENV: &str = "TOOLHIVE_EXTERNAL_AUTH_SECRET";

/// The environment variable holding `Bearer <token>` for a `bearerToken`
/// MCPExternalAuthConfig (composed by the kubelet from [`EXTERNAL_AUTH_SECRET_ENV`]).
pub const EXTERNAL_AUTH_BEARER_ENV: &str = "TOOLHIVE_EXTERNAL_AUTH_BEARER";

/// The environment variable through which the proxy receives the value of
/// `spec.headerForward.addHeadersFromSecret[index]` (set with a `secretKeyRef`).
pub fn forwarded_header_env(index: usize) -> String {
    format!("TOOLHIVE_HEADER_FROM_SECRET_{index}")
}

/// Default key of a permission-profile ConfigMap.
pub const DEFAULT_PERMISSION_PROFILE_KEY: &str = "permissions.json";

/// One ConfigMap key an MCPServer reads, with its defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapKey {
    /// The MCPServer field naming the ConfigMap.
    pub field: &'static str,
    /// The ConfigMap's name.
    pub name: String,
    /// The key inside it.
    pub key: String,
}

/// The ConfigMap key holding the PEM bundle an MCPOIDCConfig trusts for its provider
/// (`spec.inline.caBundleRef`, key defaults to `ca.crt`), and whether it may be missing.
pub fn oidc_ca_bundle_map(oidc: &MCPOIDCConfig) -> Option<(ConfigMapKey, bool)> {
    let source = oidc
        .spec
        .inline
        .as_ref()
        .filter(|_| oidc.spec.type_ == OIDCConfigSource::Inline)?
        .ca_bundle_ref
        .as_ref()?;
    ca_bundle_map(source, "spec.oidcConfigRef")
}

/// The ConfigMap key of a `caBundleRef` (`ca.crt` by default), as referenced through the
/// MCPServer's `field`, and whether it may be missing.
fn ca_bundle_map(
    source: &api::common::CABundleSource,
    field: &'static str,
) -> Option<(ConfigMapKey, bool)> {
    let map = source.config_map_ref.as_ref()?;
    Some((
        ConfigMapKey {
            field,
            name: map.name.clone(),
            key: map.key.clone().unwrap_or_else(|| "ca.crt".to_owned()),
        },
        map.optional.unwrap_or(false),
    ))
}

/// The ConfigMap key holding the PEM bundle an MCPTelemetryConfig trusts for its
/// collector (`spec.openTelemetry.caBundleRef`, key defaults to `ca.crt`), and whether it
/// may be missing.
pub fn telemetry_ca_bundle_map(telemetry: &MCPTelemetryConfig) -> Option<(ConfigMapKey, bool)> {
    let source = telemetry
        .spec
        .open_telemetry
        .as_ref()
        .filter(|o| o.enabled)?
        .ca_bundle_ref
        .as_ref()?;
    ca_bundle_map(source, "spec.telemetryConfigRef")
}

/// The ConfigMap key holding the server's ToolHive authorization file, when
/// `spec.authzConfig.type` is `configMap` (key defaults to `authz.json`).
pub fn authz_config_map(object: &impl Fronted) -> Option<ConfigMapKey> {
    authz_map(&object.front())
}

fn authz_map(front: &Front<'_>) -> Option<ConfigMapKey> {
    let authz = front.authz_config?;
    let map = authz
        .config_map
        .as_ref()
        .filter(|_| authz.type_ == AuthzConfigSource::ConfigMap)?;
    Some(ConfigMapKey {
        field: "spec.authzConfig.configMap",
        name: map.name.clone(),
        key: map
            .key
            .clone()
            .unwrap_or_else(|| api::mcpserver::DEFAULT_AUTHZ_CONFIGMAP_KEY.to_owned()),
    })
}

/// The ConfigMap key holding the server's permission profile, when
/// `spec.permissionProfile.type` is `configmap` (key defaults to `permissions.json`).
pub fn permission_profile_config_map(server: &MCPServer) -> Option<ConfigMapKey> {
    let profile = server
        .spec
        .permission_profile
        .as_ref()
        .filter(|p| p.type_ == PermissionProfileType::Configmap)?;
    Some(ConfigMapKey {
        field: "spec.permissionProfile",
        name: profile.name.clone(),
        key: profile
            .key
            .clone()
            .unwrap_or_else(|| DEFAULT_PERMISSION_PROFILE_KEY.to_owned()),
    })
}

struct Mapper {
    paths: PathMap,
    missing: Vec<MissingReference>,
    problems: Violations,
}

impl Mapper {
    fn missing(&mut self, field: &str, kind: ReferencedKind, name: &str) {
        self.missing.push(MissingReference {
            field: field.to_owned(),
            kind,
            name: name.to_owned(),
        });
    }

    /// Records that `runconfig` came from a ConfigMap key (`data["authz.json"]`: the key
    /// is one segment even though it holds a dot).
    /// A config object referenced by the `kind` field does not exist.
    fn missing_config(&mut self, kind: ConfigKind, name: &str) {
        self.missing(kind.field(), ReferencedKind::Config(kind), name);
    }

    /// A setting the proxy cannot honour yet: refused, never accepted and ignored.
    fn not_supported_yet(&mut self, runconfig: &str, message: &str, allowed: &str) {
        self.problems.push(
            Violation::new(FieldPath::parse(runconfig), Reason::NotSupported, message)
                .allowed(allowed),
        );
    }

    /// `runconfig` comes from `path` inside the `kind` object called `name`.
    fn in_config(&mut self, runconfig: &str, kind: ConfigKind, name: &str, path: &str) {
        self.paths
            .referenced(runconfig, kind.field(), kind.kind(), name, path);
    }

    fn config_map_path(&mut self, runconfig: &str, map: &ConfigMapKey) {
        self.paths.insert(
            FieldPath::parse(runconfig),
            Location {
                via: Some(Via {
                    reference: FieldPath::parse(map.field),
                    kind: "ConfigMap".to_owned(),
                    name: map.name.clone(),
                }),
                path: FieldPath::root().key("data").key(map.key.as_str()),
            },
        );
    }

    /// What both kinds check before mapping: settings refused as not supported yet, and
    /// the group they wait for.
    fn front(&mut self, front: &Front<'_>, refs: &References<'_>) {
        if front.auth_server_ref.is_some() {
            self.paths.local("proxy.auth_server", "spec.authServerRef");
            self.not_supported_yet(
                "proxy.auth_server",
                "an embedded authorization server (authServerRef) is not supported yet",
                "authenticate clients with oidcConfigRef",
            );
        }
        // Nothing of the group enters the RunConfig; the object waits for it all the same.
        if let Some(group) = front.group_ref
            && refs.group.is_none()
        {
            self.missing_config(ConfigKind::Group, &group.name);
        }
    }

    /// `spec.headerForward`: the literal headers in name order, then those from Secrets,
    /// whose values the kubelet puts in the proxy's environment
    /// ([`forwarded_header_env`]); no Secret value enters the RunConfig.
    fn forwarded_headers(
        &mut self,
        forward: Option<&HeaderForwardConfig>,
        first: usize,
    ) -> Vec<ForwardedHeader> {
        let Some(forward) = forward else {
            return Vec::new();
        };
        let mut headers = Vec::new();
        for (name, value) in &forward.add_plaintext_headers {
            let at = format!("workload.remote.headers[{}]", first + headers.len());
            let field =
                FieldPath::parse("spec.headerForward.addPlaintextHeaders").key(name.as_str());
            for sub in ["", ".name", ".value"] {
                self.paths.insert(
                    FieldPath::parse(&format!("{at}{sub}")),
                    Location {
                        via: None,
                        path: field.clone(),
                    },
                );
            }
            headers.push(ForwardedHeader {
                name: name.clone(),
                value: Some(value.clone()),
                value_env: None,
            });
        }
        for (i, from_secret) in forward.add_headers_from_secret.iter().enumerate() {
            let at = format!("workload.remote.headers[{}]", first + headers.len());
            let field = format!("spec.headerForward.addHeadersFromSecret[{i}]");
            self.paths.local(&at, &field);
            self.paths
                .local(&format!("{at}.name"), &format!("{field}.headerName"));
            self.paths.local(
                &format!("{at}.value_env"),
                &format!("{field}.valueSecretRef"),
            );
            headers.push(ForwardedHeader {
                name: from_secret.header_name.clone(),
                value: None,
                value_env: Some(forwarded_header_env(i)),
            });
        }
        headers
    }

    /// The header `spec.externalAuthConfigRef` adds toward the remote server, as the
    /// `index`-th: its value from the proxy's environment ([`EXTERNAL_AUTH_SECRET_ENV`],
    /// or [`EXTERNAL_AUTH_BEARER_ENV`] for `Bearer <token>`). A type the proxy cannot do
    /// is refused, naming it.
    fn external_auth(
        &mut self,
        front: &Front<'_>,
        refs: &References<'_>,
        headers: &str,
        index: usize,
    ) -> Option<ForwardedHeader> {
        let reference = front.external_auth_config_ref?;
        let Some(shared) = refs.external_auth_config else {
            self.missing_config(ConfigKind::ExternalAuthConfig, &reference.name);
            return None;
        };
        let kind = ConfigKind::ExternalAuthConfig;
        let at = format!("{headers}[{index}]");
        let spec = &shared.spec;
        match spec.type_ {
            // Token exchange is the proxy's own section ([`Self::token_exchange`]).
            ExternalAuthType::Unauthenticated | ExternalAuthType::TokenExchange => None,
            ExternalAuthType::BearerToken => {
                self.in_config(&at, kind, &reference.name, "spec.bearerToken");
                Some(ForwardedHeader {
                    name: "Authorization".to_owned(),
                    value: None,
                    value_env: Some(EXTERNAL_AUTH_BEARER_ENV.to_owned()),
                })
            }
            ExternalAuthType::HeaderInjection => {
                let injection = spec.header_injection.as_ref()?;
                self.in_config(&at, kind, &reference.name, "spec.headerInjection");
                self.in_config(
                    &format!("{at}.name"),
                    kind,
                    &reference.name,
                    "spec.headerInjection.headerName",
                );
                Some(ForwardedHeader {
                    name: injection.header_name.clone(),
                    value: None,
                    value_env: Some(EXTERNAL_AUTH_SECRET_ENV.to_owned()),
                })
            }
            other => {
                self.external_auth_refused(
                    &reference.name,
                    &format!(
                        "external authentication of type {} is not supported yet",
                        other.as_str()
                    ),
                    "tokenExchange, bearerToken, headerInjection or unauthenticated",
                );
                None
            }
        }
    }

    /// The proxy's request webhooks (mutating, validating) from the MCPWebhookConfig
    /// named by `spec.webhookConfigRef`; Secret values arrive in the environment
    /// variables [`webhook_secret_env`] names.
    fn webhooks(
        &mut self,
        front: &Front<'_>,
        refs: &References<'_>,
    ) -> (
        Vec<runconfig::config::Webhook>,
        Vec<runconfig::config::Webhook>,
    ) {
        let Some(reference) = front.webhook_config_ref else {
            return (Vec::new(), Vec::new());
        };
        let Some(shared) = refs.webhook_config else {
            self.missing_config(ConfigKind::WebhookConfig, &reference.name);
            return (Vec::new(), Vec::new());
        };
        let name = &reference.name;
        let list = |m: &mut Self, mutating: bool, specs: &[api::webhookconfig::WebhookSpec]| {
            let (runconfig_list, crd_list) = if mutating {
                ("proxy.mutating_webhooks", "spec.mutating")
            } else {
                ("proxy.validating_webhooks", "spec.validating")
            };
            specs
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let at = format!("{runconfig_list}[{i}]");
                    let crd = format!("{crd_list}[{i}]");
                    let kind = ConfigKind::WebhookConfig;
                    m.in_config(&at, kind, name, &crd);
                    for (field, crd_field) in [
                        ("name", "name"),
                        ("url", "url"),
                        ("timeout", "timeout"),
                        ("failure_policy", "failurePolicy"),
                        ("hmac_secret_env", "hmacSecretRef"),
                        ("tls", "tlsConfig"),
                        ("tls.ca_bundle_env", "tlsConfig.caSecretRef"),
                        ("tls.client_cert_env", "tlsConfig.clientCertSecretRef"),
                        ("tls.client_key_env", "tlsConfig.clientKeySecretRef"),
                        ("tls.insecure_skip_verify", "tlsConfig.insecureSkipVerify"),
                    ] {
                        m.in_config(
                            &format!("{at}.{field}"),
                            kind,
                            name,
                            &format!("{crd}.{crd_field}"),
                        );
                    }
                    let env = |present: bool, secret| {
                        present.then(|| webhook_secret_env(mutating, i, secret))
                    };
                    let tls = spec
                        .tls_config
                        .as_ref()
                        .map(|tls| runconfig::config::WebhookTls {
                            ca_bundle_env: env(tls.ca_secret_ref.is_some(), WebhookSecret::Ca),
                            client_cert_env: env(
                                tls.client_cert_secret_ref.is_some(),
                                WebhookSecret::ClientCert,
                            ),
                            client_key_env: env(
                                tls.client_key_secret_ref.is_some(),
                                WebhookSecret::ClientKey,
                            ),
                            insecure_skip_verify: tls.insecure_skip_verify,
                        });
                    runconfig::config::Webhook {
                        name: spec.name.clone(),
                        url: spec.url.clone(),
                        timeout: spec.timeout.clone(),
                        failure_policy: Some(spec.failure_policy.as_str().to_owned()),
                        hmac_secret_env: env(spec.hmac_secret_ref.is_some(), WebhookSecret::Hmac),
                        tls,
                    }
                })
                .collect()
        };
        let mutating = list(self, true, &shared.spec.mutating);
        let validating = list(self, false, &shared.spec.validating);
        (mutating, validating)
    }

    /// The MCPExternalAuthConfig `name`'s `spec.type` is refused for this object.
    fn external_auth_refused(&mut self, name: &str, message: &str, allowed: &str) {
        let kind = ConfigKind::ExternalAuthConfig;
        self.in_config("proxy.external_auth", kind, name, "spec.type");
        self.not_supported_yet("proxy.external_auth", message, allowed);
    }

    /// The proxy's token exchange, from an MCPExternalAuthConfig of type
    /// `tokenExchange`; its client secret arrives in
    /// [`TOKEN_EXCHANGE_CLIENT_SECRET_ENV`](runconfig::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV).
    fn token_exchange(
        &mut self,
        front: &Front<'_>,
        refs: &References<'_>,
    ) -> Option<runconfig::config::TokenExchange> {
        let reference = front.external_auth_config_ref?;
        let shared = refs.external_auth_config?;
        if shared.spec.type_ != ExternalAuthType::TokenExchange {
            return None;
        }
        let exchange = shared.spec.token_exchange.as_ref()?;
        // Token exchange without authentication is refused at `proxy.oidc`: the
        // object's own oidcConfigRef, whether or not it has one.
        self.paths.local("proxy.oidc", "spec.oidcConfigRef");
        let kind = ConfigKind::ExternalAuthConfig;
        let name = &reference.name;
        self.in_config("proxy.token_exchange", kind, name, "spec.tokenExchange");
        for (field, crd) in [
            ("token_url", "tokenUrl"),
            ("client_id", "clientId"),
            ("client_secret_env", "clientSecretRef"),
            ("audience", "audience"),
            ("scopes", "scopes"),
            ("subject_token_type", "subjectTokenType"),
            ("header_name", "externalTokenHeaderName"),
        ] {
            self.in_config(
                &format!("proxy.token_exchange.{field}"),
                kind,
                name,
                &format!("spec.tokenExchange.{crd}"),
            );
        }
        if exchange.subject_provider_name.is_some() {
            let at = "proxy.token_exchange.subject_provider_name";
            self.in_config(at, kind, name, "spec.tokenExchange.subjectProviderName");
            self.not_supported_yet(
                at,
                "subjectProviderName names an upstream provider of an embedded authorization server, which is not supported yet",
                "leave subjectProviderName unset: the caller's own token is exchanged",
            );
        }
        Some(runconfig::config::TokenExchange {
            token_url: exchange.token_url.clone(),
            client_id: exchange.client_id.clone(),
            client_secret_env: exchange
                .client_secret_ref
                .as_ref()
                .map(|_| runconfig::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV.to_owned()),
            audience: exchange.audience.clone(),
            scopes: exchange.scopes.clone(),
            subject_token_type: exchange.subject_token_type.clone(),
            header_name: exchange.external_token_header_name.clone(),
        })
    }

    /// How the proxy serves clients (`mode`) and the middleware it applies.
    fn proxy(&mut self, front: &Front<'_>, mode: &str, refs: &References<'_>) -> ProxyConfig {
        self.paths.local("proxy.port", "spec.proxyPort");
        self.paths
            .local("proxy.endpoint_prefix", "spec.endpointPrefix");
        ProxyConfig {
            port: i64::from(front.proxy_port),
            mode: mode.to_owned(),
            trust_proxy_headers: front.trust_proxy_headers,
            endpoint_prefix: front.endpoint_prefix.map(str::to_owned),
            oidc: self.oidc(front, refs),
            authz: self.authz(front, refs),
            audit: front.audit.filter(|a| a.enabled).map(|_| {
                self.paths.local("proxy.audit", "spec.audit");
                AuditConfig {
                    component: Some(front.name().to_owned()),
                    ..AuditConfig::default()
                }
            }),
            telemetry: self.telemetry(front, refs),
            tools: self.tools(front, refs),
            session_redis: self.session_redis(front),
            ..ProxyConfig::default()
        }
    }

    /// `spec.rateLimiting`, its fields at their RunConfig paths.
    fn rate_limit(&mut self, limit: &api::ratelimit::RateLimitConfig) -> RateLimit {
        self.paths.local("proxy.rate_limit", "spec.rateLimiting");
        let paths = &mut self.paths;
        let mut bucket = |from: &str, to: &str, b: &api::ratelimit::RateLimitBucket| {
            paths.local(from, to);
            paths.local(&format!("{from}.max_tokens"), &format!("{to}.maxTokens"));
            paths.local(
                &format!("{from}.refill_period"),
                &format!("{to}.refillPeriod"),
            );
            RateLimitBucket {
                max_tokens: i64::from(b.max_tokens),
                refill_period: b.refill_period.clone(),
            }
        };
        let shared = limit
            .shared
            .as_ref()
            .map(|b| bucket("proxy.rate_limit.shared", "spec.rateLimiting.shared", b));
        let per_user = limit
            .per_user
            .as_ref()
            .map(|b| bucket("proxy.rate_limit.per_user", "spec.rateLimiting.perUser", b));
        let mut tools = Vec::new();
        for (i, tool) in limit.tools.iter().enumerate() {
            let from = format!("proxy.rate_limit.tools[{i}]");
            let to = format!("spec.rateLimiting.tools[{i}]");
            let shared = tool
                .shared
                .as_ref()
                .map(|b| bucket(&format!("{from}.shared"), &format!("{to}.shared"), b));
            let per_user = tool
                .per_user
                .as_ref()
                .map(|b| bucket(&format!("{from}.per_user"), &format!("{to}.perUser"), b));
            let entry = ToolRateLimit {
                name: tool.name.clone(),
                shared,
                per_user,
            };
            tools.push((from, to, entry));
        }
        let tools = tools
            .into_iter()
            .map(|(from, to, tool)| {
                self.paths.local(&from, &to);
                self.paths
                    .local(&format!("{from}.name"), &format!("{to}.name"));
                tool
            })
            .collect();
        RateLimit {
            shared,
            per_user,
            tools,
        }
    }

    /// `spec.sessionStorage` with provider `redis`; the password reaches the proxy in
    /// [`SESSION_REDIS_PASSWORD_ENV`], set from `passwordRef` by the operator. Provider
    /// `memory` is the proxy's default.
    fn session_redis(&mut self, front: &Front<'_>) -> Option<SessionRedis> {
        let storage = front.session_storage?;
        if storage.provider != SessionStorageProvider::Redis {
            return None;
        }
        for (from, to) in [
            ("", ""),
            (".address", ".address"),
            (".db", ".db"),
            (".key_prefix", ".keyPrefix"),
            (".password_env", ".passwordRef"),
        ] {
            self.paths.local(
                &format!("proxy.session_redis{from}"),
                &format!("spec.sessionStorage{to}"),
            );
        }
        Some(SessionRedis {
            address: storage.address.clone().unwrap_or_default(),
            db: i64::from(storage.db),
            key_prefix: storage.key_prefix.clone().filter(|p| !p.is_empty()),
            password_env: storage
                .password_ref
                .as_ref()
                .map(|_| SESSION_REDIS_PASSWORD_ENV.to_owned()),
        })
    }

    fn container(&mut self, server: &MCPServer, refs: &References<'_>) -> ContainerWorkload {
        let spec = &server.spec;
        let base = "workload.container";
        for (from, to) in [
            ("image", "spec.image"),
            ("args", "spec.args"),
            ("transport", "spec.transport"),
            ("target_port", "spec.mcpPort"),
            ("env", "spec.env"),
            ("secrets", "spec.secrets"),
            ("volumes", "spec.volumes"),
            ("pod_template_patch", "spec.podTemplateSpec"),
            ("permission_profile", "spec.permissionProfile"),
            ("permission_profile.builtin", "spec.permissionProfile.name"),
            ("service_account", "spec.serviceAccount"),
            ("replicas", "spec.backendReplicas"),
        ] {
            self.paths.local(&format!("{base}.{from}"), to);
        }
        for i in 0..spec.secrets.len() {
            self.paths.local(
                &format!("{base}.secrets[{i}].target_env"),
                &format!("spec.secrets[{i}].targetEnvName"),
            );
        }
        for i in 0..spec.volumes.len() {
            self.paths.local(
                &format!("{base}.volumes[{i}].host_path"),
                &format!("spec.volumes[{i}].hostPath"),
            );
            self.paths.local(
                &format!("{base}.volumes[{i}].mount_path"),
                &format!("spec.volumes[{i}].mountPath"),
            );
            self.paths.local(
                &format!("{base}.volumes[{i}].read_only"),
                &format!("spec.volumes[{i}].readOnly"),
            );
        }
        let transport = crate::transport::from_crd(spec.transport).as_str();
        let http = spec.transport != CrdTransport::Stdio;
        // An MCPExternalAuthConfig's bearer token or header, toward the server's pods; a
        // stdio server is refused at the reference (it reads no headers).
        self.paths
            .local("workload.container.headers", "spec.externalAuthConfigRef");
        let headers = self
            .external_auth(&server.front(), refs, "workload.container.headers", 0)
            .into_iter()
            .collect();
        ContainerWorkload {
            image: spec.image.clone(),
            args: spec.args.clone(),
            transport: transport.to_owned(),
            target_host: None,
            target_port: http
                .then(|| i64::from(spec.mcp_port.unwrap_or(api::mcpserver::DEFAULT_MCP_PORT))),
            env: spec
                .env
                .iter()
                .map(|e| EnvVar {
                    name: e.name.clone(),
                    value: e.value.clone(),
                })
                .collect(),
            secrets: spec
                .secrets
                .iter()
                .map(|s| SecretRef {
                    name: s.name.clone(),
                    key: Some(s.key.clone()),
                    target_env: s.target_env_name.clone(),
                })
                .collect(),
            volumes: spec
                .volumes
                .iter()
                .map(|v| VolumeMount {
                    name: Some(v.name.clone()),
                    host_path: v.host_path.clone(),
                    mount_path: v.mount_path.clone(),
                    read_only: v.read_only,
                })
                .collect(),
            labels: Default::default(),
            pod_template_patch: spec.pod_template_spec.clone(),
            isolate_network: false,
            permission_profile: self.permission_profile(server, refs),
            service_account: Some(spec.service_account.clone().unwrap_or_else(|| {
                format!("{}-sa", server.metadata.name.as_deref().unwrap_or_default())
            })),
            replicas: spec.backend_replicas.map(i64::from),
            headers,
        }
    }

    fn permission_profile(
        &mut self,
        server: &MCPServer,
        refs: &References<'_>,
    ) -> Option<PermissionProfile> {
        let profile = server.spec.permission_profile.as_ref()?;
        match profile.type_ {
            PermissionProfileType::Builtin => {
                Some(PermissionProfile::Builtin(profile.name.clone()))
            }
            PermissionProfileType::Configmap => {
                let map = permission_profile_config_map(server)?;
                self.config_map_path("workload.container.permission_profile", &map);
                let Some(content) = refs.permission_profile_map else {
                    self.missing(map.field, ReferencedKind::ConfigMap, &map.name);
                    return None;
                };
                match serde_yaml_ng::from_str::<Profile>(content) {
                    Ok(parsed) => Some(PermissionProfile::Inline(parsed)),
                    Err(e) => {
                        self.problems.push(
                            Violation::new(
                                FieldPath::parse("workload.container.permission_profile"),
                                Reason::InvalidFormat,
                                format!("not a permission profile: {e}"),
                            )
                            .allowed("JSON or YAML with read, write and network.outbound"),
                        );
                        None
                    }
                }
            }
        }
    }

    fn oidc(&mut self, front: &Front<'_>, refs: &References<'_>) -> Option<OidcConfig> {
        let reference = front.oidc_config_ref?;
        self.paths.local("proxy.oidc", "spec.oidcConfigRef");
        self.paths
            .local("proxy.oidc.audience", "spec.oidcConfigRef.audience");
        self.paths
            .local("proxy.oidc.scopes", "spec.oidcConfigRef.scopes");
        self.paths
            .local("proxy.oidc.resource_url", "spec.oidcConfigRef.resourceUrl");
        let mut config = OidcConfig {
            audience: Some(reference.audience.clone()),
            scopes: reference.scopes.clone(),
            resource_url: reference.resource_url.clone(),
            ..OidcConfig::default()
        };
        let Some(shared) = refs.oidc_config else {
            self.missing_config(ConfigKind::OidcConfig, &reference.name);
            // The issuer would have come from the missing object: a "required" finding
            // there is located inside it, so callers can tell it from the server's own.
            self.in_config(
                "proxy.oidc.issuer",
                ConfigKind::OidcConfig,
                &reference.name,
                "spec",
            );
            return Some(config);
        };
        let via = |m: &mut Self, from: &str, to: &str| {
            m.in_config(
                &format!("proxy.oidc.{from}"),
                ConfigKind::OidcConfig,
                &reference.name,
                to,
            )
        };
        match shared.spec.type_ {
            OIDCConfigSource::KubernetesServiceAccount => {
                let sa = shared
                    .spec
                    .kubernetes_service_account
                    .clone()
                    .unwrap_or_default();
                for (from, to) in [
                    ("issuer", "issuer"),
                    ("jwks_url", "jwksUrl"),
                    ("introspection_url", "introspectionUrl"),
                    ("kubernetes_service_account", ""),
                ] {
                    via(
                        self,
                        from,
                        format!("spec.kubernetesServiceAccount.{to}").trim_end_matches('.'),
                    );
                }
                config.kubernetes_service_account = Some(KubernetesServiceAccount {
                    service_account: sa.service_account,
                    namespace: sa.namespace.or_else(|| front.metadata.namespace.clone()),
                    use_cluster_auth: sa.use_cluster_auth,
                });
                config.issuer = sa.issuer;
                config.jwks_url = sa.jwks_url;
                config.introspection_url = sa.introspection_url;
            }
            OIDCConfigSource::Inline => {
                let Some(inline) = shared.spec.inline.clone() else {
                    return Some(config);
                };
                for (from, to) in [
                    ("issuer", "issuer"),
                    ("jwks_url", "jwksUrl"),
                    ("introspection_url", "introspectionUrl"),
                    ("client_id", "clientId"),
                    ("client_secret_env", "clientSecretRef"),
                    ("insecure_allow_http", "insecureAllowHTTP"),
                    ("ca_bundle", "caBundleRef"),
                ] {
                    via(self, from, &format!("spec.inline.{to}"));
                }
                // The PEM is inlined: the RunConfig holds no file paths, and a CA
                // bundle is public.
                if let Some((map, optional)) = oidc_ca_bundle_map(shared) {
                    match refs.oidc_ca_bundle {
                        Some(pem) => config.ca_bundle = Some(pem.to_owned()),
                        None if optional => {}
                        None => self.missing(
                            map.field,
                            ReferencedKind::ConfigMap,
                            &format!(
                                "{} (key {}, the caBundleRef of MCPOIDCConfig {})",
                                map.name, map.key, reference.name
                            ),
                        ),
                    }
                }
                config.issuer = Some(inline.issuer);
                config.jwks_url = inline.jwks_url;
                config.introspection_url = inline.introspection_url;
                config.client_id = inline.client_id;
                config.client_secret_env = inline
                    .client_secret_ref
                    .map(|_| OIDC_CLIENT_SECRET_ENV.to_owned());
                config.allow_private_ip = inline.jwks_allow_private_ip;
                config.insecure_allow_http = inline.insecure_allow_http;
            }
        }
        Some(config)
    }

    fn authz(&mut self, front: &Front<'_>, refs: &References<'_>) -> Option<AuthzConfig> {
        if let Some(inline_or_map) = front.authz_config {
            self.paths.local("proxy.authz", "spec.authzConfig");
            self.paths.local(
                "proxy.authz.group_claim_name",
                "spec.authzConfig.groupClaimName",
            );
            self.paths.local(
                "proxy.authz.role_claim_name",
                "spec.authzConfig.roleClaimName",
            );
            self.paths.local(
                "proxy.authz.group_entity_type",
                "spec.authzConfig.groupEntityType",
            );
            let mut cedar = match inline_or_map.type_ {
                AuthzConfigSource::Inline => {
                    self.paths
                        .local("proxy.authz.policies", "spec.authzConfig.inline.policies");
                    self.paths.local(
                        "proxy.authz.entities_json",
                        "spec.authzConfig.inline.entitiesJson",
                    );
                    let inline = inline_or_map.inline.clone().unwrap_or_default();
                    AuthzConfig::Cedar(CedarConfig {
                        policies: inline.policies,
                        entities_json: inline.entities_json,
                        ..CedarConfig::default()
                    })
                }
                AuthzConfigSource::ConfigMap => {
                    let map = authz_map(front)?;
                    self.config_map_path("proxy.authz", &map);
                    let Some(content) = refs.authz_config_map else {
                        self.missing(map.field, ReferencedKind::ConfigMap, &map.name);
                        return None;
                    };
                    self.authz_file(content)?
                }
            };
            if let AuthzConfig::Cedar(c) = &mut cedar {
                c.group_claim_name = inline_or_map
                    .group_claim_name
                    .clone()
                    .or(c.group_claim_name.take());
                c.role_claim_name = inline_or_map
                    .role_claim_name
                    .clone()
                    .or(c.role_claim_name.take());
                c.group_entity_type = inline_or_map
                    .group_entity_type
                    .clone()
                    .or(c.group_entity_type.take());
            }
            return Some(cedar);
        }
        let reference = front.authz_config_ref?;
        self.paths.local("proxy.authz", "spec.authzConfigRef");
        let Some(shared) = refs.authz_config else {
            self.missing_config(ConfigKind::AuthzConfig, &reference.name);
            return None;
        };
        let via = |m: &mut Self, from: &str, to: &str| {
            m.in_config(
                &format!("proxy.authz.{from}"),
                ConfigKind::AuthzConfig,
                &reference.name,
                to,
            )
        };
        let config = &shared.spec.config;
        Some(match shared.spec.type_ {
            AuthzBackend::Cedarv1 => {
                for key in [
                    "policies",
                    "entities_json",
                    "group_claim_name",
                    "role_claim_name",
                    "group_entity_type",
                ] {
                    via(self, key, &format!("spec.config.{key}"));
                }
                AuthzConfig::Cedar(CedarConfig {
                    policies: config.policies.clone(),
                    entities_json: config
                        .entities_json
                        .clone()
                        .unwrap_or_else(|| "[]".to_owned()),
                    group_claim_name: config.group_claim_name.clone(),
                    role_claim_name: config.role_claim_name.clone(),
                    group_entity_type: config.group_entity_type.clone(),
                })
            }
            AuthzBackend::Httpv1 => {
                for key in ["url", "timeout", "insecure_skip_verify"] {
                    via(self, key, &format!("spec.config.http.{key}"));
                }
                let http = config.http.clone().unwrap_or_default();
                let context = config.context.clone().unwrap_or_default();
                AuthzConfig::Http(HttpAuthzConfig {
                    url: http.url,
                    timeout: http.timeout,
                    insecure_skip_verify: http.insecure_skip_verify,
                    include_args: context.include_args,
                    include_operation: context.include_operation,
                    claim_mapping: config.claim_mapping.clone(),
                })
            }
        })
    }

    /// A ToolHive authorization file (`{version, type, cedar: {...}}`), JSON or YAML.
    fn authz_file(&mut self, content: &str) -> Option<AuthzConfig> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(rename = "type")]
            type_: String,
            cedar: Option<CedarConfig>,
            http: Option<HttpAuthzConfig>,
        }
        let fail = |m: &mut Self, message: String| {
            m.problems.push(Violation::new(FieldPath::parse("proxy.authz"), Reason::InvalidFormat, message).allowed("a ToolHive authorization file: {\"version\": \"1.0\", \"type\": \"cedarv1\", \"cedar\": {\"policies\": [...]}}"));
            None
        };
        match serde_yaml_ng::from_str::<File>(content) {
            Ok(File {
                type_,
                cedar: Some(cedar),
                ..
            }) if type_ == "cedarv1" => Some(AuthzConfig::Cedar(cedar)),
            Ok(File {
                type_,
                http: Some(http),
                ..
            }) if type_ == "httpv1" => Some(AuthzConfig::Http(http)),
            Ok(File { type_, .. }) => fail(
                self,
                format!("authorization file of type {type_:?} without its {type_:?} section"),
            ),
            Err(e) => fail(self, format!("not an authorization file: {e}")),
        }
    }

    fn telemetry(&mut self, front: &Front<'_>, refs: &References<'_>) -> Option<TelemetryConfig> {
        let reference = front.telemetry_config_ref?;
        self.paths
            .local("proxy.telemetry", "spec.telemetryConfigRef");
        self.paths.local(
            "proxy.telemetry.service_name",
            "spec.telemetryConfigRef.serviceName",
        );
        let Some(shared) = refs.telemetry_config else {
            self.missing_config(ConfigKind::TelemetryConfig, &reference.name);
            return None;
        };
        for (from, to) in [
            ("endpoint", "spec.openTelemetry.endpoint"),
            ("sampling_rate", "spec.openTelemetry.tracing.samplingRate"),
            ("headers", "spec.openTelemetry.headers"),
            ("tracing_enabled", "spec.openTelemetry.tracing.enabled"),
            ("metrics_enabled", "spec.openTelemetry.metrics.enabled"),
            ("prometheus_enabled", "spec.prometheus.enabled"),
            ("ca_bundle", "spec.openTelemetry.caBundleRef"),
            ("sensitive_headers", "spec.openTelemetry.sensitiveHeaders"),
        ] {
            self.in_config(
                &format!("proxy.telemetry.{from}"),
                ConfigKind::TelemetryConfig,
                &reference.name,
                to,
            );
        }
        let otel = shared.spec.open_telemetry.as_ref().filter(|o| o.enabled);
        let mut ca_bundle = None;
        if let Some((map, optional)) = telemetry_ca_bundle_map(shared) {
            match refs.telemetry_ca_bundle {
                Some(pem) => ca_bundle = Some(pem.to_owned()),
                None if optional => {}
                None => self.missing(
                    map.field,
                    ReferencedKind::ConfigMap,
                    &format!(
                        "{} (key {}, the caBundleRef of MCPTelemetryConfig {})",
                        map.name, map.key, reference.name
                    ),
                ),
            }
        }
        if otel.is_some_and(|o| !o.sensitive_headers.is_empty()) {
            self.not_supported_yet(
                "proxy.telemetry.sensitive_headers",
                "headers from Secrets are not supported yet",
                "headers with literal values, or none",
            );
        }
        Some(TelemetryConfig {
            endpoint: otel.and_then(|o| o.endpoint.clone()),
            service_name: Some(
                reference
                    .service_name
                    .clone()
                    .unwrap_or_else(|| front.name().to_owned()),
            ),
            service_version: None,
            tracing_enabled: otel
                .and_then(|o| o.tracing.as_ref())
                .is_some_and(|t| t.enabled),
            metrics_enabled: otel
                .and_then(|o| o.metrics.as_ref())
                .is_some_and(|m| m.enabled),
            sampling_rate: otel
                .and_then(|o| o.tracing.as_ref())
                .map(|t| SamplingRate::Text(t.sampling_rate.clone())),
            headers: otel.map(|o| o.headers.clone()).unwrap_or_default(),
            insecure: otel.is_some_and(|o| o.insecure),
            prometheus_enabled: shared.spec.prometheus.as_ref().is_some_and(|p| p.enabled),
            resource_attributes: otel
                .map(|o| o.resource_attributes.clone())
                .unwrap_or_default(),
            use_legacy_attributes: otel.is_some_and(|o| o.use_legacy_attributes),
            ca_bundle,
        })
    }

    fn tools(&mut self, front: &Front<'_>, refs: &References<'_>) -> ToolsConfig {
        let Some(reference) = front.tool_config_ref else {
            return ToolsConfig::default();
        };
        self.paths.local("proxy.tools", "spec.toolConfigRef");
        let Some(shared) = refs.tool_config else {
            self.missing_config(ConfigKind::ToolConfig, &reference.name);
            return ToolsConfig::default();
        };
        self.in_config(
            "proxy.tools.filter",
            ConfigKind::ToolConfig,
            &reference.name,
            "spec.toolsFilter",
        );
        self.in_config(
            "proxy.tools.overrides",
            ConfigKind::ToolConfig,
            &reference.name,
            "spec.toolsOverride",
        );
        ToolsConfig {
            filter: shared.spec.tools_filter.clone(),
            overrides: shared
                .spec
                .tools_override
                .iter()
                .map(|(k, o)| {
                    (
                        k.clone(),
                        ToolOverride {
                            name: o.name.clone(),
                            description: o.description.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}
