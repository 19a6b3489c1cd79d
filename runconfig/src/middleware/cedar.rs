//! The Cedar schema for MCP, and compiling + validating a policy list against it.
//!
//! Principals are `Client::"<sub>"` (members of group entities built from JWT claims),
//! actions are the MCP operations, resources the tool, prompt or resource addressed.
//! Attributes come from JWT claims (`principal.claim_email`) and call arguments
//! (`resource.arg_city`) at request time, so their names and types are unknown here:
//! validation rejects unknown entity types, unknown actions, impossible
//! action/principal/resource combinations and unknown functions, and tolerates
//! attribute-access and attribute-type findings.

use std::collections::BTreeSet;
use std::str::FromStr;

use cedar_policy::{
    Entities, PolicyId, PolicySet, Schema, ValidationError, ValidationMode, ValidationWarning,
    Validator,
};
use miette::Diagnostic;

use crate::error::{Reason, Violation};
use crate::path::FieldPath;

/// Default entity type of the caller's groups and roles.
pub const DEFAULT_GROUP_ENTITY_TYPE: &str = "THVGroup";

/// MCP actions and the resource type each applies to.
pub const ACTIONS: &[(&str, &str)] = &[
    ("call_tool", "Tool"),
    ("get_prompt", "Prompt"),
    ("read_resource", "Resource"),
    ("list_tools", "FeatureType"),
    ("list_prompts", "FeatureType"),
    ("list_resources", "FeatureType"),
];

/// A compiled policy set with its entities.
#[derive(Clone, Debug)]
pub struct CompiledPolicies {
    /// Every policy; ids are `policy<entry>` or `policy<entry>_<n>` for entries that hold several.
    pub policies: PolicySet,
    /// The static entity store.
    pub entities: Entities,
    /// The schema they were validated against.
    pub schema: Schema,
    /// Entity type of groups and roles.
    pub group_entity_type: String,
}

/// The Cedar schema (Cedar syntax) for a group entity type and extra entity types
/// declared in the static entity store.
pub fn schema_text(group_entity_type: &str, extra_types: &BTreeSet<String>) -> String {
    let mut groups: BTreeSet<&str> = extra_types.iter().map(String::as_str).collect();
    groups.insert(group_entity_type);
    let parents = groups.iter().copied().collect::<Vec<_>>().join(", ");
    let mut text = String::new();
    for group in &groups {
        text.push_str(&format!("entity {group} in [{parents}];\n"));
    }
    text.push_str(&format!("entity Client in [{parents}];\nentity Tool;\nentity Prompt;\nentity Resource;\nentity FeatureType;\n"));
    for (action, resource) in ACTIONS {
        text.push_str(&format!(
            "action {action} appliesTo {{ principal: [Client], resource: [{resource}] }};\n"
        ));
    }
    text
}

