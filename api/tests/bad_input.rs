//! A manifest with a wrong type or an unknown enum value is refused with an error that
//! names the field, so a user can find the line to fix.

use api::{Manifest, ManifestError};

fn server(spec: &str) -> String {
    format!(
        "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata:\n  name: bad\nspec:\n{spec}"
    )
}

fn error_of(document: &str) -> (String, String) {
    match Manifest::from_yaml(document) {
        Err(ManifestError::Field { path, message }) => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn unknown_transport_names_the_field_and_the_allowed_values() {
    let (path, message) = error_of(&server("  image: a/b:1\n  transport: websocket\n"));
    assert_eq!(path, "spec.transport");
    assert!(message.contains("websocket"), "{message}");
    assert!(
        message.contains("streamable-http"),
        "lists allowed values: {message}"
    );
}

#[test]
fn port_of_wrong_type_names_the_field() {
    let (path, message) = error_of(&server("  image: a/b:1\n  proxyPort: eighty\n"));
    assert_eq!(path, "spec.proxyPort");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn nested_list_error_names_the_index() {
    let (path, _) = error_of(&server(
        "  image: a/b:1\n  env:\n    - name: A\n      value: x\n    - name: [B]\n",
    ));
    assert_eq!(path, "spec.env[1].name");
}

#[test]
fn missing_required_field_names_its_parent() {
    let (path, message) = error_of(&server("  transport: sse\n"));
    assert_eq!(path, "spec");
    assert!(message.contains("image"), "{message}");
}

#[test]
fn unknown_enum_in_config_kind_names_the_field() {
    let document = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPAuthzConfig\nmetadata: {name: x}\nspec:\n  type: opa\n  config: {}\n";
    let (path, message) = error_of(document);
    assert_eq!(path, "spec.type");
    assert!(message.contains("cedarv1"), "{message}");
}

#[test]
fn foreign_kind_is_refused_with_the_list_of_kinds() {
    let error = Manifest::from_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
        .expect_err("not ours");
    let text = error.to_string();
    assert!(
        text.contains("Deployment") && text.contains("MCPServer"),
        "{text}"
    );
}

#[test]
fn broken_yaml_is_an_error_not_a_panic() {
    let (path, message) = error_of("apiVersion: [unclosed\n");
    assert_eq!(
        path, "apiVersion",
        "the error points at where the YAML broke"
    );
    assert!(!message.is_empty());
}
