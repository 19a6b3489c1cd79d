//! Where the webhook finds the objects a checked object references: the API server, in
//! the request's namespace (production), or objects held in memory (tests, the fuzz
//! target, the benchmark).
//!
//! `admission::check_manifest` asks its [`Catalog`] synchronously, and only for what it
//! needs (an MCPServer's references; for a config object, the MCPServers referencing
//! it and theirs). [`ApiCatalog`] answers each question with a GET or LIST the first
//! time it is asked, blocking on the runtime: the server runs every review on a
//! blocking thread, so no async worker waits. Answers are memoised for the request, and
//! never kept beyond it, so a decision is made on what the API server holds now.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use admission::{Catalog, ConfigKind, InMemoryCatalog, references};
use api::{
    MCPAuthzConfig, MCPExternalAuthConfig, MCPGroup, MCPOIDCConfig, MCPRemoteProxy, MCPServer,
    MCPTelemetryConfig, MCPToolConfig, MCPWebhookConfig,
};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{GetParams, ListParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;

/// The catalogs of all namespaces.
pub trait Catalogs: Send + Sync + 'static {
    /// Calls `check` with the catalog of `namespace`. An error means a lookup failed:
    /// the answer would be a guess, so the review fails (and the webhook's failure
    /// policy decides).
    fn with_namespace(
        &self,
        namespace: &str,
        deadline: Instant,
        check: &mut dyn FnMut(&dyn Catalog),
    ) -> Result<(), String>;
}

/// Fixed objects per namespace.
#[derive(Clone, Debug, Default)]
pub struct MemoryCatalogs {
    namespaces: BTreeMap<String, InMemoryCatalog>,
}

impl MemoryCatalogs {
    /// The catalog of `namespace`, to add objects to.
    pub fn namespace(&mut self, namespace: &str) -> &mut InMemoryCatalog {
        self.namespaces.entry(namespace.to_owned()).or_default()
    }
}

impl Catalogs for MemoryCatalogs {
    fn with_namespace(
        &self,
        namespace: &str,
        _deadline: Instant,
        check: &mut dyn FnMut(&dyn Catalog),
    ) -> Result<(), String> {
        match self.namespaces.get(namespace) {
            Some(catalog) => check(catalog),
            None => check(&InMemoryCatalog::default()),
        }
        Ok(())
    }
}

/// Looks objects up through the API server.
#[derive(Clone)]
pub struct ApiCatalogs {
    client: Client,
    runtime: Handle,
}

impl ApiCatalogs {
    /// Lookups with `client`, driven by `runtime` (whose IO the client uses).
    pub fn new(client: Client, runtime: Handle) -> Self {
        Self { client, runtime }
    }
}

impl Catalogs for ApiCatalogs {
    fn with_namespace(
        &self,
        namespace: &str,
        deadline: Instant,
        check: &mut dyn FnMut(&dyn Catalog),
    ) -> Result<(), String> {
        let catalog = ApiCatalog {
            client: self.client.clone(),
            runtime: self.runtime.clone(),
            namespace: namespace.to_owned(),
            deadline,
            memo: Mutex::default(),
            failure: Mutex::default(),
        };
        check(&catalog);
        match catalog.failure.into_inner() {
            Ok(None) => Ok(()),
            Ok(Some(failure)) => Err(failure),
            Err(_) => Err("a lookup panicked".to_owned()),
        }
    }
}

/// What one review has looked up so far, by kind and name.
#[derive(Default)]
struct Memo {
    objects: HashMap<(TypeId, String), Option<Box<dyn Any + Send>>>,
    servers: Option<Vec<MCPServer>>,
    remote_proxies: Option<Vec<MCPRemoteProxy>>,
}

/// The catalog of one namespace for one review. Must be used from a blocking thread
/// (it blocks on `runtime` for each first lookup).
struct ApiCatalog {
    client: Client,
    runtime: Handle,
    namespace: String,
    deadline: Instant,
    memo: Mutex<Memo>,
    failure: Mutex<Option<String>>,
}

