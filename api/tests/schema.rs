//! The generated CRDs are structural `apiextensions.k8s.io/v1` schemas an API server
//! accepts, documented for `kubectl explain`, and carry the cross-field CEL rules.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::core::cel::Validator;
use serde_json::{Value, json};

fn crd(kind: &str) -> CustomResourceDefinition {
    api::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

fn storage_schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec
        .versions
        .iter()
        .find(|v| v.storage)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("storage version has a schema")
}

/// Calls `visit(path, schema)` for every property below `schema`.
fn walk(path: &str, schema: &JSONSchemaProps, visit: &mut dyn FnMut(&str, &JSONSchemaProps)) {
    for (name, child) in schema.properties.iter().flatten() {
        let child_path = format!("{path}.{name}");
        visit(&child_path, child);
        walk(&child_path, child, visit);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
        let item_path = format!("{path}[]");
        walk(&item_path, item, visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &schema.additional_properties {
        walk(&format!("{path}{{}}"), value, visit);
    }
}

#[test]
fn every_property_has_a_type() {
    for crd in api::crds::all() {
        walk(
            &crd.spec.names.kind,
            storage_schema(&crd),
            &mut |path, schema| {
                let typed = schema.type_.is_some()
                    || schema.x_kubernetes_preserve_unknown_fields == Some(true)
                    || schema.x_kubernetes_int_or_string == Some(true);
                assert!(typed, "{path} has no type: a structural schema needs one");
            },
        );
    }
}

#[test]
fn no_type_inside_logical_junctors() {
    // Structural schemas forbid types and descriptions under anyOf/oneOf/allOf/not.
    for crd in api::crds::all() {
        walk(
            &crd.spec.names.kind,
            storage_schema(&crd),
            &mut |path, schema| {
                for junctor in [&schema.any_of, &schema.one_of, &schema.all_of] {
                    for branch in junctor.iter().flatten() {
                        assert!(
                            branch.type_.is_none(),
                            "{path}: typed branch under a junctor"
                        );
                    }
                }
            },
        );
    }
}

#[test]
fn unknown_fields_are_preserved_only_where_intended() {
    let mut preserved = BTreeSet::new();
    for crd in api::crds::all() {
        walk(
            &crd.spec.names.kind,
            storage_schema(&crd),
            &mut |path, schema| {
                if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
                    preserved.insert(path.to_owned());
                }
            },
        );
    }
    let expected: BTreeSet<String> = [
        "MCPServer.spec.podTemplateSpec".to_owned(),
        "MCPRemoteProxy.spec.podTemplateSpec".to_owned(),
        // ToolHive's external authentication types not supported yet: read (so the
        // manifest is refused naming the type, not for an unknown field), never used.
        "MCPExternalAuthConfig.spec.embeddedAuthServer".to_owned(),
        "MCPExternalAuthConfig.spec.awsSts".to_owned(),
        "MCPExternalAuthConfig.spec.upstreamInject".to_owned(),
        "MCPExternalAuthConfig.spec.obo".to_owned(),
        "MCPExternalAuthConfig.spec.xaa".to_owned(),
    ]
    .into();
    assert_eq!(preserved, expected);
}

#[test]
fn every_property_is_described_for_kubectl_explain() {
    for crd in api::crds::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = storage_schema(&crd);
        assert!(schema.description.is_some(), "{kind} has no description");
        walk(&kind, schema, &mut |path, schema| {
            let described = schema
                .description
                .as_ref()
                .is_some_and(|d| !d.trim().is_empty());
            assert!(described, "{path} has no description");
        });
    }
}

#[test]
fn v1beta1_is_stored_and_v1alpha1_is_a_deprecated_identical_copy() {
    for crd in api::crds::all() {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, "toolhive.stacklok.dev");
        let storage: Vec<_> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.storage)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(storage, ["v1beta1"], "{kind}");
        let beta = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == "v1beta1")
            .expect("v1beta1");
        let alpha = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == "v1alpha1")
            .expect("v1alpha1");
        assert!(
            alpha.served && alpha.deprecated == Some(true),
            "{kind} v1alpha1 served and deprecated"
        );
        let warning = alpha.deprecation_warning.as_deref().unwrap_or_default();
        assert!(
            warning.contains("v1beta1"),
            "{kind}: warning points to v1beta1: {warning}"
        );
        assert_eq!(alpha.schema, beta.schema, "{kind}: schemas differ");
        assert_eq!(alpha.subresources, beta.subresources);
        assert!(
            beta.subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "{kind} has a status subresource"
        );
    }
}

#[test]
fn printer_columns_short_names_and_category() {
    for crd in api::crds::all() {
        let kind = crd.spec.names.kind.as_str();
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .expect("storage");
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        let expected: &[&str] = match kind {
            "MCPServer" => &["Status", "Ready", "URL", "Age"],
            "MCPRegistry" => &["Status", "Ready", "Servers", "Age"],
            // ToolHive's columns.
            "MCPGroup" => &["Servers", "Phase", "Checked", "Age"],
            "MCPRemoteProxy" => &["Phase", "Remote URL", "URL", "Ready", "Age"],
            "MCPExternalAuthConfig" => &["Type", "Valid", "Age"],
            _ => &["Valid", "Age"],
        };
        for column in expected {
            assert!(
                columns.contains(column),
                "{kind} lacks column {column}: {columns:?}"
            );
        }
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["toolhive".to_owned()][..]),
            "{kind}"
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{kind} short name"
        );
    }
}

