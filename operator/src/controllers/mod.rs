//! The controllers: one module per kind, each split into its reconcile stages.

pub mod conditions;
pub mod mcpregistry;
pub mod mcpserver;

use kube::{Api, Resource};

/// An Api over one namespace (namespace-scoped install), or all of them.
pub(crate) fn scoped_api<K>(client: &kube::Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
