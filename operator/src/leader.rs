//! Leader election by a `coordination.k8s.io` Lease, one write per renewal.
//!
//! The holder renews with a `replace` conditioned on the resourceVersion of its own last
//! write, whose answer carries the next precondition (client-go's fast path), so an idle
//! leader makes one request per renewal. kube-lease-manager, used until this module,
//! patched the Lease and then read it back: two requests per renewal, 24 a minute with
//! the chart's 10 s Lease (docs/performance.md, row 1, idle). kube-runtime has no
//! elector; kube-leader-election also reads before every write.
//!
//! A candidate takes a held Lease once its `renewTime` plus `leaseDurationSeconds` has
//! passed by the candidate's clock, as kube-lease-manager did, so a restarted operator
//! takes over its crashed predecessor's Lease at once when it has expired; nodes' clocks
//! must agree to within a quarter of the duration (NTP). client-go instead waits out a
//! full duration of the record unchanged by its own clock, 10–15 s after every crash
//! with the chart's Lease. The holder gives up once [`deadline`] has passed since it
//! sent its last successful renewal, a quarter of the duration before its `renewTime`
//! expires.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Why a Lease request failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server refused or failed the request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The API server did not answer in time.
    #[error("the API server did not answer within {0:?}")]
    Timeout(Duration),
}

/// One candidate for the Lease `name`.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The Lease as last read or written.
    seen: Option<Lease>,
    /// When the last successful claim or renewal was sent; `None` while not leading.
    renewed_at: Option<Instant>,
}

impl Elector {
    /// A candidate named `identity` (new at each process start) for the Lease `name` in
    /// `namespace`, held for `duration` without renewal.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: String,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
            duration,
            seen: None,
            renewed_at: None,
        }
    }

    /// Campaigns, then renews, until every receiver is dropped; the receiver says whether
    /// this candidate leads now. The task hands the elector back for [`Elector::release`].
    pub fn run(self) -> (watch::Receiver<bool>, JoinHandle<Self>) {
        let (tx, rx) = watch::channel(false);
        (rx, tokio::spawn(self.elect(tx)))
    }

    async fn elect(mut self, tx: watch::Sender<bool>) -> Self {
        loop {
            let wait = if self.renewed_at.is_some() {
                self.renew().await
            } else {
                self.campaign().await
            };
            let leading = self.renewed_at.is_some();
            tx.send_if_modified(|was| std::mem::replace(was, leading) != leading);
            tokio::select! {
                () = tx.closed() => return self,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Hands the Lease over now, so that the next candidate need not wait for it to
    /// expire; does nothing unless this candidate leads.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let (Some(_), Some(seen)) = (self.renewed_at.take(), self.seen.take()) else {
            return Ok(());
        };
        let params = PostParams::default();
        let mut lease = seen;
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(1);
        let answer = self.api.replace(&self.name, &params, &lease);
        tokio::time::timeout(self.duration, answer)
            .await
            .map_err(|_| LeaseError::Timeout(self.duration))??;
        Ok(())
    }

    /// Not leading: reads the Lease and claims it if nobody holds it (or creates it).
    /// Returns how long to wait before the next step.
    async fn campaign(&mut self) -> Duration {
        let poll = self.duration / 2;
        let params = PostParams::default();
        let read = tokio::time::timeout(self.duration, self.api.get_opt(&self.name)).await;
        let sent = Instant::now();
        let answer = match read {
            Err(_) => {
                tracing::warn!(lease = %self.name, "reading the leader-election Lease timed out");
                return poll;
            }
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.name, %error, "reading the leader-election Lease");
                return poll;
            }
            Ok(Ok(None)) => {
                let lease = claimed(None, &self.name, &self.identity, self.duration);
                let write = self.api.create(&params, &lease);
                tokio::time::timeout(self.duration, write).await
            }
            Ok(Ok(Some(seen))) => {
                let left = time_left(&seen, &self.identity, Timestamp::now(), self.duration);
                if !left.is_zero() {
                    return left.min(poll);
                }
                let lease = claimed(Some(&seen), &self.name, &self.identity, self.duration);
                let write = self.api.replace(&self.name, &params, &lease);
                tokio::time::timeout(self.duration, write).await
            }
        };
        match answer {
            Err(_) => {
                tracing::warn!(lease = %self.name, "claiming the leader-election Lease timed out");
                poll
            }
            Ok(Ok(lease)) => {
                tracing::info!(lease = %self.name, identity = %self.identity, "acquired the leader-election Lease");
                self.seen = Some(lease);
                self.renewed_at = Some(sent);
                self.duration / 2
            }
            // Another candidate wrote it first.
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => self.retry(),
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.name, %error, "claiming the leader-election Lease");
                poll
            }
        }
    }

    /// Leading: renews the Lease, retrying until [`deadline`] has passed since the last
    /// renewal, then gives leadership up. Returns how long to wait before the next step.
    async fn renew(&mut self) -> Duration {
        let Some(renewed_at) = self.renewed_at else {
            return Duration::ZERO;
        };
        let give_up_at = renewed_at + deadline(self.duration);
        let params = PostParams::default();
        let mut lease = self.seen.clone().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.identity.clone());
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(seconds(self.duration));
        let sent = Instant::now();
        let write = self.api.replace(&self.name, &params, &lease);
        let error = match tokio::time::timeout_at(give_up_at, write).await {
            Ok(Ok(lease)) => {
                self.seen = Some(lease);
                self.renewed_at = Some(sent);
                return self.duration / 2;
            }
            // Someone else wrote the Lease: still ours (an edit of its labels, say) means
            // retry with its new resourceVersion; another holder means lost.
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                let read = tokio::time::timeout_at(give_up_at, self.api.get_opt(&self.name));
                match read.await {
                    Ok(Ok(Some(lease))) if holder(&lease) == Some(self.identity.as_str()) => {
                        self.seen = Some(lease);
                        return Duration::ZERO;
                    }
                    Ok(Ok(Some(lease))) => {
                        tracing::error!(lease = %self.name, holder = ?holder(&lease), "another candidate holds the leader-election Lease");
                        self.seen = Some(lease);
                        self.renewed_at = None;
                        return self.duration / 2;
                    }
                    Ok(Ok(None)) => "the Lease was deleted".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "the API server did not answer".to_owned(),
                }
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "the API server did not answer".to_owned(),
        };
        if Instant::now() >= give_up_at {
            tracing::error!(lease = %self.name, %error, "could not renew the leader-election Lease in time");
            self.renewed_at = None;
            return self.duration / 2;
        }
        tracing::warn!(lease = %self.name, %error, "renewing the leader-election Lease; retrying");
        self.retry()
            .min(give_up_at.saturating_duration_since(Instant::now()))
    }

    fn retry(&self) -> Duration {
        (self.duration / 10).max(Duration::from_millis(250))
    }
}

