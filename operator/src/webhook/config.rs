//! The ValidatingWebhookConfiguration the operator keeps in place: which requests the
//! API server sends to the webhook, where, and what it trusts. Built by a pure function
//! (unit-tested), applied with server-side apply as the operator's field manager.
//!
//! The Helm chart renders the same object (so `helm uninstall` removes it); the
//! operator applies it again with the `caBundle` of its own CA (self-signed mode) or
//! without one (cert-manager mode: cert-manager's CA injector sets it).

use api::GROUP;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// The one webhook of the configuration; kubectl names it in denials.
pub const WEBHOOK_NAME: &str = "validate.toolhive.stacklok.dev";
/// The path the handler serves.
pub const PATH: &str = "/validate";
/// Resources validated, in both served versions.
pub const RESOURCES: [&str; 10] = [
    "mcpservers",
    "mcpremoteproxies",
    "mcptoolconfigs",
    "mcpoidcconfigs",
    "mcpauthzconfigs",
    "mcptelemetryconfigs",
    "mcpgroups",
    "mcpexternalauthconfigs",
    "mcpwebhookconfigs",
    "mcpregistries",
];

/// What the API server does when the webhook cannot be reached or fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum FailurePolicy {
    /// Refuse the request: nothing unchecked gets in (the default).
    #[default]
    Fail,
    /// Admit it unchecked; the CRD's CEL rules still apply.
    Ignore,
}

impl FailurePolicy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "Fail",
            Self::Ignore => "Ignore",
        }
    }
}

/// Where the API server sends reviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The operator's Service (in-cluster).
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
    /// A URL base such as `https://127.0.0.1:9443` (out-of-cluster runs: tests,
    /// development); the path is appended.
    Url(url::Url),
}

impl Target {
    /// The names the serving certificate must be valid for.
    pub fn certificate_names(&self) -> Vec<String> {
        match self {
            Self::Service {
                namespace, name, ..
            } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
                format!("{name}.{namespace}"),
                name.clone(),
            ],
            Self::Url(url) => match url.host() {
                Some(url::Host::Ipv4(ip)) => vec![ip.to_string()],
                Some(url::Host::Ipv6(ip)) => vec![ip.to_string()],
                Some(url::Host::Domain(domain)) => vec![domain.to_owned()],
                None => Vec::new(),
            },
        }
    }

    fn client_config(&self, ca_bundle: Option<&str>) -> WebhookClientConfig {
        let ca_bundle = ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec()));
        match self {
            Self::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                ca_bundle,
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(PATH.to_owned()),
                    port: Some(*port),
                }),
                url: None,
            },
            Self::Url(base) => WebhookClientConfig {
                ca_bundle,
                service: None,
                url: Some(format!("{}{PATH}", base.as_str().trim_end_matches('/'))),
            },
        }
    }
}

/// The settings the configuration is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// Name of the (cluster-scoped) ValidatingWebhookConfiguration.
    pub name: String,
    /// Where reviews go.
    pub target: Target,
    /// What happens when the webhook is unreachable.
    pub failure_policy: FailurePolicy,
    /// Only namespaces matching it are validated (all when `None`).
    pub namespace_selector: Option<LabelSelector>,
    /// How long the API server waits for an answer.
    pub timeout_seconds: i32,
}

/// The configuration for `registration`, trusting `ca_bundle` (PEM) when given.
pub fn build(
    registration: &Registration,
    ca_bundle: Option<&str>,
) -> ValidatingWebhookConfiguration {
    let mut configuration = ValidatingWebhookConfiguration::default();
    configuration.metadata.name = Some(registration.name.clone());
    configuration.metadata.labels = Some(
        [(
            "app.kubernetes.io/managed-by".to_owned(),
            crate::FIELD_MANAGER.to_owned(),
        )]
        .into(),
    );
    configuration.webhooks = Some(vec![ValidatingWebhook {
        name: WEBHOOK_NAME.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config: registration.target.client_config(ca_bundle),
        failure_policy: Some(registration.failure_policy.as_str().to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        namespace_selector: Some(registration.namespace_selector.clone().unwrap_or_default()),
        object_selector: Some(LabelSelector::default()),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(registration.timeout_seconds),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec![GROUP.to_owned()]),
            api_versions: Some(vec![
                api::VERSION.to_owned(),
                api::DEPRECATED_VERSION.to_owned(),
            ]),
            operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
            resources: Some(RESOURCES.iter().map(|r| (*r).to_owned()).collect()),
            scope: Some("Namespaced".to_owned()),
        }]),
        match_conditions: None,
    }]);
    configuration
}

