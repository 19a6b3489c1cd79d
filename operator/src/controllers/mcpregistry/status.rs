//! The status stage: what the status should say (pure) and writing it only when it
//! changed.
//!
//! Conditions: `Synced` (did the last sync succeed, and why not), plus kstatus's
//! `Reconciling` (a sync is running, or waiting for a source ConfigMap to appear) and
//! `Stalled` (the last sync failed and needs someone to act). A failed sync keeps
//! `serverCount`, `lastSyncHash` and `lastSyncTime` of the data still being served.

use api::MCPRegistry;
use api::registry::{MCPRegistryPhase, MCPRegistryStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;

use super::failure::SyncError;
use crate::controllers::conditions::{
    ConditionStatus, ConditionType, Kstatus, Reason, keep_transition_times, raw_condition,
};
use crate::error::Error;

/// The `Synced` condition type.
pub const SYNCED: &str = ConditionType::Synced.as_str();

/// What happened, for the status.
#[derive(Clone, Debug)]
pub enum Observed<'a> {
    /// A sync is starting (first sync or spec change).
    Syncing(&'a str),
    /// The sync succeeded.
    Synced {
        /// Servers in the output.
        servers: usize,
        /// SHA-256 of the output.
        hash: &'a str,
        /// Whether to record `now` as `lastSyncTime` (false for re-reads of a ConfigMap
        /// source that found nothing new, so status does not change on every event).
        confirmed: bool,
        /// What was synced, from where.
        message: String,
    },
    /// The sync failed.
    Failed(&'a SyncError),
}

/// The status `registry` should have at `now`.
pub fn desired(
    registry: &MCPRegistry,
    observed: &Observed<'_>,
    now: Timestamp,
) -> MCPRegistryStatus {
    let old = registry.status.clone().unwrap_or_default();
    let generation = registry.metadata.generation;
    let previous = |what: &str| match (old.server_count, &old.last_sync_hash) {
        (Some(count), Some(hash)) => format!(
            "{what}; serving the data of the last successful sync ({count} servers, hash {})",
            hash.get(..12).unwrap_or(hash)
        ),
        _ => format!("{what}; no data synced yet"),
    };
    let mut status = old.clone();
    let (phase, kstatus, message) = match observed {
        Observed::Syncing(origin) => {
            // observedGeneration stays behind until the sync ends: kstatus says InProgress.
            let message = format!("syncing from {origin}");
            let synced = old
                .conditions
                .iter()
                .find(|c| c.type_ == SYNCED)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
                .unwrap_or_else(|| {
                    (
                        ConditionStatus::False.as_str().into(),
                        Reason::Syncing.as_str().into(),
                        message.clone(),
                    )
                });
            status.phase = Some(MCPRegistryPhase::Syncing);
            status.message = Some(message.clone());
            let mut conditions = vec![raw_condition(
                SYNCED,
                &synced.0,
                &synced.1,
                &synced.2,
                old.observed_generation,
                now,
            )];
            conditions.extend(
                Kstatus::in_progress(Reason::Syncing, Reason::Syncing)
                    .progress(&message, generation, now),
            );
            status.conditions = keep_transition_times(&old.conditions, conditions);
            return status;
        }
        Observed::Synced {
            servers,
            hash,
            confirmed,
            message,
        } => {
            status.server_count = Some(i32::try_from(*servers).unwrap_or(i32::MAX));
            if *confirmed
                || status.last_sync_time.is_none()
                || old.last_sync_hash.as_deref() != Some(*hash)
            {
                status.last_sync_time = Some(Time(now));
            }
            status.last_sync_hash = Some((*hash).to_owned());
            (
                MCPRegistryPhase::Ready,
                Kstatus::ready(Reason::Synced),
                message.clone(),
            )
        }
        Observed::Failed(error) => {
            let message = previous(&format!("sync failed: {error}"));
            if error.waiting() && old.last_sync_hash.is_none() {
                (
                    MCPRegistryPhase::Pending,
                    Kstatus::in_progress(error.reason(), Reason::WaitingForSource),
                    message,
                )
            } else {
                (
                    MCPRegistryPhase::Failed,
                    Kstatus::stalled(error.reason()),
                    message,
                )
            }
        }
    };
    status.observed_generation = generation;
    status.phase = Some(phase);
    status.message = Some(message.clone());
    status.conditions = keep_transition_times(
        &old.conditions,
        kstatus.conditions(ConditionType::Synced, &message, generation, now),
    );
    status
}

/// Writes the status subresource when it differs from the stored one.
pub async fn write(
    client: &Client,
    registry: &MCPRegistry,
    status: &MCPRegistryStatus,
) -> Result<(), Error> {
    if registry.status.as_ref() == Some(status) {
        return Ok(());
    }
    crate::controllers::patch_status(client, registry, status).await
}

#[cfg(test)]
mod tests;
