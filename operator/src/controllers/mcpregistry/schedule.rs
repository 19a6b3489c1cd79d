//! When to sync. A reconcile runs for many reasons (the registry's own status write, a
//! watched ConfigMap, a requeue); the decision is taken from the object alone, plus when
//! this process last tried, so a git or HTTP source is fetched when something asks for it
//! and not on every event:
//! 1. the spec changed (or was never synced): now;
//! 2. the output ConfigMap is missing or was edited: now, to restore it;
//! 3. the interval elapsed (`syncPolicy.automatic`): now;
//! 4. a ConfigMap source: now, since reading it is cheap and its watch is what triggers;
//! 5. the last sync failed: again after [`RETRY`];
//! 6. otherwise at the next interval, or when something changes.
//!
//! Remote sources are never fetched more often than every [`RETRY`] except for spec changes.

use std::time::Duration;

use api::MCPRegistry;
use api::registry::RegistrySourceType;
use k8s_openapi::jiff::Timestamp;

use super::status::SYNCED;
use crate::controllers::conditions::ConditionStatus;

/// Pause before retrying a failed sync of a remote source.
pub const RETRY: Duration = Duration::from_secs(60);

/// Why a sync runs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// First sync, or `metadata.generation` moved past `status.observedGeneration`.
    SpecChanged,
    /// The output ConfigMap no longer holds the last synced document.
    OutputChanged,
    /// The sync interval elapsed.
    Scheduled,
    /// A ConfigMap source: re-read on every reconcile.
    SourceWatched,
    /// The last sync failed.
    Retry,
}

/// What the reconcile does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Sync now.
    Sync(Trigger),
    /// Nothing to do; look again after this long (`None`: when something changes).
    Wait(Option<Duration>),
}

/// What [`decide`] looks at besides the registry.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The sync interval, when automatic.
    pub interval: Option<Duration>,
    /// SHA-256 of the output ConfigMap's document (`None`: it does not exist).
    pub output_hash: Option<&'a str>,
    /// Now.
    pub now: Timestamp,
    /// Time since this process last tried to sync this registry.
    pub since_attempt: Option<Duration>,
}

/// Whether to sync now.
pub fn decide(registry: &MCPRegistry, facts: &Facts<'_>) -> Decision {
    let status = registry.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation);
    if observed.is_none() || observed != registry.metadata.generation {
        return Decision::Sync(Trigger::SpecChanged);
    }
    let last_hash = status.and_then(|s| s.last_sync_hash.as_deref());
    if last_hash.is_some() && facts.output_hash != last_hash {
        return Decision::Sync(Trigger::OutputChanged);
    }
    // Remote sources are not fetched more often than every RETRY.
    let throttle = facts
        .since_attempt
        .and_then(|since| RETRY.checked_sub(since))
        .filter(|left| !left.is_zero());
    let until_scheduled = facts.interval.map(|interval| {
        let last = status
            .and_then(|s| s.last_sync_time.as_ref())
            .map(|t| t.0.as_second());
        match last {
            Some(last) => {
                let due =
                    last.saturating_add(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX));
                Duration::from_secs(u64::try_from(due - facts.now.as_second()).unwrap_or(0))
            }
            None => Duration::ZERO,
        }
    });
    let failed = !synced(registry);
    let remote = registry.spec.source.type_ != RegistrySourceType::Configmap;
    if until_scheduled == Some(Duration::ZERO) && !(remote && throttle.is_some()) {
        return Decision::Sync(Trigger::Scheduled);
    }
    if !remote {
        return Decision::Sync(Trigger::SourceWatched);
    }
    if failed {
        return match throttle {
            Some(left) => Decision::Wait(Some(left)),
            None => Decision::Sync(Trigger::Retry),
        };
    }
    Decision::Wait(match (until_scheduled, throttle) {
        (Some(until), Some(left)) => Some(until.max(left)),
        (until, _) => until,
    })
}

