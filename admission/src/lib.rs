//! CRD mapping + admission checks shared by the webhook, the operator and `thv validate`.
//!
//! - [`from_mcpserver`]: MCPServer (plus the config objects it references) → the RunConfig
//!   the operator writes into `<name>-runconfig`, with the map from RunConfig paths back
//!   to the CRD fields a user wrote ([`PathMap`]); [`to_manifests`] is the reverse, for
//!   `thv convert`.
//! - [`check_manifest`]: the admission checks of one object of our API group (CRD schema bounds
//!   and CEL rules, references, the runconfig rules), located by CRD field path.
//!
//! `runconfig` stays plain data and validation; everything that knows the CRD types
//! lives here, so the proxy links neither the CRD types nor the CEL interpreter.

pub mod check;
mod from_runconfig;
mod front;
mod paths;
mod service;
mod to_runconfig;
mod transport;

pub use check::{
    Catalog, CheckedServer, ConfigKind, Finding, InMemoryCatalog, MAX_SYNC_INTERVAL,
    MIN_SYNC_INTERVAL, Problem, Report, check_manifest, go_duration, map_and_validate,
    map_and_validate_remote, references, stdio_replicas_capped, unknown_fields,
};
pub use from_runconfig::to_manifests;
pub use front::{Front, FrontKind, Fronted};
pub use paths::{Location, PathMap, Via};
pub use service::{
    MAX_REMOTE_PROXY_NAME_LENGTH, MAX_SERVER_NAME_LENGTH, endpoint_path, proxy_service_name,
    remote_endpoint_path, remote_proxy_service_name,
};
pub use to_runconfig::{
    ConfigMapKey, DEFAULT_PERMISSION_PROFILE_KEY, EXTERNAL_AUTH_BEARER_ENV,
    EXTERNAL_AUTH_SECRET_ENV, Mapped, MissingReference, OIDC_CLIENT_SECRET_ENV, Referenced,
    ReferencedKind, References, authz_config_map, forwarded_header_env, from_mcpremoteproxy,
    from_mcpserver, oidc_ca_bundle_map, permission_profile_config_map, telemetry_ca_bundle_map,
    webhook_secret_env, webhook_secrets,
};
