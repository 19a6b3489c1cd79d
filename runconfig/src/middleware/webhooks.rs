//! HTTP request webhooks (ToolHive's protocol `v0.1.0`): mutating webhooks may change an
//! MCP request, validating webhooks allow or deny it. Each has a name, an endpoint, a
//! timeout, a failure policy, and optionally an HMAC key and TLS settings whose values
//! arrive in environment variables (from Secrets; never in the RunConfig).

use std::collections::HashSet;
use std::time::Duration;

use url::Url;

use crate::config::Webhook;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::{Check, go_duration};

/// A webhook's timeout when none is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest timeout accepted.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a list of webhooks may change requests or only judge them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    /// May answer with a JSON Patch of the request.
    Mutating,
    /// Allows or denies.
    Validating,
}

impl WebhookKind {
    /// ToolHive's name for it (`mutating`, `validating`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutating => "mutating",
            Self::Validating => "validating",
        }
    }
}

/// What a failed webhook means for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refuse the request (fail closed).
    Fail,
    /// Let it through (fail open).
    Ignore,
}

/// One validated webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedWebhook {
    /// Its name.
    pub name: String,
    /// Its endpoint.
    pub url: Url,
    /// How long to wait for it.
    pub timeout: Duration,
    /// What its failure means.
    pub failure_policy: FailurePolicy,
    /// Environment variable holding the HMAC key.
    pub hmac_secret_env: Option<String>,
    /// Environment variable holding the PEM CA bundle.
    pub ca_bundle_env: Option<String>,
    /// Environment variables holding the PEM client certificate and key.
    pub client_identity_env: Option<(String, String)>,
    /// Do not check the webhook's certificate.
    pub insecure_skip_verify: bool,
}

/// A validated list of webhooks of one kind, in the order they are called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedWebhooks {
    /// Mutating or validating.
    pub kind: WebhookKind,
    /// The webhooks.
    pub webhooks: Vec<ValidatedWebhook>,
}

