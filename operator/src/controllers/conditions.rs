//! metav1 Conditions as both controllers write them: typed statuses, types and reasons,
//! the kstatus triplet (a primary condition, `Reconciling`, `Stalled`), built with the
//! generation they describe, keeping `lastTransitionTime` while a status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The API server caps condition messages at 32 KiB.
const MAX_MESSAGE: usize = 32 * 1024;

/// A condition's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
}

impl ConditionStatus {
    /// The API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
        }
    }

    /// `True` when `holds`.
    pub fn from_bool(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}

/// Condition types both controllers write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// MCPServer: the proxy is available.
    Ready,
    /// MCPRegistry: the last sync succeeded.
    Synced,
    /// MCPServer: the proxy reached the MCP server and it answered `initialize`.
    BackendReady,
    /// MCPServer: replicas of a stdio server were capped at 1 (ToolHive's condition).
    StdioReplicaCapped,
    /// MCPGroup: its members could be listed (ToolHive's condition).
    MCPServersChecked,
    /// MCPServer: more than one proxy replica and no shared session storage (ToolHive's
    /// condition).
    SessionStorageWarning,
    /// MCPServer: `rateLimiting` can work as configured (ToolHive's condition).
    RateLimitConfigValid,
    /// kstatus: work is in progress.
    Reconciling,
    /// kstatus: stuck until someone acts.
    Stalled,
}

impl ConditionType {
    /// The API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Synced => "Synced",
            Self::BackendReady => "BackendReady",
            Self::MCPServersChecked => "MCPServersChecked",
            Self::StdioReplicaCapped => "StdioReplicaCapped",
            Self::SessionStorageWarning => "SessionStorageWarning",
            Self::RateLimitConfigValid => "RateLimitConfigValid",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
        }
    }
}

/// Condition (and event) reasons of both controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The spec cannot run or sync.
    InvalidSpec,
    /// A referenced object does not exist.
    ReferenceNotFound,
    /// Waiting for a referenced object to appear.
    WaitingForReference,
    /// Scaled to zero.
    Stopped,
    /// The proxy is available.
    Ready,
    /// A rollout is under way.
    Progressing,
    /// The proxy is available but its MCP server has not answered (the `BackendReady`
    /// condition says why).
    BackendNotReady,
    /// Replicas of a stdio server capped at 1 (ToolHive's reason).
    StdioTransportCapAt1,
    /// No stdio replica cap applies (ToolHive's reason).
    StdioReplicaCapNotActive,
    /// More than one proxy replica without Redis session storage (ToolHive's reason).
    SessionStorageMissingForReplicas,
    /// More than one proxy replica, sessions shared in Redis (ToolHive's reason).
    SessionStorageConfigured,
    /// One proxy replica (or left to an HPA): nothing to warn about (ToolHive's reason).
    SessionStorageWarningNotApplicable,
    /// Rate limits configured and usable (ToolHive's reason).
    RateLimitConfigValid,
    /// A per-user rate limit without authentication (ToolHive's reason).
    PerUserRequiresAuth,
    /// No rate limits configured (ToolHive's reason).
    RateLimitNotApplicable,
    /// A registry sync is running.
    Syncing,
    /// A registry sync succeeded.
    Synced,
    /// A registry waits for its source ConfigMap.
    WaitingForSource,
    /// A registry sync failed (event reason).
    SyncFailed,
    /// The registry source does not exist.
    SourceNotFound,
    /// The registry source could not be read.
    SourceUnreachable,
    /// The registry document is too large.
    SourceTooLarge,
    /// The registry document is invalid.
    InvalidDocument,
    /// The registry's output ConfigMap belongs to someone else.
    OutputConflict,
    /// A group's members were listed (ToolHive's reason).
    ListMCPServersCheckSucceeded,
    /// A group's members could not be listed (ToolHive's reason).
    ListMCPServersCheckFailed,
}

