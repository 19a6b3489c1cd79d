//! The Cedar schema for MCP, and compiling + validating a policy list against it.
//!
//! Principals are `Client::"<sub>"` (members of group entities built from JWT claims),
//! actions are the MCP operations, resources the tool, prompt or resource addressed.
//! Attributes come from JWT claims (`principal.claim_email`) and call arguments
//! (`resource.arg_city`) at request time, so their names and types are unknown here:
//! validation rejects unknown entity types, unknown actions, policies that can never
//! apply and unknown functions, and tolerates attribute-access and attribute-type findings.
//!
//! Cedar's parser costs ~30 µs per policy, too much for the webhook's budget when the
//! same policies are validated on every apply, update and dry-run. Each entry's outcome
//! is therefore cached by its text and the schema it was checked against (`lru`, bounded).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};

use cedar_policy::{
    Entities, Policy, PolicyId, PolicySet, Schema, ValidationError, ValidationMode,
    ValidationWarning, Validator,
};
use lru::LruCache;
use miette::Diagnostic;

use crate::error::{Reason, Violation};
use crate::path::FieldPath;

/// Default entity type of the caller's groups and roles.
pub const DEFAULT_GROUP_ENTITY_TYPE: &str = "THVGroup";

/// One Cedar action: the MCP method it stands for and the resource it applies to.
/// The schema policies are validated against and the proxy's authorization requests are
/// both built from [`ACTIONS`], so the two cannot name different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// Cedar action id (`Action::"call_tool"`).
    pub name: &'static str,
    /// The MCP method the action authorizes.
    pub method: &'static str,
    /// Cedar entity type of the resource.
    pub resource_type: &'static str,
    /// For list actions, the fixed resource id (`FeatureType::"tool"`); `None` when the
    /// resource is the request's target (tool name, prompt name, resource URI).
    pub list_of: Option<&'static str>,
}

/// The MCP actions, in schema order.
pub const ACTIONS: &[Action] = &[
    Action::on_target("call_tool", "tools/call", "Tool"),
    Action::on_target("get_prompt", "prompts/get", "Prompt"),
    Action::on_target("read_resource", "resources/read", "Resource"),
    Action::listing("list_tools", "tools/list", "tool"),
    Action::listing("list_prompts", "prompts/list", "prompt"),
    Action::listing("list_resources", "resources/list", "resource"),
];

impl Action {
    const fn on_target(
        name: &'static str,
        method: &'static str,
        resource_type: &'static str,
    ) -> Self {
        Self {
            name,
            method,
            resource_type,
            list_of: None,
        }
    }

    const fn listing(name: &'static str, method: &'static str, feature: &'static str) -> Self {
        Self {
            name,
            method,
            resource_type: "FeatureType",
            list_of: Some(feature),
        }
    }

    /// The action an MCP method asks for; `None` for methods Cedar is not asked about
    /// (initialize, ping, notifications, completion, logging).
    pub fn for_method(method: &str) -> Option<&'static Action> {
        ACTIONS.iter().find(|a| a.method == method)
    }
}

/// Policy entries remembered; ~2 KiB each, so the cache stays under a few MiB.
const CACHED_ENTRIES: usize = 4096;
/// Distinct schemas remembered (one per group type and entity-type set in use).
const CACHED_SCHEMAS: usize = 64;

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
    text.push_str(&format!(
        "entity Client in [{parents}];\nentity Tool;\nentity Prompt;\nentity Resource;\nentity FeatureType;\n"
    ));
    for action in ACTIONS {
        text.push_str(&format!(
            "action {} appliesTo {{ principal: [Client], resource: [{}] }};\n",
            action.name, action.resource_type
        ));
    }
    text
}

/// What one policy entry amounts to, independent of its position in the list.
#[derive(Debug)]
enum Entry {
    /// Parsed; `findings` are schema problems (reason CedarSchema), each a message.
    Parsed {
        policies: Vec<Policy>,
        findings: Vec<String>,
    },
    /// Did not parse, or held no policy.
    Invalid { message: String },
}

struct Caches {
    schemas: LruCache<String, Schema>,
    entries: LruCache<(String, String), Arc<Entry>>,
}

static CACHES: LazyLock<Mutex<Caches>> = LazyLock::new(|| {
    Mutex::new(Caches {
        schemas: LruCache::new(NonZeroUsize::new(CACHED_SCHEMAS).unwrap_or(NonZeroUsize::MIN)),
        entries: LruCache::new(NonZeroUsize::new(CACHED_ENTRIES).unwrap_or(NonZeroUsize::MIN)),
    })
});

fn caches() -> std::sync::MutexGuard<'static, Caches> {
    // A panic while holding the lock leaves only cache contents behind, which stay valid.
    CACHES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn schema_for(text: &str) -> Result<Schema, String> {
    if let Some(schema) = caches().schemas.get(text) {
        return Ok(schema.clone());
    }
    let (schema, _warnings) = Schema::from_cedarschema_str(text).map_err(|e| e.to_string())?;
    caches().schemas.put(text.to_owned(), schema.clone());
    Ok(schema)
}