/// Parses every policy entry and validates the set; problems are located at
/// `path.policies[i]` with Cedar's message and the line and column inside the entry.
pub fn compile(
    policies: &[String],
    entities_json: &str,
    group_entity_type: &str,
    path: &FieldPath,
) -> Result<CompiledPolicies, Vec<Violation>> {
    let mut problems = Vec::new();
    if policies.is_empty() {
        problems.push(
            Violation::new(
                path.key("policies"),
                Reason::Required,
                "no Cedar policy: every request would be denied",
            )
            .allowed("at least one permit policy"),
        );
    }
    let entities_value: Option<serde_json::Value> =
        match serde_json::from_str(if entities_json.trim().is_empty() {
            "[]"
        } else {
            entities_json
        }) {
            Ok(value) => Some(value),
            Err(e) => {
                problems.push(
                    Violation::new(
                        path.key("entities_json"),
                        Reason::InvalidFormat,
                        format!("not JSON: {e}"),
                    )
                    .allowed("a JSON array of Cedar entities, e.g. []"),
                );
                None
            }
        };
    let extra_types = entities_value
        .as_ref()
        .map(entity_types)
        .unwrap_or_default();
    let schema = match Schema::from_cedarschema_str(&schema_text(group_entity_type, &extra_types)) {
        Ok((schema, _warnings)) => Some(schema),
        Err(e) => {
            problems.push(Violation::new(
                path.key("entities_json"),
                Reason::CedarSchema,
                format!("entity types do not form a Cedar schema: {e}"),
            ));
            None
        }
    };
    let entities = entities_value.and_then(|value| match Entities::from_json_value(value, None) {
        Ok(entities) => Some(entities),
        Err(e) => {
            problems.push(
                Violation::new(
                    path.key("entities_json"),
                    Reason::InvalidFormat,
                    format!("not valid Cedar entities: {e}"),
                )
                .allowed("a JSON array of {\"uid\", \"attrs\", \"parents\"} objects"),
            );
            None
        }
    });

    let mut set = PolicySet::new();
    for (i, text) in policies.iter().enumerate() {
        let entry_path = path.key("policies").index(i);
        match PolicySet::from_str(text) {
            Ok(parsed) if parsed.policies().next().is_none() => {
                problems.push(
                    Violation::new(entry_path, Reason::CedarSyntax, "the entry holds no policy")
                        .allowed("a Cedar permit or forbid policy"),
                );
            }
            Ok(parsed) => {
                for (n, policy) in parsed.policies().enumerate() {
                    let id = if n == 0 {
                        format!("policy{i}")
                    } else {
                        format!("policy{i}_{n}")
                    };
                    let renamed = policy.new_id(PolicyId::new(id));
                    if let Err(e) = set.add(renamed) {
                        problems.push(Violation::new(
                            entry_path.clone(),
                            Reason::CedarSyntax,
                            e.to_string(),
                        ));
                    }
                }
            }
            Err(errors) => {
                let message = errors.to_string();
                let position = first_position(&errors, text)
                    .map(|(l, c)| format!(" at line {l}, column {c}"))
                    .unwrap_or_default();
                problems.push(
                    Violation::new(entry_path, Reason::CedarSyntax, format!("Cedar syntax error{position}: {}", detail(&message, &errors)))
                        .allowed("a Cedar policy such as permit(principal, action == Action::\"call_tool\", resource == Tool::\"search\");"),
                );
            }
        }
    }

    let Some(schema) = schema else {
        return Err(problems);
    };
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let errors = result
        .validation_errors()
        .filter(|e| is_rejected(e))
        .map(|e| (e.policy_id(), e as &dyn Diagnostic, e.to_string()));
    let mut sorted_warnings: Vec<_> = result
        .validation_warnings()
        .filter(|w| is_rejected_warning(w))
        .collect();
    sorted_warnings.sort_by_key(|w| !matches!(w, ValidationWarning::InvalidActionApplication(_)));
    let warnings = sorted_warnings
        .into_iter()
        .map(|w| (w.policy_id(), w as &dyn Diagnostic, w.to_string()));
    let errors: Vec<_> = errors.collect();
    let entries_with_errors: BTreeSet<_> =
        errors.iter().map(|(id, _, _)| entry_index(id)).collect();
    // An error explains the policy; the "impossible policy" warnings it implies add nothing.
    // Of the warnings, keep one per entry: the first says why the policy can never apply.
    let mut warned = entries_with_errors.clone();
    let warnings = warnings.filter(move |(id, _, _)| warned.insert(entry_index(id)));
    let mut reported = BTreeSet::new();
    for (id, diagnostic, message) in errors.into_iter().chain(warnings) {
        let index = entry_index(id);
        if !reported.insert((index, message.clone())) {
            continue;
        }
        let entry_path =
            index.map_or_else(|| path.key("policies"), |i| path.key("policies").index(i));
        let text = index
            .and_then(|i| policies.get(i))
            .map(String::as_str)
            .unwrap_or_default();
        let position = first_position(diagnostic, text)
            .map(|(l, c)| format!(" at line {l}, column {c}"))
            .unwrap_or_default();
        let allowed = format!(
            "actions: {}; principal Client; resources Tool, Prompt, Resource, FeatureType; groups {group_entity_type}",
            ACTIONS
                .iter()
                .map(|(a, r)| format!("Action::\"{a}\" on {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let message = format!(
            "Cedar policy does not fit the MCP schema{position}: {}",
            strip_policy_id(&message)
        );
        problems.push(Violation::new(entry_path, Reason::CedarSchema, message).allowed(allowed));
    }

    match (problems.is_empty(), entities) {
        (true, Some(entities)) => Ok(CompiledPolicies {
            policies: set,
            entities,
            schema,
            group_entity_type: group_entity_type.to_owned(),
        }),
        _ => Err(problems),
    }
}

/// Findings that mean the policy is wrong, not merely that attributes are dynamic.
fn is_rejected(error: &ValidationError) -> bool {
    matches!(
        error,
        ValidationError::UnrecognizedEntityType(_)
            | ValidationError::UnrecognizedActionId(_)
            | ValidationError::InvalidActionApplication(_)
            | ValidationError::UndefinedFunction(_)
            | ValidationError::WrongNumberArguments(_)
            | ValidationError::FunctionArgumentValidation(_)
            | ValidationError::NonLitExtConstructor(_)
            | ValidationError::HierarchyNotRespected(_)
    )
}

/// Warnings that mean the policy can never apply: an action on the wrong resource type.
fn is_rejected_warning(warning: &ValidationWarning) -> bool {
    matches!(
        warning,
        ValidationWarning::ImpossiblePolicy(_) | ValidationWarning::InvalidActionApplication(_)
    )
}

/// `policy3` or `policy3_1` → 3.
fn entry_index(id: &PolicyId) -> Option<usize> {
    let rest = id.to_string();
    let digits = rest.strip_prefix("policy")?;
    digits.split('_').next()?.parse().ok()
}

/// Cedar prefixes messages with "for policy `policy3`, "; the path already says which.
fn strip_policy_id(message: &str) -> String {
    match message.split_once("`, ") {
        Some((head, tail)) if head.starts_with("for policy `") => tail.to_owned(),
        _ => message.to_owned(),
    }
}

/// Cedar's top-level parse message is terse; add the first underlying error's text.
fn detail(message: &str, errors: &dyn Diagnostic) -> String {
    let related: Vec<String> = errors
        .related()
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .collect();
    match related.first() {
        Some(first) if !message.contains(first.as_str()) => format!("{message}: {first}"),
        _ => message.to_owned(),
    }
}

/// Line and column (1-based) of the first labelled span of a diagnostic in `text`.
fn first_position(diagnostic: &dyn Diagnostic, text: &str) -> Option<(usize, usize)> {
    let offset = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
        .or_else(|| {
            diagnostic
                .related()
                .and_then(|mut r| r.next())
                .and_then(first_offset)
        })?;
    let before = text.get(..offset.min(text.len()))?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

fn first_offset(diagnostic: &dyn Diagnostic) -> Option<usize> {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

/// Entity type names used in a JSON entity list (`uid.type` and parents' `type`).
fn entity_types(value: &serde_json::Value) -> BTreeSet<String> {
    let mut types = BTreeSet::new();
    for entity in value.as_array().into_iter().flatten() {
        let uids = std::iter::once(entity.get("uid")).chain(
            entity
                .get("parents")
                .and_then(|p| p.as_array())
                .into_iter()
                .flatten()
                .map(Some),
        );
        for uid in uids.flatten() {
            if let Some(t) = uid.get("type").and_then(|t| t.as_str())
                && !matches!(
                    t,
                    "Client" | "Tool" | "Prompt" | "Resource" | "FeatureType" | "Action"
                )
            {
                types.insert(t.to_owned());
            }
        }
    }
    types
}