#[test]
fn ports_and_transports_are_bounded_in_the_schema() {
    let crd = crd("MCPServer");
    let spec = &storage_schema(&crd).properties.as_ref().expect("props")["spec"];
    let props = spec.properties.as_ref().expect("spec props");
    for port in ["proxyPort", "mcpPort"] {
        assert_eq!(props[port].minimum, Some(1.0), "{port}");
        assert_eq!(props[port].maximum, Some(65535.0), "{port}");
    }
    let transports: Vec<_> = props["transport"]
        .enum_
        .iter()
        .flatten()
        .map(|v| v.0.clone())
        .collect();
    assert_eq!(
        transports,
        [json!("stdio"), json!("sse"), json!("streamable-http")]
    );
    assert_eq!(
        props["transport"].default.as_ref().map(|d| d.0.clone()),
        Some(json!("stdio"))
    );
    assert_eq!(
        props["proxyMode"].default.as_ref().map(|d| d.0.clone()),
        Some(json!("streamable-http"))
    );
    assert_eq!(
        props["proxyPort"].default.as_ref().map(|d| d.0.clone()),
        Some(json!(8080))
    );
}

/// Runs the CRD's CEL rules on `object` as the API server would, returning the messages.
fn cel_errors(kind: &str, object: Value) -> Vec<String> {
    let crd = crd(kind);
    let schema = serde_json::to_value(storage_schema(&crd)).expect("schema serialises");
    match Validator::new().validate(&schema, &object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn server(spec: Value) -> Value {
    json!({"apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPServer", "metadata": {"name": "s"}, "spec": spec})
}

#[test]
fn cel_rejects_authz_config_together_with_authz_config_ref() {
    let errors = cel_errors(
        "MCPServer",
        server(json!({
            "image": "a/b:1",
            "authzConfig": {"type": "inline", "inline": {"policies": ["permit(principal, action, resource);"]}},
            "authzConfigRef": {"name": "shared"}
        })),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("mutually exclusive"), "{errors:?}");
}

#[test]
fn cel_accepts_either_authz_source_alone() {
    assert!(
        cel_errors(
            "MCPServer",
            server(json!({"image": "a/b:1", "authzConfigRef": {"name": "shared"}}))
        )
        .is_empty()
    );
    assert!(cel_errors("MCPServer", server(json!({"image": "a/b:1"}))).is_empty());
}

#[test]
fn cel_requires_inline_body_for_inline_authz() {
    let errors = cel_errors(
        "MCPServer",
        server(json!({"image": "a/b:1", "authzConfig": {"type": "inline"}})),
    );
    assert!(
        errors.iter().any(|e| e.contains("inline must be set")),
        "{errors:?}"
    );
}

#[test]
fn cel_rejects_unknown_builtin_permission_profile() {
    let errors = cel_errors(
        "MCPServer",
        server(json!({"image": "a/b:1", "permissionProfile": {"type": "builtin", "name": "root"}})),
    );
    assert!(
        errors.iter().any(|e| e.contains("'none' or 'network'")),
        "{errors:?}"
    );
    let ok = cel_errors(
        "MCPServer",
        server(
            json!({"image": "a/b:1", "permissionProfile": {"type": "configmap", "name": "my-profile", "key": "p.json"}}),
        ),
    );
    assert!(ok.is_empty(), "{ok:?}");
}

#[test]
fn cel_matches_oidc_type_and_body() {
    let object = |spec: Value| json!({"apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPOIDCConfig", "metadata": {"name": "o"}, "spec": spec});
    let errors = cel_errors(
        "MCPOIDCConfig",
        object(json!({"type": "inline", "kubernetesServiceAccount": {}})),
    );
    assert_eq!(errors.len(), 2, "both rules fire: {errors:?}");
    assert!(
        cel_errors(
            "MCPOIDCConfig",
            object(json!({"type": "inline", "inline": {"issuer": "https://idp"}}))
        )
        .is_empty()
    );
}

#[test]
fn cel_matches_registry_source_type_and_body() {
    let object = |source: Value| json!({"apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPRegistry", "metadata": {"name": "r"}, "spec": {"source": source}});
    let errors = cel_errors(
        "MCPRegistry",
        object(json!({"type": "git", "configMap": {"name": "x"}})),
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        cel_errors(
            "MCPRegistry",
            object(json!({"type": "git", "git": {"url": "https://example.com/r.git"}}))
        )
        .is_empty()
    );
}

#[test]
fn cel_requires_policies_for_cedar_and_endpoint_for_http() {
    let object = |spec: Value| json!({"apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPAuthzConfig", "metadata": {"name": "a"}, "spec": spec});
    let errors = cel_errors(
        "MCPAuthzConfig",
        object(json!({"type": "cedarv1", "config": {}})),
    );
    assert!(
        errors.iter().any(|e| e.contains("at least one policy")),
        "{errors:?}"
    );
    let errors = cel_errors(
        "MCPAuthzConfig",
        object(json!({"type": "httpv1", "config": {}})),
    );
    assert!(
        errors.iter().any(|e| e.contains("config.http")),
        "{errors:?}"
    );
}

#[test]
fn cel_requires_endpoint_when_telemetry_enabled() {
    let object = |otel: Value| json!({"apiVersion": "toolhive.stacklok.dev/v1beta1", "kind": "MCPTelemetryConfig", "metadata": {"name": "t"}, "spec": {"openTelemetry": otel}});
    let errors = cel_errors("MCPTelemetryConfig", object(json!({"enabled": true})));
    assert!(
        errors.iter().any(|e| e.contains("endpoint is required")),
        "{errors:?}"
    );
    let errors = cel_errors(
        "MCPTelemetryConfig",
        object(
            json!({"enabled": true, "endpoint": "c:4318", "headers": {"Authorization": "x"}, "sensitiveHeaders": [{"name": "Authorization", "secretKeyRef": {"name": "s", "key": "k"}}]}),
        ),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("both headers and sensitiveHeaders")),
        "{errors:?}"
    );
}
