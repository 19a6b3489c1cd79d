//! RFC 8693 token exchange toward the MCP server: the caller's validated bearer token
//! (handed over by authentication, which removed it from the request) is traded at the
//! authorization server's token endpoint for a token whose audience is the server, and
//! that token is what the server receives.
//!
//! Exchanged tokens are cached per caller token until the sooner of their own expiry
//! and the caller token's (ToolHive exchanges on every request): a session's requests
//! cost one round trip to the authorization server, not one each. The cache is an
//! `lru::LruCache` as authentication's, bounded, keyed by the SHA-256 of the caller
//! token so that tokens are not kept as keys.
//!
//! Failures: the authorization server refusing the caller's token (`invalid_grant`,
//! `invalid_target`, `access_denied`, ...) is the caller's 403, naming the audience; the
//! server refusing the proxy's own client, answering 5xx or not answering is a 502, the
//! platform's problem rather than the caller's (ToolHive answers 401 to both, which
//! sends an MCP client back to log in for nothing).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use lru::LruCache;
use runconfig::middleware::token_exchange::ValidatedTokenExchange;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::authn::{CallerToken, Principal};
use super::chain::{BuildContext, Middleware};
use super::telemetry::{ExchangeOutcome, Metrics};
use crate::reply::{self, Body};
use crate::runner::BuildError;

/// How many exchanged tokens are kept.
const CACHED: usize = 10_000;
/// An exchanged token is used until this long before it expires.
const EXPIRY_MARGIN: u64 = 30;
/// RFC 8693's grant type.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type asked for.
const REQUESTED: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The token exchange stage.
pub struct TokenExchange {
    config: ValidatedTokenExchange,
    header: HeaderName,
    client_secret: Option<String>,
    http: reqwest::Client,
    cache: Mutex<LruCache<[u8; 32], (HeaderValue, u64)>>,
    metrics: Option<Arc<Metrics>>,
}