impl Reason {
    /// The API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "InvalidSpec",
            Self::ReferenceNotFound => "ReferenceNotFound",
            Self::WaitingForReference => "WaitingForReference",
            Self::Stopped => "Stopped",
            Self::Ready => "Ready",
            Self::Progressing => "Progressing",
            Self::BackendNotReady => "BackendNotReady",
            Self::StdioTransportCapAt1 => "StdioTransportCapAt1",
            Self::StdioReplicaCapNotActive => "StdioReplicaCapNotActive",
            Self::SessionStorageMissingForReplicas => "SessionStorageMissingForReplicas",
            Self::SessionStorageConfigured => "SessionStorageConfigured",
            Self::SessionStorageWarningNotApplicable => "SessionStorageWarningNotApplicable",
            Self::RateLimitConfigValid => "RateLimitConfigValid",
            Self::PerUserRequiresAuth => "PerUserRequiresAuth",
            Self::RateLimitNotApplicable => "RateLimitNotApplicable",
            Self::Syncing => "Syncing",
            Self::Synced => "Synced",
            Self::WaitingForSource => "WaitingForSource",
            Self::SyncFailed => "SyncFailed",
            Self::SourceNotFound => "SourceNotFound",
            Self::SourceUnreachable => "SourceUnreachable",
            Self::SourceTooLarge => "SourceTooLarge",
            Self::InvalidDocument => "InvalidDocument",
            Self::OutputConflict => "OutputConflict",
            Self::ListMCPServersCheckSucceeded => "ListMCPServersCheckSucceeded",
            Self::ListMCPServersCheckFailed => "ListMCPServersCheckFailed",
        }
    }
}

/// One condition's status and reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `status`.
    pub status: ConditionStatus,
    /// `reason`.
    pub reason: Reason,
}

/// The three conditions kstatus (Flux, `kubectl wait`, Argo CD) reads: the kind's primary
/// condition (`Ready`, `Synced`), `Reconciling` and `Stalled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kstatus {
    /// The primary condition.
    pub primary: Verdict,
    /// `Reconciling`.
    pub reconciling: Verdict,
    /// `Stalled`.
    pub stalled: Verdict,
}

impl Kstatus {
    fn of(
        primary: (ConditionStatus, Reason),
        reconciling: bool,
        stalled: bool,
        reason: Reason,
    ) -> Self {
        let verdict = |holds| Verdict {
            status: ConditionStatus::from_bool(holds),
            reason,
        };
        Self {
            primary: Verdict {
                status: primary.0,
                reason: primary.1,
            },
            reconciling: verdict(reconciling),
            stalled: verdict(stalled),
        }
    }

    /// Done and healthy: primary True, nothing in progress.
    pub fn ready(reason: Reason) -> Self {
        Self::of((ConditionStatus::True, reason), false, false, reason)
    }

    /// Done, on purpose not serving (scaled to zero).
    pub fn idle(reason: Reason) -> Self {
        Self::of((ConditionStatus::False, reason), false, false, reason)
    }

    /// Work in progress: primary False for `primary`, Reconciling True for `reason`.
    pub fn in_progress(primary: Reason, reason: Reason) -> Self {
        Self::of((ConditionStatus::False, primary), true, false, reason)
    }

    /// Stuck until someone acts: Stalled True.
    pub fn stalled(reason: Reason) -> Self {
        Self::of((ConditionStatus::False, reason), false, true, reason)
    }

    /// The three conditions, `primary` typed as given, all of `generation`.
    pub fn conditions(
        &self,
        primary: ConditionType,
        message: &str,
        generation: Option<i64>,
        now: Timestamp,
    ) -> Vec<Condition> {
        let mut conditions = vec![condition(
            primary.as_str(),
            self.primary,
            message,
            generation,
            now,
        )];
        conditions.extend(self.progress(message, generation, now));
        conditions
    }

    /// `Reconciling` and `Stalled` alone, for a status that keeps its primary condition.
    pub fn progress(
        &self,
        message: &str,
        generation: Option<i64>,
        now: Timestamp,
    ) -> [Condition; 2] {
        [
            condition(
                ConditionType::Reconciling.as_str(),
                self.reconciling,
                message,
                generation,
                now,
            ),
            condition(
                ConditionType::Stalled.as_str(),
                self.stalled,
                message,
                generation,
                now,
            ),
        ]
    }
}

/// A condition of `generation`, transitioning `now`.
pub fn condition(
    type_: &str,
    verdict: Verdict,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    raw_condition(
        type_,
        verdict.status.as_str(),
        verdict.reason.as_str(),
        message,
        generation,
        now,
    )
}