/// How long after sending its last successful renewal the holder gives leadership up:
/// three quarters of the duration, so that it has stopped a quarter of the duration
/// before any candidate may take the Lease.
pub fn deadline(duration: Duration) -> Duration {
    duration * 3 / 4
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// How long until `identity` may claim `lease` at `now`: zero if nobody holds it, or
/// `identity` does, or its `renewTime` plus its duration has passed.
fn time_left(lease: &Lease, identity: &str, now: Timestamp, default: Duration) -> Duration {
    match holder(lease) {
        None => Duration::ZERO,
        Some(held) if held == identity => Duration::ZERO,
        Some(_) => {
            let spec = lease.spec.as_ref();
            let Some(renewed) = spec.and_then(|s| s.renew_time.as_ref()) else {
                return Duration::ZERO;
            };
            let duration = spec
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .map_or(default, Duration::from_secs);
            let since = now
                .as_millisecond()
                .saturating_sub(renewed.0.as_millisecond());
            let since = Duration::from_millis(u64::try_from(since).unwrap_or(0));
            duration.saturating_sub(since)
        }
    }
}

/// `seen` (or a new Lease `name`) claimed by `identity`: acquired and renewed now, one
/// more transition if it had another holder.
fn claimed(seen: Option<&Lease>, name: &str, identity: &str, duration: Duration) -> Lease {
    let mut lease = seen.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let previous = holder(&lease).map(str::to_owned);
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let now = MicroTime(Timestamp::now());
    if previous.as_deref() != Some(identity) {
        spec.acquire_time = Some(now.clone());
        if previous.is_some() {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
    }
    spec.lease_transitions.get_or_insert(0);
    spec.holder_identity = Some(identity.to_owned());
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(seconds(duration));
    lease
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>, seconds: i32, renewed: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("thv-operator-leader".to_owned()),
                resource_version: Some("7".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(seconds),
                lease_transitions: Some(3),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    #[test]
    fn a_held_lease_expires_its_duration_after_its_renewal() {
        let ten = Duration::from_secs(10);
        let lease = held_by(Some("b_1"), 10, at(0));
        assert_eq!(time_left(&lease, "a_1", at(4), ten), Duration::from_secs(6));
        assert_eq!(time_left(&lease, "a_1", at(10), ten), Duration::ZERO);
        assert_eq!(time_left(&lease, "a_1", at(60), ten), Duration::ZERO);
        // A renewal stamped ahead of this clock is not yet expired.
        assert_eq!(time_left(&lease, "a_1", at(-5), ten), ten);
        // Its own duration counts, not the candidate's.
        let long = held_by(Some("b_1"), 60, at(0));
        assert_eq!(
            time_left(&long, "a_1", at(10), ten),
            Duration::from_secs(50)
        );
    }

    #[test]
    fn a_released_or_own_or_unrenewed_lease_is_free_at_once() {
        let ten = Duration::from_secs(10);
        let mut unrenewed = held_by(Some("b_1"), 10, at(0));
        if let Some(spec) = unrenewed.spec.as_mut() {
            spec.renew_time = None;
        }
        for lease in [
            held_by(None, 1, at(0)),
            held_by(Some(""), 1, at(0)),
            held_by(Some("a_1"), 10, at(0)),
            unrenewed,
        ] {
            assert_eq!(time_left(&lease, "a_1", at(1), ten), Duration::ZERO);
        }
    }

    #[test]
    fn a_claim_counts_a_transition_only_from_another_holder() {
        let ten = Duration::from_secs(10);
        let taken = claimed(Some(&held_by(Some("b_1"), 10, at(0))), "x", "a_1", ten);
        let spec = taken.spec.as_ref().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("a_1"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.lease_duration_seconds, Some(10));
        assert!(spec.acquire_time.is_some());
        // The precondition of the write: the version read.
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("7"));

        let released = claimed(Some(&held_by(None, 1, at(0))), "x", "a_1", ten);
        assert_eq!(released.spec.and_then(|s| s.lease_transitions), Some(3));

        let new = claimed(None, "thv-operator-leader", "a_1", ten);
        assert_eq!(new.metadata.name.as_deref(), Some("thv-operator-leader"));
        assert_eq!(new.spec.and_then(|s| s.lease_transitions), Some(0));
    }

    #[test]
    fn the_holder_stops_a_quarter_of_the_duration_before_anyone_may_take_over() {
        assert_eq!(
            deadline(Duration::from_secs(10)),
            Duration::from_millis(7500)
        );
        assert_eq!(
            deadline(Duration::from_secs(3)),
            Duration::from_millis(2250)
        );
    }
}
