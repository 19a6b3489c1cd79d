//! Tool filter and override: clients see only the allowed tools, under their override
//! names and descriptions; a call to a hidden tool is refused, a call to a renamed tool
//! reaches the server under the server's name.

use runconfig::middleware::tools::ValidatedTools;
use serde_json::Value;

use super::authn::Principal;
use super::chain::{BuildContext, Middleware, Refusal, Verdict};
use crate::mcp::Call;
use crate::reply::code;
use crate::runner::BuildError;

/// The tool settings of the proxy.
pub struct ToolFilter {
    tools: ValidatedTools,
}

/// What to do with a `tools/call`.
#[derive(Debug, PartialEq)]
pub enum CallDecision {
    /// Forward as it is.
    Forward,
    /// Forward under the server's name for the tool.
    Rename(String),
    /// The client may not see this tool.
    Refuse,
}

impl ToolFilter {
    /// The filter, or `None` when nothing is filtered or renamed.
    pub fn new(tools: &ValidatedTools) -> Option<Self> {
        (!tools.is_empty()).then(|| Self {
            tools: tools.clone(),
        })
    }

    fn visible(&self, server_name: &str) -> bool {
        self.tools
            .allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(server_name))
    }

    /// Decides a call to the tool the client names `name`.
    pub fn call(&self, name: &str) -> CallDecision {
        if let Some(server_name) = self.tools.renamed_from.get(name) {
            return if self.visible(server_name) {
                CallDecision::Rename(server_name.clone())
            } else {
                CallDecision::Refuse
            };
        }
        let renamed_away = self
            .tools
            .overrides
            .get(name)
            .is_some_and(|(client_name, _)| client_name != name);
        if renamed_away || !self.visible(name) {
            CallDecision::Refuse
        } else {
            CallDecision::Forward
        }
    }

    /// Filters and renames the tools of a `tools/list` result in place.
    pub fn list(&self, result: &mut Value) {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
            return;
        };
        tools.retain(|tool| {
            tool.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| self.visible(name))
        });
        for tool in tools.iter_mut() {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if let Some((client_name, description)) = self.tools.overrides.get(name).cloned() {
                tool["name"] = Value::String(client_name);
                if let Some(description) = description {
                    tool["description"] = Value::String(description);
                }
            }
        }
    }
}

/// The tool filter middleware: innermost, so it maps client names to the server's on
/// the way in and renames list results first on the way back.
impl Middleware for ToolFilter {
    type Config<'a> = &'a ValidatedTools;

    fn build(tools: Self::Config<'_>, _: &BuildContext<'_>) -> Result<Option<Self>, BuildError> {
        Ok(Self::new(tools))
    }

    async fn decide(&self, _: &Principal, call: &Call) -> Verdict {
        if call.method != "tools/call" {
            return Verdict::Pass;
        }
        match self.call(call.target.as_deref().unwrap_or("")) {
            CallDecision::Forward => Verdict::Pass,
            CallDecision::Rename(name) => Verdict::Rename(name),
            CallDecision::Refuse => Verdict::Refuse(Refusal {
                code: code::INVALID_PARAMS,
                message: format!("unknown tool: {}", call.describe()),
                retry_after: None,
            }),
        }
    }

    fn rewrites(&self, method: &str) -> bool {
        method == "tools/list"
    }

    async fn rewrite(&self, _: &Principal, _: &str, result: &mut Value) {
        self.list(result);
    }
}

/// Sets `params.name` of a request body to `name`.
pub fn rename_call(message: &mut Value, name: &str) {
    if let Some(params) = message.get_mut("params") {
        params["name"] = Value::String(name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn filter() -> ToolFilter {
        let tools = ValidatedTools {
            allowed: Some(BTreeSet::from(["echo".to_owned(), "add".to_owned()])),
            overrides: BTreeMap::from([(
                "add".to_owned(),
                ("sum".to_owned(), Some("Adds".to_owned())),
            )]),
            renamed_from: BTreeMap::from([("sum".to_owned(), "add".to_owned())]),
        };
        ToolFilter::new(&tools).expect("not empty")
    }

    #[test]
    fn calls_to_hidden_or_renamed_away_tools_are_refused_and_renamed_ones_mapped_back() {
        let f = filter();
        assert_eq!(f.call("echo"), CallDecision::Forward);
        assert_eq!(f.call("sum"), CallDecision::Rename("add".to_owned()));
        assert_eq!(f.call("add"), CallDecision::Refuse);
        assert_eq!(f.call("secret"), CallDecision::Refuse);
    }

    #[test]
    fn lists_only_allowed_tools_under_client_names() {
        let mut result = serde_json::json!({"tools": [
            {"name": "echo", "description": "e"},
            {"name": "add", "description": "a"},
            {"name": "secret", "description": "s"},
        ]});
        filter().list(&mut result);
        assert_eq!(
            result,
            serde_json::json!({"tools": [
                {"name": "echo", "description": "e"},
                {"name": "sum", "description": "Adds"},
            ]})
        );
    }
}