fn entry_for(schema_text: &str, schema: &Schema, text: &str) -> Arc<Entry> {
    let key = (schema_text.to_owned(), text.to_owned());
    if let Some(entry) = caches().entries.get(&key) {
        return entry.clone();
    }
    let entry = Arc::new(analyse(schema, text));
    caches().entries.put(key, entry.clone());
    entry
}

/// Parses one entry and validates it on its own (Cedar validates policies independently).
fn analyse(schema: &Schema, text: &str) -> Entry {
    let parsed = match PolicySet::from_str(text) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let position = position_text(first_position(&errors, text));
            return Entry::Invalid {
                message: format!(
                    "Cedar syntax error{position}: {}",
                    detail(&errors.to_string(), &errors)
                ),
            };
        }
    };
    let policies: Vec<Policy> = parsed.policies().cloned().collect();
    if policies.is_empty() {
        return Entry::Invalid {
            message: "the entry holds no policy".to_owned(),
        };
    }
    let result = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
    let mut findings: Vec<String> = result
        .validation_errors()
        .filter(|e| is_rejected(e))
        .map(|e| finding(e, &e.to_string(), text))
        .collect();
    if findings.is_empty() {
        // Without an error, one warning says why the policy can never apply; prefer the
        // one naming the action application over the generic "impossible policy".
        let mut warnings: Vec<_> = result
            .validation_warnings()
            .filter(|w| is_rejected_warning(w))
            .collect();
        warnings.sort_by_key(|w| !matches!(w, ValidationWarning::InvalidActionApplication(_)));
        findings.extend(warnings.first().map(|w| finding(*w, &w.to_string(), text)));
    }
    findings.dedup();
    Entry::Parsed { policies, findings }
}

fn finding(diagnostic: &dyn Diagnostic, message: &str, text: &str) -> String {
    let position = position_text(first_position(diagnostic, text));
    format!(
        "Cedar policy does not fit the MCP schema{position}: {}",
        strip_policy_id(message)
    )
}

fn position_text(position: Option<(usize, usize)>) -> String {
    position
        .map(|(l, c)| format!(" at line {l}, column {c}"))
        .unwrap_or_default()
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
    let entities_text = if entities_json.trim().is_empty() {
        "[]"
    } else {
        entities_json
    };
    let entities_value: Option<serde_json::Value> = match serde_json::from_str(entities_text) {
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
    let schema_text = schema_text(group_entity_type, &extra_types);
    let schema = match schema_for(&schema_text) {
        Ok(schema) => Some(schema),
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
    let Some(schema) = schema else {
        return Err(problems);
    };

    let allowed_schema = format!(
        "actions: {}; principal Client; resources Tool, Prompt, Resource, FeatureType; groups {group_entity_type}",
        ACTIONS
            .iter()
            .map(|a| format!("Action::\"{}\" on {}", a.name, a.resource_type))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut set = PolicySet::new();
    for (i, text) in policies.iter().enumerate() {
        let entry_path = path.key("policies").index(i);
        match &*entry_for(&schema_text, &schema, text) {
            Entry::Invalid { message } => problems.push(
                Violation::new(entry_path, Reason::CedarSyntax, message.clone()).allowed(
                    "a Cedar policy such as permit(principal, action == Action::\"call_tool\", resource == Tool::\"search\");",
                ),
            ),
            Entry::Parsed { policies, findings } => {
                for message in findings {
                    problems.push(
                        Violation::new(entry_path.clone(), Reason::CedarSchema, message.clone()).allowed(allowed_schema.clone()),
                    );
                }
                for (n, policy) in policies.iter().enumerate() {
                    let id = if n == 0 { format!("policy{i}") } else { format!("policy{i}_{n}") };
                    if let Err(e) = set.add(policy.new_id(PolicyId::new(id))) {
                        problems.push(Violation::new(entry_path.clone(), Reason::CedarSyntax, e.to_string()));
                    }
                }
            }
        }
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

/// Cedar prefixes messages with "for policy `policy0`, "; the path already says which.
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
    let offset = first_offset(diagnostic).or_else(|| {
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
        let parents = entity
            .get("parents")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten();
        for uid in std::iter::once(entity.get("uid")).flatten().chain(parents) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_found_by_its_mcp_method_and_declared_in_the_schema() {
        let schema = schema_text(DEFAULT_GROUP_ENTITY_TYPE, &BTreeSet::new());
        for action in ACTIONS {
            assert_eq!(Action::for_method(action.method), Some(action));
            assert!(
                schema.contains(&format!(
                    "action {} appliesTo {{ principal: [Client], resource: [{}] }};",
                    action.name, action.resource_type
                )),
                "{} is missing from the schema",
                action.name
            );
        }
    }

    #[test]
    fn methods_outside_the_vocabulary_have_no_action() {
        for method in [
            "initialize",
            "ping",
            "notifications/initialized",
            "logging/setLevel",
        ] {
            assert_eq!(Action::for_method(method), None);
        }
    }
}
