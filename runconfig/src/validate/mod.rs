//! `validate()`: turns a [`RunConfig`] into a [`ValidatedRunConfig`] holding parsed,
//! ready-to-use forms, or returns every problem found. This is the one validation the
//! admission webhook, the proxy at start-up and `thv validate` call.
//!
//! Hand-written rather than derived with `garde`: garde reports a message per field but
//! no machine-readable reason, and most rules here are semantic (Cedar, URLs, tool-name
//! collisions) and must *return* the parsed value, which garde's validate-only model
//! cannot.

mod check;
mod workload;
pub(crate) use workload::is_token;

pub use check::{Check, go_duration, is_dns_label};
pub use workload::{
    ContainerWorkload, ForwardedHeader, HeaderValueSource, PermissionProfile, RESTRICTED_HEADERS,
    RemoteWorkload, Transport, ValidatedWorkload,
};

use crate::config::RunConfig;
use crate::error::Violations;
use crate::middleware::{
    audit::ValidatedAudit, authz::ValidatedAuthz, oidc::ValidatedOidc,
    ratelimit::ValidatedRateLimit, sessions::ValidatedSessionRedis, telemetry::ValidatedTelemetry,
    token_exchange::ValidatedTokenExchange, tools::ValidatedTools, webhooks::ValidatedWebhooks,
};
use crate::path::FieldPath;

/// Transport the proxy exposes to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyMode {
    /// Legacy HTTP+SSE (`/sse` and `/messages`).
    Sse,
    /// Streamable HTTP (`/mcp`).
    StreamableHttp,
}

impl ProxyMode {
    /// Every accepted spelling, for error messages.
    pub const ALLOWED: &'static str = "sse or streamable-http";

    fn parse(text: &str) -> Option<Self> {
        match text {
            "sse" => Some(Self::Sse),
            "streamable-http" => Some(Self::StreamableHttp),
            _ => None,
        }
    }
}

/// A RunConfig that passed validation, with every middleware configuration parsed.
/// Middleware constructors in the proxy accept only these types.
#[derive(Clone, Debug)]
pub struct ValidatedRunConfig {
    /// The configuration as written.
    pub source: RunConfig,
    /// What to run or reach.
    pub workload: ValidatedWorkload,
    /// How the proxy serves clients.
    pub proxy: ValidatedProxy,
}

/// Validated proxy settings.
#[derive(Clone, Debug)]
pub struct ValidatedProxy {
    /// Bind address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Client-facing transport.
    pub mode: ProxyMode,
    /// Trust `X-Forwarded-*`.
    pub trust_proxy_headers: bool,
    /// Prefix of advertised URLs, starting with `/`, without a trailing `/`.
    pub endpoint_prefix: Option<String>,
    /// Allowed browser origins.
    pub allowed_origins: Vec<url::Url>,
    /// Authentication, when configured.
    pub oidc: Option<ValidatedOidc>,
    /// Authorization, when configured.
    pub authz: Option<ValidatedAuthz>,
    /// Audit, when configured.
    pub audit: Option<ValidatedAudit>,
    /// Telemetry, when configured.
    pub telemetry: Option<ValidatedTelemetry>,
    /// Tool filter and overrides.
    pub tools: ValidatedTools,
    /// Redis shared with the other replicas for MCP sessions, when configured.
    pub session_redis: Option<ValidatedSessionRedis>,
    /// Rate limits of `tools/call`, when configured (kept in `session_redis`).
    pub rate_limit: Option<ValidatedRateLimit>,
    /// Token exchange toward the server, when configured.
    pub token_exchange: Option<ValidatedTokenExchange>,
    /// Mutating request webhooks, when configured.
    pub mutating_webhooks: Option<ValidatedWebhooks>,
    /// Validating request webhooks, when configured.
    pub validating_webhooks: Option<ValidatedWebhooks>,
}

