//! What the proxy tells about the MCP server behind it, in a cluster: the MCPServer's
//! `status.backend` (written by the proxy, field manager `thv-proxyrunner`; the operator
//! reads it into its `BackendReady` and `Ready` conditions) and an Event on the MCPServer
//! at each change, so `kubectl describe mcpserver` shows why a server does not serve
//! without anyone reading pod logs.
//!
//! Two inputs make the report: what the server's pods look like (an image that cannot
//! be pulled, a crash loop with the container's last words, a pod that cannot be
//! scheduled) and what the link to the server is (attached and initialised, with the
//! server's name, version and tool count, or why not).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::watch;

use super::kubernetes::FIELD_MANAGER;

/// Why the server is or is not serving (`status.backend.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// It answered `initialize`.
    Initialized,
    /// Its pod is being created or started, or the proxy is connecting.
    Starting,
    /// Its image cannot be pulled.
    ImagePullFailed,
    /// Its container keeps exiting.
    CrashLoop,
    /// Its container cannot be created (a missing Secret key, a bad volume).
    ContainerConfigError,
    /// Its pod cannot be created (a missing ServiceAccount, a quota, Pod Security).
    PodCreateFailed,
    /// No node can run its pod.
    Unschedulable,
    /// Its pod failed.
    PodFailed,
    /// The proxy cannot attach to its container.
    AttachFailed,
    /// No pod of an HTTP server is ready.
    NoEndpoints,
    /// It was reached but did not answer `initialize`, or refused it.
    InitializeFailed,
    /// Its StatefulSet or Service could not be applied.
    ApplyFailed,
    /// A remote server answered the proxy's own `initialize` with 401 or 403: it wants
    /// credentials the proxy does not send (clients may be bringing their own).
    AuthenticationRequired,
}

impl Reason {
    /// The name written to the status and the Event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::Starting => "Starting",
            Self::ImagePullFailed => "ImagePullFailed",
            Self::CrashLoop => "CrashLoop",
            Self::ContainerConfigError => "ContainerConfigError",
            Self::PodCreateFailed => "PodCreateFailed",
            Self::Unschedulable => "Unschedulable",
            Self::PodFailed => "PodFailed",
            Self::AttachFailed => "AttachFailed",
            Self::NoEndpoints => "NoEndpoints",
            Self::InitializeFailed => "InitializeFailed",
            Self::ApplyFailed => "ApplyFailed",
            Self::AuthenticationRequired => "AuthenticationRequired",
        }
    }

    /// Whether a user has something to fix (a Warning Event), rather than something
    /// in progress or done.
    pub fn is_problem(self) -> bool {
        !matches!(self, Self::Initialized | Self::Starting)
    }
}

/// A reason with its detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Why.
    pub reason: Reason,
    /// The detail a user acts on.
    pub message: String,
}

impl Problem {
    /// A problem of `reason` saying `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What the server said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFacts {
    /// `serverInfo.name`.
    pub name: Option<String>,
    /// `serverInfo.version`.
    pub version: Option<String>,
    /// The protocol version it agreed to.
    pub protocol_version: Option<String>,
    /// How many tools it lists; `None` when it has no tools capability or the list
    /// failed.
    pub tools: Option<usize>,
}

impl ServerFacts {
    /// The facts of an `initialize` result (the tool count comes later).
    pub fn from_initialize(result: &Value) -> Self {
        let text = |pointer: &str| {
            result
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            name: text("/serverInfo/name"),
            version: text("/serverInfo/version"),
            protocol_version: text("/protocolVersion"),
            tools: None,
        }
    }

    /// Whether the `initialize` result says the server has tools.
    pub fn has_tools(result: &Value) -> bool {
        result.pointer("/capabilities/tools").is_some()
    }
}

/// Counts the tools a server lists over every page of `tools/list`:
/// `while let Some((page, params)) = pages.next() { …; pages.add(&result) }`. At most
/// [`MAX_TOOL_PAGES`] pages are read, so a server whose cursors never end cannot hold
/// the count forever. (A loop its callers drive rather than an async callback: the
/// callers' futures are spawned, and an async closure's future cannot be required to be
/// `Send`.)
#[derive(Debug, Default)]
pub struct ToolPages {
    count: usize,
    cursor: Option<Value>,
    read: usize,
    done: bool,
}

