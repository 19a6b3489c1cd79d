//! Between the CRDs and RunConfig: the MCPServer (plus the config objects it references)
//! → RunConfig mapping the operator writes into `<name>-runconfig`, the reverse for
//! `thv convert`, and the map from RunConfig paths back to the CRD fields a user wrote.

mod from_runconfig;
mod paths;
mod to_runconfig;

pub use from_runconfig::to_manifests;
pub use paths::{Location, PathMap};
pub use to_runconfig::{
    Mapped, MissingReference, OIDC_CLIENT_SECRET_ENV, References, from_mcpserver,
};
