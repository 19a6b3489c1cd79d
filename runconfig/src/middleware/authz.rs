//! Authorization: Cedar policies (`cedarv1`) or an external decision service (`httpv1`).

use std::time::Duration;

use url::Url;

use crate::config::AuthzConfig;
use crate::error::Reason;
use crate::middleware::cedar::{self, CompiledPolicies, DEFAULT_GROUP_ENTITY_TYPE};
use crate::path::FieldPath;
use crate::validate::Check;

/// Default decision-service timeout.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest decision-service timeout: a request waits this long before being denied.
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Validated authorization.
#[derive(Clone, Debug)]
pub enum ValidatedAuthz {
    /// Compiled Cedar policies.
    Cedar(Box<ValidatedCedar>),
    /// An HTTP decision service.
    Http(ValidatedHttpAuthz),
}

/// Cedar policies ready for evaluation.
#[derive(Clone, Debug)]
pub struct ValidatedCedar {
    /// Policies, entities and schema.
    pub compiled: CompiledPolicies,
    /// Claim with the caller's groups.
    pub group_claim_name: Option<String>,
    /// Claim with the caller's roles.
    pub role_claim_name: Option<String>,
}

/// A decision service.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedHttpAuthz {
    /// Decision endpoint.
    pub url: Url,
    /// Request timeout.
    pub timeout: Duration,
    /// Skip TLS verification.
    pub insecure_skip_verify: bool,
    /// Send arguments.
    pub include_args: bool,
    /// Send the operation.
    pub include_operation: bool,
}

pub fn validate(
    authz: &AuthzConfig,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedAuthz> {
    match authz {
        AuthzConfig::Cedar(config) => {
            let group_type = config
                .group_entity_type
                .as_deref()
                .unwrap_or(DEFAULT_GROUP_ENTITY_TYPE);
            let valid_type = group_type
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && group_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_type {
                check.fail(
                    path.key("group_entity_type"),
                    Reason::InvalidFormat,
                    format!("{group_type:?} is not a Cedar entity type name"),
                    "an identifier such as THVGroup (namespaces are not supported)",
                );
                return None;
            }
            match cedar::compile(&config.policies, &config.entities_json, group_type, path) {
                Ok(compiled) => Some(ValidatedAuthz::Cedar(Box::new(ValidatedCedar {
                    compiled,
                    group_claim_name: config.group_claim_name.clone(),
                    role_claim_name: config.role_claim_name.clone(),
                }))),
                Err(problems) => {
                    problems.into_iter().for_each(|p| check.push(p));
                    None
                }
            }
        }
        AuthzConfig::Http(config) => {
            let url = check.url(&path.key("url"), &config.url, true, "");
            let timeout = match config.timeout.as_deref() {
                None => Some(DEFAULT_HTTP_TIMEOUT),
                Some(text) => match humantime::parse_duration(text) {
                    Ok(t) if !t.is_zero() && t <= MAX_HTTP_TIMEOUT => Some(t),
                    Ok(_) => {
                        check.fail(
                            path.key("timeout"),
                            Reason::OutOfRange,
                            format!("timeout {text:?} is out of range"),
                            "more than 0 and at most 60s",
                        );
                        None
                    }
                    Err(e) => {
                        check.fail(
                            path.key("timeout"),
                            Reason::InvalidFormat,
                            format!("{text:?} is not a duration: {e}"),
                            "a duration such as 500ms, 2s or 1m",
                        );
                        None
                    }
                },
            };
            Some(ValidatedAuthz::Http(ValidatedHttpAuthz {
                url: url?,
                timeout: timeout?,
                insecure_skip_verify: config.insecure_skip_verify,
                include_args: config.include_args,
                include_operation: config.include_operation,
            }))
        }
    }
}