impl ToolPages {
    /// The next page to ask for (its number and `tools/list` params), or `None`.
    pub fn next(&self) -> Option<(usize, Value)> {
        if self.done || self.read >= MAX_TOOL_PAGES {
            return None;
        }
        let params = match &self.cursor {
            Some(cursor) => serde_json::json!({ "cursor": cursor }),
            None => serde_json::json!({}),
        };
        Some((self.read, params))
    }

    /// Counts one page's `tools/list` result.
    pub fn add(&mut self, result: &Value) {
        self.read += 1;
        self.count += result
            .get("tools")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        self.done = self.cursor.is_none();
    }

    /// The tools counted so far.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// The most `tools/list` pages [`ToolPages`] reads.
pub const MAX_TOOL_PAGES: usize = 100;

/// The link to the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or reconnecting; why, when the last link ended.
    #[default]
    Connecting,
    /// It ended or was never made, for a reason a user may fix.
    Failed(Problem),
    /// It answered `initialize`.
    Up(ServerFacts),
}

/// Everything the report is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// What is wrong with the server's pods, if anything.
    pub pods: Option<Problem>,
    /// Why the StatefulSet cannot create its pod, if it cannot.
    pub create: Option<Problem>,
    /// The link.
    pub link: LinkState,
    /// The URL of a remote server (an MCPRemoteProxy's), which has no pods to wait for.
    pub remote: Option<String>,
}

/// The report: `status.backend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Why it serves or not.
    pub reason: Reason,
    /// The detail.
    pub message: String,
    /// What it said, once initialised.
    pub facts: Option<ServerFacts>,
}

impl Inputs {
    /// The report these inputs make. A server that answered is initialised whatever
    /// one of its pods says; otherwise the pods' problem (the cause), or why there is no
    /// pod, comes before the link's (its symptom).
    pub fn observe(&self) -> Observation {
        match (&self.link, self.pods.as_ref().or(self.create.as_ref())) {
            (LinkState::Up(facts), _) => Observation {
                reason: Reason::Initialized,
                message: format!(
                    "{} {} answered initialize (protocol {})",
                    facts.name.as_deref().unwrap_or("the MCP server"),
                    facts.version.as_deref().unwrap_or(""),
                    facts.protocol_version.as_deref().unwrap_or("unknown"),
                )
                .replace("  ", " "),
                facts: Some(facts.clone()),
            },
            (_, Some(problem)) | (LinkState::Failed(problem), None) => Observation {
                reason: problem.reason,
                message: problem.message.clone(),
                facts: None,
            },
            (LinkState::Connecting, None) => Observation {
                reason: Reason::Starting,
                message: match &self.remote {
                    Some(url) => format!("connecting to the remote server {url}"),
                    None => {
                        "waiting for the MCP server's pod to run and answer initialize".to_owned()
                    }
                },
                facts: None,
            },
        }
    }
}

impl Observation {
    /// `status.backend` as a JSON merge patch: every field present, so a field that no
    /// longer applies is removed.
    pub fn patch(&self) -> Value {
        let facts = self.facts.clone().unwrap_or_default();
        serde_json::json!({
            "status": {
                "backend": {
                    "reason": self.reason.as_str(),
                    "message": self.message,
                    "serverName": facts.name,
                    "serverVersion": facts.version,
                    "protocolVersion": facts.protocol_version,
                    "tools": facts.tools.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
                }
            }
        })
    }
}

