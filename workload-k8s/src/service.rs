//! `mcp-<name>-headless`: the headless Service of an HTTP server, as ToolHive names it.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use runconfig::RunConfig;
use runconfig::config::Workload;
use runconfig::validate::Transport;

use crate::container::DEFAULT_PORT;
use crate::names;
use crate::placement::Placement;

/// The headless Service for `sse` and `streamable-http` servers; `None` for stdio (the
/// proxy attaches to the pod), a remote workload or an unknown transport. Call
/// [`crate::statefulset`] or [`crate::check`] first: for a RunConfig they refuse, this
/// builds what it can.
///
/// Owned by the MCPServer of `placement` (ToolHive's runner makes the StatefulSet its
/// owner, which needs the StatefulSet's UID from the apply; both go with the MCPServer).
pub fn headless_service(run: &RunConfig, placement: &Placement) -> Option<Service> {
    let Workload::Container(workload) = &run.workload else {
        return None;
    };
    if Transport::parse(&workload.transport)? == Transport::Stdio {
        return None;
    }
    let port = workload
        .target_port
        .map_or(Some(i32::from(DEFAULT_PORT)), |p| i32::try_from(p).ok())?;
    let mut labels = workload.labels.clone();
    labels.extend(names::required_labels(&run.name));
    Some(Service {
        metadata: ObjectMeta {
            name: Some(names::headless_service_name(&run.name)),
            namespace: Some(placement.namespace.clone()),
            labels: Some(labels),
            owner_references: placement.owner_references(),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: Some("None".to_owned()),
            selector: Some(names::selector(&run.name)),
            ports: Some(vec![ServicePort {
                name: Some(format!("port-{port}")),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}
