//! `thv-operator`: controllers that turn `MCPServer` and `MCPRegistry` objects into
//! running, observable workloads, plus the process plumbing (metrics, health, leader
//! election). The reconcile pipeline of each controller is split into named stages:
//! dereference → validate → build (pure) → apply → status.

pub mod context;
pub mod controllers;
pub mod error;
pub mod http;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod webhook;

pub use context::{Context, OperatorConfig};
pub use error::Error;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "thv-operator";
