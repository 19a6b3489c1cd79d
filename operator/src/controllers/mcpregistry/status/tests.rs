//! Status from observations: phases, conditions, kstatus verdicts, kept data.

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::controllers::conditions::kstatus;
use crate::controllers::mcpregistry::document::Invalid;
use crate::controllers::mcpregistry::tests::registry;

const SPEC: &str = "source: {type: configmap, configMap: {name: catalog}}";

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("valid time")
}

fn synced(servers: usize, hash: &str, confirmed: bool) -> Observed<'_> {
    Observed::Synced {
        servers,
        hash,
        confirmed,
        message: format!("synced {servers} servers"),
    }
}

/// `registry` after a successful sync at second 1000.
fn after_sync() -> MCPRegistry {
    let mut r = registry(SPEC);
    r.status = Some(desired(&r, &synced(2, "aaaaaaaaaaaaaaaa", true), at(1000)));
    r
}

#[test]
fn successful_sync_is_ready_and_current() {
    let r = after_sync();
    let status = r.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(MCPRegistryPhase::Ready));
    assert_eq!(status.server_count, Some(2));
    assert_eq!(status.last_sync_hash.as_deref(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(status.last_sync_time, Some(Time(at(1000))));
    let c = kstatus::condition(&status, SYNCED);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Synced"));
    assert_eq!(kstatus::verdict(&r, &status), "Current");
}

#[test]
fn syncing_is_in_progress_and_keeps_the_previous_verdict() {
    let mut r = after_sync();
    r.metadata.generation = Some(2);
    let status = desired(&r, &Observed::Syncing("ConfigMap catalog"), at(2000));
    assert_eq!(status.phase, Some(MCPRegistryPhase::Syncing));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(kstatus::condition(&status, SYNCED).status, "True");
    assert_eq!(kstatus::verdict(&r, &status), "InProgress");
}

#[test]
fn first_sync_in_progress_is_not_synced() {
    let r = registry(SPEC);
    let status = desired(&r, &Observed::Syncing("ConfigMap catalog"), at(0));
    let c = kstatus::condition(&status, SYNCED);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Syncing"));
    assert_eq!(kstatus::verdict(&r, &status), "InProgress");
}

#[test]
fn failed_sync_keeps_the_served_data_and_says_why() {
    let r = after_sync();
    let error = SyncError::InvalidDocument(Invalid(vec![]));
    let status = desired(&r, &Observed::Failed(&error), at(2000));
    assert_eq!(status.phase, Some(MCPRegistryPhase::Failed));
    assert_eq!(status.server_count, Some(2));
    assert_eq!(status.last_sync_hash.as_deref(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(status.last_sync_time, Some(Time(at(1000))));
    let c = kstatus::condition(&status, SYNCED);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "InvalidDocument")
    );
    assert!(
        c.message.ends_with(
            "serving the data of the last successful sync (2 servers, hash aaaaaaaaaaaa)"
        ),
        "{}",
        c.message
    );
    assert_eq!(kstatus::verdict(&r, &status), "Failed");
}

#[test]
fn missing_source_config_map_is_waited_for() {
    let r = registry(SPEC);
    let error = SyncError::SourceNotFound {
        message: "ConfigMap catalog does not exist".into(),
        waiting: true,
    };
    let status = desired(&r, &Observed::Failed(&error), at(0));
    assert_eq!(status.phase, Some(MCPRegistryPhase::Pending));
    assert_eq!(kstatus::condition(&status, SYNCED).reason, "SourceNotFound");
    assert_eq!(kstatus::verdict(&r, &status), "InProgress");
    assert!(
        status
            .message
            .unwrap_or_default()
            .ends_with("no data synced yet")
    );
}

#[test]
fn re_reading_an_unchanged_source_changes_nothing() {
    let r = after_sync();
    let again = desired(&r, &synced(2, "aaaaaaaaaaaaaaaa", false), at(1500));
    assert_eq!(
        r.status.as_ref(),
        Some(&again),
        "status unchanged: no write"
    );
}

#[test]
fn scheduled_sync_confirms_the_data_with_a_new_sync_time() {
    let r = after_sync();
    let again = desired(&r, &synced(2, "aaaaaaaaaaaaaaaa", true), at(4600));
    assert_eq!(again.last_sync_time, Some(Time(at(4600))));
    assert_eq!(
        kstatus::condition(&again, SYNCED).last_transition_time,
        Time(at(1000)),
        "the condition did not change status"
    );
}

#[test]
fn changed_data_always_records_the_sync_time() {
    let r = after_sync();
    let again = desired(&r, &synced(3, "bbbbbbbbbbbbbbbb", false), at(1500));
    assert_eq!(again.last_sync_time, Some(Time(at(1500))));
    assert_eq!(again.server_count, Some(3));
}
