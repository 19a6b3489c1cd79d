//! The status stage: what the status should say (pure, kstatus-compatible), and writing
//! it only when it changed.
//!
//! kstatus (Flux, `kubectl wait`, Argo CD's generic check) reads `observedGeneration`
//! and the `Reconciling` and `Stalled` conditions: Reconciling=True means InProgress,
//! Stalled=True means Failed, neither with a current observedGeneration means Current.

use admission::{Finding, MissingReference};
use api::mcpserver::MCPServerPhase;
use api::{MCPServer, MCPServerStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::Client;

use super::references::RefState;
use crate::controllers::conditions::{ConditionType, Kstatus, Reason, keep_transition_times};
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
        Observed::Applied(deployment) => match rollout(deployment) {
            Rollout::Stopped => (
                MCPServerPhase::Stopped,
                Kstatus::idle(Reason::Stopped),
                "scaled to zero".to_owned(),
            ),
            Rollout::Ready => (
                MCPServerPhase::Ready,
                Kstatus::ready(Reason::Ready),
                "the proxy is ready: a stdio server's proxy is attached to its running container; an HTTP server's answers are not checked yet".to_owned(),
            ),
            Rollout::Progressing(why) => (
                MCPServerPhase::Pending,
                Kstatus::in_progress(Reason::Progressing, Reason::Progressing),
                why,
            ),
        },
    };
    let mut conditions = kstatus.conditions(ConditionType::Ready, &message, generation, now);
    conditions.extend(refs.iter().map(|r| r.condition(generation, now)));
    let ready_replicas = match observed {
        Observed::Applied(d) => d.status.as_ref().and_then(|s| s.ready_replicas).or(Some(0)),
        _ => server.status.as_ref().and_then(|s| s.ready_replicas),
    };
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
        secrets_hash: hashes.secrets.clone(),
    }
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
    crate::controllers::patch_status(client, server, &status).await
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

    #[test]
    fn ready_deployment_is_current_and_ready() {
        let s = server(MINIMAL);
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
        assert_eq!(kstatus::verdict(&s, &status), "Current");
        assert_eq!(status.ready_replicas, Some(1));
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
            kind: "MCPToolConfig",
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
