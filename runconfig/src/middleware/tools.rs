//! Tool filter and overrides: which tools clients see, under which names.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::ToolsConfig;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::Check;

/// Validated tool settings, with both directions of the rename precomputed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidatedTools {
    /// Server tool names clients may see; `None` means all.
    pub allowed: Option<BTreeSet<String>>,
    /// Server name → (client name, description override).
    pub overrides: BTreeMap<String, (String, Option<String>)>,
    /// Client name → server name, for renamed tools.
    pub renamed_from: BTreeMap<String, String>,
}

impl ValidatedTools {
    /// No filter and no override.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_none() && self.overrides.is_empty()
    }
}

pub fn validate(
    tools: &ToolsConfig,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedTools> {
    let mut ok = true;
    let mut allowed = BTreeSet::new();
    for (i, name) in tools.filter.iter().enumerate() {
        if name.trim().is_empty() {
            ok = false;
            check.fail(
                path.key("filter").index(i),
                Reason::Required,
                "a tool name is empty",
                "the name of a tool the server offers",
            );
        } else if !allowed.insert(name.clone()) {
            ok = false;
            check.fail(
                path.key("filter").index(i),
                Reason::Duplicate,
                format!("{name:?} is listed twice"),
                "each tool once",
            );
        }
    }
    let mut overrides = BTreeMap::new();
    let mut renamed_from: BTreeMap<String, String> = BTreeMap::new();
    for (original, tool) in &tools.overrides {
        let tool_path = path.key("overrides").key(original.as_str());
        if !allowed.is_empty() && !allowed.contains(original) {
            ok = false;
            check.fail(
                tool_path.clone(),
                Reason::UnknownReference,
                format!("override of {original:?}, which the filter hides"),
                "override only tools listed in the filter",
            );
        }
        let exposed = tool.name.clone().unwrap_or_else(|| original.clone());
        if exposed.trim().is_empty() {
            ok = false;
            check.fail(
                tool_path.key("name"),
                Reason::Required,
                "the new name is empty",
                "a non-empty tool name, or no name to keep the original",
            );
            continue;
        }
        if exposed != *original {
            // A new name must not shadow another exposed tool, nor another rename.
            let known = allowed.contains(&exposed) || tools.overrides.contains_key(&exposed);
            let renamed_away = tools
                .overrides
                .get(&exposed)
                .and_then(|o| o.name.as_ref())
                .is_some_and(|n| *n != exposed);
            let shadows_visible = known && !renamed_away;
            if let Some(previous) = renamed_from.get(&exposed) {
                ok = false;
                check.fail(
                    tool_path.key("name"),
                    Reason::Conflict,
                    format!("{original:?} and {previous:?} are both renamed to {exposed:?}"),
                    "distinct names",
                );
            } else if shadows_visible {
                ok = false;
                check.fail(
                    tool_path.key("name"),
                    Reason::Conflict,
                    format!("the new name {exposed:?} is the name of another exposed tool"),
                    "a name no other exposed tool has",
                );
            }
            renamed_from.insert(exposed.clone(), original.clone());
        }
        overrides.insert(original.clone(), (exposed, tool.description.clone()));
    }
    ok.then(|| ValidatedTools {
        allowed: (!tools.filter.is_empty()).then_some(allowed),
        overrides,
        renamed_from,
    })
}
