//! The MCP server behind both transports: the protocol versions it speaks, its
//! capabilities, and the dispatch of each method to the module that owns it.
//!
//! A transport hands each client request to [`Session::handle_request`] together with
//! an [`Outbox`]; everything the request produces (notifications, requests to the
//! client, and finally its response) arrives there in order, and the transport decides
//! where it goes (stdout, a JSON body, an SSE stream).

mod completion;
mod media;
mod prompts;
mod resources;
mod session;
mod tools;

pub(crate) use session::lock;
pub use session::{LogLevel, Outbound, Outbox, RequestContext, Session};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::jsonrpc::{METHOD_NOT_FOUND, RpcError};

/// Protocol revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];

/// Reads `params` as `T`; absent params read as `{}`.
pub(crate) fn parse_params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(params.unwrap_or_else(|| json!({})))
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

async fn dispatch(
    ctx: &RequestContext,
    method: &str,
    params: Option<Value>,
) -> Result<Value, RpcError> {
    match method {
        "initialize" => Ok(initialize(&ctx.session, params)?),
        "ping" => Ok(json!({})),
        "logging/setLevel" => {
            #[derive(Deserialize)]
            struct SetLevel {
                level: LogLevel,
            }
            let SetLevel { level } = parse_params(params)?;
            *lock(&ctx.session.log_level) = level;
            Ok(json!({}))
        }
        "tools/list" => Ok(tools::list()),
        "tools/call" => tools::call(ctx, params).await,
        "resources/list" => Ok(resources::list()),
        "resources/templates/list" => Ok(resources::templates()),
        "resources/read" => resources::read(params),
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = resources::subscription_uri(params)?;
            let mut subscriptions = lock(&ctx.session.subscriptions);
            if method == "resources/subscribe" {
                subscriptions.insert(uri);
            } else {
                subscriptions.remove(&uri);
            }
            Ok(json!({}))
        }
        "prompts/list" => Ok(prompts::list()),
        "prompts/get" => prompts::get(params),
        "completion/complete" => completion::complete(params),
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

fn initialize(session: &Session, params: Option<Value>) -> Result<Value, RpcError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Initialize {
        protocol_version: String,
        #[serde(default)]
        capabilities: Value,
    }
    let request: Initialize = parse_params(params)?;
    // Answer with the client's version when we speak it, else with our latest.
    let version = SUPPORTED_VERSIONS
        .into_iter()
        .find(|v| *v == request.protocol_version)
        .unwrap_or(LATEST_VERSION);
    *lock(&session.protocol_version) = version;
    *lock(&session.client_capabilities) = request.capabilities;
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": false},
            "prompts": {"listChanged": false},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {
            "name": "mcp-fixture",
            "title": "ToolHive MCP test fixture",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "A test server: every tool, resource and prompt exists to exercise one part of MCP.",
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;

    /// Runs one request on a fresh session; returns everything sent to the client.
    async fn run(session: &Arc<Session>, method: &str, params: Value) -> Vec<Outbound> {
        let (outbox, mut received) = mpsc::unbounded_channel();
        session
            .clone()
            .handle_request(json!(7), method.into(), Some(params), outbox)
            .await;
        let mut sent = Vec::new();
        while let Ok(item) = received.try_recv() {
            sent.push(item);
        }
        sent
    }

    fn session() -> Arc<Session> {
        Session::new(mpsc::unbounded_channel().0)
    }

    fn final_response(sent: &[Outbound]) -> &Value {
        match sent.last() {
            Some(Outbound::Done(Some(response))) => response,
            other => panic!("expected a final response, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn initialize_echoes_a_supported_version_and_falls_back_to_the_latest() {
        let session = session();
        let params = json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
        let sent = run(&session, "initialize", params).await;
        assert_eq!(
            final_response(&sent)["result"]["protocolVersion"],
            "2025-03-26"
        );
        let params = json!({"protocolVersion": "1999-01-01", "capabilities": {}});
        let sent = run(&session, "initialize", params).await;
        assert_eq!(
            final_response(&sent)["result"]["protocolVersion"],
            LATEST_VERSION
        );
    }

    #[tokio::test]
    async fn unknown_methods_are_method_not_found() {
        let sent = run(&session(), "tools/frobnicate", json!({})).await;
        assert_eq!(final_response(&sent)["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(final_response(&sent)["id"], 7);
    }

    #[tokio::test]
    async fn log_notifications_respect_the_level_set_by_the_client() {
        let session = session();
        run(&session, "logging/setLevel", json!({"level": "warning"})).await;
        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_logging"}),
        )
        .await;
        assert_eq!(sent.len(), 1, "info logs are below warning: {sent:?}");

        run(&session, "logging/setLevel", json!({"level": "debug"})).await;
        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_logging"}),
        )
        .await;
        assert_eq!(sent.len(), 4, "three logs then the response: {sent:?}");
    }

    #[tokio::test]
    async fn progress_is_reported_only_with_a_progress_token() {
        let session = session();
        let with_token =
            json!({"name": "test_tool_with_progress", "_meta": {"progressToken": "p"}});
        let sent = run(&session, "tools/call", with_token).await;
        let progress: Vec<_> = sent
            .iter()
            .filter_map(|item| match item {
                Outbound::Message(m) => Some(m["params"]["progress"].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(progress, [json!(0), json!(50), json!(100)]);

        let sent = run(
            &session,
            "tools/call",
            json!({"name": "test_tool_with_progress"}),
        )
        .await;
        assert_eq!(sent.len(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_request_gets_no_response() {
        let session = session();
        let (outbox, mut received) = mpsc::unbounded_channel();
        let call = json!({"name": "sleep", "arguments": {"milliseconds": 10_000}});
        let running = tokio::spawn(session.clone().handle_request(
            json!("slow"),
            "tools/call".into(),
            Some(call),
            outbox,
        ));
        tokio::task::yield_now().await;
        while lock(&session.in_flight).is_empty() {
            tokio::task::yield_now().await;
        }
        session.handle_notification(
            "notifications/cancelled",
            Some(json!({"requestId": "slow"})),
        );
        running.await.expect("request task ends");
        assert!(matches!(received.try_recv(), Ok(Outbound::Done(None))));
    }
}
