//! Where and for whom the objects are built: what the RunConfig does not carry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The MCPServer that owns the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `toolhive.stacklok.dev/v1beta1`.
    pub api_version: String,
    /// `MCPServer`.
    pub kind: String,
    /// The MCPServer's name.
    pub name: String,
    /// The MCPServer's UID.
    pub uid: String,
}

impl Owner {
    /// A controller reference without `blockOwnerDeletion`: setting that needs `update`
    /// on `mcpservers/finalizers`, which the proxy runner's Role does not grant, and the
    /// `OwnerReferencesPermissionEnforcement` admission plugin would refuse the apply.
    /// (ToolHive's runner sets no owner; its operator adopts the StatefulSet later.)
    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }
}

/// Where the objects go, and the facts of the cluster they depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Namespace of the objects: the proxy runner's own (ToolHive never takes it from
    /// the RunConfig).
    pub namespace: String,
    /// The MCPServer, set as controller owner so the objects go with it.
    pub owner: Option<Owner>,
    /// UID, GID and fsGroup of the pod where the patch sets none. ToolHive uses 1000;
    /// `None` on OpenShift, whose `restricted-v2` SCC assigns them from the namespace's
    /// range and refuses others. Values below 1 are ignored.
    pub run_as_user: Option<i64>,
    /// `metadata.generation` of the MCPServer, written to the StatefulSet's
    /// `toolhive.stacklok.dev/mcpserver-generation` annotation so a runner of an older
    /// generation can see it must not apply. On the StatefulSet, not on its pod
    /// template as in ToolHive: there it would roll the server on every MCPServer edit.
    pub generation: Option<i64>,
    /// Checksum of the values of the Secrets the server's env reads (the operator
    /// computes it), written to the pod template's
    /// `toolhive.stacklok.dev/secrets-checksum` annotation: the kubelet resolves
    /// `secretKeyRef` only when a container starts, so a rotated Secret must roll the
    /// pods to reach the server.
    pub secrets_checksum: Option<String>,
    /// ToolHive's restart trigger (`mcpserver.toolhive.stacklok.dev/restarted-at` on the
    /// MCPServer), copied by the operator: written to the pod template under the same
    /// key, so a new value rolls the server's pods.
    pub restarted_at: Option<String>,
}

impl Placement {
    /// ToolHive's defaults in `namespace`: no owner, UID/GID 1000, no generation.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            owner: None,
            run_as_user: Some(1000),
            generation: None,
            secrets_checksum: None,
            restarted_at: None,
        }
    }

    pub(crate) fn owner_references(&self) -> Option<Vec<OwnerReference>> {
        self.owner.as_ref().map(|o| vec![o.reference()])
    }
}