/// Server-side applies `configuration`, taking over fields another manager set (the
/// chart renders the same object without a `caBundle`).
pub async fn apply(
    client: &kube::Client,
    configuration: &ValidatingWebhookConfiguration,
) -> Result<(), kube::Error> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(configuration).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = "admissionregistration.k8s.io/v1".into();
    body["kind"] = "ValidatingWebhookConfiguration".into();
    let params = PatchParams::apply(crate::FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(body)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Registration {
        Registration {
            name: "thv-operator".into(),
            target: Target::Service {
                namespace: "toolhive".into(),
                name: "thv-operator-webhook".into(),
                port: 443,
            },
            failure_policy: FailurePolicy::Fail,
            namespace_selector: None,
            timeout_seconds: 5,
        }
    }

    #[test]
    fn validates_create_and_update_of_every_kind_in_both_versions() {
        let configuration = build(&service(), Some("PEM"));
        let webhooks = configuration.webhooks.unwrap_or_default();
        assert_eq!(webhooks.len(), 1);
        let webhook = &webhooks[0];
        assert_eq!(webhook.name, WEBHOOK_NAME);
        assert_eq!(webhook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(webhook.side_effects, "None");
        assert_eq!(webhook.timeout_seconds, Some(5));
        assert_eq!(webhook.admission_review_versions, ["v1"]);
        let rules = webhook.rules.clone().unwrap_or_default();
        let rule = &rules[0];
        let strings = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        assert_eq!(strings(&rule.api_groups), ["toolhive.stacklok.dev"]);
        assert_eq!(strings(&rule.api_versions), ["v1beta1", "v1alpha1"]);
        assert_eq!(strings(&rule.operations), ["CREATE", "UPDATE"]);
        assert_eq!(rule.resources.as_ref().map(Vec::len), Some(RESOURCES.len()));
    }

    #[test]
    fn service_target_is_reached_by_service_and_trusts_the_bundle() {
        let configuration = build(&service(), Some("PEM"));
        let config = &configuration.webhooks.unwrap_or_default()[0].client_config;
        let service = config.service.as_ref();
        assert_eq!(
            service.map(|s| s.name.as_str()),
            Some("thv-operator-webhook")
        );
        assert_eq!(service.and_then(|s| s.port), Some(443));
        assert_eq!(service.and_then(|s| s.path.as_deref()), Some("/validate"));
        assert_eq!(
            config.ca_bundle.as_ref().map(|b| b.0.as_slice()),
            Some(&b"PEM"[..])
        );
        assert_eq!(config.url, None);
    }

    #[test]
    fn url_base_replaces_the_service_for_out_of_cluster_runs() -> anyhow::Result<()> {
        let registration = Registration {
            target: Target::Url(url::Url::parse("https://127.0.0.1:9443/")?),
            ..service()
        };
        let configuration = build(&registration, None);
        let config = &configuration.webhooks.unwrap_or_default()[0].client_config;
        assert_eq!(
            config.url.as_deref(),
            Some("https://127.0.0.1:9443/validate")
        );
        assert_eq!(config.service, None);
        assert_eq!(config.ca_bundle, None, "cert-manager injects it");
        assert_eq!(registration.target.certificate_names(), ["127.0.0.1"]);
        Ok(())
    }

    #[test]
    fn service_certificate_covers_the_names_the_api_server_dials() {
        assert_eq!(
            service().target.certificate_names(),
            [
                "thv-operator-webhook.toolhive.svc",
                "thv-operator-webhook.toolhive.svc.cluster.local",
                "thv-operator-webhook.toolhive",
                "thv-operator-webhook",
            ]
        );
    }
}
