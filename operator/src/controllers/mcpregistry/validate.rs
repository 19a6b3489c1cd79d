//! The validate stage: the spec is checked with the admission webhook's own rules
//! (`admission::check_manifest`: CRD schema and CEL rules, source URLs, interval range, filter
//! patterns), so an object admitted while the webhook was down still gets the same
//! verdict, in its status. Then the settings the sync needs are extracted.

use std::time::Duration;

use admission::{Finding, InMemoryCatalog, check_manifest};
use api::MCPRegistry;
use api::Manifest;

use admission::go_duration;
use runconfig::Reason;

/// When the registry syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Re-sync every this often; `None` when only spec (and source ConfigMap) changes sync.
    pub interval: Option<Duration>,
}

/// The sync plan, or the problems (path, reason, what is wrong and what is allowed).
pub fn check_spec(registry: &MCPRegistry) -> Result<Plan, Vec<Finding>> {
    let version = format!("{}/{}", api::GROUP, api::VERSION);
    // An empty catalog: whether the source ConfigMap exists is the sync's business (it
    // waits for it), not a spec problem.
    let report = check_manifest(
        &Manifest::MCPRegistry(registry.clone()),
        &version,
        &InMemoryCatalog::default(),
    );
    let mut problems = report.errors;
    let interval = match &registry.spec.sync_policy {
        Some(policy) if policy.automatic => match go_duration(&policy.interval) {
            Some(interval) => Some(interval),
            None => {
                // The check above already reported it; never sync in a tight loop.
                if problems.is_empty() {
                    problems.push(Finding::new(
                        "spec.syncPolicy.interval",
                        Reason::InvalidFormat,
                        format!("{:?} is not a duration", policy.interval),
                        "a Go duration from 1m to 168h, e.g. 30m",
                    ));
                }
                None
            }
        },
        _ => None,
    };
    if problems.is_empty() {
        Ok(Plan { interval })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpregistry::tests::registry;

    #[test]
    fn automatic_sync_uses_the_interval() {
        let r = registry(
            "source: {type: configmap, configMap: {name: catalog}}\nsyncPolicy: {automatic: true, interval: 1h30m}",
        );
        assert_eq!(
            check_spec(&r),
            Ok(Plan {
                interval: Some(Duration::from_secs(5400))
            })
        );
    }

    #[test]
    fn manual_sync_has_no_interval() {
        let r = registry(
            "source: {type: configmap, configMap: {name: catalog}}\nsyncPolicy: {automatic: false, interval: 1h}",
        );
        assert_eq!(check_spec(&r), Ok(Plan { interval: None }));
    }

    #[test]
    fn nonsense_interval_is_reported_at_its_field() {
        for interval in ["soon", "10s", "400h"] {
            let r = registry(&format!(
                "source: {{type: configmap, configMap: {{name: catalog}}}}\nsyncPolicy: {{automatic: true, interval: {interval}}}"
            ));
            let problems = check_spec(&r).expect_err("refused");
            assert!(
                problems
                    .iter()
                    .any(|p| p.to_string().starts_with("spec.syncPolicy.interval: ")),
                "{interval}: {problems:?}"
            );
        }
    }

    #[test]
    fn source_config_map_cannot_be_the_output() {
        let r = registry("source: {type: configmap, configMap: {name: team-registry}}");
        let problems = check_spec(&r).expect_err("refused");
        assert!(
            problems[0]
                .to_string()
                .starts_with("spec.source.configMap.name: team-registry is the ConfigMap"),
            "{problems:?}"
        );
    }

    #[test]
    fn unsupported_git_scheme_is_refused() {
        let r = registry("source: {type: git, git: {url: 'ssh://git@example.com/x.git'}}");
        let problems = check_spec(&r).expect_err("refused");
        assert!(
            problems[0].to_string().starts_with("spec.source.git.url: "),
            "{problems:?}"
        );
    }
}
