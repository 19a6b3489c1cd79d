//! The proxy Deployment `<name>`: runs `thv-proxyrunner` with the RunConfig mounted,
//! restricted-PodSecurity compliant, rolled when the RunConfig or a referenced Secret changes.

use std::collections::BTreeMap;

use api::MCPServer;
use api::common::ResourceRequirements as CrdResources;
use api::mcpserver::ProxyDeploymentOverrides;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Inputs, name_of, owned_meta, proxy_service_account_name, runconfig_name};
use crate::error::Error;
use crate::labels::{RUNCONFIG_CHECKSUM, SECRETS_CHECKSUM};

/// Where the RunConfig ConfigMap is mounted; the proxy's default search path.
pub const RUNCONFIG_MOUNT_PATH: &str = "/etc/runconfig";
/// Proxy requests when `proxyResources` leaves them unset: (cpu, memory).
pub const DEFAULT_PROXY_REQUESTS: (&str, &str) = ("50m", "64Mi");
/// Proxy limits when `proxyResources` leaves them unset: (cpu, memory).
pub const DEFAULT_PROXY_LIMITS: (&str, &str) = ("500m", "256Mi");
/// Name of the proxy container.
pub const PROXY_CONTAINER: &str = "toolhive";

/// The proxy Deployment.
pub fn deployment(server: &MCPServer, inputs: &Inputs<'_>) -> Result<Deployment, Error> {
    let name = name_of(server)?;
    let restarted_at = restarted_at(&server.metadata);
    let mut env = vec![
        // The proxy makes the MCPServer the owner of the StatefulSet it applies, so the
        // server's pods go with the MCPServer (not with a proxy pod that rolls).
        EnvVar {
            name: "THV_MCPSERVER_UID".to_owned(),
            value: server.metadata.uid.clone(),
            ..EnvVar::default()
        },
        // The proxy writes it on the server's pod template: a rotated Secret rolls the
        // MCP server's pods, not only the proxy's.
        EnvVar {
            name: workload_k8s::names::SECRETS_CHECKSUM_ENV.to_owned(),
            value: Some(inputs.secrets_checksum.to_owned()),
            ..EnvVar::default()
        },
    ];
    env.extend(session_password_env(server));
    env.extend(external_auth_env(inputs.external_auth));
    if let Some(at) = restarted_at {
        env.push(EnvVar {
            name: workload_k8s::names::RESTARTED_AT_ENV.to_owned(),
            value: Some(at.to_owned()),
            ..EnvVar::default()
        });
    }
    proxy_deployment(
        ProxyPod {
            metadata: owned_meta(server, name.to_owned())?,
            labels: crate::labels::mcpserver(name),
            selector: crate::labels::proxy_selector(name),
            restarted_at,
            overrides: server
                .spec
                .resource_overrides
                .as_ref()
                .and_then(|o| o.proxy_deployment.as_ref()),
            env,
            port: server.spec.proxy_port,
            resources: server.spec.proxy_resources.as_ref(),
            // Unset leaves the count to an HPA; the field manager then does not own it.
            // One proxy per stdio server: two would share its stdin and stdout.
            replicas: admission::stdio_replicas_capped(server)
                .map(|_| 1)
                .or(server.spec.replicas),
            service_account: proxy_service_account_name(name),
            runconfig: runconfig_name(name),
        },
        inputs,
    )
}

/// ToolHive's restart trigger on an object: a new time rolls the proxy (and, through
/// an MCPServer's proxy, the MCP server's pods).
pub(crate) fn restarted_at(metadata: &ObjectMeta) -> Option<&str> {
    metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(workload_k8s::names::RESTARTED_AT_ANNOTATION))
        .map(String::as_str)
        .filter(|at| !at.is_empty())
}

