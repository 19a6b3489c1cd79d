//! Resources: static text and binary ones, one to subscribe to, and the template
//! `test://template/{id}/data`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{media, parse_params};
use crate::jsonrpc::{RESOURCE_NOT_FOUND, RpcError};

const TEMPLATE: &str = "test://template/{id}/data";

/// uri, name, description, mimeType and the content of each direct resource.
const RESOURCES: [(&str, &str, &str, &str, Content); 3] = [
    (
        "test://static-text",
        "static-text",
        "A static text resource",
        "text/plain",
        Content::Text("This is the content of the static text resource."),
    ),
    (
        "test://static-binary",
        "static-binary",
        "A static binary resource (a PNG)",
        "image/png",
        Content::Blob(media::PNG_BASE64),
    ),
    (
        "test://watched-resource",
        "watched-resource",
        "A resource to subscribe to",
        "text/plain",
        Content::Text("Watched resource content"),
    ),
];

enum Content {
    Text(&'static str),
    Blob(&'static str),
}

pub fn list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(uri, name, description, mime_type, _)| {
            json!({"uri": uri, "name": name, "description": description, "mimeType": mime_type})
        })
        .collect();
    json!({"resources": resources})
}

pub fn templates() -> Value {
    json!({"resourceTemplates": [{
        "uriTemplate": TEMPLATE,
        "name": "template-data",
        "description": "Data for one id, substituted into the content",
        "mimeType": "application/json",
    }]})
}

#[derive(Deserialize)]
struct Uri {
    uri: String,
}

pub fn subscription_uri(params: Option<Value>) -> Result<String, RpcError> {
    parse_params::<Uri>(params).map(|p| p.uri)
}

/// The `{id}` of a URI that matches the template.
pub fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

pub fn read(params: Option<Value>) -> Result<Value, RpcError> {
    let Uri { uri } = parse_params(params)?;
    let contents = if let Some((_, _, _, mime_type, body)) = RESOURCES.iter().find(|r| r.0 == uri) {
        match body {
            Content::Text(text) => json!({"uri": uri, "mimeType": mime_type, "text": text}),
            Content::Blob(blob) => json!({"uri": uri, "mimeType": mime_type, "blob": blob}),
        }
    } else if let Some(id) = template_id(&uri) {
        let data = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
        json!({"uri": uri, "mimeType": "application/json", "text": data.to_string()})
    } else {
        return Err(
            RpcError::new(RESOURCE_NOT_FOUND, "Resource not found").with_data(json!({"uri": uri}))
        );
    };
    Ok(json!({"contents": [contents]}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_substitutes_the_id() {
        let read =
            read(Some(json!({"uri": "test://template/123/data"}))).expect("template matches");
        let text = read["contents"][0]["text"].as_str().expect("text content");
        // Compared as JSON: key order depends on serde_json's unified features.
        let data: Value = serde_json::from_str(text).expect("JSON text");
        assert_eq!(
            data,
            json!({"data": "Data for ID: 123", "id": "123", "templateTest": true})
        );
    }

    #[test]
    fn unknown_resources_are_not_found() {
        let error = read(Some(json!({"uri": "test://template//data"}))).expect_err("no id");
        assert_eq!(error.code, RESOURCE_NOT_FOUND);
    }
}
