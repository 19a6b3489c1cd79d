//! `mcp-<name>-proxy`: the Service clients use, and the URL it gives the server.

use std::collections::BTreeMap;

use admission::proxy_service_name;
use api::MCPServer;
use api::mcpserver::{ResourceMetadataOverrides, SessionAffinity};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{name_of, owned_meta};
use crate::error::Error;

/// In-cluster URL of the server through its proxy: `/sse` for SSE, `/mcp` otherwise,
/// after the endpoint prefix.
pub fn url(server: &MCPServer) -> Result<String, Error> {
    let name = name_of(server)?;
    let namespace = crate::controllers::namespace_of(server)?;
    Ok(format!(
        "http://{}.{namespace}.svc.cluster.local:{}{}",
        proxy_service_name(name),
        server.spec.proxy_port,
        admission::endpoint_path(server)
    ))
}

/// The proxy's Service.
pub fn service(server: &MCPServer) -> Result<Service, Error> {
    let name = name_of(server)?;
    Ok(proxy_service(
        owned_meta(server, proxy_service_name(name))?,
        crate::labels::proxy_selector(name),
        server.spec.proxy_port,
        server.spec.session_affinity,
        server
            .spec
            .resource_overrides
            .as_ref()
            .and_then(|o| o.proxy_service.as_ref()),
    ))
}

/// A Service in front of the proxy pods `selector` picks, on `port`.
pub(crate) fn proxy_service(
    mut metadata: ObjectMeta,
    selector: BTreeMap<String, String>,
    port: i32,
    affinity: SessionAffinity,
    overrides: Option<&ResourceMetadataOverrides>,
) -> Service {
    if let Some(overrides) = overrides {
        crate::labels::overlay(
            metadata.labels.get_or_insert_with(BTreeMap::new),
            &overrides.labels,
        );
        if !overrides.annotations.is_empty() {
            metadata.annotations = Some(overrides.annotations.clone());
        }
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                app_protocol: Some("http".to_owned()),
                ..ServicePort::default()
            }]),
            session_affinity: Some(
                match affinity {
                    SessionAffinity::ClientIP => "ClientIP",
                    SessionAffinity::None => "None",
                }
                .to_owned(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, server};

    #[test]
    fn exposes_the_proxy_port_with_client_affinity() {
        let service = service(&server(
            &MINIMAL.replace("spec: {", "spec: {proxyPort: 9090, "),
        ))
        .expect("builds");
        assert_eq!(service.metadata.name.as_deref(), Some("mcp-fetch-proxy"));
        let spec = service.spec.unwrap_or_default();
        let port = &spec.ports.unwrap_or_default()[0];
        assert_eq!(port.port, 9090);
        assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
        assert_eq!(
            spec.selector.unwrap_or_default()["app.kubernetes.io/instance"],
            "fetch"
        );
    }

    #[test]
    fn url_follows_transport_and_prefix() {
        assert_eq!(
            url(&server(MINIMAL)).expect("url"),
            "http://mcp-fetch-proxy.team.svc.cluster.local:8080/mcp"
        );
        let sse = server(&MINIMAL.replace(
            "spec: {",
            "spec: {transport: sse, endpointPrefix: /tools/, ",
        ));
        assert_eq!(
            url(&sse).expect("url"),
            "http://mcp-fetch-proxy.team.svc.cluster.local:8080/tools/sse"
        );
        let stdio_sse = server(&MINIMAL.replace("spec: {", "spec: {proxyMode: sse, "));
        assert!(url(&stdio_sse).expect("url").ends_with("/sse"));
    }

    #[test]
    fn service_overrides_are_applied() {
        let yaml = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec:\n  image: a/b:1\n  resourceOverrides:\n    proxyService:\n      annotations: {lb: internal}\n      labels: {team: a}\n";
        let service = service(&server(yaml)).expect("builds");
        assert_eq!(
            service.metadata.annotations.unwrap_or_default()["lb"],
            "internal"
        );
        assert_eq!(service.metadata.labels.unwrap_or_default()["team"], "a");
    }
}
