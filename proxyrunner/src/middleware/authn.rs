//! Authentication: who is calling.
//!
//! - Without OIDC, every caller is the anonymous local principal.
//! - With OIDC, `Authorization: Bearer <token>` is required. JWTs are checked against the
//!   issuer's JWKS (signature, `iss`, `aud`, `exp`, `nbf`; asymmetric algorithms only);
//!   the key set is fetched on first use, refreshed hourly and re-fetched when a token
//!   names an unknown `kid` (key rotation), at most every 10 s. Tokens that are not JWTs
//!   are checked by RFC 7662 introspection when an introspection URL is configured.
//!   Accepted tokens are cached (by SHA-256) until they expire, so a token's signature is
//!   verified once, not per request.
//! - Failures answer 401 with `WWW-Authenticate: Bearer resource_metadata="…"` pointing at
//!   the RFC 9728 document this module serves at `/.well-known/oauth-protected-resource`.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use runconfig::middleware::oidc::ValidatedOidc;
use runconfig::validate::ProxyMode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use super::chain::{BuildContext, Middleware};
use crate::reply::{self, Body};
use crate::runner::BuildError;

/// The caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    /// `sub`, or `anonymous`.
    pub subject: String,
    /// Every claim of the token (empty for the anonymous principal).
    pub claims: Map<String, Value>,
}

impl Principal {
    /// The principal of a proxy without authentication.
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".to_owned(),
            claims: Map::new(),
        }
    }
}

/// The bearer token an authenticated caller presented, kept in the request's extensions
/// for token exchange after its `Authorization` header is removed.
#[derive(Clone)]
pub struct CallerToken {
    /// The token, without `Bearer `.
    pub token: String,
    /// Its `exp` (Unix seconds), when it has one.
    pub expires_at: Option<u64>,
}

/// Why a request is not authenticated; each becomes a 401.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No bearer token.
    #[error("missing bearer token")]
    Missing,
    /// The token was refused.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key set or introspection endpoint could not be reached.
    #[error("token could not be checked: {0}")]
    Unavailable(String),
}

const JWKS_TTL: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
const CACHED_TOKENS: usize = 10_000;
const LEEWAY_SECONDS: u64 = 30;

/// Authentication as configured.
pub enum Authenticator {
    /// No OIDC: the anonymous principal.
    Anonymous,
    /// OIDC bearer tokens.
    Oidc(Box<Oidc>),
}

/// OIDC token checks.
pub struct Oidc {
    config: ValidatedOidc,
    http: reqwest::Client,
    jwks: RwLock<Option<(JwkSet, Instant)>>,
    tokens: Mutex<LruCache<[u8; 32], (Principal, u64)>>,
    client_secret: Option<String>,
}