/// A condition from its parts as the API spells them (for one copied from an old status,
/// or a per-reference condition whose reason names its kind).
pub fn raw_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate(message),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// A condition keeps its `lastTransitionTime` while its status does not change, so an
/// unchanged status compares equal and is not written again.
pub fn keep_transition_times(old: &[Condition], mut new: Vec<Condition>) -> Vec<Condition> {
    for condition in &mut new {
        if let Some(previous) = old
            .iter()
            .find(|c| c.type_ == condition.type_ && c.status == condition.status)
        {
            condition.last_transition_time = previous.last_transition_time.clone();
        }
    }
    new
}

/// What kstatus reads, for the status tests of both controllers.
#[cfg(test)]
pub(crate) mod kstatus {
    use super::Condition;

    /// A status with conditions and an observedGeneration.
    pub trait Observable {
        /// `status.conditions`.
        fn conditions(&self) -> &[Condition];
        /// `status.observedGeneration`.
        fn observed_generation(&self) -> Option<i64>;
    }

    impl Observable for api::MCPServerStatus {
        fn conditions(&self) -> &[Condition] {
            &self.conditions
        }
        fn observed_generation(&self) -> Option<i64> {
            self.observed_generation
        }
    }

    impl Observable for api::registry::MCPRegistryStatus {
        fn conditions(&self) -> &[Condition] {
            &self.conditions
        }
        fn observed_generation(&self) -> Option<i64> {
            self.observed_generation
        }
    }

    /// The condition of `type_`.
    pub fn condition<'a>(status: &'a impl Observable, type_: &str) -> &'a Condition {
        status
            .conditions()
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present")
    }

    /// kstatus's verdict on `object` with `status`, from observedGeneration and the
    /// Reconciling/Stalled conditions.
    pub fn verdict(object: &impl kube::Resource, status: &impl Observable) -> &'static str {
        if status.observed_generation() != object.meta().generation {
            "InProgress"
        } else if condition(status, "Stalled").status == "True" {
            "Failed"
        } else if condition(status, "Reconciling").status == "True" {
            "InProgress"
        } else {
            "Current"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: Verdict = Verdict {
        status: ConditionStatus::True,
        reason: Reason::Ready,
    };

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let then = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let old = vec![condition("Ready", READY, "ok", Some(1), then)];
        let new = keep_transition_times(
            &old,
            vec![condition("Ready", READY, "ok", Some(2), Timestamp::now())],
        );
        assert_eq!(new[0].last_transition_time, Time(then));
        let progressing = Verdict {
            status: ConditionStatus::False,
            reason: Reason::Progressing,
        };
        let flipped = keep_transition_times(
            &old,
            vec![condition(
                "Ready",
                progressing,
                "x",
                Some(2),
                Timestamp::now(),
            )],
        );
        assert_ne!(flipped[0].last_transition_time, Time(then));
    }

    #[test]
    fn long_messages_are_cut_at_the_api_limit() {
        let long = "é".repeat(MAX_MESSAGE);
        assert!(
            raw_condition("Ready", "False", "X", &long, None, Timestamp::now())
                .message
                .len()
                <= MAX_MESSAGE
        );
    }

    #[test]
    fn kstatus_triplets_say_what_kstatus_reads() {
        let spelled = |k: Kstatus| {
            k.conditions(ConditionType::Ready, "m", Some(1), Timestamp::UNIX_EPOCH)
                .into_iter()
                .map(|c| (c.type_, c.status, c.reason))
                .collect::<Vec<_>>()
        };
        let owned = |v: [(&str, &str, &str); 3]| {
            v.map(|(t, s, r)| (t.to_owned(), s.to_owned(), r.to_owned()))
                .to_vec()
        };
        assert_eq!(
            spelled(Kstatus::stalled(Reason::InvalidSpec)),
            owned([
                ("Ready", "False", "InvalidSpec"),
                ("Reconciling", "False", "InvalidSpec"),
                ("Stalled", "True", "InvalidSpec"),
            ])
        );
        assert_eq!(
            spelled(Kstatus::in_progress(
                Reason::ReferenceNotFound,
                Reason::WaitingForReference
            )),
            owned([
                ("Ready", "False", "ReferenceNotFound"),
                ("Reconciling", "True", "WaitingForReference"),
                ("Stalled", "False", "WaitingForReference"),
            ])
        );
    }
}
