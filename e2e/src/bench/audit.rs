//! Counting one client's API requests: the client runs as its own ServiceAccount in
//! the namespace `thv-bench`, whose requests (and only those) the harness's API server
//! writes to its audit log (`e2e/cluster/launcher`, `auditPolicy`); the benchmark
//! counts that user's entries between two offsets of the log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// The namespace whose ServiceAccounts are audited.
pub const NAMESPACE: &str = "thv-bench";

/// The harness API server's audit log.
pub struct AuditLog {
    path: PathBuf,
}

/// Requests of one user in a stretch of the log.
#[derive(Debug, Default, Clone)]
pub struct Requests {
    pub total: u64,
    /// Requests per verb (`get`, `list`, `watch`, `patch`, `update`, `create`, …).
    pub by_verb: BTreeMap<String, u64>,
    /// Requests per verb and resource (`patch deployments`, `update leases`).
    pub by_resource: BTreeMap<String, u64>,
}

impl Requests {
    /// `get 12, patch 3000, …`
    pub fn verbs(&self) -> String {
        let parts: Vec<String> = self
            .by_verb
            .iter()
            .map(|(verb, n)| format!("{verb} {n}"))
            .collect();
        parts.join(", ")
    }

    /// `get leases 5, patch deployments 12, …`
    pub fn verbs_and_resources(&self) -> String {
        let parts: Vec<String> = self
            .by_resource
            .iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect();
        parts.join(", ")
    }

    /// Requests other than those on `resource` (`leases`: leader election aside).
    pub fn apart_from(&self, resource: &str) -> u64 {
        let on: u64 = self
            .by_resource
            .iter()
            .filter(|(what, _)| what.rsplit(' ').next() == Some(resource))
            .map(|(_, n)| n)
            .sum();
        self.total - on.min(self.total)
    }
}

impl AuditLog {
    /// The log of the harness cluster (next to its kubeconfig), which must exist.
    pub fn harness() -> anyhow::Result<Self> {
        let state = crate::kubeconfig_path()
            .parent()
            .map(Path::to_path_buf)
            .context("the harness kubeconfig has no directory")?;
        let path = state.join("logs/audit.log");
        if !state.join("audit-policy.yaml").exists() {
            bail!(
                "the harness API server was started without an audit log ({} missing): restart it with `make cluster-down cluster-up`",
                state.join("audit-policy.yaml").display()
            );
        }
        Ok(Self { path })
    }

    /// The current end of the log: count from here.
    pub fn offset(&self) -> anyhow::Result<u64> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    /// Requests of `user` the log recorded between two offsets (each request once: a
    /// watch is written when it starts and again when it ends).
    pub fn between(&self, from: u64, to: u64, user: &str) -> anyhow::Result<Requests> {
        let mut requests = Requests::default();
        self.scan(from, Some(to), user, |event| {
            let stage = event.get("stage").and_then(|s| s.as_str()).unwrap_or("");
            let verb = event.get("verb").and_then(|s| s.as_str()).unwrap_or("");
            // A long-running request (watch) has ResponseStarted then ResponseComplete:
            // count its start; every other request has only ResponseComplete.
            let counted = match stage {
                "ResponseStarted" => true,
                "ResponseComplete" => verb != "watch",
                _ => false,
            };
            if counted {
                requests.total += 1;
                *requests.by_verb.entry(verb.to_owned()).or_default() += 1;
                let resource = event
                    .pointer("/objectRef/resource")
                    .and_then(|r| r.as_str());
                let subresource = event
                    .pointer("/objectRef/subresource")
                    .and_then(|r| r.as_str());
                let what = match (resource, subresource) {
                    (Some(r), Some(s)) => format!("{verb} {r}/{s}"),
                    (Some(r), None) => format!("{verb} {r}"),
                    _ => verb.to_owned(),
                };
                *requests.by_resource.entry(what).or_default() += 1;
            }
            false
        })?;
        Ok(requests)
    }

