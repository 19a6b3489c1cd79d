//! Tools: the ones the conformance suite calls by name (`test_*`, `json_schema_2020_12_tool`)
//! and a few for proxy tests (`echo`, `sleep`, `notify_resource_updated`, `whoami`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{LogLevel, RequestContext, media, parse_params};
use crate::jsonrpc::RpcError;

/// Pause between the steps of the logging and progress tools: long enough for a
/// client to see the notifications arrive one by one.
const STEP: Duration = Duration::from_millis(50);

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

fn string_arguments(arguments: &[(&str, &str)]) -> Value {
    let properties: Map<String, Value> = arguments
        .iter()
        .map(|(name, description)| {
            (
                name.to_string(),
                json!({"type": "string", "description": description}),
            )
        })
        .collect();
    let required: Vec<&str> = arguments.iter().map(|(name, _)| *name).collect();
    json!({"type": "object", "properties": properties, "required": required})
}

pub fn list() -> Value {
    let tool = |name: &str, description: &str, input_schema: Value| json!({"name": name, "description": description, "inputSchema": input_schema});
    json!({"tools": [
        tool("test_simple_text", "Returns one text block", no_arguments()),
        tool("test_image_content", "Returns a 1x1 PNG image", no_arguments()),
        tool("test_audio_content", "Returns a short WAV clip", no_arguments()),
        tool("test_embedded_resource", "Returns an embedded text resource", no_arguments()),
        tool("test_multiple_content_types", "Returns text, an image and a resource", no_arguments()),
        tool("test_tool_with_logging", "Sends three info log notifications while it runs", no_arguments()),
        tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100", no_arguments()),
        tool("test_error_handling", "Always fails with isError", no_arguments()),
        tool("test_sampling", "Asks the client to sample an LLM",
            string_arguments(&[("prompt", "The prompt to send to the LLM")])),
        tool("test_elicitation", "Asks the user for a username and an email",
            string_arguments(&[("message", "The message to show the user")])),
        tool("test_elicitation_sep1034_defaults", "Elicitation whose fields all have defaults", no_arguments()),
        tool("test_elicitation_sep1330_enums", "Elicitation with every enum schema variant", no_arguments()),
        tool("test_reconnection", "Closes its SSE stream mid-call; the result arrives after the client resumes", no_arguments()),
        tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", json_schema_2020_12()),
        tool("echo", "Returns its message", string_arguments(&[("message", "Text to return")])),
        tool("sleep", "Waits before answering", json!({
            "type": "object",
            "properties": {"milliseconds": {"type": "integer", "minimum": 0, "description": "How long to wait"}},
            "required": ["milliseconds"],
        })),
        tool("whoami", "Returns the host name of the server's machine or pod (HOSTNAME)", no_arguments()),
        tool("notify_resource_updated", "Sends notifications/resources/updated for a subscribed URI on the session's own stream",
            string_arguments(&[("uri", "The subscribed resource")])),
    ]})
}

fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            },
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
        },
        "additionalProperties": false,
    })
}

fn text(text: impl Into<String>) -> Value {
    json!({"type": "text", "text": text.into()})
}

fn content(blocks: Vec<Value>) -> Value {
    json!({"content": blocks})
}

/// A failed tool run: a result with `isError`, which the model gets to read.
fn tool_error(message: impl Into<String>) -> Value {
    json!({"content": [text(message)], "isError": true})
}

#[derive(Deserialize)]
struct Call {
    name: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

fn string_argument<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("argument {name} (a string) is required")))
}

