//! ServiceAccounts, the proxy's Role and its RoleBinding: least privilege for a proxy
//! that creates its MCP server's StatefulSet and Service and attaches to its pod.

use api::MCPServer;
use api::mcpserver::Transport;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::{name_of, owned_meta};
use crate::error::Error;

/// `<name>-proxy-runner`.
pub fn proxy_service_account_name(name: &str) -> String {
    format!("{name}-proxy-runner")
}

/// `<name>-sa`, the MCP server pod's ServiceAccount when the spec names none.
pub fn mcp_service_account_name(name: &str) -> String {
    format!("{name}-sa")
}

/// The proxy's ServiceAccount, and the MCP server's unless `spec.serviceAccount` is set.
pub fn service_accounts(server: &MCPServer) -> Result<Vec<ServiceAccount>, Error> {
    let name = name_of(server)?;
    let pull_secrets = server
        .spec
        .resource_overrides
        .as_ref()
        .and_then(|o| o.proxy_deployment.as_ref())
        .map(|d| d.image_pull_secrets.clone())
        .filter(|s| !s.is_empty());
    let mut accounts = vec![ServiceAccount {
        metadata: owned_meta(server, proxy_service_account_name(name))?,
        image_pull_secrets: pull_secrets,
        // The proxy talks to the API server with this token; nothing else in the pod needs one.
        automount_service_account_token: Some(true),
        ..ServiceAccount::default()
    }];
    if server.spec.service_account.is_none() {
        accounts.push(ServiceAccount {
            metadata: owned_meta(server, mcp_service_account_name(name))?,
            // An MCP server has no business with the Kubernetes API.
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        });
    }
    Ok(accounts)
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The proxy's permissions in its namespace, and nothing more.
pub fn proxy_role(server: &MCPServer) -> Result<Role, Error> {
    let name = name_of(server)?;
    // Exactly what the proxy's Kubernetes backend does (proxyrunner/src/backend/
    // kubernetes.rs, report.rs): server-side apply of the StatefulSet (create, patch) and
    // a watch on it; a watch on the server's pods; its report on the MCPServer; attach
    // for a stdio server; the headless Service of an HTTP server.
    let mut rules = vec![
        rule(
            "apps",
            &["statefulsets"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule("", &["pods"], &["get", "list", "watch"]),
        // The proxy reports what it finds behind it: its own MCPServer's
        // `status.backend` and Events about it.
        PolicyRule {
            resource_names: Some(vec![name.to_owned()]),
            ..rule(
                "toolhive.stacklok.dev",
                &["mcpservers/status"],
                &["get", "patch"],
            )
        },
        rule("events.k8s.io", &["events"], &["create", "patch"]),
        // The StatefulSet controller's Events say why a server pod cannot be created.
        rule("", &["events"], &["list", "watch"]),
    ];
    if server.spec.transport == Transport::Stdio {
        rules.push(rule("", &["pods/attach"], &["create", "get"]));
    } else {
        rules.push(rule("", &["services"], &["get", "create", "patch"]));
    }
    Ok(Role {
        metadata: owned_meta(server, proxy_service_account_name(name))?,
        rules: Some(rules),
    })
}

pub fn proxy_role_binding(server: &MCPServer) -> Result<RoleBinding, Error> {
    let name = name_of(server)?;
    let account = proxy_service_account_name(name);
    Ok(RoleBinding {
        metadata: owned_meta(server, account.clone())?,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: account.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: account,
            namespace: server.metadata.namespace.clone(),
            ..Subject::default()
        }]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, server};

    #[test]
    fn role_grants_exactly_what_the_proxy_needs() {
        let role = proxy_role(&server(MINIMAL)).expect("builds");
        let rules: Vec<String> = role
            .rules
            .unwrap_or_default()
            .iter()
            .map(|r| {
                format!(
                    "{}/{}{}: {}",
                    r.api_groups.as_deref().unwrap_or_default().join(","),
                    r.resources.as_deref().unwrap_or_default().join(","),
                    r.resource_names
                        .as_ref()
                        .map(|n| format!("[{}]", n.join(",")))
                        .unwrap_or_default(),
                    r.verbs.join(",")
                )
            })
            .collect();
        assert_eq!(
            rules,
            [
                "apps/statefulsets: get,list,watch,create,patch",
                "/pods: get,list,watch",
                "toolhive.stacklok.dev/mcpservers/status[fetch]: get,patch",
                "events.k8s.io/events: create,patch",
                "/events: list,watch",
                "/pods/attach: create,get",
            ]
        );
        assert_eq!(role.metadata.name.as_deref(), Some("fetch-proxy-runner"));
    }

    #[test]
    fn only_a_stdio_proxy_may_attach_and_only_an_http_one_may_write_services() {
        let http = server(&MINIMAL.replace("spec: {", "spec: {transport: streamable-http, "));
        let resources: Vec<String> = proxy_role(&http)
            .expect("builds")
            .rules
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            resources,
            [
                "statefulsets",
                "pods",
                "mcpservers/status",
                "events",
                "events",
                "services"
            ]
        );
    }

    #[test]
    fn binding_names_the_proxy_account_in_the_servers_namespace() {
        let binding = proxy_role_binding(&server(MINIMAL)).expect("builds");
        let subject = &binding.subjects.unwrap_or_default()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            ("fetch-proxy-runner", Some("team"))
        );
        assert_eq!(binding.role_ref.name, "fetch-proxy-runner");
    }

    #[test]
    fn mcp_account_is_created_only_when_the_spec_names_none() {
        let own = service_accounts(&server(MINIMAL)).expect("builds");
        let names: Vec<_> = own
            .iter()
            .filter_map(|a| a.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["fetch-proxy-runner", "fetch-sa"]);
        assert_eq!(own[1].automount_service_account_token, Some(false));
        let with_own = server(&MINIMAL.replace("spec: {", "spec: {serviceAccount: existing, "));
        assert_eq!(service_accounts(&with_own).expect("builds").len(), 1);
    }

    #[test]
    fn every_object_is_controlled_by_the_mcpserver() {
        let role = proxy_role(&server(MINIMAL)).expect("builds");
        let owner = &role.metadata.owner_references.unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("MCPServer", "fetch", Some(true))
        );
    }
}
