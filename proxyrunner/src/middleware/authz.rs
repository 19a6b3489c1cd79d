//! Authorization: may this principal do this MCP operation?
//!
//! Cedar (`cedarv1`): the principal is `Client::"<sub>"`, member of one
//! `<groupEntityType>::"<name>"` per entry of its group and role claims; the action
//! comes from the MCP method (`call_tool`, `get_prompt`, `read_resource`, `list_*`); the
//! resource is `Tool::"<name>"`, `Prompt::"<name>"`, `Resource::"<uri>"` or
//! `FeatureType::"tool|prompt|resource"`. Claims are principal attributes and context
//! entries named `claim_<name>`; call arguments are resource attributes and context
//! entries named `arg_<name>`.
//!
//! - `tools/call`, `prompts/get`, `resources/read` need a `permit` (default deny).
//! - List requests are answered unless a policy explicitly forbids the `list_*` action,
//!   and their results are filtered to the items the caller may call, get or read.
//! - Every other method (initialize, ping, notifications, completion, logging) passes:
//!   it reveals nothing the lists do not.
//!
//! HTTP (`httpv1`): the same questions are POSTed as JSON to a decision service, which
//! answers `{"allow": true|false}`.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression,
};
use runconfig::middleware::authz::{ValidatedAuthz, ValidatedCedar, ValidatedHttpAuthz};
use runconfig::middleware::cedar::{ACTIONS, Action};
use serde_json::{Map, Value};

use super::authn::Principal;
use super::chain::{BuildContext, Middleware, Refusal, Verdict};
use crate::mcp::Call;
use crate::reply::code;
use crate::runner::BuildError;

/// The question asked for one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation<'a> {
    /// Cedar action name.
    pub action: &'static str,
    /// Cedar resource entity type.
    pub resource_type: &'static str,
    /// Resource id.
    pub resource: &'a str,
    /// Whether this lists (answered unless forbidden) rather than uses.
    pub list: bool,
}

/// The operation a call asks for; `None` for methods that pass without a decision.
/// The vocabulary is runconfig's, the one policies were validated against.
pub fn operation(call: &Call) -> Option<Operation<'_>> {
    let action = Action::for_method(&call.method)?;
    Some(Operation {
        action: action.name,
        resource_type: action.resource_type,
        resource: action
            .list_of
            .unwrap_or_else(|| call.target.as_deref().unwrap_or("")),
        list: action.list_of.is_some(),
    })
}

/// Authorization as configured.
pub enum Authorizer {
    /// Cedar policies.
    Cedar(Box<CedarAuthorizer>),
    /// A decision service.
    Http(HttpAuthorizer),
}

/// Cedar policies with the entity type names a decision uses, parsed once: parsing
/// `Client`, `Action`, `Tool`, ... with Cedar's parser on every call was a visible
/// part of the proxy's CPU under load (perf).
pub struct CedarAuthorizer {
    cedar: ValidatedCedar,
    type_names: HashMap<String, EntityTypeName>,
}

impl CedarAuthorizer {
    fn new(cedar: ValidatedCedar) -> Result<Self, String> {
        let mut type_names = HashMap::new();
        let fixed = ["Client", "Action"]
            .into_iter()
            .chain(ACTIONS.iter().map(|a| a.resource_type))
            .chain([cedar.compiled.group_entity_type.as_str()]);
        for ty in fixed {
            let name = EntityTypeName::from_str(ty)
                .map_err(|e| format!("Cedar entity type {ty:?}: {e}"))?;
            type_names.insert(ty.to_owned(), name);
        }
        Ok(Self { cedar, type_names })
    }

    /// `ty::"id"`; a type outside the fixed vocabulary is parsed on the spot.
    fn uid(&self, ty: &str, id: &str) -> Result<EntityUid, String> {
        let ty = match self.type_names.get(ty) {
            Some(name) => name.clone(),
            None => EntityTypeName::from_str(ty).map_err(|e| e.to_string())?,
        };
        Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
    }
}

/// A decision service client.
pub struct HttpAuthorizer {
    config: ValidatedHttpAuthz,
    http: reqwest::Client,
}

impl Authorizer {
    /// Builds the authorizer.
    pub fn new(config: &ValidatedAuthz) -> Result<Self, String> {
        match config {
            ValidatedAuthz::Cedar(cedar) => Ok(Self::Cedar(Box::new(CedarAuthorizer::new(
                (**cedar).clone(),
            )?))),
            ValidatedAuthz::Http(http) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(http.timeout)
                    .tls_danger_accept_invalid_certs(http.insecure_skip_verify)
                    .build()
                    .map_err(|e| format!("authorization HTTP client: {e}"))?;
                Ok(Self::Http(HttpAuthorizer {
                    config: http.clone(),
                    http: client,
                }))
            }
        }
    }

    /// Decides one call. `Err` carries why the decision could not be made (denied).
    pub async fn allows(&self, principal: &Principal, call: &Call) -> Result<bool, String> {
        let Some(op) = operation(call) else {
            return Ok(true);
        };
        match self {
            Self::Cedar(cedar) => {
                let (decision, forbidden) =
                    cedar_decide(cedar, principal, &op, call.arguments.as_ref())?;
                Ok(if op.list { !forbidden } else { decision })
            }
            Self::Http(http) => http.decide(principal, &op, call).await,
        }
    }

    /// Filters a list result (`tools`, `prompts`, `resources`) to what the caller may use.
    pub async fn filter_list(&self, principal: &Principal, method: &str, result: &mut Value) {
        let (key, item_key, method_of_item) = match method {
            "tools/list" => ("tools", "name", "tools/call"),
            "prompts/list" => ("prompts", "name", "prompts/get"),
            "resources/list" => ("resources", "uri", "resources/read"),
            _ => return,
        };
        let Some(items) = result.get_mut(key).and_then(Value::as_array_mut) else {
            return;
        };
        let mut keep = Vec::with_capacity(items.len());
        for item in items.iter() {
            let call = Call {
                method: method_of_item.to_owned(),
                target: item
                    .get(item_key)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                arguments: None,
                progress_token: None,
            };
            keep.push(
                call.target.is_some() && self.allows(principal, &call).await.unwrap_or(false),
            );
        }
        let mut decisions = keep.into_iter();
        items.retain(|_| decisions.next().unwrap_or(false));
    }
}