impl Authenticator {
    /// Builds the authenticator; `None` means anonymous.
    pub fn new(oidc: Option<&ValidatedOidc>) -> Result<Self, String> {
        let Some(config) = oidc else {
            return Ok(Self::Anonymous);
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15));
        if let Some(pem) = &config.ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("OIDC CA bundle: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("OIDC HTTP client: {e}"))?;
        let client_secret = config
            .client_secret_env
            .as_ref()
            .and_then(|name| std::env::var(name).ok());
        Ok(Self::Oidc(Box::new(Oidc {
            config: config.clone(),
            http,
            jwks: RwLock::new(None),
            tokens: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_TOKENS).unwrap_or(NonZeroUsize::MIN),
            )),
            client_secret,
        })))
    }

    /// Whether tokens are required.
    pub fn is_enabled(&self) -> bool {
        matches!(self, Self::Oidc(_))
    }

    /// Authenticates a request from its headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self {
            Self::Anonymous => Ok(Principal::anonymous()),
            Self::Oidc(oidc) => {
                let token = bearer(headers).ok_or(AuthError::Missing)?;
                oidc.check(token).await
            }
        }
    }

    /// The RFC 9728 document for a resource at `resource` (the proxy's MCP URL).
    pub fn metadata(&self, resource: &str) -> Option<Value> {
        let Self::Oidc(oidc) = self else { return None };
        let resource = oidc
            .config
            .resource_url
            .as_ref()
            .map_or(resource.to_owned(), |u| u.to_string());
        Some(serde_json::json!({
            "resource": resource,
            "authorization_servers": [oidc.config.issuer.as_str().trim_end_matches('/')],
            "bearer_methods_supported": ["header"],
            "scopes_supported": oidc.config.scopes,
        }))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Oidc {
    async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((principal, exp)) = cache.get(&key) {
                if *exp > now() {
                    return Ok(principal.clone());
                }
                cache.pop(&key);
            }
        }
        let (principal, exp) = match jsonwebtoken::decode_header(token) {
            Ok(header) => self.verify_jwt(token, header).await?,
            Err(_) if self.config.introspection_url.is_some() => self.introspect(token).await?,
            Err(e) => return Err(AuthError::Invalid(format!("not a JWT: {e}"))),
        };
        if let Some(required) = &self.config.required_subject
            && &principal.subject != required
        {
            return Err(AuthError::Invalid("subject not allowed".to_owned()));
        }
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, (principal.clone(), exp));
        Ok(principal)
    }

    async fn verify_jwt(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<(Principal, u64), AuthError> {
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(AuthError::Invalid(
                "symmetric (HS*) signatures are not accepted".to_owned(),
            ));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| AuthError::Invalid(format!("signing key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[
            self.config.issuer.as_str(),
            self.config.issuer.as_str().trim_end_matches('/'),
        ]);
        let mut required: HashSet<String> =
            ["exp", "iss"].iter().map(|s| (*s).to_owned()).collect();
        if self.config.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[self.config.audience.as_str()]);
            required.insert("aud".to_owned());
        }
        validation.required_spec_claims = required;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok((principal_from(data.claims), exp))
    }

    /// The key a token names; re-fetches the set for an unknown `kid`.
    async fn key_for(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, AuthError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        {
            let cached = self.jwks.read().await;
            if let Some((set, fetched)) = cached.as_ref()
                && fetched.elapsed() < JWKS_TTL
            {
                if let Some(jwk) = find(set) {
                    return Ok(jwk);
                }
                if fetched.elapsed() < JWKS_MIN_REFETCH {
                    return Err(AuthError::Invalid("unknown signing key".to_owned()));
                }
            }
        }
        let mut cached = self.jwks.write().await;
        let fresh =
            !matches!(cached.as_ref(), Some((_, fetched)) if fetched.elapsed() < JWKS_MIN_REFETCH);
        if fresh {
            let set = self.fetch_jwks().await?;
            *cached = Some((set, Instant::now()));
        }
        cached
            .as_ref()
            .and_then(|(set, _)| find(set))
            .ok_or_else(|| AuthError::Invalid("unknown signing key".to_owned()))
    }

    async fn fetch_jwks(&self) -> Result<JwkSet, AuthError> {
        let url = match &self.config.jwks_url {
            Some(url) => url.to_string(),
            None => self.discover_jwks_uri().await?,
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Unavailable(format!("JWKS {url}: {e}")))?;
        response
            .json::<JwkSet>()
            .await
            .map_err(|e| AuthError::Unavailable(format!("JWKS {url}: {e}")))
    }

    async fn discover_jwks_uri(&self) -> Result<String, AuthError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.as_str().trim_end_matches('/')
        );
        let document: Value = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Unavailable(format!("OIDC discovery {url}: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("OIDC discovery {url}: {e}")))?;
        document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| AuthError::Unavailable(format!("OIDC discovery {url}: no jwks_uri")))
    }

    async fn introspect(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let Some(url) = &self.config.introspection_url else {
            return Err(AuthError::Invalid("not a JWT".to_owned()));
        };
        let mut request = self.http.post(url.clone()).form(&[("token", token)]);
        if let Some(client_id) = &self.config.client_id {
            request = request.basic_auth(client_id, self.client_secret.as_deref());
        }
        let claims: Map<String, Value> = request
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Unavailable(format!("introspection: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("introspection: {e}")))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(AuthError::Invalid("token is not active".to_owned()));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .unwrap_or(now() + 60);
        if exp + LEEWAY_SECONDS < now() {
            return Err(AuthError::Invalid("token expired".to_owned()));
        }
        if !self.config.audience.is_empty() && claims.contains_key("aud") {
            let matches = match &claims["aud"] {
                Value::String(a) => a == &self.config.audience,
                Value::Array(list) => list
                    .iter()
                    .any(|a| a.as_str() == Some(&self.config.audience)),
                _ => false,
            };
            if !matches {
                return Err(AuthError::Invalid("wrong audience".to_owned()));
            }
        }
        Ok((principal_from(claims), exp))
    }
}

fn principal_from(claims: Map<String, Value>) -> Principal {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    Principal { subject, claims }
}

/// The `WWW-Authenticate` value of a 401.
pub fn challenge(metadata_url: &str, error: &AuthError) -> String {
    match error {
        AuthError::Missing => format!("Bearer resource_metadata=\"{metadata_url}\""),
        _ => format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{metadata_url}\"",
            error.to_string().replace('"', "'")
        ),
    }
}

