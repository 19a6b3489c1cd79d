//! The build stage of an MCPRemoteProxy: pure functions from the object to what the
//! operator owns. The proxy Deployment and Service are the MCPServer's builders with
//! this kind's names, labels and fields; the Role lets the proxy report on this
//! MCPRemoteProxy and nothing else (it creates no pods, it reaches a URL).

use admission::{remote_endpoint_path, remote_proxy_service_name};
use api::MCPRemoteProxy;
use api::externalauth::MCPExternalAuthConfigSpec;
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use crate::controllers::mcpserver::build::deployment::{
    external_auth_env, secret_env, session_password_env,
};
use crate::controllers::mcpserver::build::{
    Inputs, Objects, ProxyPod, owned_meta_with, proxy_deployment, proxy_service, restarted_at,
    runconfig_map_with, runconfig_name,
};
use crate::controllers::{name_of, namespace_of};
use crate::error::Error;

/// `<name>-remote-proxy-runner` (ToolHive's name), unless `spec.serviceAccount` names one.
pub fn remote_proxy_service_account_name(name: &str) -> String {
    format!("{name}-remote-proxy-runner")
}

/// `spec.podTemplateSpec` under the proxy's pod (ToolHive merges it too): the user's pod
/// spec is the start — node selector, tolerations, affinity, volumes, sidecars, init
/// containers — and the operator's settings are laid over it. The container `toolhive`
/// is the proxy: the user's volume mounts (a CA bundle, say), `envFrom` and variables of
/// names the operator does not set are added to it; its image, arguments, ports, probes,
/// resources and security context stay the operator's. Labels and annotations the
/// operator sets win. Admission refused a template whose pod would break the
/// `restricted` Pod Security Standard, the defaults of which are filled in.
///
/// Written here rather than with a strategic-merge-patch crate: none is maintained for
/// k8s-openapi types, and only these few lists need merging by key.
fn under_pod_template(ours: &mut PodTemplateSpec, theirs: PodTemplateSpec) {
    let mut spec = theirs.spec.unwrap_or_default();
    let own = ours.spec.take().unwrap_or_default();
    let mut own_containers = own.containers.into_iter();
    if let Some(mut proxy) = own_containers.next() {
        match spec.containers.iter().position(|c| c.name == proxy.name) {
            Some(i) => {
                let theirs = spec.containers.remove(i);
                let mounts = proxy.volume_mounts.get_or_insert_with(Vec::new);
                mounts.extend(theirs.volume_mounts.unwrap_or_default());
                let env = proxy.env.get_or_insert_with(Vec::new);
                let set: Vec<String> = env.iter().map(|e| e.name.clone()).collect();
                env.extend(
                    theirs
                        .env
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|e| !set.contains(&e.name)),
                );
                proxy.env_from = theirs.env_from;
                spec.containers.insert(i, proxy);
            }
            // The proxy first, the sidecars after it.
            None => spec.containers.insert(0, proxy),
        }
    }
    spec.containers.extend(own_containers);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.extend(own.volumes.unwrap_or_default());
    spec.service_account_name = own.service_account_name;
    spec.automount_service_account_token = own.automount_service_account_token;
    if own.image_pull_secrets.is_some() {
        spec.image_pull_secrets = own.image_pull_secrets;
    }
    if spec.security_context.is_none() {
        spec.security_context = own.security_context;
    }
    ours.spec = Some(spec);
    let theirs_meta = theirs.metadata.unwrap_or_default();
    let meta = ours.metadata.get_or_insert_with(Default::default);
    for (mine, given) in [
        (&mut meta.labels, theirs_meta.labels),
        (&mut meta.annotations, theirs_meta.annotations),
    ] {
        let mut merged = given.unwrap_or_default();
        merged.extend(mine.take().unwrap_or_default());
        *mine = Some(merged);
    }
}

/// In-cluster URL of the remote server through the proxy.
pub fn url(proxy: &MCPRemoteProxy) -> Result<String, Error> {
    let name = name_of(proxy)?;
    let namespace = namespace_of(proxy)?;
    Ok(format!(
        "http://{}.{namespace}.svc.cluster.local:{}{}",
        remote_proxy_service_name(name),
        proxy.spec.proxy_port,
        remote_endpoint_path(proxy)
    ))
}

