//! The chain's order, as the RunConfig declares it, and what that order means for a
//! request.

use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::*;
use crate::middleware::fixtures::{self, audit_lines, cedar, merge, oidc, request};
use crate::reply::code;

const PERMIT_SUM: &str =
    r#"permit(principal, action == Action::"call_tool", resource == Tool::"sum");"#;

fn tools_renaming_add_to_sum() -> serde_json::Value {
    json!({"tools": {"filter": ["add", "echo"], "overrides": {"add": {"name": "sum"}}}})
}

fn exchange(chain: &Arc<Chain>, body: &str) -> Exchange {
    let parsed = mcp::parse(body.as_bytes()).expect("JSON-RPC");
    Exchange::new(
        chain.clone(),
        Principal::anonymous(),
        parsed,
        Bytes::from(body.to_owned()),
        Instant::now(),
    )
}

#[tokio::test]
async fn chain_follows_the_runconfig_order_outermost_first() {
    let proxy = merge(&[
        json!({"telemetry": {"endpoint": "http://127.0.0.1:4318", "tracing_enabled": true}}),
        oidc(),
        json!({"audit": {}}),
        cedar(&[PERMIT_SUM]),
        tools_renaming_add_to_sum(),
    ]);
    let (chain, _) = fixtures::chain(proxy.clone());
    let names: Vec<&str> = chain.stages().iter().map(Stage::name).collect();
    assert_eq!(
        names,
        [
            "Telemetry",
            "Authentication",
            "Audit",
            "Authorization",
            "Tools"
        ]
    );
    let declared = fixtures::validated(proxy).middleware().len();
    assert_eq!(names.len(), declared, "one stage per declared middleware");
}

#[tokio::test]
async fn chain_leaves_out_middleware_the_runconfig_does_not_configure() {
    let (chain, _) = fixtures::chain(json!({}));
    let names: Vec<&str> = chain.stages().iter().map(Stage::name).collect();
    assert_eq!(names, ["Authentication"]);
}

#[tokio::test]
async fn chain_runs_authn_before_authz_so_an_unauthenticated_call_gets_401_not_a_denial() {
    let (chain, _) = fixtures::chain(merge(&[oidc(), cedar(&[PERMIT_SUM])]));
    let mut parts = request(&[]);
    let refused = chain
        .admit(&mut parts)
        .await
        .expect_err("no token is refused at admission, before any decision");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn chain_runs_authz_before_tools_so_policies_name_tools_as_clients_see_them() {
    let (chain, _) = fixtures::chain(merge(&[cedar(&[PERMIT_SUM]), tools_renaming_add_to_sum()]));
    let chain = Arc::new(chain);
    let mut allowed = exchange(
        &chain,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sum"}}"#,
    );
    let renames = chain.decide(&mut allowed).await;
    assert!(!allowed.refused(), "the policy permits the client's name");
    assert_eq!(
        renames,
        [(0, "add".to_owned())],
        "the server gets its own name"
    );

    let mut by_server_name = exchange(
        &chain,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}"#,
    );
    chain.decide(&mut by_server_name).await;
    assert_eq!(
        by_server_name.refusals[0].as_ref().map(|r| r.code),
        Some(code::FORBIDDEN)
    );
}

#[tokio::test]
async fn chain_stops_at_the_first_refusal() {
    let (chain, _) = fixtures::chain(merge(&[
        cedar(&[PERMIT_SUM]),
        json!({"tools": {"filter": ["echo"]}}),
    ]));
    let chain = Arc::new(chain);
    let mut hidden_and_denied = exchange(
        &chain,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret"}}"#,
    );
    chain.decide(&mut hidden_and_denied).await;
    let refusal = hidden_and_denied.refusals[0].clone().expect("refused");
    assert_eq!(
        refusal.code,
        code::FORBIDDEN,
        "authorization answered first"
    );
    assert_eq!(refusal.message, "not authorized: tools/call secret");
}

#[tokio::test]
async fn chain_rewrites_list_results_innermost_first() {
    let (chain, _) = fixtures::chain(merge(&[cedar(&[PERMIT_SUM]), tools_renaming_add_to_sum()]));
    let mut result = json!({"tools": [{"name": "add"}, {"name": "echo"}, {"name": "secret"}]});
    chain
        .rewrite(&Principal::anonymous(), "tools/list", &mut result)
        .await;
    assert_eq!(
        result,
        json!({"tools": [{"name": "sum"}]}),
        "tools renamed add to sum before authorization kept only what the caller may call"
    );
}

#[tokio::test]
async fn chain_records_an_exchange_dropped_before_its_answer_as_client_closed() {
    let (chain, audit) = fixtures::chain(json!({"audit": {}}));
    let chain = Arc::new(chain);
    drop(exchange(
        &chain,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
    ));
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], CLIENT_CLOSED);
    assert_eq!(lines[0]["outcome"], "failure");
}

#[tokio::test]
async fn chain_records_a_finished_exchange_once() {
    let (chain, audit) = fixtures::chain(json!({"audit": {}}));
    let chain = Arc::new(chain);
    let finished = exchange(
        &chain,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
    );
    let response = chain.finish(finished, crate::reply::json(StatusCode::OK, &json!({})));
    assert_eq!(response.status(), StatusCode::OK);
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 1, "finished, so not also abandoned");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["outcome"], "success");
}
