//! RunConfig: the boundary between the front ends (operator, CLI) and the proxy (seed
//! 004), and the one validation the admission webhook, the proxy at start-up and
//! `thv validate` all call.
//!
//! - [`from_json`] / [`from_reader`] / [`to_json`]: bytes in, bytes out, with schema
//!   migration (ToolHive's `v0.1.0` imports).
//! - [`validate`]: every problem with a path and a reason, or a [`ValidatedRunConfig`]
//!   whose parsed forms (compiled Cedar policies, URLs, tool sets) the proxy's
//!   middleware constructors require.
//!
//! Plain data and validation, with no Kubernetes types: the CRD → RunConfig mapping and
//! the admission checks are in the `admission` crate.

pub mod config;
pub mod error;
pub mod image;
mod io;
pub mod middleware;
mod migrate;
pub mod path;
pub mod validate;

pub use config::{RunConfig, SCHEMA_VERSION};
pub use error::{LoadError, Reason, Violation, Violations};
pub use io::{
    SUPPORTED_VERSIONS, authz_from_value, from_json, from_reader, from_value, to_json,
    to_toolhive_json,
};
pub use path::FieldPath;
pub use validate::{Middleware, ValidatedRunConfig, validate};
