//! The controllers: one module per kind, each split into its reconcile stages.

pub mod conditions;
pub mod mcpregistry;
pub mod mcpserver;
