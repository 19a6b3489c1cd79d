//! Audit events: one JSON line on stdout per MCP message the proxy handled (logs go to
//! stderr, so a collector can tell them apart): when, who, what, on which target, the
//! outcome and how long it took; request and response excerpts when configured.

use std::io::Write;
use std::time::Duration;

use runconfig::middleware::audit::ValidatedAudit;
use serde_json::{Value, json};

use super::authn::Principal;
use crate::mcp::Message;

/// How a handled message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded and answered.
    Success,
    /// Refused by authorization or the tool filter.
    Denied,
    /// The server or the proxy failed.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
}

/// ToolHive's event type of a method.
pub fn event_type(method: &str) -> &'static str {
    match method {
        "initialize" => "mcp_initialize",
        "tools/call" => "mcp_tool_call",
        "tools/list" => "mcp_tools_list",
        "resources/read" => "mcp_resource_read",
        "resources/list" => "mcp_resources_list",
        "prompts/get" => "mcp_prompt_get",
        "prompts/list" => "mcp_prompts_list",
        "ping" => "mcp_ping",
        "logging/setLevel" => "mcp_logging",
        "completion/complete" => "mcp_completion",
        "notifications/roots/list_changed" => "mcp_roots_list_changed",
        m if m.starts_with("notifications/") => "mcp_notification",
        _ => "mcp_request",
    }
}

/// The audit log.
pub struct Auditor {
    config: ValidatedAudit,
}

/// One event to write.
pub struct Event<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The message.
    pub message: &'a Message,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status answered.
    pub status: u16,
    /// Time until the response started.
    pub duration: Duration,
    /// The request body.
    pub request: &'a [u8],
    /// The response body, when the proxy holds it.
    pub response: Option<&'a [u8]>,
}

impl Auditor {
    /// The auditor.
    pub fn new(config: &ValidatedAudit) -> Self {
        Self {
            config: config.clone(),
        }
    }

    /// Writes the event, unless its type is not audited.
    pub fn record(&self, event: &Event<'_>) {
        let Some(call) = event.message.call() else {
            return;
        };
        let kind = event_type(&call.method);
        if !self.config.audits(kind) {
            return;
        }
        let mut line = json!({
            "time": now_rfc3339(),
            "type": kind,
            "component": self.config.component,
            "outcome": event.outcome.as_str(),
            "subjects": { "user": event.principal.subject },
            "target": { "method": call.method, "name": call.target },
            "status": event.status,
            "duration_ms": event.duration.as_secs_f64() * 1000.0,
        });
        if self.config.include_request_data {
            line["data"]["request"] = Value::String(self.excerpt(event.request));
        }
        if self.config.include_response_data
            && let Some(response) = event.response
        {
            line["data"]["response"] = Value::String(self.excerpt(response));
        }
        let mut text = line.to_string();
        text.push('\n');
        // An audit line that cannot be written is reported, never silently lost.
        if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
            tracing::error!(error = %e, "audit event could not be written");
        }
    }

    fn excerpt(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut end = text.len().min(self.config.max_data_size);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_owned()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