/// What is wrong with a pod of the server, read from its status: the `mcp` container's
/// waiting reason or last termination, the scheduler's verdict, a failed pod. `None`
/// for a pod that runs or is on its way.
pub fn diagnose(pod: &Pod) -> Option<Problem> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some(Problem::new(
            Reason::PodFailed,
            format!(
                "pod {name} failed: {}",
                status
                    .message
                    .as_deref()
                    .or(status.reason.as_deref())
                    .unwrap_or("no reason given")
            ),
        ));
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        return Some(Problem::new(
            Reason::Unschedulable,
            format!(
                "pod {name} cannot be scheduled: {}",
                condition.message.as_deref().unwrap_or("no node fits")
            ),
        ));
    }
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == workload_k8s::names::CONTAINER)?;
    // Between two back-offs a crashing container shows as terminated: the same crash
    // loop, said with its own exit.
    if let Some(exited) = container.state.as_ref()?.terminated.as_ref()
        && exited.exit_code != 0
    {
        return Some(Problem::new(
            Reason::CrashLoop,
            format!(
                "container {} of pod {name} exited with code {} ({}), restarted {} times{}",
                workload_k8s::names::CONTAINER,
                exited.exit_code,
                exited.reason.as_deref().unwrap_or("no reason"),
                container.restart_count,
                last_words(exited.message.as_deref()),
            ),
        ));
    }
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref().unwrap_or_default();
    let detail = waiting.message.as_deref().unwrap_or(reason);
    match reason {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
            Some(Problem::new(
                Reason::ImagePullFailed,
                format!(
                    "image {} of pod {name} cannot be pulled ({reason}): {detail}",
                    container.image
                ),
            ))
        }
        "CrashLoopBackOff" => {
            let last = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    format!(
                        "; it last exited with code {} ({}){}",
                        t.exit_code,
                        t.reason.as_deref().unwrap_or("no reason"),
                        last_words(t.message.as_deref()),
                    )
                })
                .unwrap_or_default();
            Some(Problem::new(
                Reason::CrashLoop,
                format!(
                    "container {} of pod {name} keeps exiting, restarted {} times{last}",
                    workload_k8s::names::CONTAINER,
                    container.restart_count
                ),
            ))
        }
        "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
            Some(Problem::new(
                Reason::ContainerConfigError,
                format!(
                    "container {} of pod {name} cannot be created ({reason}): {detail}",
                    workload_k8s::names::CONTAINER
                ),
            ))
        }
        _ => None,
    }
}

/// `: <the termination message>` (the container's last log lines), when there is one.
fn last_words(message: Option<&str>) -> String {
    message
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

/// The problem the server's pods have together: none when one of them runs; else the
/// first problem found (pods sorted by name for a stable report).
pub fn diagnose_all<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Option<Problem> {
    let mut pods: Vec<&Pod> = pods.into_iter().collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let running = pods.iter().any(|pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.name == workload_k8s::names::CONTAINER
                    && c.state.as_ref().is_some_and(|s| s.running.is_some())
            })
    });
    if running {
        return None;
    }
    pods.into_iter().find_map(diagnose)
}

/// The kind of object the report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    /// An MCPServer: the proxy runs its MCP server.
    Server,
    /// An MCPRemoteProxy: the proxy fronts a server reached by URL.
    RemoteProxy,
}

impl SubjectKind {
    /// Environment variable naming the kind (`MCPRemoteProxy`; unset means MCPServer).
    pub const ENV: &str = "THV_OWNER_KIND";

    /// The kind named by [`Self::ENV`].
    pub fn from_env() -> Self {
        match std::env::var(Self::ENV).as_deref() {
            Ok("MCPRemoteProxy") => Self::RemoteProxy,
            _ => Self::Server,
        }
    }

    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Server => "MCPServer",
            Self::RemoteProxy => "MCPRemoteProxy",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Server => "mcpservers",
            Self::RemoteProxy => "mcpremoteproxies",
        }
    }
}

/// The MCPServer (or MCPRemoteProxy) the report is about.
#[derive(Clone, Debug)]
pub struct Subject {
    /// Its kind.
    pub kind: SubjectKind,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID (`THV_MCPSERVER_UID`); Events need it.
    pub uid: Option<String>,
}

