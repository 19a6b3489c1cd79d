//! Between the CRDs and RunConfig: the MCPServer (plus the config objects it references)
//! → RunConfig mapping the operator writes into `<name>-runconfig`, the reverse for
//! `thv convert`, and the map from RunConfig paths back to the CRD fields a user wrote.

pub mod check;
mod from_runconfig;
mod paths;
mod to_runconfig;

pub use check::{
    Catalog, ConfigKind, Finding, InMemoryCatalog, MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, Report,
    ValidatedServer, check, go_duration, references, unknown_fields, validate_mcpserver,
};
pub use from_runconfig::to_manifests;
pub use paths::{Location, PathMap, Via};
pub use to_runconfig::{
    ConfigMapKey, DEFAULT_PERMISSION_PROFILE_KEY, Mapped, MissingReference, OIDC_CLIENT_SECRET_ENV,
    References, authz_config_map, from_mcpserver, permission_profile_config_map,
};