/// One stage of the proxy's middleware chain, outermost first; see
/// [`ValidatedRunConfig::middleware`].
#[derive(Clone, Copy, Debug)]
pub enum Middleware<'a> {
    /// Authentication (always present: anonymous when no OIDC is configured).
    Authentication(Option<&'a ValidatedOidc>),
    /// Tool filtering and renaming.
    Tools(&'a ValidatedTools),
    /// Authorization.
    Authorization(&'a ValidatedAuthz),
    /// Audit events.
    Audit(&'a ValidatedAudit),
    /// Telemetry.
    Telemetry(&'a ValidatedTelemetry),
    /// Rate limits (kept in the proxy's `session_redis`, which validation requires).
    RateLimit(&'a ValidatedRateLimit),
    /// RFC 8693 token exchange toward the server (validation requires authentication).
    TokenExchange(&'a ValidatedTokenExchange),
    /// HTTP webhooks that may change each MCP request.
    MutatingWebhooks(&'a ValidatedWebhooks),
    /// HTTP webhooks that allow or deny each MCP request.
    ValidatingWebhooks(&'a ValidatedWebhooks),
}

impl ValidatedRunConfig {
    /// The middleware chain in the order the proxy applies it, outermost first:
    /// telemetry sees every request, authentication establishes the caller, audit
    /// records the decision authorization makes, and tool filtering runs innermost: it
    /// maps renamed tools back on the way in and renames list results on the way out
    /// before authorization filters them, so policies name tools as clients see them.
    pub fn middleware(&self) -> Vec<Middleware<'_>> {
        let proxy = &self.proxy;
        let mut chain = Vec::new();
        if let Some(telemetry) = &proxy.telemetry {
            chain.push(Middleware::Telemetry(telemetry));
        }
        chain.push(Middleware::Authentication(proxy.oidc.as_ref()));
        // Right after authentication, which hands it the caller's token.
        if let Some(exchange) = &proxy.token_exchange {
            chain.push(Middleware::TokenExchange(exchange));
        }
        if let Some(audit) = &proxy.audit {
            chain.push(Middleware::Audit(audit));
        }
        // Webhooks see the request as the caller sent it (mutating ones change it,
        // then validating ones judge the result), before authorization, which decides
        // on the request as the server will receive it (ToolHive's order).
        if let Some(webhooks) = &proxy.mutating_webhooks {
            chain.push(Middleware::MutatingWebhooks(webhooks));
        }
        if let Some(webhooks) = &proxy.validating_webhooks {
            chain.push(Middleware::ValidatingWebhooks(webhooks));
        }
        if let Some(authz) = &proxy.authz {
            chain.push(Middleware::Authorization(authz));
        }
        // After authorization, so a refused call takes no token; before tool renaming,
        // so limits name tools as clients call them.
        if let Some(limit) = &proxy.rate_limit {
            chain.push(Middleware::RateLimit(limit));
        }
        if !proxy.tools.is_empty() {
            chain.push(Middleware::Tools(&proxy.tools));
        }
        chain
    }
}

/// Validates a RunConfig, returning its parsed form or every problem found.
pub fn validate(config: &RunConfig) -> Result<ValidatedRunConfig, Violations> {
    let mut check = Check::default();
    let root = FieldPath::root();
    if config.schema_version != crate::SCHEMA_VERSION {
        check.fail(
            root.key("schema_version"),
            crate::Reason::NotSupported,
            format!(
                "{:?} is not the current schema version",
                config.schema_version
            ),
            format!(
                "migrate with runconfig::from_json, which writes {}",
                crate::SCHEMA_VERSION
            ),
        );
    }
    check.name(&root.key("name"), &config.name);
    let workload = workload::validate(&config.workload, &root.key("workload"), &mut check);
    let proxy = validate_proxy(config, &root.key("proxy"), &mut check);
    if let (Some(ValidatedWorkload::Container(container)), Some(proxy)) = (&workload, &proxy)
        && container.transport == Transport::Stdio
        && proxy.token_exchange.is_some()
    {
        check.fail(
            root.key("workload").key("container").key("transport"),
            crate::Reason::Ineffective,
            "token exchange sends the new token in an HTTP header, but a stdio server reads no headers",
            "a server on sse or streamable-http, or no token exchange",
        );
    }
    match (workload, proxy, check.into_result()) {
        (Some(workload), Some(proxy), Ok(())) => Ok(ValidatedRunConfig {
            source: config.clone(),
            workload,
            proxy,
        }),
        (_, _, Err(problems)) => Err(problems),
        // A section returned nothing without recording why: a bug, reported, not hidden.
        _ => Err(Violations(vec![crate::Violation::new(
            root,
            crate::Reason::InvalidFormat,
            "validation produced no result",
        )])),
    }
}

fn validate_proxy(
    config: &RunConfig,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedProxy> {
    use crate::middleware::{
        audit, authz, oidc, ratelimit, sessions, telemetry, token_exchange, tools, webhooks,
    };
    let proxy = &config.proxy;
    let port = check.port(&path.key("port"), proxy.port);
    let mode = ProxyMode::parse(&proxy.mode);
    if mode.is_none() {
        check.fail(
            path.key("mode"),
            crate::Reason::NotSupported,
            format!("unknown proxy mode {:?}", proxy.mode),
            ProxyMode::ALLOWED,
        );
    }
    if proxy.host.trim().is_empty() {
        check.fail(
            path.key("host"),
            crate::Reason::Required,
            "the bind address is empty",
            "an IP address such as 0.0.0.0 or 127.0.0.1",
        );
    }
    let endpoint_prefix = proxy
        .endpoint_prefix
        .as_deref()
        .and_then(|p| check.endpoint_prefix(&path.key("endpoint_prefix"), p));
    let allowed_origins = proxy
        .allowed_origins
        .iter()
        .enumerate()
        .filter_map(|(i, o)| check.origin(&path.key("allowed_origins").index(i), o))
        .collect();
    let oidc = proxy
        .oidc
        .as_ref()
        .and_then(|o| oidc::validate(o, &path.key("oidc"), check));
    let authz = proxy
        .authz
        .as_ref()
        .and_then(|a| authz::validate(a, &path.key("authz"), check));
    let audit = proxy
        .audit
        .as_ref()
        .and_then(|a| audit::validate(a, &config.name, &path.key("audit"), check));
    let telemetry = proxy
        .telemetry
        .as_ref()
        .and_then(|t| telemetry::validate(t, &config.name, &path.key("telemetry"), check));
    let tools = tools::validate(&proxy.tools, &path.key("tools"), check);
    let session_redis = proxy
        .session_redis
        .as_ref()
        .and_then(|r| sessions::validate(r, &path.key("session_redis"), check));
    let rate_limit = proxy.rate_limit.as_ref().and_then(|limit| {
        ratelimit::validate(
            limit,
            proxy.session_redis.is_some(),
            proxy.oidc.is_some(),
            &path.key("rate_limit"),
            check,
        )
    });
    let token_exchange = proxy.token_exchange.as_ref().and_then(|exchange| {
        if proxy.oidc.is_none() {
            check.fail(
                path.key("oidc"),
                crate::Reason::Required,
                "token exchange trades the caller's token, but the proxy does not authenticate callers",
                "configure oidc (oidcConfigRef) so that callers present a token to exchange",
            );
        }
        token_exchange::validate(exchange, &path.key("token_exchange"), check)
    });
    let mutating_webhooks = webhooks::validate(
        &proxy.mutating_webhooks,
        webhooks::WebhookKind::Mutating,
        &path.key("mutating_webhooks"),
        check,
    );
    let validating_webhooks = webhooks::validate(
        &proxy.validating_webhooks,
        webhooks::WebhookKind::Validating,
        &path.key("validating_webhooks"),
        check,
    );
    Some(ValidatedProxy {
        host: proxy.host.clone(),
        port: port?,
        mode: mode?,
        trust_proxy_headers: proxy.trust_proxy_headers,
        endpoint_prefix: endpoint_prefix.flatten(),
        allowed_origins,
        oidc,
        authz,
        audit,
        telemetry,
        tools: tools?,
        session_redis,
        rate_limit,
        token_exchange,
        mutating_webhooks,
        validating_webhooks,
    })
}