pub async fn call(ctx: &RequestContext, params: Option<Value>) -> Result<Value, RpcError> {
    let Call { name, arguments } = parse_params(params)?;
    let args = &arguments;
    Ok(match name.as_str() {
        "test_simple_text" => content(vec![text("This is a simple text response for testing.")]),
        // Which replica answered: a proxy spreading sessions over pods is checked by it.
        "whoami" => content(vec![text(
            std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".to_owned()),
        )]),
        "test_image_content" => content(vec![media::png_image()]),
        "test_audio_content" => content(vec![media::wav_audio()]),
        "test_embedded_resource" => content(vec![json!({
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        })]),
        "test_multiple_content_types" => content(vec![
            text("Multiple content types test:"),
            media::png_image(),
            json!({
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": r#"{"test":"data","value":123}"#,
                },
            }),
        ]),
        "test_tool_with_logging" => {
            ctx.log(LogLevel::Info, json!("Tool execution started"));
            tokio::time::sleep(STEP).await;
            ctx.log(LogLevel::Info, json!("Tool processing data"));
            tokio::time::sleep(STEP).await;
            ctx.log(LogLevel::Info, json!("Tool execution completed"));
            content(vec![text("Tool with logging executed successfully")])
        }
        "test_tool_with_progress" => {
            for (step, progress) in [0, 50, 100].into_iter().enumerate() {
                if step > 0 {
                    tokio::time::sleep(STEP).await;
                }
                ctx.progress(progress, 100, &format!("Completed step {progress} of 100"));
            }
            content(vec![text("Tool with progress executed successfully")])
        }
        "test_error_handling" => tool_error("This tool intentionally returns an error for testing"),
        "test_sampling" => sampling(ctx, string_argument(args, "prompt")?).await,
        "test_elicitation" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                },
                "required": ["username", "email"],
            });
            elicit(
                ctx,
                string_argument(args, "message")?,
                schema,
                "User response",
            )
            .await
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {
                        "type": "string",
                        "description": "User status",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active",
                    },
                    "verified": {"type": "boolean", "description": "Verification status", "default": true},
                },
            });
            let message = "Please review and update the form fields with defaults";
            elicit(ctx, message, schema, "Elicitation completed").await
        }
        "test_elicitation_sep1330_enums" => {
            let option = |value: &str, title: &str| json!({"const": value, "title": title});
            let schema = json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [
                        option("value1", "First Option"),
                        option("value2", "Second Option"),
                        option("value3", "Third Option"),
                    ]},
                    "legacyEnum": {
                        "type": "string",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"],
                    },
                    "untitledMulti": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    },
                    "titledMulti": {"type": "array", "items": {"anyOf": [
                        option("value1", "First Choice"),
                        option("value2", "Second Choice"),
                        option("value3", "Third Choice"),
                    ]}},
                },
            });
            elicit(
                ctx,
                "Please select options from the enum fields",
                schema,
                "Elicitation completed",
            )
            .await
        }
        "test_reconnection" => {
            // The result is produced after the stream closed, so the client only gets
            // it by resuming with GET and Last-Event-ID.
            ctx.close_stream();
            tokio::time::sleep(Duration::from_millis(100)).await;
            content(vec![text("Reconnection test completed successfully")])
        }
        "json_schema_2020_12_tool" => content(vec![text(format!(
            "Received: {}",
            Value::Object(arguments.clone())
        ))]),
        "echo" => content(vec![text(string_argument(args, "message")?)]),
        "sleep" => {
            let milliseconds = args
                .get("milliseconds")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    RpcError::invalid_params("argument milliseconds (an integer) is required")
                })?;
            tokio::time::sleep(Duration::from_millis(milliseconds)).await;
            content(vec![text(format!("Slept {milliseconds} ms"))])
        }
        "notify_resource_updated" => {
            let uri = string_argument(args, "uri")?;
            if ctx.notify_resource_updated(uri) {
                content(vec![text(format!(
                    "Sent notifications/resources/updated for {uri}"
                ))])
            } else {
                tool_error(format!("{uri} is not subscribed"))
            }
        }
        _ => return Err(RpcError::invalid_params(format!("Unknown tool: {name}"))),
    })
}

async fn sampling(ctx: &RequestContext, prompt: &str) -> Value {
    if !ctx.client_supports("sampling") {
        return tool_error("The client does not support sampling");
    }
    let request = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100,
    });
    match ctx.request("sampling/createMessage", request).await {
        Ok(result) => {
            let answer = result["content"]["text"].as_str().unwrap_or_default();
            content(vec![text(format!("LLM response: {answer}"))])
        }
        Err(e) => tool_error(format!("Sampling failed: {}", e.message)),
    }
}

async fn elicit(ctx: &RequestContext, message: &str, schema: Value, label: &str) -> Value {
    if !ctx.client_supports("elicitation") {
        return tool_error("The client does not support elicitation");
    }
    let request = json!({"message": message, "requestedSchema": schema});
    match ctx.request("elicitation/create", request).await {
        Ok(result) => {
            let action = result["action"].as_str().unwrap_or("unknown");
            let answer = result.get("content").cloned().unwrap_or(json!({}));
            content(vec![text(format!(
                "{label}: action={action}, content={answer}"
            ))])
        }
        Err(e) => tool_error(format!("Elicitation failed: {}", e.message)),
    }
}
