//! The MCPGroup controller: lists the MCPServers and MCPRemoteProxies of the group's
//! namespace whose `spec.groupRef` names it and writes them into its status (`servers`,
//! `serverCount`, `remoteProxies`, `remoteProxyCount`, `phase`, the `MCPServersChecked`
//! condition).
//!
//! Membership is declared by the servers, so any MCPServer change may add a member to
//! one group and remove it from another: a server event (metadata only) triggers every
//! group of its namespace, and the reconcile lists the servers from the API server, so
//! the status is what the API server holds, never a cache's guess. Namespaces without
//! groups cost nothing beyond the metadata watch.

use std::sync::Arc;
use std::time::Duration;

use api::group::{MCPGroupPhase, MCPGroupStatus};
use api::{MCPGroup, MCPRemoteProxy, MCPServer};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::controllers::conditions::{
    ConditionStatus, ConditionType, Reason, Verdict, condition, keep_transition_times,
};
use crate::controllers::{
    back_off, drain, name_of, namespace_of, patch_status, scoped_api, triggers,
};
use crate::error::Error;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mcpgroup";
/// Periodic re-list, should a server event have been missed.
const RESYNC: Duration = Duration::from_secs(300);
/// Server events within this window are coalesced into one re-list per group.
const DEBOUNCE: Duration = Duration::from_secs(1);

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // One shutdown for the graceful stop and for `drain`'s deadline.
    let shutdown = futures::FutureExt::shared(shutdown);
    let client = ctx.client.clone();
    let (groups, trigger) = triggers::reflected(
        scoped_api::<MCPGroup>(&client, &namespace),
        watcher::Config::default(),
        |_| {},
    );
    let controller = Controller::for_stream(trigger, groups.clone());
    let of_proxy = groups.clone();
    let stream = controller
        .watches_stream(
            triggers::touched(
                scoped_api::<PartialObjectMeta<MCPServer>>(&client, &namespace),
                watcher::Config::default(),
            ),
            move |server| groups_of_namespace(&groups, server.namespace().as_deref()),
        )
        .watches_stream(
            triggers::touched(
                scoped_api::<PartialObjectMeta<MCPRemoteProxy>>(&client, &namespace),
                watcher::Config::default(),
            ),
            move |proxy| groups_of_namespace(&of_proxy, proxy.namespace().as_deref()),
        )
        .with_config(kube::runtime::controller::Config::default().debounce(DEBOUNCE))
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx);
    drain(CONTROLLER, stream, shutdown).await;
}

/// Every group of `namespace`: any of them may have gained or lost the server.
fn groups_of_namespace(
    groups: &Store<MCPGroup>,
    namespace: Option<&str>,
) -> Vec<ObjectRef<MCPGroup>> {
    groups
        .state()
        .iter()
        .filter(|g| g.metadata.namespace.as_deref() == namespace)
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// One reconcile of one MCPGroup.
pub async fn reconcile(group: Arc<MCPGroup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if group.metadata.deletion_timestamp.is_some() {
        // Its members notice through their own reference watch (GroupRefNotFound).
        return Ok(Action::await_change());
    }
    let namespace = namespace_of(group.as_ref())?;
    let name = name_of(group.as_ref()).unwrap_or_default();
    let servers: Api<MCPServer> = Api::namespaced(ctx.client.clone(), namespace);
    let proxies: Api<MCPRemoteProxy> = Api::namespaced(ctx.client.clone(), namespace);
    let params = ListParams::default();
    let listed = match futures::try_join!(servers.list(&params), proxies.list(&params)) {
        Ok((servers, proxies)) => Ok(Members {
            servers: members(name, &servers.items, |s| s.spec.group_ref.as_ref()),
            remote_proxies: members(name, &proxies.items, |p| p.spec.group_ref.as_ref()),
        }),
        Err(error) => Err(error),
    };
    let desired = desired(
        &group,
        listed.as_ref().map_err(ToString::to_string),
        Timestamp::now(),
    );
    if group.status.as_ref() != Some(&desired) {
        patch_status(&ctx.client, group.as_ref(), &desired).await?;
    }
    listed?;
    Ok(Action::requeue(RESYNC))
}

/// The members of one group, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// MCPServers, sorted.
    pub servers: Vec<String>,
    /// MCPRemoteProxies, sorted.
    pub remote_proxies: Vec<String>,
}

/// Names of the `objects` whose group reference (`group_ref`) is `group`, sorted.
pub fn members<T: kube::Resource>(
    group: &str,
    objects: &[T],
    group_ref: impl Fn(&T) -> Option<&api::common::LocalRef>,
) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .filter(|o| group_ref(o).is_some_and(|r| r.name == group))
        .filter_map(|o| o.meta().name.clone())
        .collect();
    names.sort();
    names
}