impl ApiCatalog {
    fn failed(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    fn fail(&self, what: String) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(what);
        }
    }

    /// Runs one API call against the remaining time of the review.
    fn call<T>(&self, what: &str, call: impl Future<Output = Result<T, kube::Error>>) -> Option<T> {
        if self.failed() {
            return None; // the review fails anyway; don't spend the deadline
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        match self.runtime.block_on(tokio::time::timeout(remaining, call)) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.fail(format!(
                    "looking up {what} in namespace {}: {e}",
                    self.namespace
                ));
                None
            }
            Err(_) => {
                self.fail(format!(
                    "looking up {what} in namespace {}: no answer from the API server in time",
                    self.namespace
                ));
                None
            }
        }
    }

    fn get<K>(&self, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let key = (TypeId::of::<K>(), name.to_owned());
        if let Some(known) = self.memo.lock().ok()?.objects.get(&key) {
            return known.as_ref().and_then(|o| o.downcast_ref::<K>()).cloned();
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = format!("{} {name}", K::kind(&()));
        // resourceVersion=0: served from the API server's watch cache, no etcd round
        // trip (a quorum read took 190 ms on average under `make chaos`'s load). The
        // answer can miss a write made milliseconds earlier: a reference created just
        // before is then warned about as missing (a warning, not a refusal), and a
        // name clash with an object created that moment can pass, which the operator's
        // guard then stops (it never takes over objects another one owns).
        let found = self.call(&what, async {
            match api.get_with(name, &GetParams::any()).await {
                Ok(object) => Ok(Some(object)),
                Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let stored = found.clone().map(|o| Box::new(o) as Box<dyn Any + Send>);
        self.memo.lock().ok()?.objects.insert(key, stored);
        found
    }
}

impl Catalog for ApiCatalog {
    fn tool_config(&self, name: &str) -> Option<MCPToolConfig> {
        self.get(name)
    }

    fn oidc_config(&self, name: &str) -> Option<MCPOIDCConfig> {
        self.get(name)
    }

    fn authz_config(&self, name: &str) -> Option<MCPAuthzConfig> {
        self.get(name)
    }

    fn telemetry_config(&self, name: &str) -> Option<MCPTelemetryConfig> {
        self.get(name)
    }

    fn group(&self, name: &str) -> Option<MCPGroup> {
        self.get(name)
    }

    fn external_auth_config(&self, name: &str) -> Option<MCPExternalAuthConfig> {
        self.get(name)
    }

    fn webhook_config(&self, name: &str) -> Option<MCPWebhookConfig> {
        self.get(name)
    }

    fn server_exists(&self, name: &str) -> bool {
        self.get::<MCPServer>(name).is_some()
    }

    fn remote_proxy_exists(&self, name: &str) -> bool {
        self.get::<MCPRemoteProxy>(name).is_some()
    }

    fn config_map_data(&self, name: &str, key: &str) -> Option<String> {
        self.get::<ConfigMap>(name)?.data?.get(key).cloned()
    }

    fn servers_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPServer> {
        self.list("MCPServers", |m| &mut m.servers)
            .into_iter()
            .filter(|s| references(s, kind, name))
            .collect()
    }

    fn remote_proxies_referencing(&self, kind: ConfigKind, name: &str) -> Vec<MCPRemoteProxy> {
        self.list("MCPRemoteProxies", |m| &mut m.remote_proxies)
            .into_iter()
            .filter(|p| references(p, kind, name))
            .collect()
    }
}

impl ApiCatalog {
    /// Every `K` of the namespace, listed once per review (kept in `memo`'s `slot`).
    fn list<K>(&self, what: &str, slot: impl Fn(&mut Memo) -> &mut Option<Vec<K>>) -> Vec<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let known = self.memo.lock().ok().and_then(|mut m| slot(&mut m).clone());
        if let Some(items) = known {
            return items;
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(list) = self.call(what, api.list(&ListParams::default())) else {
            return Vec::new();
        };
        if let Ok(mut memo) = self.memo.lock() {
            *slot(&mut memo) = Some(list.items.clone());
        }
        list.items
    }
}