/// Where the RFC 9728 protected-resource document is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The authentication middleware: admits callers (401 otherwise) and serves the RFC 9728
/// document that tells clients where to get a token.
pub struct Authentication {
    authenticator: Authenticator,
    trust_proxy_headers: bool,
    /// The MCP endpoint's path as clients use it (`<endpointPrefix>/mcp` or `/sse`).
    endpoint: String,
}

impl Authentication {
    /// Authentication by `authenticator` for a proxy serving `mode` under `prefix`.
    pub fn new(
        authenticator: Authenticator,
        trust_proxy_headers: bool,
        prefix: &str,
        mode: ProxyMode,
    ) -> Self {
        let endpoint = match mode {
            ProxyMode::StreamableHttp => "/mcp",
            ProxyMode::Sse => "/sse",
        };
        Self {
            authenticator,
            trust_proxy_headers,
            endpoint: format!("{prefix}{endpoint}"),
        }
    }

    /// The URL clients use for the MCP endpoint, from the request (for RFC 9728).
    fn resource_url(&self, headers: &HeaderMap) -> String {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded = |name: &str| {
            if self.trust_proxy_headers {
                header(name)
            } else {
                None
            }
        };
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .unwrap_or("localhost");
        let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
        format!("{scheme}://{host}{}", self.endpoint)
    }

    fn unauthorized(&self, headers: &HeaderMap, error: &AuthError) -> Response<Body> {
        let resource = self.resource_url(headers);
        let base = resource
            .find("://")
            .and_then(|i| resource[i + 3..].find('/').map(|j| &resource[..i + 3 + j]))
            .unwrap_or(&resource);
        let metadata_url = format!("{base}{METADATA_PATH}");
        let mut response = reply::error(StatusCode::UNAUTHORIZED, &error.to_string());
        if let Ok(value) = HeaderValue::from_str(&challenge(&metadata_url, error)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl Middleware for Authentication {
    type Config<'a> = Option<&'a ValidatedOidc>;

    fn build(
        oidc: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        let proxy = &context.config.proxy;
        Ok(Some(Self::new(
            Authenticator::new(oidc).map_err(BuildError::Setting)?,
            proxy.trust_proxy_headers,
            proxy.endpoint_prefix.as_deref().unwrap_or_default(),
            context.mode,
        )))
    }

    fn serve(&self, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
        let rest = path.strip_prefix(METADATA_PATH)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(
            match self.authenticator.metadata(&self.resource_url(headers)) {
                Some(document) => reply::json(StatusCode::OK, &document),
                None => reply::error(
                    StatusCode::NOT_FOUND,
                    "this MCP server does not require authentication",
                ),
            },
        )
    }

    async fn admit(&self, parts: &mut Parts) -> Result<Option<Principal>, Response<Body>> {
        match self.authenticator.authenticate(&parts.headers).await {
            Ok(principal) => {
                if self.authenticator.is_enabled() {
                    // The token was issued to this proxy; passing it on would let the
                    // server replay it elsewhere (MCP authorization spec: no token
                    // passthrough). Token exchange, the next stage, may trade it.
                    if let Some(token) = bearer(&parts.headers) {
                        let expires_at = principal.claims.get("exp").and_then(Value::as_u64);
                        parts.extensions.insert(CallerToken {
                            token: token.to_owned(),
                            expires_at,
                        });
                    }
                    parts.headers.remove(AUTHORIZATION);
                }
                Ok(Some(principal))
            }
            Err(e) => Err(self.unauthorized(&parts.headers, &e)),
        }
    }
}

#[cfg(test)]
mod tests;