/// Every object one MCPRemoteProxy owns.
pub fn objects(
    proxy: &MCPRemoteProxy,
    inputs: &Inputs<'_>,
    external_auth: Option<&MCPExternalAuthConfigSpec>,
) -> Result<Objects, Error> {
    let name = name_of(proxy)?;
    let labels = crate::labels::mcpremoteproxy(name);
    let meta = |object_name: String| owned_meta_with(proxy, object_name, labels.clone());
    let overrides = proxy.spec.resource_overrides.as_ref();
    let account = proxy
        .spec
        .service_account
        .clone()
        .unwrap_or_else(|| remote_proxy_service_account_name(name));
    let service_accounts = if proxy.spec.service_account.is_some() {
        Vec::new()
    } else {
        vec![ServiceAccount {
            metadata: meta(account.clone())?,
            image_pull_secrets: overrides
                .and_then(|o| o.proxy_deployment.as_ref())
                .map(|d| d.image_pull_secrets.clone())
                .filter(|s| !s.is_empty()),
            // The proxy reports on its MCPRemoteProxy with this token.
            automount_service_account_token: Some(true),
            ..ServiceAccount::default()
        }]
    };
    let role_name = remote_proxy_service_account_name(name);
    let role = Role {
        metadata: meta(role_name.clone())?,
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![api::GROUP.to_owned()]),
                resources: Some(vec!["mcpremoteproxies/status".to_owned()]),
                resource_names: Some(vec![name.to_owned()]),
                verbs: vec!["get".to_owned(), "patch".to_owned()],
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(vec!["events.k8s.io".to_owned()]),
                resources: Some(vec!["events".to_owned()]),
                verbs: vec!["create".to_owned(), "patch".to_owned()],
                ..PolicyRule::default()
            },
        ]),
    };
    let role_binding = RoleBinding {
        metadata: meta(role_name.clone())?,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: role_name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: account.clone(),
            namespace: proxy.metadata.namespace.clone(),
            ..Subject::default()
        }]),
    };
    let mut env = vec![
        EnvVar {
            name: "THV_OWNER_KIND".to_owned(),
            value: Some("MCPRemoteProxy".to_owned()),
            ..EnvVar::default()
        },
        EnvVar {
            name: "THV_OWNER_UID".to_owned(),
            value: proxy.metadata.uid.clone(),
            ..EnvVar::default()
        },
    ];
    // The values of headers from Secrets, read by the kubelet: never in the RunConfig.
    let from_secrets = proxy
        .spec
        .header_forward
        .iter()
        .flat_map(|f| f.add_headers_from_secret.iter());
    env.extend(from_secrets.enumerate().map(|(i, header)| {
        secret_env(
            &admission::forwarded_header_env(i),
            &header.value_secret_ref,
        )
    }));
    env.extend(external_auth_env(external_auth));
    env.extend(session_password_env(proxy));
    let mut deployment = proxy_deployment(
        ProxyPod {
            metadata: meta(name.to_owned())?,
            labels: labels.clone(),
            selector: crate::labels::remote_proxy_selector(name),
            restarted_at: restarted_at(&proxy.metadata),
            overrides: overrides.and_then(|o| o.proxy_deployment.as_ref()),
            env,
            port: proxy.spec.proxy_port,
            resources: proxy.spec.resources.as_ref(),
            replicas: proxy.spec.replicas,
            service_account: account,
            runconfig: runconfig_name(name),
        },
        inputs,
    )?;
    if let (Some(template), Some(spec)) = (&proxy.spec.pod_template_spec, deployment.spec.as_mut())
    {
        let (theirs, _) = workload_k8s::pod_template(
            template,
            &runconfig::FieldPath::parse("spec.podTemplateSpec"),
        );
        under_pod_template(&mut spec.template, theirs);
    }
    let service = proxy_service(
        meta(remote_proxy_service_name(name))?,
        crate::labels::remote_proxy_selector(name),
        proxy.spec.proxy_port,
        proxy.spec.session_affinity,
        overrides.and_then(|o| o.proxy_service.as_ref()),
    );
    Ok(Objects {
        service_accounts,
        role,
        role_binding,
        runconfig: runconfig_map_with(meta(runconfig_name(name))?, inputs),
        deployment,
        service,
        // No MCP server pods of ours to isolate.
        network_policy: crate::controllers::mcpserver::build::Isolation::Unmanaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OperatorConfig;
    use crate::controllers::mcpserver::build::fixtures::inputs;

    fn proxy(spec: &str) -> MCPRemoteProxy {
        let yaml = format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPRemoteProxy\nmetadata: {{name: gh, namespace: team, uid: u-1, generation: 1}}\nspec:\n  remoteUrl: https://mcp.example.com/mcp\n{spec}"
        );
        api::manifest::from_yaml(&yaml).expect("fixture parses")
    }

    #[test]
    fn names_and_labels_follow_toolhive() {
        let config = OperatorConfig::default();
        let objects = objects(&proxy(""), &inputs(&config), None).expect("builds");
        assert_eq!(
            objects.service.metadata.name.as_deref(),
            Some("mcp-gh-remote-proxy")
        );
        assert_eq!(
            objects.service_accounts[0].metadata.name.as_deref(),
            Some("gh-remote-proxy-runner")
        );
        assert_eq!(objects.deployment.metadata.name.as_deref(), Some("gh"));
        let selector = objects
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        assert_eq!(
            selector.get("app.kubernetes.io/name").map(String::as_str),
            Some("mcpremoteproxy")
        );
        assert_eq!(
            objects
                .service
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone()),
            Some(selector)
        );
        for owned in [
            &objects.deployment.metadata,
            &objects.service.metadata,
            &objects.runconfig.metadata,
            &objects.role.metadata,
        ] {
            let owner = &owned.owner_references.as_ref().expect("owned")[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str()),
                ("MCPRemoteProxy", "u-1")
            );
        }
        assert_eq!(
            url(&proxy("")).expect("url"),
            "http://mcp-gh-remote-proxy.team.svc.cluster.local:8080/mcp"
        );
    }

    #[test]
    fn the_proxy_may_report_on_its_own_object_only() {
        let config = OperatorConfig::default();
        let objects = objects(&proxy(""), &inputs(&config), None).expect("builds");
        let rules = objects.role.rules.expect("rules");
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["mcpremoteproxies/status".to_owned()][..])
        );
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["gh".to_owned()][..])
        );
        let env = objects
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod")
            .containers[0]
            .env
            .clone()
            .unwrap_or_default();
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(value("THV_OWNER_KIND").as_deref(), Some("MCPRemoteProxy"));
        assert_eq!(value("THV_OWNER_UID").as_deref(), Some("u-1"));
    }

    #[test]
    fn header_values_from_secrets_arrive_by_secret_reference_only() {
        let config = OperatorConfig::default();
        let objects = objects(
            &proxy(
                "  headerForward:\n    addPlaintextHeaders: {X-Tenant: a}\n    addHeadersFromSecret:\n      - headerName: X-API-Key\n        valueSecretRef: {name: api, key: token}\n",
            ),
            &inputs(&config),
            None,
        )
        .expect("builds");
        let pod = objects
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        let env = pod.containers[0].env.clone().unwrap_or_default();
        let header = env
            .iter()
            .find(|e| e.name == "TOOLHIVE_HEADER_FROM_SECRET_0")
            .expect("the header's variable");
        assert!(header.value.is_none());
        let secret = header
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("from the Secret");
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("api", "token")
        );
    }

    #[test]
    fn a_bearer_token_is_composed_by_the_kubelet_from_its_secret() {
        let config = OperatorConfig::default();
        let auth: api::MCPExternalAuthConfig = api::manifest::from_yaml(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPExternalAuthConfig\nmetadata: {name: auth}\nspec:\n  type: bearerToken\n  bearerToken:\n    tokenSecretRef: {name: api, key: token}\n",
        )
        .expect("parses");
        let objects = objects(&proxy(""), &inputs(&config), Some(&auth.spec)).expect("builds");
        let pod = objects
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        let env = pod.containers[0].env.clone().unwrap_or_default();
        let at = |name: &str| env.iter().position(|e| e.name == name).expect(name);
        let secret = &env[at("TOOLHIVE_EXTERNAL_AUTH_SECRET")];
        assert!(secret.value.is_none());
        assert_eq!(
            secret
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .map(|s| (s.name.as_str(), s.key.as_str())),
            Some(("api", "token"))
        );
        let bearer = &env[at("TOOLHIVE_EXTERNAL_AUTH_BEARER")];
        assert_eq!(
            bearer.value.as_deref(),
            Some("Bearer $(TOOLHIVE_EXTERNAL_AUTH_SECRET)")
        );
        assert!(
            at("TOOLHIVE_EXTERNAL_AUTH_SECRET") < at("TOOLHIVE_EXTERNAL_AUTH_BEARER"),
            "the kubelet expands only variables defined before"
        );
    }

    #[test]
    fn a_named_service_account_is_bound_not_created() {
        let config = OperatorConfig::default();
        let objects = objects(
            &proxy("  serviceAccount: corp-proxy\n"),
            &inputs(&config),
            None,
        )
        .expect("builds");
        assert!(objects.service_accounts.is_empty());
        let subject = &objects.role_binding.subjects.expect("subjects")[0];
        assert_eq!(subject.name, "corp-proxy");
        let pod = objects
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some("corp-proxy"));
    }

    #[test]
    fn resources_are_the_proxy_containers() {
        let config = OperatorConfig::default();
        let objects = objects(
            &proxy("  resources:\n    limits: {cpu: 200m, memory: 256Mi}\n"),
            &inputs(&config),
            None,
        )
        .expect("builds");
        let pod = objects
            .deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        let limits = pod.containers[0]
            .resources
            .as_ref()
            .and_then(|r| r.limits.clone())
            .unwrap_or_default();
        assert_eq!(limits.get("cpu").map(|q| q.0.as_str()), Some("200m"));
    }

    #[test]
    fn the_pod_template_is_under_the_proxys_own_settings() {
        let config = OperatorConfig::default();
        let template = "  podTemplateSpec:
    metadata:
      labels: {team: search, app.kubernetes.io/name: mine}
    spec:
      nodeSelector: {pool: edge}
      tolerations: [{key: dedicated, operator: Exists}]
      volumes: [{name: corp-ca, configMap: {name: corp-ca}}]
      containers:
        - name: toolhive
          image: evil/proxy:latest
          env: [{name: SSL_CERT_FILE, value: /etc/corp-ca/ca.crt}, {name: TOOLHIVE_RUNTIME, value: docker}]
          volumeMounts: [{name: corp-ca, mountPath: /etc/corp-ca, readOnly: true}]
        - name: log-shipper
          image: fluent/fluent-bit:3.2
";
        let objects = objects(&proxy(template), &inputs(&config), None).expect("builds");
        let template = objects.deployment.spec.expect("spec").template;
        let pod = template.spec.expect("pod");
        assert_eq!(
            pod.node_selector
                .unwrap_or_default()
                .get("pool")
                .map(String::as_str),
            Some("edge")
        );
        assert_eq!(pod.tolerations.unwrap_or_default().len(), 1);
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["toolhive", "log-shipper"]);
        let proxy = &pod.containers[0];
        // The operator's image and environment win; the user's mount and variable join.
        assert_eq!(proxy.image.as_deref(), Some(config.proxy_image.as_str()));
        let env = proxy.env.clone().unwrap_or_default();
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(value("TOOLHIVE_RUNTIME").as_deref(), Some("kubernetes"));
        assert_eq!(
            value("SSL_CERT_FILE").as_deref(),
            Some("/etc/corp-ca/ca.crt")
        );
        let mounts: Vec<&str> = proxy
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert!(mounts.contains(&"/etc/corp-ca"), "{mounts:?}");
        let volumes: Vec<String> = pod
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.clone())
            .collect();
        assert_eq!(volumes, ["corp-ca", "runconfig"]);
        // The sidecar gets the restricted defaults the operator's own container has.
        let sidecar = pod.containers[1].security_context.clone().expect("filled");
        assert_eq!(sidecar.allow_privilege_escalation, Some(false));
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("gh-remote-proxy-runner")
        );
        // Labels: the user's join, the operator's win.
        let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
        assert_eq!(labels.get("team").map(String::as_str), Some("search"));
        assert_ne!(
            labels.get("app.kubernetes.io/name").map(String::as_str),
            Some("mine")
        );
    }
}
