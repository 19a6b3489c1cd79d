//! Migrations from older RunConfig schemas to the current one, on JSON values.

pub mod to_toolhive;
pub mod toolhive;