/// Writes the report whenever the inputs change (after a short settling delay, so a
/// burst of pod updates makes one write), and an Event when the reason changes. A
/// failed write is retried on the next change or after [`RETRY`].
pub fn spawn(client: Client, subject: Subject, mut inputs: watch::Receiver<Inputs>) {
    tokio::spawn(async move {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        // Dynamic: the proxy does not link the CRD types.
        let kind = subject.kind.kind();
        let gvk = GroupVersionKind::gvk("toolhive.stacklok.dev", "v1beta1", kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, subject.kind.plural());
        let servers: Api<DynamicObject> =
            Api::namespaced_with(client, &subject.namespace, &resource);
        let reference = ObjectReference {
            api_version: Some("toolhive.stacklok.dev/v1beta1".to_owned()),
            kind: Some(kind.to_owned()),
            name: Some(subject.name.clone()),
            namespace: Some(subject.namespace.clone()),
            uid: subject.uid.clone(),
            ..ObjectReference::default()
        };
        let mut written: Option<Observation> = None;
        let mut announced: Option<Reason> = None;
        loop {
            tokio::time::sleep(SETTLE).await;
            let observation = inputs.borrow_and_update().observe();
            if written.as_ref() != Some(&observation) {
                let patched = servers
                    .patch_status(
                        &subject.name,
                        &PatchParams::default(),
                        &Patch::Merge(observation.patch()),
                    )
                    .await;
                match patched {
                    Ok(_) => {
                        tracing::info!(reason = observation.reason.as_str(), message = %observation.message, "reported the MCP server's state");
                        written = Some(observation.clone());
                    }
                    // No such MCPServer (a RunConfig run without the operator), or a
                    // Role from an operator that does not grant the write: said once
                    // per change, not retried until the next one.
                    Err(kube::Error::Api(status)) if status.code == 403 || status.code == 404 => {
                        tracing::info!(error = %status.message, kind, "the status.backend cannot be written; reporting in this log only");
                        written = Some(observation.clone());
                    }
                    Err(error) => {
                        tracing::warn!(%error, kind, "writing the status.backend");
                    }
                }
            }
            if announced != Some(observation.reason) && subject.uid.is_some() {
                let event = Event {
                    type_: if observation.reason.is_problem() {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: observation.reason.as_str().to_owned(),
                    note: Some(observation.message.chars().take(1000).collect()),
                    action: "Observe".to_owned(),
                    secondary: None,
                };
                match recorder.publish(&event, &reference).await {
                    Ok(()) => announced = Some(observation.reason),
                    Err(error) => tracing::warn!(%error, kind, "publishing an Event"),
                }
            }
            let settled = written.as_ref() == Some(&observation)
                && (announced == Some(observation.reason) || subject.uid.is_none());
            if settled {
                if inputs.changed().await.is_err() {
                    return;
                }
            } else if tokio::time::timeout(RETRY, inputs.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                return;
            }
        }
    });
}

/// How long the inputs settle before a write.
const SETTLE: Duration = Duration::from_millis(200);
/// When a failed write is tried again without a change.
const RETRY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, PodCondition, PodStatus,
    };

    fn pod(name: &str, status: PodStatus) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            status: Some(status),
            ..Default::default()
        }
    }

    fn container(state: ContainerState, last: Option<ContainerState>, restarts: i32) -> PodStatus {
        PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "mcp".to_owned(),
                image: "ghcr.io/example/missing:1".to_owned(),
                state: Some(state),
                last_state: last,
                restart_count: restarts,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn waiting(reason: &str, message: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_image_that_cannot_be_pulled_names_the_image_and_the_error() {
        let p = pod(
            "s-0",
            container(
                waiting("ImagePullBackOff", "Back-off pulling image"),
                None,
                0,
            ),
        );
        let problem = diagnose(&p).expect("a problem");
        assert_eq!(problem.reason, Reason::ImagePullFailed);
        assert!(
            problem.message.contains("ghcr.io/example/missing:1"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("Back-off pulling image"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_crash_loop_carries_the_last_exit_and_termination_message() {
        let last = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 3,
                reason: Some("Error".to_owned()),
                message: Some("API_KEY is not set\n".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = pod(
            "s-0",
            container(waiting("CrashLoopBackOff", "back-off 20s"), Some(last), 4),
        );
        let problem = diagnose(&p).expect("a problem");
        assert_eq!(problem.reason, Reason::CrashLoop);
        assert!(
            problem.message.contains("restarted 4 times"),
            "{}",
            problem.message
        );
        assert!(
            problem
                .message
                .contains("code 3 (Error): API_KEY is not set"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_crashed_container_between_back_offs_is_the_same_crash_loop() {
        let exited = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 2,
                reason: Some("Error".to_owned()),
                message: Some("error: unrecognized subcommand 'x'\n".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let problem = diagnose(&pod("s-0", container(exited, None, 3))).expect("a problem");
        assert_eq!(problem.reason, Reason::CrashLoop);
        assert!(
            problem
                .message
                .contains("code 2 (Error), restarted 3 times: error: unrecognized subcommand 'x'"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn tool_pages_follow_cursors_and_stop_at_the_last_or_the_cap() {
        let mut pages = ToolPages::default();
        assert_eq!(pages.next(), Some((0, serde_json::json!({}))));
        pages.add(&serde_json::json!({"tools": [{}, {}], "nextCursor": "c1"}));
        assert_eq!(pages.next(), Some((1, serde_json::json!({"cursor": "c1"}))));
        pages.add(&serde_json::json!({"tools": [{}]}));
        assert_eq!((pages.next(), pages.count()), (None, 3));
        let mut endless = ToolPages::default();
        while endless.next().is_some() {
            endless.add(&serde_json::json!({"tools": [{}], "nextCursor": "again"}));
        }
        assert_eq!(endless.count(), MAX_TOOL_PAGES);
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let p = pod(
            "s-0",
            PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".to_owned(),
                    status: "False".to_owned(),
                    reason: Some("Unschedulable".to_owned()),
                    message: Some("0/1 nodes are available: 1 Insufficient memory.".to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        );
        let problem = diagnose(&p).expect("a problem");
        assert_eq!(problem.reason, Reason::Unschedulable);
        assert!(problem.message.contains("Insufficient memory"));
    }

    #[test]
    fn a_starting_or_running_pod_is_no_problem_and_one_running_pod_clears_the_rest() {
        let creating = pod("s-0", container(waiting("ContainerCreating", ""), None, 0));
        assert_eq!(diagnose(&creating), None);
        let broken = pod(
            "s-1",
            container(waiting("ErrImagePull", "not found"), None, 0),
        );
        let running = pod(
            "s-2",
            container(
                ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..Default::default()
                },
                None,
                0,
            ),
        );
        assert_eq!(
            diagnose_all([&creating, &broken]).map(|p| p.reason),
            Some(Reason::ImagePullFailed)
        );
        assert_eq!(diagnose_all([&creating, &broken, &running]), None);
    }

    #[test]
    fn an_answer_wins_then_the_pods_cause_then_the_links_symptom() {
        let facts = ServerFacts {
            name: Some("fixture".to_owned()),
            version: Some("1.0".to_owned()),
            protocol_version: Some("2025-06-18".to_owned()),
            tools: Some(7),
        };
        let pull = Problem::new(Reason::ImagePullFailed, "image x");
        let attach = Problem::new(Reason::AttachFailed, "forbidden");
        let up = Inputs {
            pods: Some(pull.clone()),
            link: LinkState::Up(facts.clone()),
            ..Inputs::default()
        };
        assert_eq!(up.observe().reason, Reason::Initialized);
        assert_eq!(
            up.observe().message,
            "fixture 1.0 answered initialize (protocol 2025-06-18)"
        );
        let both = Inputs {
            pods: Some(pull),
            link: LinkState::Failed(attach.clone()),
            ..Inputs::default()
        };
        assert_eq!(both.observe().reason, Reason::ImagePullFailed);
        let link = Inputs {
            pods: None,
            link: LinkState::Failed(attach.clone()),
            ..Inputs::default()
        };
        assert_eq!(link.observe().reason, Reason::AttachFailed);
        let uncreated = Inputs {
            create: Some(Problem::new(
                Reason::PodCreateFailed,
                "serviceaccount \"x\" not found",
            )),
            link: LinkState::Failed(attach),
            ..Inputs::default()
        };
        assert_eq!(
            uncreated.observe().reason,
            Reason::PodCreateFailed,
            "why there is no pod"
        );
        assert_eq!(Inputs::default().observe().reason, Reason::Starting);
        let remote = Inputs {
            remote: Some("https://mcp.example.com/mcp".to_owned()),
            ..Inputs::default()
        };
        assert_eq!(
            remote.observe().message,
            "connecting to the remote server https://mcp.example.com/mcp"
        );
        let patch = up.observe().patch();
        assert_eq!(patch["status"]["backend"]["tools"], 7);
        assert_eq!(patch["status"]["backend"]["serverName"], "fixture");
        let patch = Inputs::default().observe().patch();
        assert!(
            patch["status"]["backend"]["tools"].is_null(),
            "cleared, not left over"
        );
    }
}