/// The authorization middleware: a call needs a decision; list results keep only what
/// the caller may use.
impl Middleware for Authorizer {
    type Config<'a> = &'a ValidatedAuthz;

    fn build(config: Self::Config<'_>, _: &BuildContext<'_>) -> Result<Option<Self>, BuildError> {
        Self::new(config).map(Some).map_err(BuildError::Setting)
    }

    async fn decide(&self, principal: &Principal, call: &Call) -> Verdict {
        let message = match self.allows(principal, call).await {
            Ok(true) => return Verdict::Pass,
            Ok(false) => format!("not authorized: {}", call.describe()),
            Err(e) => format!("authorization failed: {e}"),
        };
        Verdict::Refuse(Refusal {
            code: code::FORBIDDEN,
            message,
            retry_after: None,
        })
    }

    fn rewrites(&self, method: &str) -> bool {
        Action::for_method(method).is_some_and(|a| a.list_of.is_some())
    }

    async fn rewrite(&self, principal: &Principal, method: &str, result: &mut Value) {
        self.filter_list(principal, method, result).await;
    }
}

/// Cedar's decision and whether a `forbid` policy determined a deny.
fn cedar_decide(
    authorizer: &CedarAuthorizer,
    principal: &Principal,
    op: &Operation<'_>,
    arguments: Option<&Map<String, Value>>,
) -> Result<(bool, bool), String> {
    let cedar = &authorizer.cedar;
    let compiled = &cedar.compiled;
    let uid = |ty: &str, id: &str| authorizer.uid(ty, id);
    let mut parents = HashSet::new();
    let mut new_entities = Vec::new();
    for claim in [
        cedar.group_claim_name.as_deref().unwrap_or("groups"),
        cedar.role_claim_name.as_deref().unwrap_or("roles"),
    ] {
        for name in claim_strings(principal.claims.get(claim)) {
            let group = uid(&compiled.group_entity_type, &name)?;
            if compiled.entities.get(&group).is_none() && !parents.contains(&group) {
                new_entities.push(Entity::with_uid(group.clone()));
            }
            parents.insert(group);
        }
    }
    let claims = attributes("claim_", &principal.claims);
    let args = arguments.map(|a| attributes("arg_", a)).unwrap_or_default();
    let principal_uid = uid("Client", &principal.subject)?;
    let resource_uid = uid(op.resource_type, op.resource)?;
    new_entities.push(
        Entity::new(principal_uid.clone(), claims.clone(), parents).map_err(|e| e.to_string())?,
    );
    new_entities.push(
        Entity::new(resource_uid.clone(), args.clone(), HashSet::new())
            .map_err(|e| e.to_string())?,
    );
    let entities: Entities = compiled
        .entities
        .clone()
        .add_entities(new_entities, None)
        .map_err(|e| e.to_string())?;
    let context = Context::from_pairs(claims.into_iter().chain(args)).map_err(|e| e.to_string())?;
    let request = Request::new(
        principal_uid,
        uid("Action", op.action)?,
        resource_uid,
        context,
        None,
    )
    .map_err(|e| e.to_string())?;
    let response =
        cedar_policy::Authorizer::new().is_authorized(&request, &compiled.policies, &entities);
    let allowed = response.decision() == Decision::Allow;
    let forbidden = !allowed && response.diagnostics().reason().next().is_some();
    Ok((allowed, forbidden))
}

fn claim_strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// JSON values Cedar can hold (strings, booleans, integers, lists of those), prefixed.
fn attributes(prefix: &str, values: &Map<String, Value>) -> HashMap<String, RestrictedExpression> {
    values
        .iter()
        .filter_map(|(k, v)| Some((format!("{prefix}{k}"), restricted(v)?)))
        .collect()
}

fn restricted(value: &Value) -> Option<RestrictedExpression> {
    match value {
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => n.as_i64().map(RestrictedExpression::new_long),
        Value::Array(list) => Some(RestrictedExpression::new_set(
            list.iter().filter_map(restricted),
        )),
        _ => None,
    }
}

impl HttpAuthorizer {
    async fn decide(
        &self,
        principal: &Principal,
        op: &Operation<'_>,
        call: &Call,
    ) -> Result<bool, String> {
        let mut question = serde_json::json!({
            "principal": { "sub": principal.subject, "claims": principal.claims },
            "action": op.action,
            "resource": { "type": op.resource_type, "id": op.resource },
        });
        if self.config.include_args
            && let Some(args) = &call.arguments
        {
            question["arguments"] = Value::Object(args.clone());
        }
        if self.config.include_operation {
            question["operation"] = Value::String(call.method.clone());
        }
        let answer: Value = self
            .http
            .post(self.config.url.clone())
            .json(&question)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("decision service: {e}"))?
            .json()
            .await
            .map_err(|e| format!("decision service answer: {e}"))?;
        Ok(answer
            .get("allow")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests;