/// Whether the `Synced` condition is True.
pub fn synced(registry: &MCPRegistry) -> bool {
    registry.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == SYNCED && c.status == ConditionStatus::True.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpregistry::tests::registry;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    const GIT: &str = "source: {type: git, git: {url: 'https://example.com/r.git'}}";
    const CONFIGMAP: &str = "source: {type: configmap, configMap: {name: catalog}}";
    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("valid time")
    }

    /// `spec` synced at second 1000 with hash "h", Synced=`ok`.
    fn synced_at(spec: &str, ok: bool) -> MCPRegistry {
        let mut r = registry(spec);
        r.status = Some(api::MCPRegistryStatus {
            observed_generation: r.metadata.generation,
            last_sync_time: Some(Time(at(1000))),
            last_sync_hash: Some("h".into()),
            conditions: vec![Condition {
                type_: "Synced".into(),
                status: if ok { "True" } else { "False" }.into(),
                reason: "x".into(),
                message: String::new(),
                observed_generation: r.metadata.generation,
                last_transition_time: Time(at(1000)),
            }],
            ..Default::default()
        });
        r
    }

    fn facts(now: i64, since_attempt: Option<u64>) -> Facts<'static> {
        Facts {
            interval: Some(HOUR),
            output_hash: Some("h"),
            now: at(now),
            since_attempt: since_attempt.map(Duration::from_secs),
        }
    }

    #[test]
    fn never_synced_syncs_now() {
        assert_eq!(
            decide(&registry(GIT), &facts(0, None)),
            Decision::Sync(Trigger::SpecChanged)
        );
    }

    #[test]
    fn spec_change_syncs_even_right_after_an_attempt() {
        let mut r = synced_at(GIT, true);
        r.metadata.generation = Some(2);
        assert_eq!(
            decide(&r, &facts(1001, Some(1))),
            Decision::Sync(Trigger::SpecChanged)
        );
    }

    #[test]
    fn synced_remote_source_waits_for_the_interval() {
        let r = synced_at(GIT, true);
        assert_eq!(
            decide(&r, &facts(1600, None)),
            Decision::Wait(Some(Duration::from_secs(3000)))
        );
        assert_eq!(
            decide(&r, &facts(4600, None)),
            Decision::Sync(Trigger::Scheduled)
        );
    }

    #[test]
    fn manual_sync_waits_for_a_change() {
        let r = synced_at(GIT, true);
        let facts = Facts {
            interval: None,
            ..facts(999_999, None)
        };
        assert_eq!(decide(&r, &facts), Decision::Wait(None));
    }

    #[test]
    fn deleted_or_edited_output_is_restored() {
        let r = synced_at(GIT, true);
        for output in [None, Some("edited")] {
            let facts = Facts {
                output_hash: output,
                ..facts(1001, Some(1))
            };
            assert_eq!(decide(&r, &facts), Decision::Sync(Trigger::OutputChanged));
        }
    }

    #[test]
    fn failed_remote_source_retries_after_a_pause() {
        let r = synced_at(GIT, false);
        assert_eq!(
            decide(&r, &facts(1010, Some(10))),
            Decision::Wait(Some(Duration::from_secs(50)))
        );
        assert_eq!(
            decide(&r, &facts(1070, Some(70))),
            Decision::Sync(Trigger::Retry)
        );
        // After a restart there is no attempt on record: retry at once.
        assert_eq!(
            decide(&r, &facts(1010, None)),
            Decision::Sync(Trigger::Retry)
        );
    }

    #[test]
    fn configmap_source_is_read_on_every_reconcile() {
        let r = synced_at(CONFIGMAP, true);
        assert_eq!(
            decide(&r, &facts(1001, Some(1))),
            Decision::Sync(Trigger::SourceWatched)
        );
        assert_eq!(
            decide(&r, &facts(4601, Some(1))),
            Decision::Sync(Trigger::Scheduled)
        );
    }
}