/// Checks a list of webhooks; `None` when it is empty or has a problem.
pub fn validate(
    webhooks: &[Webhook],
    kind: WebhookKind,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedWebhooks> {
    if webhooks.is_empty() {
        return None;
    }
    let before = check.len();
    let mut names = HashSet::new();
    let mut valid = Vec::new();
    for (i, webhook) in webhooks.iter().enumerate() {
        let at = path.index(i);
        if !names.insert(webhook.name.as_str()) {
            check.fail(
                at.key("name"),
                Reason::Duplicate,
                format!(
                    "another {} webhook is called {:?}",
                    kind.as_str(),
                    webhook.name
                ),
                "a name of its own: logs and metrics tell the webhooks apart by it",
            );
        }
        valid.extend(one(webhook, &at, check));
    }
    (check.len() == before).then_some(ValidatedWebhooks {
        kind,
        webhooks: valid,
    })
}

fn one(webhook: &Webhook, path: &FieldPath, check: &mut Check) -> Option<ValidatedWebhook> {
    let name = webhook.name.trim();
    if name.is_empty() || name.len() > 63 {
        check.fail(
            path.key("name"),
            if name.is_empty() {
                Reason::Required
            } else {
                Reason::OutOfRange
            },
            format!("the webhook name {name:?} is empty or longer than 63 characters"),
            "a name of 1 to 63 characters",
        );
    }
    let tls = webhook.tls.clone().unwrap_or_default();
    let url = check.url(
        &path.key("url"),
        webhook.url.trim(),
        tls.insecure_skip_verify,
        "tls.insecure_skip_verify (tlsConfig.insecureSkipVerify)",
    );
    let timeout = match webhook.timeout.as_deref().map(str::trim) {
        None | Some("") => Some(DEFAULT_TIMEOUT),
        Some(text) => match go_duration(text) {
            Some(t) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&t) => Some(t),
            Some(_) => {
                check.fail(
                    path.key("timeout"),
                    Reason::OutOfRange,
                    format!("timeout {text:?} is outside 1s to 30s"),
                    "a duration from 1s to 30s, e.g. 5s (10s when unset)",
                );
                None
            }
            None => {
                check.fail(
                    path.key("timeout"),
                    Reason::InvalidFormat,
                    format!("{text:?} is not a duration"),
                    "a Go duration such as 5s or 1500ms",
                );
                None
            }
        },
    };
    let failure_policy = match webhook.failure_policy.as_deref() {
        None | Some("") | Some("fail") => Some(FailurePolicy::Fail),
        Some("ignore") => Some(FailurePolicy::Ignore),
        Some(other) => {
            check.fail(
                path.key("failure_policy"),
                Reason::NotSupported,
                format!("unknown failure policy {other:?}"),
                "fail (refuse the request when the webhook fails) or ignore (let it through)",
            );
            None
        }
    };
    let env = |check: &mut Check, field: &FieldPath, value: &Option<String>| match value {
        Some(name) if check.env_name(field, name) => Some(name.clone()),
        _ => None,
    };
    let hmac_secret_env = env(
        check,
        &path.key("hmac_secret_env"),
        &webhook.hmac_secret_env,
    );
    let tls_path = path.key("tls");
    let ca_bundle_env = env(check, &tls_path.key("ca_bundle_env"), &tls.ca_bundle_env);
    let cert = env(
        check,
        &tls_path.key("client_cert_env"),
        &tls.client_cert_env,
    );
    let key = env(check, &tls_path.key("client_key_env"), &tls.client_key_env);
    let client_identity_env = match (cert, key, &tls.client_cert_env, &tls.client_key_env) {
        (Some(cert), Some(key), _, _) => Some((cert, key)),
        (_, _, Some(_), None) => {
            check.fail(
                tls_path.key("client_key_env"),
                Reason::Required,
                "a client certificate is set without its private key",
                "both the client certificate and its key (mTLS), or neither",
            );
            None
        }
        (_, _, None, Some(_)) => {
            check.fail(
                tls_path.key("client_cert_env"),
                Reason::Required,
                "a client key is set without its certificate",
                "both the client certificate and its key (mTLS), or neither",
            );
            None
        }
        _ => None,
    };
    Some(ValidatedWebhook {
        name: name.to_owned(),
        url: url?,
        timeout: timeout?,
        failure_policy: failure_policy?,
        hmac_secret_env,
        ca_bundle_env,
        client_identity_env,
        insecure_skip_verify: tls.insecure_skip_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookTls;

    fn run(webhooks: &[Webhook]) -> (Option<ValidatedWebhooks>, Vec<String>) {
        let mut check = Check::default();
        let path = FieldPath::root().key("proxy").key("validating_webhooks");
        let validated = validate(webhooks, WebhookKind::Validating, &path, &mut check);
        let problems = match check.into_result() {
            Ok(()) => Vec::new(),
            Err(v) => v.0.iter().map(|v| v.path.to_string()).collect(),
        };
        (validated, problems)
    }

    fn hook(name: &str, url: &str) -> Webhook {
        Webhook {
            name: name.to_owned(),
            url: url.to_owned(),
            ..Webhook::default()
        }
    }

    #[test]
    fn defaults_are_ten_seconds_and_fail_closed() {
        let (validated, problems) = run(&[hook("policy", "https://policy.example/check")]);
        assert!(problems.is_empty(), "{problems:?}");
        let webhook = &validated.expect("valid").webhooks[0];
        assert_eq!(webhook.timeout, DEFAULT_TIMEOUT);
        assert_eq!(webhook.failure_policy, FailurePolicy::Fail);
    }

    #[test]
    fn http_needs_insecure_skip_verify_as_in_toolhive() {
        let (_, problems) = run(&[hook("policy", "http://policy.default.svc/check")]);
        assert_eq!(problems, ["proxy.validating_webhooks[0].url"]);
        let mut insecure = hook("policy", "http://policy.default.svc/check");
        insecure.tls = Some(WebhookTls {
            insecure_skip_verify: true,
            ..WebhookTls::default()
        });
        assert!(run(&[insecure]).1.is_empty());
    }

    #[test]
    fn each_mistake_is_named_at_its_field() {
        let mut bad = hook("", "https://policy.example/check");
        bad.timeout = Some("45s".to_owned());
        bad.failure_policy = Some("retry".to_owned());
        bad.hmac_secret_env = Some("1BAD".to_owned());
        bad.tls = Some(WebhookTls {
            client_cert_env: Some("CERT".to_owned()),
            ..WebhookTls::default()
        });
        let (validated, problems) = run(&[bad, hook("a", "https://x"), hook("a", "https://y")]);
        assert!(validated.is_none());
        assert_eq!(
            problems,
            [
                "proxy.validating_webhooks[0].name",
                "proxy.validating_webhooks[0].timeout",
                "proxy.validating_webhooks[0].failure_policy",
                "proxy.validating_webhooks[0].hmac_secret_env",
                "proxy.validating_webhooks[0].tls.client_key_env",
                "proxy.validating_webhooks[2].name",
            ]
        );
    }
}