/// `THV_SESSION_REDIS_PASSWORD` from `spec.sessionStorage.passwordRef` (Redis only): the
/// proxy reads the password there, so it never enters the RunConfig.
pub(crate) fn session_password_env(object: &impl admission::Fronted) -> Option<EnvVar> {
    let secret =
        crate::controllers::mcpserver::dereference::Dereferenced::session_password(object)?;
    Some(secret_env(
        runconfig::config::SESSION_REDIS_PASSWORD_ENV,
        secret,
    ))
}

/// The environment an MCPExternalAuthConfig gives the proxy: its Secret's value by
/// `secretKeyRef`, and for a bearer token `Bearer <token>` composed by the kubelet
/// (dependent variable expansion), so the value never enters the RunConfig.
pub(crate) fn external_auth_env(
    config: Option<&api::externalauth::MCPExternalAuthConfigSpec>,
) -> Vec<EnvVar> {
    let Some(config) = config else {
        return Vec::new();
    };
    let (secret, bearer) = match config.type_ {
        api::externalauth::ExternalAuthType::BearerToken => (
            config.bearer_token.as_ref().map(|b| &b.token_secret_ref),
            true,
        ),
        api::externalauth::ExternalAuthType::HeaderInjection => (
            config
                .header_injection
                .as_ref()
                .map(|h| &h.value_secret_ref),
            false,
        ),
        _ => (None, false),
    };
    let Some(secret) = secret else {
        return Vec::new();
    };
    let mut env = vec![secret_env(admission::EXTERNAL_AUTH_SECRET_ENV, secret)];
    if bearer {
        env.push(EnvVar {
            name: admission::EXTERNAL_AUTH_BEARER_ENV.to_owned(),
            value: Some(format!("Bearer $({})", admission::EXTERNAL_AUTH_SECRET_ENV)),
            ..EnvVar::default()
        });
    }
    env
}

/// The environment variable `name` holding one key of a Secret (which must exist: the
/// pod does not start without it, and the controllers wait for it first).
pub(crate) fn secret_env(name: &str, secret: &api::common::SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// What differs between the proxy Deployments of the kinds that run one.
pub(crate) struct ProxyPod<'a> {
    /// The Deployment's metadata (owned by the object), before overrides.
    pub metadata: ObjectMeta,
    /// Labels of the proxy pods.
    pub labels: BTreeMap<String, String>,
    /// The Deployment's selector (a stable subset of `labels`).
    pub selector: BTreeMap<String, String>,
    /// The object's restart trigger, copied onto the pod template.
    pub restarted_at: Option<&'a str>,
    /// `spec.resourceOverrides.proxyDeployment`.
    pub overrides: Option<&'a ProxyDeploymentOverrides>,
    /// Environment of the kind's own (after the runtime's, before the overrides').
    pub env: Vec<EnvVar>,
    /// The proxy's port.
    pub port: i32,
    /// The proxy container's resources as the spec gives them.
    pub resources: Option<&'a CrdResources>,
    /// Replicas; `None` leaves them to an HPA.
    pub replicas: Option<i32>,
    /// The pod's ServiceAccount.
    pub service_account: String,
    /// The RunConfig ConfigMap.
    pub runconfig: String,
}