/// The status for `members` (or the error listing them), keeping what did not change.
pub fn desired(
    group: &MCPGroup,
    members: Result<&Members, String>,
    now: Timestamp,
) -> MCPGroupStatus {
    let old = group.status.clone().unwrap_or_default();
    let generation = group.metadata.generation;
    let (verdict, message, phase) = match &members {
        Ok(members) => (
            Verdict {
                status: ConditionStatus::True,
                reason: Reason::ListMCPServersCheckSucceeded,
            },
            format!(
                "{} MCPServers and {} MCPRemoteProxies in the group",
                members.servers.len(),
                members.remote_proxies.len()
            ),
            MCPGroupPhase::Ready,
        ),
        Err(error) => (
            Verdict {
                status: ConditionStatus::False,
                reason: Reason::ListMCPServersCheckFailed,
            },
            format!("listing the MCPServers of the namespace failed: {error}"),
            MCPGroupPhase::Failed,
        ),
    };
    let checked = condition(
        ConditionType::MCPServersChecked.as_str(),
        verdict,
        &message,
        generation,
        now,
    );
    let mut status = MCPGroupStatus {
        conditions: keep_transition_times(&old.conditions, vec![checked]),
        observed_generation: generation,
        phase,
        ..old.clone()
    };
    // A failed listing keeps the last known members: they did not change for certain.
    if let Ok(members) = members {
        let count = |names: &[String]| i32::try_from(names.len()).unwrap_or(i32::MAX);
        status.server_count = count(&members.servers);
        status.servers = members.servers.clone();
        status.remote_proxy_count = Some(count(&members.remote_proxies));
        status.remote_proxies = members.remote_proxies.clone();
    }
    status
}

/// Backs off on errors; every failure is counted by reason.
pub fn error_policy(group: Arc<MCPGroup>, error: &Error, ctx: Arc<Context>) -> Action {
    back_off(&ctx, CONTROLLER, group.as_ref(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(status: Option<MCPGroupStatus>) -> MCPGroup {
        let mut group = MCPGroup::new("team", Default::default());
        group.metadata.namespace = Some("ns".to_owned());
        group.metadata.generation = Some(2);
        group.status = status;
        group
    }

    fn server(name: &str, group: Option<&str>) -> MCPServer {
        let yaml = format!(
            "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  image: a/b:1\n{}",
            group
                .map(|g| format!("  groupRef: {{name: {g}}}\n"))
                .unwrap_or_default()
        );
        serde_yaml_ng::from_str(&yaml).expect("a server")
    }

    #[test]
    fn members_are_the_servers_naming_the_group_sorted() {
        let servers = [
            server("zeta", Some("team")),
            server("alpha", Some("team")),
            server("other", Some("ops")),
            server("alone", None),
        ];
        assert_eq!(
            members("team", &servers, |s| s.spec.group_ref.as_ref()),
            ["alpha", "zeta"]
        );
    }

    #[test]
    fn a_listed_group_is_ready_with_its_count_and_stays_equal_when_unchanged() {
        let members = Members {
            servers: vec!["alpha".to_owned(), "zeta".to_owned()],
            remote_proxies: vec!["github".to_owned()],
        };
        let status = desired(&group(None), Ok(&members), Timestamp::UNIX_EPOCH);
        assert_eq!(status.phase, MCPGroupPhase::Ready);
        assert_eq!(
            (status.server_count, status.servers.clone()),
            (2, members.servers.clone())
        );
        assert_eq!(
            (status.remote_proxy_count, status.remote_proxies.clone()),
            (Some(1), members.remote_proxies.clone())
        );
        assert_eq!(status.observed_generation, Some(2));
        let checked = &status.conditions[0];
        assert_eq!(
            (
                checked.type_.as_str(),
                checked.status.as_str(),
                checked.reason.as_str()
            ),
            ("MCPServersChecked", "True", "ListMCPServersCheckSucceeded")
        );
        let later = Timestamp::UNIX_EPOCH + std::time::Duration::from_secs(60);
        let again = desired(&group(Some(status.clone())), Ok(&members), later);
        assert_eq!(again, status, "an unchanged group is not written again");
    }

    #[test]
    fn an_emptied_group_writes_its_empty_list() {
        // The status is a merge patch: an omitted list would keep the members that left.
        let status = desired(&group(None), Ok(&Members::default()), Timestamp::UNIX_EPOCH);
        let written = serde_json::to_value(&status).expect("serialises");
        assert_eq!(written["servers"], serde_json::json!([]));
        assert_eq!(written["serverCount"], 0);
        assert_eq!(written["remoteProxies"], serde_json::json!([]));
        assert_eq!(written["remoteProxyCount"], 0);
    }

    #[test]
    fn a_failed_listing_keeps_the_last_members_and_says_why() {
        let members = Members {
            servers: vec!["alpha".to_owned()],
            remote_proxies: Vec::new(),
        };
        let before = desired(&group(None), Ok(&members), Timestamp::UNIX_EPOCH);
        let failed = desired(
            &group(Some(before)),
            Err("forbidden".to_owned()),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(failed.phase, MCPGroupPhase::Failed);
        assert_eq!((failed.server_count, failed.servers), (1, members.servers));
        assert!(failed.conditions[0].message.contains("forbidden"));
        assert_eq!(failed.conditions[0].reason, "ListMCPServersCheckFailed");
    }
}
