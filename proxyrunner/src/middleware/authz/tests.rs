//! Authorization, specified by the Cedar policies and decision-service answers a user
//! would configure.

use serde_json::{Map, Value, json};

use super::*;
use crate::middleware::chain::{BuildContext, Chain};
use crate::middleware::fixtures::{self, call, cedar};

fn authorizer(policies: &[&str]) -> Authorizer {
    authorizer_for(cedar(policies))
}

fn authorizer_for(proxy: Value) -> Authorizer {
    let config = fixtures::validated(proxy);
    let authz = config.proxy.authz.as_ref().expect("authz configured");
    Authorizer::new(authz).expect("the authorizer builds")
}

fn alice(claims: Value) -> Principal {
    let mut all: Map<String, Value> = match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    all.insert("sub".to_owned(), json!("alice"));
    Principal {
        subject: "alice".to_owned(),
        claims: all,
    }
}

const PERMIT_ECHO: &str =
    r#"permit(principal, action == Action::"call_tool", resource == Tool::"echo");"#;

#[tokio::test]
async fn rejects_call_denied_by_cedar_policy() {
    let authz = authorizer(&[PERMIT_ECHO]);
    let verdict = authz
        .decide(&alice(json!({})), &call("tools/call", Some("delete_repo")))
        .await;
    assert_eq!(
        verdict,
        Verdict::Refuse(Refusal {
            code: code::FORBIDDEN,
            message: "not authorized: tools/call delete_repo".to_owned(),
            retry_after: None,
        })
    );
}

#[tokio::test]
async fn admits_call_permitted_by_cedar_policy() {
    let authz = authorizer(&[PERMIT_ECHO]);
    let verdict = authz
        .decide(&alice(json!({})), &call("tools/call", Some("echo")))
        .await;
    assert_eq!(verdict, Verdict::Pass);
}

#[tokio::test]
async fn admits_members_of_a_group_named_in_the_token() {
    let authz = authorizer(&[
        r#"permit(principal in THVGroup::"admins", action == Action::"call_tool", resource);"#,
    ]);
    let delete = call("tools/call", Some("delete_repo"));
    let admin = alice(json!({"groups": ["devs", "admins"]}));
    assert_eq!(authz.decide(&admin, &delete).await, Verdict::Pass);
    let dev = alice(json!({"groups": ["devs"]}));
    assert_ne!(authz.decide(&dev, &delete).await, Verdict::Pass);
}

#[tokio::test]
async fn a_configured_group_entity_type_names_the_groups() {
    let authz = authorizer_for(json!({"authz": {"type": "cedarv1",
        "group_entity_type": "Team", "policies": [
        r#"permit(principal in Team::"admins", action == Action::"call_tool", resource);"#]}}));
    let delete = call("tools/call", Some("delete_repo"));
    assert_eq!(
        authz
            .decide(&alice(json!({"roles": ["admins"]})), &delete)
            .await,
        Verdict::Pass
    );
    assert_ne!(
        authz
            .decide(&alice(json!({"groups": ["devs"]})), &delete)
            .await,
        Verdict::Pass
    );
}

#[tokio::test]
async fn decides_on_call_arguments_and_token_claims() {
    let authz = authorizer(&[
        r#"permit(principal, action == Action::"call_tool", resource == Tool::"weather")
           when { resource.arg_city == "Paris" && context.claim_email like "*@example.com" };"#,
    ]);
    let mut paris = call("tools/call", Some("weather"));
    paris.arguments = json!({"city": "Paris"}).as_object().cloned();
    let mut rome = paris.clone();
    rome.arguments = json!({"city": "Rome"}).as_object().cloned();
    let employee = alice(json!({"email": "alice@example.com"}));
    assert_eq!(authz.decide(&employee, &paris).await, Verdict::Pass);
    assert_ne!(authz.decide(&employee, &rome).await, Verdict::Pass);
    let outsider = alice(json!({"email": "alice@elsewhere.org"}));
    assert_ne!(authz.decide(&outsider, &paris).await, Verdict::Pass);
}

#[tokio::test]
async fn answers_lists_unless_a_policy_forbids_them() {
    let permissive = authorizer(&[PERMIT_ECHO]);
    let list = call("tools/list", None);
    assert_eq!(
        permissive.decide(&alice(json!({})), &list).await,
        Verdict::Pass
    );
    let forbidding = authorizer(&[
        PERMIT_ECHO,
        r#"forbid(principal, action == Action::"list_tools", resource);"#,
    ]);
    assert_ne!(
        forbidding.decide(&alice(json!({})), &list).await,
        Verdict::Pass
    );
}

#[tokio::test]
async fn lets_methods_outside_the_vocabulary_pass_without_a_decision() {
    let authz = authorizer(&[PERMIT_ECHO]);
    for method in ["initialize", "ping", "notifications/initialized"] {
        assert_eq!(
            authz.decide(&alice(json!({})), &call(method, None)).await,
            Verdict::Pass,
            "{method}"
        );
    }
}

#[tokio::test]
async fn filters_list_results_to_what_the_caller_may_use() {
    let authz = authorizer(&[PERMIT_ECHO]);
    assert!(authz.rewrites("tools/list") && authz.rewrites("resources/list"));
    assert!(!authz.rewrites("tools/call"));
    let mut result = json!({"tools": [{"name": "echo"}, {"name": "delete_repo"}]});
    authz
        .rewrite(&alice(json!({})), "tools/list", &mut result)
        .await;
    assert_eq!(result, json!({"tools": [{"name": "echo"}]}));
}

#[tokio::test]
async fn rejects_call_when_the_decision_service_cannot_be_reached() {
    let authz = authorizer_for(json!({"authz": {"type": "httpv1",
        "url": "http://127.0.0.1:9/decide", "timeout": "2s"}}));
    let verdict = authz
        .decide(&alice(json!({})), &call("tools/call", Some("echo")))
        .await;
    let Verdict::Refuse(refusal) = verdict else {
        panic!("an unreachable decision service must deny, got {verdict:?}");
    };
    assert_eq!(refusal.code, code::FORBIDDEN);
    assert!(
        refusal.message.starts_with("authorization failed:"),
        "{}",
        refusal.message
    );
}

#[tokio::test]
async fn builds_from_the_runconfig_authorization_section() {
    let config = fixtures::validated(cedar(&[PERMIT_ECHO]));
    let chain = Chain::build(&BuildContext {
        config: &config,
        mode: runconfig::validate::ProxyMode::StreamableHttp,
        metrics: None,
        audit_sink: None,
    })
    .expect("builds");
    assert!(chain.stages().iter().any(|s| s.name() == "Authorization"));
}
