//! OIDC/JWT authentication: issuer, audience, JWKS and introspection endpoints, scopes.

use url::Url;

use crate::config::OidcConfig;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::Check;

/// Issuer of this cluster's service-account tokens, as seen from a pod.
pub const KUBERNETES_ISSUER: &str = "https://kubernetes.default.svc";
/// JWKS of this cluster's service-account tokens, as seen from a pod.
pub const KUBERNETES_JWKS_URL: &str = "https://kubernetes.default.svc/openid/v1/jwks";

/// Validated authentication settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedOidc {
    /// Expected `iss`.
    pub issuer: Url,
    /// Expected `aud`.
    pub audience: String,
    /// JWKS endpoint; `None` means discover it from the issuer.
    pub jwks_url: Option<Url>,
    /// Introspection endpoint.
    pub introspection_url: Option<Url>,
    /// Client ID for introspection.
    pub client_id: Option<String>,
    /// Environment variable with the client secret.
    pub client_secret_env: Option<String>,
    /// Scopes for the protected-resource metadata.
    pub scopes: Vec<String>,
    /// `resource` for the protected-resource metadata.
    pub resource_url: Option<Url>,
    /// Inline PEM CA bundle.
    pub ca_bundle: Option<String>,
    /// Fetch the JWKS with the pod's service-account token and the cluster CA.
    pub use_cluster_auth: bool,
    /// Accept tokens only of this `system:serviceaccount:<ns>:<name>` subject.
    pub required_subject: Option<String>,
    /// Allow private JWKS addresses.
    pub allow_private_ip: bool,
}

pub fn validate(oidc: &OidcConfig, path: &FieldPath, check: &mut Check) -> Option<ValidatedOidc> {
    let sa = oidc.kubernetes_service_account.as_ref();
    let issuer_text = oidc.issuer.as_deref().or(sa.map(|_| KUBERNETES_ISSUER));
    let jwks_text = oidc.jwks_url.as_deref().or(sa.map(|_| KUBERNETES_JWKS_URL));
    let insecure = oidc.insecure_allow_http;
    let flag = "insecure_allow_http (insecureAllowHTTP in MCPOIDCConfig)";

    let issuer = match issuer_text {
        Some(text) => check.url(&path.key("issuer"), text, insecure, flag),
        None => {
            check.fail(
                path.key("issuer"),
                Reason::Required,
                "the issuer is required",
                "the https URL of the identity provider, or kubernetes_service_account",
            );
            None
        }
    };
    let audience = oidc.audience.as_deref().filter(|a| !a.trim().is_empty());
    if audience.is_none() {
        check.fail(path.key("audience"), Reason::Required, "an audience is required with an issuer: without it any token of the provider would be accepted", "the audience (aud claim) tokens for this server carry");
    }
    let jwks_url = jwks_text.map(|t| check.url(&path.key("jwks_url"), t, insecure, flag));
    let introspection_url = oidc
        .introspection_url
        .as_deref()
        .map(|t| check.url(&path.key("introspection_url"), t, insecure, flag));
    let resource_url = oidc
        .resource_url
        .as_deref()
        .map(|t| check.url(&path.key("resource_url"), t, true, ""));
    for (i, scope) in oidc.scopes.iter().enumerate() {
        check.scope(&path.key("scopes").index(i), scope);
    }
    if let Some(env) = &oidc.client_secret_env {
        check.env_name(&path.key("client_secret_env"), env);
    }
    if introspection_url.is_some() && oidc.client_id.is_none() {
        check.fail(
            path.key("client_id"),
            Reason::Required,
            "token introspection needs a client ID",
            "set client_id (clientId) with introspection_url",
        );
    }
    if let Some(bundle) = &oidc.ca_bundle
        && !bundle.contains("-----BEGIN CERTIFICATE-----")
    {
        check.fail(
            path.key("ca_bundle"),
            Reason::InvalidFormat,
            "the CA bundle holds no PEM certificate",
            "one or more PEM certificates",
        );
    }
    let required_subject = sa.and_then(|sa| match (&sa.namespace, &sa.service_account) {
        (Some(ns), Some(name)) => Some(format!("system:serviceaccount:{ns}:{name}")),
        _ => None,
    });
    Some(ValidatedOidc {
        issuer: issuer?,
        audience: audience?.to_owned(),
        jwks_url: jwks_url.map_or(Some(None), |u| u.map(Some))?,
        introspection_url: introspection_url.map_or(Some(None), |u| u.map(Some))?,
        client_id: oidc.client_id.clone(),
        client_secret_env: oidc.client_secret_env.clone(),
        scopes: oidc.scopes.clone(),
        resource_url: resource_url.map_or(Some(None), |u| u.map(Some))?,
        ca_bundle: oidc.ca_bundle.clone(),
        use_cluster_auth: sa.is_some_and(|sa| sa.use_cluster_auth.unwrap_or(true)),
        required_subject,
        allow_private_ip: oidc.allow_private_ip || sa.is_some(),
    })
}
