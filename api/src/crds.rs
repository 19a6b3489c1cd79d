//! The CustomResourceDefinitions of this API group, as installed in a cluster.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    DEPRECATED_VERSION, GROUP, MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig,
    MCPRegistry, MCPRemoteProxy, MCPServer, MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig,
    VERSION,
};

/// Every CRD of the group, each serving `v1beta1` (storage) and the deprecated `v1alpha1`.
pub fn all() -> Vec<CustomResourceDefinition> {
    [
        MCPServer::crd(),
        MCPRegistry::crd(),
        MCPToolConfig::crd(),
        MCPOIDCConfig::crd(),
        MCPAuthzConfig::crd(),
        MCPTelemetryConfig::crd(),
        MCPGroup::crd(),
        MCPRemoteProxy::crd(),
        MCPExternalAuthConfig::crd(),
        MCPWebhookConfig::crd(),
    ]
    .into_iter()
    .map(with_deprecated_v1alpha1)
    .collect()
}

/// Adds `v1alpha1` as a served, deprecated copy of the storage version. The schemas are
/// identical, so the API server converts between them with the default `None` strategy
/// and ToolHive users' `v1alpha1` manifests keep applying (with a warning).
fn with_deprecated_v1alpha1(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    let stored = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == VERSION)
        .cloned();
    if let Some(mut old) = stored {
        old.name = DEPRECATED_VERSION.to_owned();
        old.storage = false;
        old.served = true;
        old.deprecated = Some(true);
        old.deprecation_warning = Some(format!(
            "{GROUP}/{DEPRECATED_VERSION} {kind} is deprecated; use {GROUP}/{VERSION} {kind}"
        ));
        crd.spec.versions.push(old);
    }
    crd
}
