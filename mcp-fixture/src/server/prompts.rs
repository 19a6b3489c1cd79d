//! Prompts: a plain one, one with arguments, one embedding a resource, one with an image.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{media, parse_params};
use crate::jsonrpc::RpcError;

pub fn list() -> Value {
    let argument = |name: &str, description: &str| json!({"name": name, "description": description, "required": true});
    json!({"prompts": [
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {
            "name": "test_prompt_with_arguments",
            "description": "A prompt that substitutes two arguments",
            "arguments": [argument("arg1", "First test argument"), argument("arg2", "Second test argument")],
        },
        {
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt that embeds a resource",
            "arguments": [argument("resourceUri", "URI of the resource to embed")],
        },
        {"name": "test_prompt_with_image", "description": "A prompt with an image"},
    ]})
}

#[derive(Deserialize)]
struct Get {
    name: String,
    #[serde(default)]
    arguments: HashMap<String, String>,
}

fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

fn text(text: impl Into<String>) -> Value {
    json!({"type": "text", "text": text.into()})
}

pub fn get(params: Option<Value>) -> Result<Value, RpcError> {
    let Get { name, arguments } = parse_params(params)?;
    let argument = |key: &str| {
        arguments
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| RpcError::invalid_params(format!("missing required argument {key}")))
    };
    let messages = match name.as_str() {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (argument("arg1")?, argument("arg2")?);
            vec![user(text(format!(
                "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
            )))]
        }
        "test_prompt_with_embedded_resource" => vec![
            user(json!({"type": "resource", "resource": {
                "uri": argument("resourceUri")?,
                "mimeType": "text/plain",
                "text": "Embedded resource content for testing.",
            }})),
            user(text("Please process the embedded resource above.")),
        ],
        "test_prompt_with_image" => vec![
            user(media::png_image()),
            user(text("Please analyze the image above.")),
        ],
        _ => return Err(RpcError::invalid_params(format!("Unknown prompt: {name}"))),
    };
    Ok(json!({"messages": messages}))
}
