//! Configuration and validation of each middleware; each module returns the validated,
//! parsed form the proxy's middleware constructor takes.

pub mod audit;
pub mod authz;
pub mod cedar;
pub mod oidc;
pub mod ratelimit;
pub mod sessions;
pub mod telemetry;
pub mod token_exchange;
pub mod tools;
pub mod webhooks;
