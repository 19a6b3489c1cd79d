//! A [`Catalog`] over objects held in memory, for one namespace: what `thv validate`
//! builds from its files, and what tests use.

use std::collections::BTreeMap;

use api::{
    MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig, MCPRemoteProxy, MCPServer,
    MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig, Manifest,
};

use super::{Catalog, ConfigKind, references};
use crate::front::Fronted;

/// Objects of one namespace. When two objects share a kind and name, the one added last
/// wins, as with `kubectl apply` of both.
#[derive(Clone, Debug, Default)]
pub struct InMemoryCatalog {
    objects: Vec<Manifest>,
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl InMemoryCatalog {
    /// Adds an object of our API group.
    pub fn add(&mut self, object: Manifest) {
        self.objects.push(object);
    }

    /// Adds a ConfigMap's `data`.
    pub fn add_config_map(&mut self, name: &str, data: BTreeMap<String, String>) {
        self.config_maps.insert(name.to_owned(), data);
    }

    /// The last object added with this name whose kind `pick` accepts.
    fn find<T>(&self, name: &str, pick: impl Fn(&Manifest) -> Option<&T>) -> Option<T>
    where
        T: Clone + kube::Resource,
    {
        self.objects
            .iter()
            .rev()
            .filter_map(pick)
            .find(|o| o.meta().name.as_deref() == Some(name))
            .cloned()
    }
}

impl InMemoryCatalog {
    /// The objects of the kind `pick` accepts whose last definition references the
    /// `kind` object called `name`, by name.
    fn referencing<T>(
        &self,
        kind: ConfigKind,
        name: &str,
        pick: impl Fn(&Manifest) -> Option<&T>,
    ) -> Vec<T>
    where
        T: Clone + Fronted,
    {
        let mut found: BTreeMap<String, T> = BTreeMap::new();
        for object in self.objects.iter().filter_map(&pick) {
            let key = object.front().name().to_owned();
            if references(object, kind, name) {
                found.insert(key, object.clone());
            } else {
                found.remove(&key); // a later definition without the reference wins
            }
        }
        found.into_values().collect()
    }
}

impl Catalog for InMemoryCatalog {
    fn tool_config(&self, name: &str) -> Option<MCPToolConfig> {
        self.find(name, |m| match m {
            Manifest::MCPToolConfig(o) => Some(o),
            _ => None,
        })
    }

    fn oidc_config(&self, name: &str) -> Option<MCPOIDCConfig> {
        self.find(name, |m| match m {
            Manifest::MCPOIDCConfig(o) => Some(o),
            _ => None,
        })
    }

    fn authz_config(&self, name: &str) -> Option<MCPAuthzConfig> {
        self.find(name, |m| match m {
            Manifest::MCPAuthzConfig(o) => Some(o),
            _ => None,
        })
    }

    fn telemetry_config(&self, name: &str) -> Option<MCPTelemetryConfig> {
        self.find(name, |m| match m {
            Manifest::MCPTelemetryConfig(o) => Some(o),
            _ => None,
        })
    }

    fn group(&self, name: &str) -> Option<MCPGroup> {
        self.find(name, |m| match m {
            Manifest::MCPGroup(o) => Some(o),
            _ => None,
        })
    }

    fn external_auth_config(&self, name: &str) -> Option<MCPExternalAuthConfig> {
        self.find(name, |m| match m {
            Manifest::MCPExternalAuthConfig(o) => Some(o),
            _ => None,
        })
    }

    fn webhook_config(&self, name: &str) -> Option<MCPWebhookConfig> {
        self.find(name, |m| match m {
            Manifest::MCPWebhookConfig(o) => Some(o),
            _ => None,
        })
    }

    fn server_exists(&self, name: &str) -> bool {
        self.find(name, |m| match m {
            Manifest::MCPServer(o) => Some(o),
            _ => None,
        })
        .is_some()
    }

    fn remote_proxy_exists(&self, name: &str) -> bool {
        self.find(name, |m| match m {
            Manifest::MCPRemoteProxy(o) => Some(o),
            _ => None,
        })
        .is_some()
    }

    fn config_map_data(&self, name: &str, key: &str) -> Option<String> {
        self.config_maps.get(name)?.get(key).cloned()
    }

    fn servers_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPServer> {
        self.referencing(kind, name, |m| match m {
            Manifest::MCPServer(o) => Some(o),
            _ => None,
        })
    }

    fn remote_proxies_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPRemoteProxy> {
        self.referencing(kind, name, |m| match m {
            Manifest::MCPRemoteProxy(o) => Some(o),
            _ => None,
        })
    }
}
