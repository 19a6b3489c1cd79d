//! What an MCPServer and an MCPRemoteProxy share: the proxy in front of an MCP server,
//! its middleware and the config objects it references. Both kinds spell these fields
//! identically (ToolHive's names), so the mapping of the middleware, the reference
//! table ([`crate::ConfigKind`]) and the admission checks are written once, over
//! [`Front`].

use api::common::{LocalRef, SessionStorageConfig};
use api::mcpserver::{
    AuditConfig, AuthServerRef, AuthzConfigRef, MCPOIDCConfigReference, MCPTelemetryConfigReference,
};
use api::{MCPRemoteProxy, MCPServer};
use kube::core::ObjectMeta;

/// The kinds that run the proxy in front of an MCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrontKind {
    /// An MCPServer: the proxy and the MCP server it runs.
    Server,
    /// An MCPRemoteProxy: the proxy in front of a server reached by URL.
    RemoteProxy,
}

impl FrontKind {
    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Server => "MCPServer",
            Self::RemoteProxy => "MCPRemoteProxy",
        }
    }
}

/// The shared fields of one object, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Front<'a> {
    /// Which kind the object is.
    pub kind: FrontKind,
    /// Its metadata.
    pub metadata: &'a ObjectMeta,
    /// `spec.proxyPort`.
    pub proxy_port: i32,
    /// `spec.oidcConfigRef`.
    pub oidc_config_ref: Option<&'a MCPOIDCConfigReference>,
    /// `spec.authzConfig`.
    pub authz_config: Option<&'a AuthzConfigRef>,
    /// `spec.authzConfigRef`.
    pub authz_config_ref: Option<&'a LocalRef>,
    /// `spec.audit`.
    pub audit: Option<&'a AuditConfig>,
    /// `spec.toolConfigRef`.
    pub tool_config_ref: Option<&'a LocalRef>,
    /// `spec.telemetryConfigRef`.
    pub telemetry_config_ref: Option<&'a MCPTelemetryConfigReference>,
    /// `spec.authServerRef`.
    pub auth_server_ref: Option<&'a AuthServerRef>,
    /// `spec.groupRef`.
    pub group_ref: Option<&'a LocalRef>,
    /// `spec.externalAuthConfigRef`.
    pub external_auth_config_ref: Option<&'a LocalRef>,
    /// `spec.webhookConfigRef`.
    pub webhook_config_ref: Option<&'a LocalRef>,
    /// `spec.trustProxyHeaders`.
    pub trust_proxy_headers: bool,
    /// `spec.endpointPrefix`.
    pub endpoint_prefix: Option<&'a str>,
    /// `spec.sessionStorage`.
    pub session_storage: Option<&'a SessionStorageConfig>,
}

impl Front<'_> {
    /// `metadata.name`, empty when unset (admission reports that separately).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}

/// A kind with a proxy in front.
pub trait Fronted {
    /// Its shared fields.
    fn front(&self) -> Front<'_>;
}

/// A [`Front`] of an object whose spec has the shared fields under the same names.
macro_rules! front_of {
    ($object:expr, $kind:expr) => {{
        let spec = &$object.spec;
        Front {
            kind: $kind,
            metadata: &$object.metadata,
            proxy_port: spec.proxy_port,
            oidc_config_ref: spec.oidc_config_ref.as_ref(),
            authz_config: spec.authz_config.as_ref(),
            authz_config_ref: spec.authz_config_ref.as_ref(),
            audit: spec.audit.as_ref(),
            tool_config_ref: spec.tool_config_ref.as_ref(),
            telemetry_config_ref: spec.telemetry_config_ref.as_ref(),
            auth_server_ref: spec.auth_server_ref.as_ref(),
            group_ref: spec.group_ref.as_ref(),
            external_auth_config_ref: spec.external_auth_config_ref.as_ref(),
            webhook_config_ref: spec.webhook_config_ref.as_ref(),
            trust_proxy_headers: spec.trust_proxy_headers,
            endpoint_prefix: spec.endpoint_prefix.as_deref(),
            session_storage: spec.session_storage.as_ref(),
        }
    }};
}

impl Fronted for MCPServer {
    fn front(&self) -> Front<'_> {
        front_of!(self, FrontKind::Server)
    }
}

impl Fronted for MCPRemoteProxy {
    fn front(&self) -> Front<'_> {
        front_of!(self, FrontKind::RemoteProxy)
    }
}

impl<T: Fronted> Fronted for &T {
    fn front(&self) -> Front<'_> {
        (*self).front()
    }
}