    /// Waits until `user` has started a watch of `resource` after `offset`: the client
    /// is up and listening.
    pub async fn wait_for_watch(
        &self,
        offset: u64,
        user: &str,
        resource: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.scan(offset, None, user, |event| {
                event.get("verb").and_then(|v| v.as_str()) == Some("watch")
                    && event
                        .pointer("/objectRef/resource")
                        .and_then(|v| v.as_str())
                        == Some(resource)
            })?;
            if found {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{user} started no watch of {resource} within {} s (audit log {})",
                    timeout.as_secs(),
                    self.path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Calls `visit` with each of `user`'s events from `from` (to `to`, or the end)
    /// until it returns true; whether it did. A partly written last line is skipped.
    fn scan(
        &self,
        from: u64,
        to: Option<u64>,
        user: &str,
        mut visit: impl FnMut(&serde_json::Value) -> bool,
    ) -> anyhow::Result<bool> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        file.seek(SeekFrom::Start(from))?;
        let limit = to.map_or(u64::MAX, |to| to.saturating_sub(from));
        for line in BufReader::new(file.take(limit)).lines() {
            let line = line?;
            // Cheap filter before parsing: most lines are someone else's.
            if !line.contains(user) {
                continue;
            }
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event.pointer("/user/username").and_then(|u| u.as_str()) == Some(user)
                && visit(&event)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A ServiceAccount of `thv-bench` bound to `cluster-admin`, and a kubeconfig that
/// authenticates as it (a bound token, valid for `hours`): what a benchmarked
/// operator runs with, so that its requests are told apart from everyone else's.
pub struct Identity {
    /// `system:serviceaccount:thv-bench:NAME`, as the audit log names it.
    pub user: String,
    pub kubeconfig: PathBuf,
}

impl Identity {
    pub async fn create(client: &Client, name: &str, hours: i64) -> anyhow::Result<Self> {
        let params = PatchParams::apply(crate::TEST_MANAGER).force();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
        namespaces
            .patch(NAMESPACE, &params, &Patch::Apply(ns))
            .await
            .context("creating namespace thv-bench")?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
        let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
        accounts
            .patch(name, &params, &Patch::Apply(sa))
            .await
            .with_context(|| format!("creating ServiceAccount {NAMESPACE}/{name}"))?;
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        let binding_name = format!("thv-bench-{name}");
        let binding = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": binding_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        });
        bindings
            .patch(&binding_name, &params, &Patch::Apply(binding))
            .await
            .with_context(|| format!("binding {name} to cluster-admin"))?;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(hours * 3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for {name}"))?
            .status
            .and_then(|s| s.token)
            .context("the TokenRequest was answered without a token")?;
        let kubeconfig = token_kubeconfig(&crate::kubeconfig_path(), name, &token)?;
        Ok(Self {
            user: format!("system:serviceaccount:{NAMESPACE}:{name}"),
            kubeconfig,
        })
    }
}

/// Writes a copy of the kubeconfig at `base` whose users authenticate with `token`
/// (no client certificate), next to it as `bench-NAME.kubeconfig`.
fn token_kubeconfig(base: &Path, name: &str, token: &str) -> anyhow::Result<PathBuf> {
    let text =
        std::fs::read_to_string(base).with_context(|| format!("reading {}", base.display()))?;
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)?;
    let users = config
        .get_mut("users")
        .and_then(|u| u.as_sequence_mut())
        .context("the kubeconfig has no users")?;
    for user in users {
        if let Some(user) = user.as_mapping_mut() {
            user.insert(
                "user".into(),
                serde_yaml_ng::to_value(serde_json::json!({"token": token}))?,
            );
        }
    }
    let path = base.with_file_name(format!("bench-{name}.kubeconfig"));
    // It holds a token: readable by its owner only.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, serde_yaml_ng::to_string(&config)?.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, verb: &str, resource: &str, stage: &str) -> String {
        serde_json::json!({
            "kind": "Event", "stage": stage, "verb": verb,
            "user": {"username": user},
            "objectRef": {"resource": resource, "namespace": "bench"},
        })
        .to_string()
    }

    #[test]
    fn counts_one_users_requests_a_watch_once() {
        let dir = crate::proxy::TempDir::new("audit");
        let path = dir.path().join("audit.log");
        let ours = "system:serviceaccount:thv-bench:ours";
        let lines = [
            event(ours, "watch", "mcpservers", "ResponseStarted"),
            event(ours, "get", "deployments", "ResponseComplete"),
            event(
                "system:serviceaccount:thv-bench:toolhive",
                "get",
                "deployments",
                "ResponseComplete",
            ),
            event(ours, "patch", "deployments", "ResponseComplete"),
            event(ours, "watch", "mcpservers", "ResponseComplete"),
            event(ours, "update", "leases", "ResponseComplete"),
        ];
        let mut text = lines.join("\n");
        // A line the API server is still writing.
        text.push_str(
            "\n{\"kind\":\"Event\",\"user\":{\"username\":\"system:serviceaccount:thv-bench:ours\"",
        );
        std::fs::write(&path, &text).expect("writing the log");
        let log = AuditLog { path };
        let end = log.offset().expect("offset");
        let requests = log.between(0, end, ours).expect("counted");
        assert_eq!(requests.total, 4);
        assert_eq!(requests.verbs(), "get 1, patch 1, update 1, watch 1");
        assert_eq!(
            requests.verbs_and_resources(),
            "get deployments 1, patch deployments 1, update leases 1, watch mcpservers 1"
        );
        assert_eq!(requests.apart_from("leases"), 3);
        // From the second line on: the watch's start is not in range, its end is not counted.
        let second = lines[0].len() as u64 + 1;
        assert_eq!(log.between(second, end, ours).expect("counted").total, 3);
    }
}
