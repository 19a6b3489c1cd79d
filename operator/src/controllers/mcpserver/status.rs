//! The status stage: what the status should say (pure, kstatus-compatible), and writing
//! it only when it changed.
//!
//! kstatus (Flux, `kubectl wait`, Argo CD's generic check) reads `observedGeneration`
//! and the `Reconciling` and `Stalled` conditions: Reconciling=True means InProgress,
//! Stalled=True means Failed, neither with a current observedGeneration means Current.

use admission::MissingReference;
use api::mcpserver::MCPServerPhase;
use api::{MCPServer, MCPServerStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::controllers::conditions::{self, keep_transition_times};
use crate::error::Error;

/// The facts the status is computed from.
#[derive(Clone, Debug)]
pub enum Observed<'a> {
    /// The spec is invalid; messages name the fields.
    Invalid(&'a [String]),
    /// Waiting for referenced objects.
    Waiting(&'a [MissingReference]),
    /// Objects applied; the proxy Deployment as stored.
    Applied(&'a Deployment),
}

/// Referenced objects, for the per-reference conditions: (condition type, kind, name, found).
pub type RefStates = Vec<(&'static str, &'static str, String, bool)>;

/// The status `server` should have.
pub fn desired(
    server: &MCPServer,
    observed: &Observed<'_>,
    refs: &RefStates,
    url: Option<String>,
    hashes: &Hashes,
) -> MCPServerStatus {
    let generation = server.metadata.generation;
    let (phase, ready, reconciling, stalled, message) = match observed {
        Observed::Invalid(messages) => (
            MCPServerPhase::Failed,
            ("False", "InvalidSpec"),
            ("False", "InvalidSpec"),
            ("True", "InvalidSpec"),
            format!("invalid spec: {}", messages.join("; ")),
        ),
        Observed::Waiting(missing) => (
            MCPServerPhase::Pending,
            ("False", "ReferenceNotFound"),
            ("True", "WaitingForReference"),
            ("False", "WaitingForReference"),
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
                ("False", "Stopped"),
                ("False", "Stopped"),
                ("False", "Stopped"),
                "scaled to zero".to_owned(),
            ),
            Rollout::Ready => (
                MCPServerPhase::Ready,
                ("True", "Ready"),
                ("False", "Ready"),
                ("False", "Ready"),
                "the proxy Deployment is available; whether an MCP server answers behind it is not checked yet".to_owned(),
            ),
            Rollout::Progressing(why) => (
                MCPServerPhase::Pending,
                ("False", "Progressing"),
                ("True", "Progressing"),
                ("False", "Progressing"),
                why,
            ),
        },
    };
    let mut conditions = vec![
        condition("Ready", ready, &message, generation),
        condition("Reconciling", reconciling, &message, generation),
        condition("Stalled", stalled, &message, generation),
    ];
    for (kind_condition, kind, name, found) in refs {
        let (status, reason, text) = if *found {
            (
                "True",
                format!("{}Valid", kind_condition.trim_end_matches("Validated")),
                format!("{kind} {name} found"),
            )
        } else {
            (
                "False",
                format!(
                    "{}NotFound",
                    kind_condition.trim_end_matches("RefValidated").to_owned() + "Ref"
                ),
                format!("{kind} {name} does not exist in this namespace"),
            )
        };
        conditions.push(Condition {
            type_: (*kind_condition).to_owned(),
            status: status.to_owned(),
            reason,
            message: text,
            observed_generation: generation,
            last_transition_time: now(),
        });
    }
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

fn condition(
    type_: &str,
    (status, reason): (&str, &str),
    message: &str,
    generation: Option<i64>,
) -> Condition {
    conditions::condition(type_, status, reason, message, generation, Timestamp::now())
}

fn now() -> Time {
    Time(Timestamp::now())
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
    let namespace = server
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let name = server
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let api: Api<MCPServer> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn condition_of<'a>(status: &'a MCPServerStatus, type_: &str) -> &'a Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present")
    }

    /// kstatus's verdict from the conditions and observedGeneration.
    fn kstatus(server: &MCPServer, status: &MCPServerStatus) -> &'static str {
        if status.observed_generation != server.metadata.generation {
            return "InProgress";
        }
        if condition_of(status, "Stalled").status == "True" {
            return "Failed";
        }
        if condition_of(status, "Reconciling").status == "True" {
            return "InProgress";
        }
        "Current"
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
        );
        assert_eq!(status.phase, Some(MCPServerPhase::Ready));
        assert_eq!(condition_of(&status, "Ready").status, "True");
        assert_eq!(kstatus(&s, &status), "Current");
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
            let status = desired(
                &s,
                &Observed::Applied(&d),
                &Vec::new(),
                None,
                &Hashes::default(),
            );
            assert_eq!(status.phase, Some(MCPServerPhase::Pending));
            assert_eq!(kstatus(&s, &status), "InProgress", "{:?}", status.message);
        }
    }

    #[test]
    fn invalid_spec_is_failed_with_the_messages() {
        let s = server(MINIMAL);
        let messages = vec!["spec.endpointPrefix: bad".to_owned()];
        let status = desired(
            &s,
            &Observed::Invalid(&messages),
            &Vec::new(),
            None,
            &Hashes::default(),
        );
        assert_eq!(status.phase, Some(MCPServerPhase::Failed));
        assert_eq!(kstatus(&s, &status), "Failed");
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
        let refs = vec![(
            "ToolConfigRefValidated",
            "MCPToolConfig",
            "later".to_owned(),
            false,
        )];
        let status = desired(
            &s,
            &Observed::Waiting(&missing),
            &refs,
            None,
            &Hashes::default(),
        );
        assert_eq!(kstatus(&s, &status), "InProgress");
        let c = condition_of(&status, "ToolConfigRefValidated");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ToolConfigRefNotFound")
        );
    }

    #[test]
    fn scaled_to_zero_is_stopped_and_current() {
        let s = server(MINIMAL);
        let status = desired(
            &s,
            &Observed::Applied(&deployment(0, 1, 1, 0, 0, 0)),
            &Vec::new(),
            None,
            &Hashes::default(),
        );
        assert_eq!(status.phase, Some(MCPServerPhase::Stopped));
        assert_eq!(kstatus(&s, &status), "Current");
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let mut s = server(MINIMAL);
        let d = deployment(1, 1, 1, 1, 1, 1);
        let first = desired(
            &s,
            &Observed::Applied(&d),
            &Vec::new(),
            None,
            &Hashes::default(),
        );
        s.status = Some(first.clone());
        let second = desired(
            &s,
            &Observed::Applied(&d),
            &Vec::new(),
            None,
            &Hashes::default(),
        );
        assert!(
            !changed(s.status.as_ref(), &second),
            "transition times kept, nothing else changed"
        );
    }
}