/// Why an exchange gave no token.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The authorization server refused the caller's token for this audience.
    #[error(
        "the authorization server refused to exchange the caller's token for audience {audience:?}: {error}"
    )]
    Refused {
        /// The audience asked for.
        audience: String,
        /// The OAuth error code and description.
        error: String,
    },
    /// The proxy's own request failed: its client was refused, the server failed or
    /// did not answer, or answered nonsense.
    #[error("token exchange at {url} failed: {detail}")]
    Failed {
        /// The token endpoint.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

/// RFC 6749 §5.1 / RFC 8693 §2.2.1: the fields of a successful answer the proxy uses.
#[derive(Deserialize)]
struct Issued {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// RFC 6749 §5.2: an error answer.
#[derive(Deserialize)]
struct OauthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenExchange {
    /// The stage for `config`, reading the client secret from its environment variable
    /// now (a missing variable is a start-up error, not a 502 on every request).
    pub fn new(
        config: &ValidatedTokenExchange,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, BuildError> {
        let client_secret = match &config.client_secret_env {
            Some(env) => Some(std::env::var(env).map_err(|_| {
                BuildError::Setting(format!(
                    "proxy.token_exchange.client_secret_env: the environment variable {env} is not set (or not UTF-8)"
                ))
            })?),
            None => None,
        };
        let header = match &config.header_name {
            Some(name) => HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                BuildError::Setting(format!("proxy.token_exchange.header_name {name:?}: {e}"))
            })?,
            None => AUTHORIZATION,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| BuildError::Setting(format!("token exchange HTTP client: {e}")))?;
        Ok(Self {
            config: config.clone(),
            header,
            client_secret,
            http,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED).unwrap_or(NonZeroUsize::MIN),
            )),
            metrics,
        })
    }

    /// `Bearer <token>` for the server, from the cache or the authorization server.
    pub async fn exchanged(&self, caller: &CallerToken) -> Result<HeaderValue, ExchangeError> {
        let key: [u8; 32] = Sha256::digest(caller.token.as_bytes()).into();
        let now = now();
        if let Ok(mut cache) = self.cache.lock() {
            match cache.get(&key) {
                Some((value, until)) if *until > now => {
                    self.count(ExchangeOutcome::Cached);
                    return Ok(value.clone());
                }
                Some(_) => {
                    cache.pop(&key);
                }
                None => {}
            }
        }
        let issued = self.request(&caller.token).await.inspect_err(|e| {
            self.count(match e {
                ExchangeError::Refused { .. } => ExchangeOutcome::Refused,
                ExchangeError::Failed { .. } => ExchangeOutcome::Failed,
            });
        })?;
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", issued.access_token)).map_err(|_| {
                self.count(ExchangeOutcome::Failed);
                self.failed("the issued token is not a valid header value")
            })?;
        self.count(ExchangeOutcome::Issued);
        value.set_sensitive(true);
        // Kept until the sooner of the two expiries, less a margin; not kept when the
        // answer does not say when the token expires.
        let until = issued
            .expires_in
            .map(|seconds| now + seconds)
            .into_iter()
            .chain(caller.expires_at)
            .min()
            .filter(|_| issued.expires_in.is_some())
            .map(|at| at.saturating_sub(EXPIRY_MARGIN));
        if let Some(until) = until.filter(|until| *until > now)
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.put(key, (value.clone(), until));
        }
        Ok(value)
    }

    async fn request(&self, subject_token: &str) -> Result<Issued, ExchangeError> {
        let scope = self.config.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject_token),
            ("subject_token_type", self.config.subject_token_type),
            ("requested_token_type", REQUESTED),
            ("audience", &self.config.audience),
        ];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let mut request = self.http.post(self.config.token_url.clone());
        match (&self.config.client_id, &self.client_secret) {
            // RFC 6749 §2.3.1: both form-urlencoded before Basic encoding.
            (Some(id), Some(secret)) => {
                request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
            }
            // A public client names itself in the body.
            (Some(id), None) => form.push(("client_id", id)),
            _ => {}
        }
        let response = request
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| self.failed(&format!("no answer: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.failed(&format!("the answer broke off: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice::<Issued>(&body)
                .map_err(|e| self.failed(&format!("the answer has no access_token: {e}")));
        }
        match serde_json::from_slice::<OauthError>(&body) {
            // The proxy's own client is at fault, not the caller.
            Ok(error)
                if status.is_client_error()
                    && !matches!(
                        error.error.as_str(),
                        "invalid_client" | "unauthorized_client" | "unsupported_grant_type"
                    ) =>
            {
                Err(ExchangeError::Refused {
                    audience: self.config.audience.clone(),
                    error: describe(&error),
                })
            }
            Ok(error) => Err(self.failed(&format!("HTTP {status}: {}", describe(&error)))),
            Err(_) => Err(self.failed(&format!("HTTP {status}"))),
        }
    }

    fn count(&self, outcome: ExchangeOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.token_exchange(outcome);
        }
    }

    fn failed(&self, detail: &str) -> ExchangeError {
        ExchangeError::Failed {
            url: self.config.token_url.to_string(),
            detail: detail.to_owned(),
        }
    }
}

fn describe(error: &OauthError) -> String {
    match &error.error_description {
        Some(description) => format!("{} ({description})", error.error),
        None => error.error.clone(),
    }
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Middleware for TokenExchange {
    type Config<'a> = &'a ValidatedTokenExchange;

    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        Self::new(config, context.metrics.clone()).map(Some)
    }

    async fn admit(&self, parts: &mut Parts) -> Result<Option<Principal>, Response<Body>> {
        let Some(caller) = parts.extensions.remove::<CallerToken>() else {
            // Validation requires authentication, which hands every caller's token over.
            return Err(reply::error(
                StatusCode::UNAUTHORIZED,
                "no bearer token to exchange",
            ));
        };
        match self.exchanged(&caller).await {
            Ok(value) => {
                parts.headers.insert(self.header.clone(), value);
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "token exchange");
                let status = match e {
                    ExchangeError::Refused { .. } => StatusCode::FORBIDDEN,
                    ExchangeError::Failed { .. } => StatusCode::BAD_GATEWAY,
                };
                // The caller learns why it was refused; the platform's failures are
                // in the proxy's log, not in answers.
                let message = match &e {
                    ExchangeError::Refused { .. } => e.to_string(),
                    ExchangeError::Failed { .. } => {
                        "the proxy could not exchange the caller's token for the server (its log says why)".to_owned()
                    }
                };
                Err(reply::error(status, &message))
            }
        }
    }
}
