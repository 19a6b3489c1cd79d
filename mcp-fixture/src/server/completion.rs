//! `completion/complete`: suggestions for prompt arguments and the template's `{id}`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse_params;
use crate::jsonrpc::RpcError;

#[derive(Deserialize)]
struct Complete {
    #[serde(rename = "ref")]
    reference: Reference,
    argument: Argument,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Reference {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

#[derive(Deserialize)]
struct Argument {
    name: String,
    value: String,
}

pub fn complete(params: Option<Value>) -> Result<Value, RpcError> {
    let Complete {
        reference,
        argument,
    } = parse_params(params)?;
    let candidates: &[&str] = match (&reference, argument.name.as_str()) {
        (Reference::Prompt { name }, "arg1" | "arg2") if name == "test_prompt_with_arguments" => {
            &["paris", "park", "party", "test", "testing"]
        }
        (Reference::Resource { uri }, "id") if uri == "test://template/{id}/data" => {
            &["1", "2", "3", "123"]
        }
        _ => &[],
    };
    let values: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| c.starts_with(&argument.value))
        .collect();
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_prompt_arguments_by_prefix() {
        let params = json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"},
        });
        let result = complete(Some(params)).expect("valid request");
        assert_eq!(
            result["completion"]["values"],
            json!(["paris", "park", "party"])
        );
    }
}
