//! CRD types of the `toolhive.stacklok.dev` API group: `MCPServer`, `MCPRegistry` and the
//! shared configuration kinds. Field names, defaults and status follow ToolHive's
//! v1beta1 API so existing manifests apply unchanged; additions are documented on the field.
//!
//! Doc comments on fields are user documentation: they become the CRD descriptions that
//! `kubectl explain` prints.

// `#[kube(printcolumn(...))]` repeats `type_ = ...` per column by design.
#![allow(clippy::duplicated_attributes)]

pub mod authzconfig;
pub mod common;
pub mod crds;
pub mod externalauth;
pub mod group;
pub mod manifest;
pub mod mcpserver;
pub mod oidcconfig;
pub mod ratelimit;
pub mod registry;
pub mod remoteproxy;
pub mod telemetryconfig;
pub mod toolconfig;
pub mod webhookconfig;

pub use authzconfig::{MCPAuthzConfig, MCPAuthzConfigSpec};
pub use externalauth::{MCPExternalAuthConfig, MCPExternalAuthConfigSpec};
pub use group::{MCPGroup, MCPGroupSpec, MCPGroupStatus};
pub use manifest::{Manifest, ManifestError};
pub use mcpserver::{MCPServer, MCPServerSpec, MCPServerStatus};
pub use oidcconfig::{MCPOIDCConfig, MCPOIDCConfigSpec};
pub use registry::{MCPRegistry, MCPRegistrySpec, MCPRegistryStatus};
pub use remoteproxy::{MCPRemoteProxy, MCPRemoteProxySpec, MCPRemoteProxyStatus};
pub use telemetryconfig::{MCPTelemetryConfig, MCPTelemetryConfigSpec};
pub use toolconfig::{MCPToolConfig, MCPToolConfigSpec};
pub use webhookconfig::{MCPWebhookConfig, MCPWebhookConfigSpec};

/// The API group of every kind in this crate.
pub const GROUP: &str = "toolhive.stacklok.dev";
/// The storage version.
pub const VERSION: &str = "v1beta1";
/// The older version still served, with an identical schema, for ToolHive manifests.
pub const DEPRECATED_VERSION: &str = "v1alpha1";
