//! `mcp-<name>-ingress`: the NetworkPolicy that lets only the server's proxy reach the MCP
//! server's pods (issue #17, item 8). The proxy, not the operator, builds those pods
//! (crate `workload-k8s`); their selector comes from there, so the two cannot disagree.
//!
//! The policy isolates ingress only: clients reach the proxy, never the MCP server
//! directly, whatever else runs in the namespace. Egress is left open (an MCP server
//! calls the APIs it fronts); the permission profile's network rules are not enforced
//! yet. A stdio server gets no ingress rule at all: the proxy reaches it through the
//! kubelet (pods/attach), not over the network.

use api::MCPServer;
use api::mcpserver::Transport;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{name_of, owned_meta};
use crate::error::Error;

/// The policy's name.
pub fn network_policy_name(server: &str) -> String {
    format!("mcp-{server}-ingress")
}

/// Whether `server` gets the policy: its `spec.networkPolicy.enabled`, else the
/// operator's default.
pub fn wanted(server: &MCPServer, default: bool) -> bool {
    server
        .spec
        .network_policy
        .as_ref()
        .map_or(default, |p| p.enabled)
}

/// The NetworkPolicy isolating the MCP server's pods of `server`.
pub fn network_policy(server: &MCPServer) -> Result<NetworkPolicy, Error> {
    let name = name_of(server)?;
    let proxy_labels = crate::labels::proxy_selector(name);
    // The MCP pods carry `app: <name>`; a proxy pod carries `app: mcpserver`, so for a
    // server named `mcpserver` the proxy's own label excludes its pods.
    let mcp_pods = LabelSelector {
        match_labels: Some(workload_k8s::names::selector(name)),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "app.kubernetes.io/name".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(vec!["mcpserver".to_owned()]),
        }]),
    };
    let ingress = match server.spec.transport {
        Transport::Stdio => Vec::new(),
        Transport::Sse | Transport::StreamableHttp => vec![NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(proxy_labels),
                    match_expressions: None,
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: None,
        }],
    };
    Ok(NetworkPolicy {
        metadata: owned_meta(server, network_policy_name(name))?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(mcp_pods),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            egress: None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::server;

    #[test]
    fn only_the_proxy_reaches_an_http_server_and_nothing_a_stdio_one() {
        let http = server(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: mcpserver, namespace: ns, uid: u}\nspec: {image: a/b:1, transport: streamable-http}\n",
        );
        let policy = network_policy(&http).expect("builds");
        assert_eq!(
            policy.metadata.name.as_deref(),
            Some("mcp-mcpserver-ingress")
        );
        let spec = policy.spec.expect("spec");
        let selected = spec.pod_selector.expect("selector");
        assert_eq!(
            selected.match_labels.as_ref().and_then(|l| l.get("app")),
            Some(&"mcpserver".to_owned())
        );
        // The proxy pods (app.kubernetes.io/name: mcpserver) are not selected, even for a
        // server whose name equals their `app` label.
        let proxy = crate::labels::mcpserver("mcpserver");
        let excluded = &selected.match_expressions.expect("expressions")[0];
        assert_eq!(excluded.operator, "NotIn");
        assert!(
            excluded
                .values
                .as_ref()
                .is_some_and(|v| v.contains(&proxy["app.kubernetes.io/name"]))
        );
        let from = spec.ingress.expect("ingress")[0]
            .from
            .clone()
            .expect("from");
        let peer = from[0].pod_selector.clone().expect("pods");
        assert_eq!(
            peer.match_labels,
            Some(crate::labels::proxy_selector("mcpserver"))
        );
        assert!(
            peer.match_labels
                .unwrap_or_default()
                .iter()
                .all(|(k, v)| proxy.get(k) == Some(v))
        );
        assert!(policy.metadata.owner_references.is_some());

        let stdio = server(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: s, namespace: ns, uid: u}\nspec: {image: a/b:1}\n",
        );
        let spec = network_policy(&stdio).expect("builds").spec.expect("spec");
        assert_eq!(spec.ingress, Some(Vec::new()), "no connection at all");
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    }

    #[test]
    fn the_spec_overrides_the_operators_default() {
        let plain = server(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: s, namespace: ns, uid: u}\nspec: {image: a/b:1}\n",
        );
        assert!(wanted(&plain, true));
        assert!(!wanted(&plain, false));
        let off = server(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: s, namespace: ns, uid: u}\nspec: {image: a/b:1, networkPolicy: {enabled: false}}\n",
        );
        assert!(!wanted(&off, true));
    }
}
