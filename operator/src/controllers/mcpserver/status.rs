//! The status stage: what the status should say (pure, kstatus-compatible), and writing
//! it only when it changed.
//!
//! kstatus (Flux, `kubectl wait`, Argo CD's generic check) reads `observedGeneration`
//! and the `Reconciling` and `Stalled` conditions: Reconciling=True means InProgress,
//! Stalled=True means Failed, neither with a current observedGeneration means Current.

use admission::{Finding, MissingReference};
use api::mcpserver::BackendStatus;
use api::mcpserver::MCPServerPhase;
use api::{MCPServer, MCPServerStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Client;

use super::references::RefState;
use crate::controllers::conditions::{
    ConditionStatus, ConditionType, Kstatus, Reason, keep_transition_times, raw_condition,
};
use crate::error::Error;

/// The facts the status is computed from.
#[derive(Clone, Debug)]
pub enum Observed<'a> {
    /// The spec is invalid; each finding names a field.
    Invalid(&'a [Finding]),
    /// Waiting for referenced objects.
    Waiting(&'a [MissingReference]),
    /// Objects applied; the proxy Deployment as stored.
    Applied(&'a Deployment),
}

/// The status `server` should have at `now`.
pub fn desired(
    server: &MCPServer,
    observed: &Observed<'_>,
    refs: &[RefState],
    url: Option<String>,
    hashes: &Hashes,
    now: Timestamp,
) -> MCPServerStatus {
    let generation = server.metadata.generation;
    let Summary {
        phase,
        message,
        mut conditions,
        ready_replicas,
    } = summarize(
        observed,
        current_backend(server),
        server.status.as_ref().and_then(|s| s.ready_replicas),
        generation,
        now,
    );
    conditions.push(stdio_cap_condition(server, generation, now));
    conditions.push(session_storage_condition(server, generation, now));
    conditions.push(rate_limit_condition(server, generation, now));
    conditions.extend(refs.iter().map(|r| r.condition(generation, now)));
    MCPServerStatus {
        conditions: keep_transition_times(
            server
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            conditions,
        ),
        observed_generation: generation,
        phase: Some(phase),
        message: Some(message),
        url,
        ready_replicas,
        tool_config_hash: hashes.tool_config.clone(),
        oidc_config_hash: hashes.oidc_config.clone(),
        authz_config_hash: hashes.authz_config.clone(),
        telemetry_config_hash: hashes.telemetry_config.clone(),
        external_auth_config_hash: hashes.external_auth_config.clone(),
        webhook_config_hash: hashes.webhook_config.clone(),
        secrets_hash: hashes.secrets.clone(),
        // The proxy's to write; kept as it is so an unchanged status compares equal.
        backend: current_backend(server).cloned(),
    }
}

/// What the status of an object with a proxy says, whichever kind it is.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The phase (an MCPRemoteProxy maps it onto its own).
    pub phase: MCPServerPhase,
    /// What the phase means right now.
    pub message: String,
    /// `Ready`, the kstatus pair, and `BackendReady` once the proxy reported.
    pub conditions: Vec<Condition>,
    /// Ready proxy pods.
    pub ready_replicas: Option<i32>,
}

/// The phase, message and conditions from what was observed and what the proxy
/// reported (`backend`); `previous_ready` is kept while the Deployment is not read.
pub fn summarize(
    observed: &Observed<'_>,
    backend: Option<&BackendStatus>,
    previous_ready: Option<i32>,
    generation: Option<i64>,
    now: Timestamp,
) -> Summary {
    let (phase, kstatus, message) = match observed {
        Observed::Invalid(findings) => (
            MCPServerPhase::Failed,
            Kstatus::stalled(Reason::InvalidSpec),
            format!(
                "invalid spec: {}",
                findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        Observed::Waiting(missing) => (
            MCPServerPhase::Pending,
            Kstatus::in_progress(Reason::ReferenceNotFound, Reason::WaitingForReference),
            format!(
                "waiting for {}",
                missing
                    .iter()
                    .map(|m| format!("{} {} ({})", m.kind, m.name, m.field))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Observed::Applied(deployment) => {
            let waiting = |why: String| {
                (
                    MCPServerPhase::Pending,
                    Kstatus::in_progress(Reason::BackendNotReady, Reason::BackendNotReady),
                    why,
                )
            };
            let failing = |why: String| {
                (
                    MCPServerPhase::Failed,
                    Kstatus::in_progress(Reason::BackendNotReady, Reason::BackendNotReady),
                    why,
                )
            };
            match (rollout(deployment), Backend::of(backend)) {
                (Rollout::Stopped, _) => (
                    MCPServerPhase::Stopped,
                    Kstatus::idle(Reason::Stopped),
                    "scaled to zero".to_owned(),
                ),
                (Rollout::Ready, Backend::Initialized(b)) => (
                    MCPServerPhase::Ready,
                    Kstatus::ready(Reason::Ready),
                    summary(b),
                ),
                (Rollout::Ready, Backend::NotReported) => waiting(
                    "the proxy is available but has not reported its MCP server yet".to_owned(),
                ),
                (Rollout::Ready, Backend::Starting(b)) => waiting(detail(b)),
                (_, Backend::Problem(b)) => failing(detail(b)),
                (Rollout::Progressing(why), _) => (
                    MCPServerPhase::Pending,
                    Kstatus::in_progress(Reason::Progressing, Reason::Progressing),
                    why,
                ),
            }
        }
    };
    let mut conditions = kstatus.conditions(ConditionType::Ready, &message, generation, now);
    if let (Observed::Applied(_), Some(backend)) = (observed, backend) {
        conditions.push(backend_condition(backend, generation, now));
    }
    let ready_replicas = match observed {
        Observed::Applied(d) => d.status.as_ref().and_then(|s| s.ready_replicas).or(Some(0)),
        _ => previous_ready,
    };
    Summary {
        phase,
        message,
        conditions,
        ready_replicas,
    }
}

fn current_backend(server: &MCPServer) -> Option<&BackendStatus> {
    server.status.as_ref()?.backend.as_ref()
}

/// What the proxy reported about the MCP server behind it (`status.backend`).
enum Backend<'a> {
    /// Nothing yet: no proxy has run (or an older proxy image that does not report).
    NotReported,
    /// It answered `initialize`.
    Initialized(&'a BackendStatus),
    /// Its pod is starting, or the proxy is connecting.
    Starting(&'a BackendStatus),
    /// Something a user must fix (the reason says what).
    Problem(&'a BackendStatus),
}

impl<'a> Backend<'a> {
    fn of(backend: Option<&'a BackendStatus>) -> Self {
        match backend {
            None => Self::NotReported,
            Some(b) if b.reason == BACKEND_INITIALIZED => Self::Initialized(b),
            // Not answered, but not broken either: a remote server that wants each
            // client's own credentials refuses the proxy's.
            Some(b) if b.reason == BACKEND_STARTING || b.reason == BACKEND_AUTHENTICATION => {
                Self::Starting(b)
            }
            Some(b) => Self::Problem(b),
        }
    }
}

/// The proxy's reasons that are not problems.
const BACKEND_INITIALIZED: &str = "Initialized";
const BACKEND_STARTING: &str = "Starting";
const BACKEND_AUTHENTICATION: &str = "AuthenticationRequired";

/// `Reason: message`.
fn detail(backend: &BackendStatus) -> String {
    match &backend.message {
        Some(message) => format!("{}: {message}", backend.reason),
        None => backend.reason.clone(),
    }
}

/// What the ready server said: name, version, tools.
fn summary(backend: &BackendStatus) -> String {
    let name = backend.server_name.as_deref().unwrap_or("the MCP server");
    let version = backend
        .server_version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let tools = backend
        .tools
        .map(|n| format!(", {n} tools listed by the server"))
        .unwrap_or_default();
    format!("{name}{version} answered the proxy's initialize{tools}")
}

/// `StdioReplicaCapped`, as ToolHive writes it: True when more than one proxy or server
/// replica of a stdio server was asked for (one is run).
fn stdio_cap_condition(
    server: &MCPServer,
    generation: Option<i64>,
    now: Timestamp,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let stdio = server.spec.transport == api::mcpserver::Transport::Stdio;
    let asked = [
        ("spec.replicas", server.spec.replicas),
        ("spec.backendReplicas", server.spec.backend_replicas),
    ]
    .into_iter()
    .filter_map(|(field, n)| {
        n.filter(|n| stdio && *n > 1)
            .map(|n| format!("{field} {n}"))
    })
    .collect::<Vec<_>>();
    let (holds, reason, message) = if asked.is_empty() {
        (
            false,
            Reason::StdioReplicaCapNotActive,
            "stdio replica cap is not active".to_owned(),
        )
    } else {
        (
            true,
            Reason::StdioTransportCapAt1,
            format!(
                "stdio transport requires exactly 1 replica; {} capped at 1: the proxy attaches to one process's stdin and stdout",
                asked.join(" and ")
            ),
        )
    };
    raw_condition(
        ConditionType::StdioReplicaCapped.as_str(),
        ConditionStatus::from_bool(holds).as_str(),
        reason.as_str(),
        &message,
        generation,
        now,
    )
}

/// `SessionStorageWarning`, as ToolHive writes it: True when more than one proxy
/// replica is asked for and sessions are not shared in Redis, so a request reaching
/// another replica than its session's is answered "session not found".
fn session_storage_condition(
    server: &MCPServer,
    generation: Option<i64>,
    now: Timestamp,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let replicas = server.spec.replicas.filter(|n| *n > 1);
    let stdio = server.spec.transport == api::mcpserver::Transport::Stdio;
    let redis = server
        .spec
        .session_storage
        .as_ref()
        .is_some_and(|s| s.provider == api::common::SessionStorageProvider::Redis);
    let (holds, reason, message) = match replicas {
        Some(n) if !stdio && !redis => (
            true,
            Reason::SessionStorageMissingForReplicas,
            format!(
                "spec.replicas is {n} but spec.sessionStorage.provider is not redis: sessions are not shared across proxy replicas, and a request that reaches another replica than its session's is answered \"session not found\""
            ),
        ),
        Some(_) if !stdio => (
            false,
            Reason::SessionStorageConfigured,
            "Redis session storage is configured: any proxy replica serves any session".to_owned(),
        ),
        _ => (
            false,
            Reason::SessionStorageWarningNotApplicable,
            "session storage warning is not active".to_owned(),
        ),
    };
    raw_condition(
        ConditionType::SessionStorageWarning.as_str(),
        ConditionStatus::from_bool(holds).as_str(),
        reason.as_str(),
        &message,
        generation,
        now,
    )
}

/// `RateLimitConfigValid`, as ToolHive writes it. The webhook refuses a per-user limit
/// without authentication, so False is seen only on an object stored without it.
fn rate_limit_condition(
    server: &MCPServer,
    generation: Option<i64>,
    now: Timestamp,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let (holds, reason, message) = match &server.spec.rate_limiting {
        None => (
            true,
            Reason::RateLimitNotApplicable,
            "rate limiting is not configured",
        ),
        Some(limit)
            if (limit.per_user.is_some() || limit.tools.iter().any(|t| t.per_user.is_some()))
                && server.spec.oidc_config_ref.is_none() =>
        {
            (
                false,
                Reason::PerUserRequiresAuth,
                "a perUser rate limit needs authentication (spec.oidcConfigRef): without it no caller is known",
            )
        }
        Some(_) => (
            true,
            Reason::RateLimitConfigValid,
            "rate limit configuration is valid; buckets are kept in the session storage's Redis",
        ),
    };
    raw_condition(
        ConditionType::RateLimitConfigValid.as_str(),
        ConditionStatus::from_bool(holds).as_str(),
        reason.as_str(),
        message,
        generation,
        now,
    )
}

/// `BackendReady`: the proxy's report as a condition, its reason as the proxy wrote it
/// (when it is a valid condition reason).
fn backend_condition(
    backend: &BackendStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let valid = backend
        .reason
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && backend.reason.len() <= 1024
        && backend
            .reason
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    let reason = if valid {
        backend.reason.as_str()
    } else {
        "Unknown"
    };
    raw_condition(
        ConditionType::BackendReady.as_str(),
        ConditionStatus::from_bool(backend.reason == BACKEND_INITIALIZED).as_str(),
        reason,
        backend.message.as_deref().unwrap_or_default(),
        generation,
        now,
    )
}

/// Hashes of the referenced specs and Secret values.
#[derive(Clone, Debug, Default)]
pub struct Hashes {
    /// MCPToolConfig spec.
    pub tool_config: Option<String>,
    /// MCPOIDCConfig spec.
    pub oidc_config: Option<String>,
    /// MCPAuthzConfig spec or authorization ConfigMap content.
    pub authz_config: Option<String>,
    /// MCPTelemetryConfig spec.
    pub telemetry_config: Option<String>,
    /// MCPExternalAuthConfig spec (an MCPRemoteProxy's).
    pub external_auth_config: Option<String>,
    /// MCPWebhookConfig spec (an MCPServer's).
    pub webhook_config: Option<String>,
    /// Secret values.
    pub secrets: Option<String>,
}

enum Rollout {
    Ready,
    Stopped,
    Progressing(String),
}

fn rollout(deployment: &Deployment) -> Rollout {
    let generation = deployment.metadata.generation.unwrap_or_default();
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    if status.observed_generation.unwrap_or_default() < generation {
        return Rollout::Progressing(
            "the Deployment controller has not seen the latest spec yet".to_owned(),
        );
    }
    if wanted == 0 {
        return Rollout::Stopped;
    }
    let updated = status.updated_replicas.unwrap_or_default();
    let available = status.available_replicas.unwrap_or_default();
    let total = status.replicas.unwrap_or_default();
    if updated < wanted {
        Rollout::Progressing(format!("{updated} of {wanted} proxy pods updated"))
    } else if total > updated {
        Rollout::Progressing(format!("{} old proxy pods terminating", total - updated))
    } else if available < wanted {
        Rollout::Progressing(format!("{available} of {wanted} proxy pods available"))
    } else {
        Rollout::Ready
    }
}

/// Whether two statuses differ in anything but timestamps of unchanged conditions.
pub fn changed(old: Option<&MCPServerStatus>, new: &MCPServerStatus) -> bool {
    old != Some(new)
}

/// Writes the status subresource when it changed.
pub async fn write(
    client: &Client,
    server: &MCPServer,
    status: MCPServerStatus,
) -> Result<(), Error> {
    if !changed(server.status.as_ref(), &status) {
        return Ok(());
    }
    // `backend` is the proxy's: a merge patch without it leaves the proxy's report as
    // the proxy last wrote it, never as this (possibly older) copy has it.
    let status = MCPServerStatus {
        backend: None,
        ..status
    };
    crate::controllers::replace_status(
        client,
        server,
        server.status.as_ref(),
        &status,
        &["backend"],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::conditions::kstatus;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, server};
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};

    fn deployment(
        replicas: i32,
        generation: i64,
        observed: i64,
        updated: i32,
        available: i32,
        total: i32,
    ) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ready_replicas: Some(available),
                replicas: Some(total),
                ..Default::default()
            }),
        }
    }

    /// The status for `observed`, with no references, URL or hashes.
    fn observe(server: &MCPServer, observed: Observed<'_>) -> MCPServerStatus {
        desired(
            server,
            &observed,
            &[],
            None,
            &Hashes::default(),
            Timestamp::now(),
        )
    }

    /// `s` with the proxy's report of `reason`.
    fn reported(mut s: MCPServer, reason: &str, message: &str) -> MCPServer {
        s.status.get_or_insert_with(Default::default).backend = Some(BackendStatus {
            reason: reason.to_owned(),
            message: Some(message.to_owned()),
            server_name: (reason == "Initialized").then(|| "fixture".to_owned()),
            server_version: (reason == "Initialized").then(|| "1.2".to_owned()),
            protocol_version: None,
            tools: (reason == "Initialized").then_some(7),
        });
        s
    }

    #[test]
    fn an_available_proxy_whose_server_was_never_reported_is_not_ready() {
        let s = server(MINIMAL);
        let d = deployment(1, 2, 2, 1, 1, 1);
        let status = observe(&s, Observed::Applied(&d));
        assert_eq!(status.phase, Some(MCPServerPhase::Pending));
        let ready = kstatus::condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "BackendNotReady")
        );
        assert!(
            ready.message.contains("has not reported"),
            "{}",
            ready.message
        );
        assert_eq!(kstatus::verdict(&s, &status), "InProgress");
        assert!(status.conditions.iter().all(|c| c.type_ != "BackendReady"));
    }

    #[test]
    fn a_reported_problem_fails_the_server_with_its_reason_whatever_the_rollout() {
        for d in [deployment(1, 2, 2, 1, 1, 1), deployment(1, 2, 2, 1, 0, 1)] {
            let s = reported(
                server(MINIMAL),
                "ImagePullFailed",
                "image ghcr.io/x/y:1 of pod fetch-0 cannot be pulled (ErrImagePull): not found",
            );
            let status = observe(&s, Observed::Applied(&d));
            assert_eq!(status.phase, Some(MCPServerPhase::Failed));
            let ready = kstatus::condition(&status, "Ready");
            assert_eq!(ready.status, "False");
            assert!(
                ready
                    .message
                    .starts_with("ImagePullFailed: image ghcr.io/x/y:1"),
                "{}",
                ready.message
            );
            let backend = kstatus::condition(&status, "BackendReady");
            assert_eq!(
                (backend.status.as_str(), backend.reason.as_str()),
                ("False", "ImagePullFailed")
            );
        }
    }

    #[test]
    fn stdio_replicas_above_one_are_capped_with_toolhives_condition() {
        let capped =
            server(&MINIMAL.replace("spec: {", "spec: {replicas: 3, backendReplicas: 2, "));
        let status = observe(&capped, Observed::Applied(&deployment(1, 2, 2, 1, 1, 1)));
        let c = kstatus::condition(&status, "StdioReplicaCapped");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "StdioTransportCapAt1")
        );
        assert!(
            c.message
                .contains("spec.replicas 3 and spec.backendReplicas 2 capped at 1"),
            "{}",
            c.message
        );
        let status = observe(
            &server(MINIMAL),
            Observed::Applied(&deployment(1, 2, 2, 1, 1, 1)),
        );
        let c = kstatus::condition(&status, "StdioReplicaCapped");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "StdioReplicaCapNotActive")
        );
    }

    #[test]
    fn replicas_without_shared_sessions_warn_with_toolhives_condition() {
        let http = MINIMAL.replace("spec: {", "spec: {transport: streamable-http, ");
        let reason = |yaml: &str| {
            let status = observe(
                &server(yaml),
                Observed::Applied(&deployment(1, 2, 2, 1, 1, 1)),
            );
            let c = kstatus::condition(&status, "SessionStorageWarning");
            (c.status.clone(), c.reason.clone(), c.message.clone())
        };
        let (status, why, message) = reason(&http.replace("spec: {", "spec: {replicas: 2, "));
        assert_eq!(
            (status.as_str(), why.as_str()),
            ("True", "SessionStorageMissingForReplicas")
        );
        assert!(message.contains("session not found"), "{message}");
        let shared = http.replace(
            "spec: {",
            "spec: {replicas: 2, sessionStorage: {provider: redis, address: 'redis:6379'}, ",
        );
        let (status, why, _) = reason(&shared);
        assert_eq!(
            (status.as_str(), why.as_str()),
            ("False", "SessionStorageConfigured")
        );
        for one in [
            http.clone(),
            MINIMAL.replace("spec: {", "spec: {replicas: 3, "),
        ] {
            let (status, why, _) = reason(&one);
            assert_eq!(
                (status.as_str(), why.as_str()),
                ("False", "SessionStorageWarningNotApplicable"),
                "{one}"
            );
        }
    }

    #[test]
    fn rate_limits_report_toolhives_condition() {
        let condition = |yaml: &str| {
            let status = observe(
                &server(yaml),
                Observed::Applied(&deployment(1, 2, 2, 1, 1, 1)),
            );
            let c = kstatus::condition(&status, "RateLimitConfigValid");
            (c.status.clone(), c.reason.clone())
        };
        assert_eq!(
            condition(MINIMAL),
            ("True".to_owned(), "RateLimitNotApplicable".to_owned())
        );
        let limited = MINIMAL.replace(
            "spec: {",
            "spec: {sessionStorage: {provider: redis, address: 'redis:6379'}, rateLimiting: {shared: {maxTokens: 10, refillPeriod: 1m}}, ",
        );
        assert_eq!(
            condition(&limited),
            ("True".to_owned(), "RateLimitConfigValid".to_owned())
        );
        let per_user = limited.replace("shared: {maxTokens", "perUser: {maxTokens");
        assert_eq!(
            condition(&per_user),
            ("False".to_owned(), "PerUserRequiresAuth".to_owned())
        );
    }

    #[test]
    fn a_reason_that_is_not_a_condition_reason_becomes_unknown() {
        let s = reported(server(MINIMAL), "no such reason!", "x");
        let status = observe(&s, Observed::Applied(&deployment(1, 2, 2, 1, 1, 1)));
        assert_eq!(
            kstatus::condition(&status, "BackendReady").reason,
            "Unknown"
        );
    }

    #[test]
    fn ready_deployment_is_current_and_ready() {
        let s = reported(
            server(MINIMAL),
            "Initialized",
            "fixture 1.2 answered initialize",
        );
        let d = deployment(1, 2, 2, 1, 1, 1);
        let status = desired(
            &s,
            &Observed::Applied(&d),
            &Vec::new(),
            Some("http://x".into()),
            &Hashes::default(),
            Timestamp::now(),
        );
        assert_eq!(status.phase, Some(MCPServerPhase::Ready));
        assert_eq!(kstatus::condition(&status, "Ready").status, "True");
        assert_eq!(
            status.message.as_deref(),
            Some("fixture 1.2 answered the proxy's initialize, 7 tools listed by the server")
        );
        assert_eq!(kstatus::condition(&status, "BackendReady").status, "True");
        assert_eq!(kstatus::verdict(&s, &status), "Current");
        assert_eq!(status.ready_replicas, Some(1));
        assert_eq!(
            status.backend,
            s.status.as_ref().and_then(|s| s.backend.clone()),
            "kept as the proxy wrote it"
        );
    }

    #[test]
    fn rollout_in_progress_is_in_progress() {
        let s = server(MINIMAL);
        for d in [
            deployment(2, 3, 2, 2, 2, 2),
            deployment(2, 3, 3, 1, 1, 3),
            deployment(2, 3, 3, 2, 2, 3),
            deployment(2, 3, 3, 2, 1, 2),
        ] {
            let status = observe(&s, Observed::Applied(&d));
            assert_eq!(status.phase, Some(MCPServerPhase::Pending));
            assert_eq!(
                kstatus::verdict(&s, &status),
                "InProgress",
                "{:?}",
                status.message
            );
        }
    }

    #[test]
    fn invalid_spec_is_failed_with_the_messages() {
        let s = server(MINIMAL);
        let findings = vec![Finding {
            path: "spec.endpointPrefix".to_owned(),
            message: "bad".to_owned(),
            reason: runconfig::Reason::InvalidFormat,
        }];
        let status = observe(&s, Observed::Invalid(&findings));
        assert_eq!(status.phase, Some(MCPServerPhase::Failed));
        assert_eq!(kstatus::verdict(&s, &status), "Failed");
        assert!(
            status
                .message
                .unwrap_or_default()
                .contains("spec.endpointPrefix: bad")
        );
    }

    #[test]
    fn waiting_for_a_reference_is_in_progress_with_a_ref_condition() {
        let s = server(MINIMAL);
        let missing = vec![MissingReference {
            field: "spec.toolConfigRef".into(),
            kind: admission::ReferencedKind::Config(admission::ConfigKind::ToolConfig),
            name: "later".into(),
        }];
        let refs = vec![RefState {
            kind: admission::ConfigKind::ToolConfig,
            name: "later".to_owned(),
            found: false,
        }];
        let status = desired(
            &s,
            &Observed::Waiting(&missing),
            &refs,
            None,
            &Hashes::default(),
            Timestamp::now(),
        );
        assert_eq!(kstatus::verdict(&s, &status), "InProgress");
        let c = kstatus::condition(&status, "ToolConfigRefValidated");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ToolConfigRefNotFound")
        );
    }

    #[test]
    fn scaled_to_zero_is_stopped_and_current() {
        let s = server(MINIMAL);
        let status = observe(&s, Observed::Applied(&deployment(0, 1, 1, 0, 0, 0)));
        assert_eq!(status.phase, Some(MCPServerPhase::Stopped));
        assert_eq!(kstatus::verdict(&s, &status), "Current");
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let mut s = server(MINIMAL);
        let d = deployment(1, 1, 1, 1, 1, 1);
        let first = observe(&s, Observed::Applied(&d));
        s.status = Some(first.clone());
        let second = observe(&s, Observed::Applied(&d));
        assert!(
            !changed(s.status.as_ref(), &second),
            "transition times kept, nothing else changed"
        );
    }
}