/// The Deployment running `thv-proxyrunner` with the RunConfig mounted,
/// restricted-PodSecurity compliant, rolled when the RunConfig or a referenced Secret
/// changes.
pub(crate) fn proxy_deployment(
    pod: ProxyPod<'_>,
    inputs: &Inputs<'_>,
) -> Result<Deployment, Error> {
    let ProxyPod {
        mut metadata,
        labels: mut pod_labels,
        selector,
        restarted_at,
        overrides,
        env: own_env,
        port,
        resources,
        replicas,
        service_account,
        runconfig,
    } = pod;
    if let Some(o) = overrides {
        crate::labels::overlay(metadata.labels.get_or_insert_with(BTreeMap::new), &o.labels);
        if !o.annotations.is_empty() {
            metadata.annotations = Some(o.annotations.clone());
        }
    }
    // A user's pod labels and annotations go first; the operator's own keys are laid over
    // them: the selector's labels (or the Deployment would be refused for a selector its
    // template does not match, and the Service and NetworkPolicy would lose the pods)
    // and the checksums that roll the pods when their inputs change.
    let mut pod_annotations = BTreeMap::new();
    if let Some(pod) = overrides.and_then(|o| o.pod_template_metadata_overrides.as_ref()) {
        pod_labels.extend(pod.labels.clone());
        pod_annotations.extend(pod.annotations.clone());
    }
    pod_labels.extend(selector.clone());
    pod_annotations.insert(
        RUNCONFIG_CHECKSUM.to_owned(),
        inputs.runconfig.checksum.clone(),
    );
    pod_annotations.insert(
        SECRETS_CHECKSUM.to_owned(),
        inputs.secrets_checksum.to_owned(),
    );
    if let Some(at) = restarted_at {
        pod_annotations.insert(
            workload_k8s::names::RESTARTED_AT_ANNOTATION.to_owned(),
            at.to_owned(),
        );
    }

    let mut env = vec![
        EnvVar {
            name: "TOOLHIVE_RUNTIME".to_owned(),
            value: Some("kubernetes".to_owned()),
            ..EnvVar::default()
        },
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_NAME", "metadata.name"),
    ];
    env.extend(own_env);
    if let Some(secret) = inputs.oidc_client_secret {
        env.push(secret_env(admission::OIDC_CLIENT_SECRET_ENV, secret));
    }
    if let Some(secret) = inputs.token_exchange_secret {
        env.push(secret_env(
            runconfig::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV,
            secret,
        ));
    }
    // Request webhooks' HMAC keys and TLS material, each by `secretKeyRef`.
    env.extend(
        inputs
            .webhooks
            .map(admission::webhook_secrets)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, secret)| secret_env(&name, secret)),
    );
    env.extend(
        overrides
            .into_iter()
            .flat_map(|o| o.env.iter())
            .map(|e| EnvVar {
                name: e.name.clone(),
                value: Some(e.value.clone()),
                ..EnvVar::default()
            }),
    );

    // Liveness and start-up ask only whether the proxy serves (`/livez`): the MCP server
    // behind may take minutes to pull or restart, and killing the proxy meanwhile would
    // drop every session. Readiness (`/health`) follows the MCP server.
    let probe = |path: &str, initial_delay, period, failures| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    };
    let container = Container {
        name: PROXY_CONTAINER.to_owned(),
        image: Some(inputs.config.proxy_image.clone()),
        image_pull_policy: inputs.config.proxy_image_pull_policy.clone(),
        args: Some(vec![
            "run".to_owned(),
            "--config".to_owned(),
            format!("{RUNCONFIG_MOUNT_PATH}/{}", super::RUNCONFIG_KEY),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(env),
        resources: Some(proxy_resources(resources)),
        volume_mounts: Some(vec![VolumeMount {
            name: "runconfig".to_owned(),
            mount_path: RUNCONFIG_MOUNT_PATH.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        startup_probe: Some(probe("/livez", 0, 2, 30)),
        liveness_probe: Some(probe("/livez", 0, 10, 3)),
        readiness_probe: Some(probe("/health", 0, 2, 1)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let pull_secrets = overrides
        .map(|o| o.image_pull_secrets.clone())
        .filter(|s| !s.is_empty());
    Ok(Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(service_account),
                    // The proxy talks to the API server (its report, an MCPServer's
                    // StatefulSet) even under an account that does not automount.
                    automount_service_account_token: Some(true),
                    containers: vec![container],
                    image_pull_secrets: pull_secrets,
                    volumes: Some(vec![Volume {
                        name: "runconfig".to_owned(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: runconfig,
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// `proxyResources` with the defaults filled in where the user left a value unset.
fn proxy_resources(spec: Option<&CrdResources>) -> ResourceRequirements {
    let pick = |set: Option<&api::common::ResourceList>, (cpu, memory): (&str, &str)| {
        BTreeMap::from([
            (
                "cpu".to_owned(),
                Quantity(
                    set.and_then(|s| s.cpu.clone())
                        .unwrap_or_else(|| cpu.to_owned()),
                ),
            ),
            (
                "memory".to_owned(),
                Quantity(
                    set.and_then(|s| s.memory.clone())
                        .unwrap_or_else(|| memory.to_owned()),
                ),
            ),
        ])
    };
    ResourceRequirements {
        requests: Some(pick(
            spec.and_then(|s| s.requests.as_ref()),
            DEFAULT_PROXY_REQUESTS,
        )),
        limits: Some(pick(
            spec.and_then(|s| s.limits.as_ref()),
            DEFAULT_PROXY_LIMITS,
        )),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OperatorConfig;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, inputs, server};

    fn proxy(d: &Deployment) -> Container {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].clone())
            .expect("container")
    }

    #[test]
    fn runs_the_proxy_with_the_runconfig_mounted() {
        let config = OperatorConfig {
            proxy_image: "example.com/proxy:1".to_owned(),
            ..OperatorConfig::default()
        };
        let d = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        let c = proxy(&d);
        assert_eq!(c.image.as_deref(), Some("example.com/proxy:1"));
        assert_eq!(
            c.args.unwrap_or_default(),
            ["run", "--config", "/etc/runconfig/runconfig.json"]
        );
        let pod = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .expect("pod");
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("fetch-proxy-runner")
        );
        assert_eq!(
            pod.volumes.unwrap_or_default()[0]
                .config_map
                .as_ref()
                .map(|c| c.name.as_str()),
            Some("fetch-runconfig")
        );
    }

    #[test]
    fn checksums_on_the_pod_template_roll_the_pods() {
        let config = OperatorConfig::default();
        let d = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        let annotations = d
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .unwrap_or_default();
        assert_eq!(annotations[RUNCONFIG_CHECKSUM], "abc123");
        assert_eq!(annotations[SECRETS_CHECKSUM], "def456");
    }

    #[test]
    fn a_users_pod_labels_and_annotations_join_but_never_replace_the_selector_or_checksums() {
        let config = OperatorConfig::default();
        let yaml = MINIMAL.replace(
            "spec: {",
            "spec: {resourceOverrides: {proxyDeployment: {podTemplateMetadataOverrides: {labels: {team: search, toolhive-name: other, app.kubernetes.io/instance: other}, annotations: {note: kept, toolhive.stacklok.dev/runconfig-checksum: frozen}}}}, ",
        );
        let d = deployment(&server(&yaml), &inputs(&config)).expect("builds");
        let spec = d.spec.expect("spec");
        let selector = spec.selector.match_labels.expect("selector");
        let template = spec.template.metadata.expect("template metadata");
        let labels = template.labels.expect("labels");
        for (key, value) in &selector {
            assert_eq!(labels.get(key), Some(value), "selector label {key}");
        }
        assert_eq!(labels["team"], "search");
        let annotations = template.annotations.expect("annotations");
        assert_eq!(annotations["note"], "kept");
        assert_eq!(annotations[RUNCONFIG_CHECKSUM], "abc123");
    }

    #[test]
    fn the_proxy_gets_the_secrets_checksum_for_the_server_pods() {
        let config = OperatorConfig::default();
        let d = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        let env = d
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers[0].env.clone().unwrap_or_default())
            .unwrap_or_default();
        let checksum = env
            .iter()
            .find(|e| e.name == workload_k8s::names::SECRETS_CHECKSUM_ENV)
            .and_then(|e| e.value.as_deref());
        assert_eq!(checksum, Some("def456"));
    }

    #[test]
    fn the_redis_password_reaches_the_proxy_from_its_secret() {
        let config = OperatorConfig::default();
        let env_of = |yaml: &str| {
            deployment(&server(yaml), &inputs(&config))
                .expect("builds")
                .spec
                .and_then(|s| s.template.spec)
                .map(|p| p.containers[0].env.clone().unwrap_or_default())
                .unwrap_or_default()
        };
        let with = MINIMAL.replace(
            "spec: {",
            "spec: {sessionStorage: {provider: redis, address: 'redis:6379', passwordRef: {name: redis, key: password}}, ",
        );
        let env = env_of(&with);
        let password = env
            .iter()
            .find(|e| e.name == "THV_SESSION_REDIS_PASSWORD")
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .map(|s| (s.name.as_str(), s.key.as_str()));
        assert_eq!(password, Some(("redis", "password")));
        // Provider memory: a password has nothing to open.
        let memory = with.replace("provider: redis", "provider: memory");
        assert!(
            !env_of(&memory)
                .iter()
                .any(|e| e.name == "THV_SESSION_REDIS_PASSWORD")
        );
    }

    #[test]
    fn toolhives_restart_annotation_rolls_the_proxy_and_reaches_the_server_pods() {
        let config = OperatorConfig::default();
        let at = "2026-12-01T10:30:00Z";
        let mut restarted = server(MINIMAL);
        restarted.metadata.annotations = Some(BTreeMap::from([(
            workload_k8s::names::RESTARTED_AT_ANNOTATION.to_owned(),
            at.to_owned(),
        )]));
        let d = deployment(&restarted, &inputs(&config)).expect("builds");
        let template = d.spec.expect("spec").template;
        let annotations = template
            .metadata
            .and_then(|m| m.annotations)
            .unwrap_or_default();
        assert_eq!(
            annotations[workload_k8s::names::RESTARTED_AT_ANNOTATION],
            at
        );
        let env = template
            .spec
            .map(|p| p.containers[0].env.clone().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            env.iter()
                .any(|e| e.name == workload_k8s::names::RESTARTED_AT_ENV
                    && e.value.as_deref() == Some(at))
        );
        let plain = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        let plain_env = plain
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers[0].env.clone().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            !plain_env
                .iter()
                .any(|e| e.name == workload_k8s::names::RESTARTED_AT_ENV)
        );
    }

    #[test]
    fn meets_the_restricted_pod_security_level() {
        let config = OperatorConfig::default();
        let d = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        let security = proxy(&d).security_context.expect("security context");
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(
            security.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(
            security.seccomp_profile.map(|s| s.type_).as_deref(),
            Some("RuntimeDefault")
        );
    }

    #[test]
    fn readiness_follows_the_mcp_server_and_liveness_only_the_proxy() {
        let config = OperatorConfig::default();
        let c = proxy(
            &deployment(
                &server(&MINIMAL.replace("spec: {", "spec: {proxyPort: 9000, ")),
                &inputs(&config),
            )
            .expect("builds"),
        );
        for (probe, path) in [
            (c.startup_probe, "/livez"),
            (c.liveness_probe, "/livez"),
            (c.readiness_probe, "/health"),
        ] {
            let get = probe.and_then(|p| p.http_get).expect("http probe");
            assert_eq!(get.path.as_deref(), Some(path));
            assert_eq!(get.port, IntOrString::String("http".to_owned()));
        }
        assert_eq!(c.ports.unwrap_or_default()[0].container_port, 9000);
    }

    #[test]
    fn proxy_resources_default_and_merge() {
        let config = OperatorConfig::default();
        let c = proxy(&deployment(&server(MINIMAL), &inputs(&config)).expect("builds"));
        let r = c.resources.expect("resources");
        assert_eq!(r.requests.unwrap_or_default()["memory"].0, "64Mi");
        let yaml = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: fetch}\nspec:\n  image: a/b:1\n  proxyResources:\n    limits: {memory: 1Gi}\n";
        let c = proxy(&deployment(&server(yaml), &inputs(&config)).expect("builds"));
        let limits = c.resources.and_then(|r| r.limits).unwrap_or_default();
        assert_eq!(
            (limits["memory"].0.as_str(), limits["cpu"].0.as_str()),
            ("1Gi", "500m")
        );
    }

    #[test]
    fn an_external_auth_bearer_token_is_composed_by_the_kubelet() {
        let config = OperatorConfig::default();
        let auth: api::externalauth::MCPExternalAuthConfigSpec =
            serde_json::from_value(serde_json::json!({"type": "bearerToken",
                "bearerToken": {"tokenSecretRef": {"name": "api", "key": "token"}}}))
            .expect("spec");
        let mut i = inputs(&config);
        i.external_auth = Some(&auth);
        let env = proxy(&deployment(&server(MINIMAL), &i).expect("builds"))
            .env
            .unwrap_or_default();
        let secret = env
            .iter()
            .find(|e| e.name == admission::EXTERNAL_AUTH_SECRET_ENV)
            .expect("the Secret's value");
        assert!(secret.value.is_none());
        let bearer = env
            .iter()
            .find(|e| e.name == admission::EXTERNAL_AUTH_BEARER_ENV)
            .expect("the header's value");
        assert_eq!(
            bearer.value.as_deref(),
            Some("Bearer $(TOOLHIVE_EXTERNAL_AUTH_SECRET)")
        );
    }

    #[test]
    fn client_secrets_arrive_by_secret_reference_only() {
        let config = OperatorConfig::default();
        let oidc = api::common::SecretKeyRef {
            name: "idp".to_owned(),
            key: "client-secret".to_owned(),
        };
        let exchange = api::common::SecretKeyRef {
            name: "exchange".to_owned(),
            key: "proxy-secret".to_owned(),
        };
        let hooks: api::MCPWebhookConfig = api::manifest::from_yaml(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPWebhookConfig\nmetadata: {name: hooks}\nspec:\n  validating:\n  - name: opa\n    url: https://opa.policy.svc/check\n    hmacSecretRef: {name: hooks, key: hmac}\n    tlsConfig:\n      clientCertSecretRef: {name: hooks-tls, key: tls.crt}\n      clientKeySecretRef: {name: hooks-tls, key: tls.key}\n",
        )
        .expect("fixture");
        let mut i = inputs(&config);
        i.oidc_client_secret = Some(&oidc);
        i.token_exchange_secret = Some(&exchange);
        i.webhooks = Some(&hooks.spec);
        let env = proxy(&deployment(&server(MINIMAL), &i).expect("builds"))
            .env
            .unwrap_or_default();
        for (name, key) in [
            (admission::OIDC_CLIENT_SECRET_ENV, "client-secret"),
            (
                runconfig::config::TOKEN_EXCHANGE_CLIENT_SECRET_ENV,
                "proxy-secret",
            ),
            ("TOOLHIVE_WEBHOOK_VALIDATING_0_HMAC", "hmac"),
            ("TOOLHIVE_WEBHOOK_VALIDATING_0_CLIENT_CERT", "tls.crt"),
            ("TOOLHIVE_WEBHOOK_VALIDATING_0_CLIENT_KEY", "tls.key"),
        ] {
            let var = env.iter().find(|e| e.name == name).expect("env var");
            assert!(var.value.is_none());
            assert_eq!(
                var.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .map(|s| s.key.as_str()),
                Some(key)
            );
        }
    }

    #[test]
    fn a_stdio_server_gets_one_proxy_whatever_spec_replicas_asks() {
        let config = OperatorConfig::default();
        let stdio = server(&MINIMAL.replace("spec: {", "spec: {replicas: 3, "));
        let d = deployment(&stdio, &inputs(&config)).expect("builds");
        assert_eq!(d.spec.and_then(|s| s.replicas), Some(1));
        let http = server(&MINIMAL.replace(
            "spec: {",
            "spec: {replicas: 3, transport: streamable-http, ",
        ));
        let d = deployment(&http, &inputs(&config)).expect("builds");
        assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));
    }

    #[test]
    fn replicas_are_left_to_an_hpa_when_unset() {
        let config = OperatorConfig::default();
        let d = deployment(&server(MINIMAL), &inputs(&config)).expect("builds");
        assert_eq!(d.spec.and_then(|s| s.replicas), None);
    }
}
