//! Audit events: which event types, how much request and response data.

use std::collections::BTreeSet;

use crate::config::AuditConfig;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::Check;

/// Event types the proxy emits (ToolHive's names).
pub const EVENT_TYPES: &[&str] = &[
    "mcp_initialize",
    "mcp_tool_call",
    "mcp_tools_list",
    "mcp_resource_read",
    "mcp_resources_list",
    "mcp_prompt_get",
    "mcp_prompts_list",
    "mcp_notification",
    "mcp_ping",
    "mcp_logging",
    "mcp_completion",
    "mcp_roots_list_changed",
    "mcp_request",
];
/// Default and largest body excerpt, in bytes.
pub const DEFAULT_MAX_DATA_SIZE: usize = 1024;
/// Largest allowed `max_data_size`: 1 MiB keeps one event on one log line a collector accepts.
pub const MAX_MAX_DATA_SIZE: i64 = 1024 * 1024;

/// Validated audit settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedAudit {
    /// `component` of every event.
    pub component: String,
    /// Audited types; empty means all.
    pub event_types: BTreeSet<String>,
    /// Never audited.
    pub exclude_event_types: BTreeSet<String>,
    /// Include request bodies.
    pub include_request_data: bool,
    /// Include response bodies.
    pub include_response_data: bool,
    /// Largest body excerpt.
    pub max_data_size: usize,
}

impl ValidatedAudit {
    /// Whether events of this type are written.
    pub fn audits(&self, event_type: &str) -> bool {
        !self.exclude_event_types.contains(event_type)
            && (self.event_types.is_empty() || self.event_types.contains(event_type))
    }
}

pub fn validate(
    audit: &AuditConfig,
    workload: &str,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedAudit> {
    let mut ok = true;
    let mut types = |list: &[String], key: &str, check: &mut Check| -> BTreeSet<String> {
        for (i, event) in list.iter().enumerate() {
            if !EVENT_TYPES.contains(&event.as_str()) {
                ok = false;
                check.fail(
                    path.key(key).index(i),
                    Reason::NotSupported,
                    format!("unknown audit event type {event:?}"),
                    format!("one of {}", EVENT_TYPES.join(", ")),
                );
            }
        }
        list.iter().cloned().collect()
    };
    let event_types = types(&audit.event_types, "event_types", check);
    let exclude_event_types = types(&audit.exclude_event_types, "exclude_event_types", check);
    let max_data_size = match audit.max_data_size {
        None => DEFAULT_MAX_DATA_SIZE,
        Some(size) if (0..=MAX_MAX_DATA_SIZE).contains(&size) => {
            usize::try_from(size).unwrap_or(DEFAULT_MAX_DATA_SIZE)
        }
        Some(size) => {
            ok = false;
            check.fail(
                path.key("max_data_size"),
                Reason::OutOfRange,
                format!("{size} bytes"),
                format!("0 to {MAX_MAX_DATA_SIZE} bytes"),
            );
            0
        }
    };
    ok.then(|| ValidatedAudit {
        component: audit
            .component
            .clone()
            .unwrap_or_else(|| workload.to_owned()),
        event_types,
        exclude_event_types,
        include_request_data: audit.include_request_data,
        include_response_data: audit.include_response_data,
        max_data_size,
    })
}
