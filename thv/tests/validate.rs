//! `thv validate` as a user runs it: the examples pass together, every manifest in
//! `examples/invalid/` fails with the field path its `# expect:` comment names, and
//! `-o json` is machine-readable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn thv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thv"))
        .args(args)
        .output()
        .expect("thv runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn invalid_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples().join("invalid"))
        .expect("examples/invalid exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The field path named by the file's first line, `# expect: <path>`.
fn expected_path(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| {
            panic!(
                "{} must start with '# expect: <field path>'",
                file.display()
            )
        })
        .trim()
        .to_owned()
}

#[test]
fn every_example_passes_when_validated_together() {
    let dir = examples();
    let output = thv(&["validate", "-f", dir.to_str().expect("utf-8 path")]);
    assert!(
        output.status.success(),
        "examples must validate:\n{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout(&output).contains("warning:"),
        "references among the examples resolve: {}",
        stdout(&output)
    );
}

#[test]
fn there_is_an_invalid_example_for_at_least_fifteen_rules() {
    assert!(invalid_examples().len() >= 15, "{:?}", invalid_examples());
}

#[test]
fn every_invalid_example_fails_at_the_expected_field_only() {
    for file in invalid_examples() {
        let expected = expected_path(&file);
        let output = thv(&["validate", "-f", file.to_str().expect("utf-8 path")]);
        let text = stdout(&output);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{} must be refused:\n{text}",
            file.display()
        );
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(": warning: "))
            .collect();
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!(": {expected}: "))),
            "{}: no error at {expected}:\n{text}",
            file.display()
        );
        assert!(
            errors.iter().all(|l| l.contains(&expected)),
            "{}: invalid only at {expected}, but:\n{text}",
            file.display()
        );
    }
}

#[test]
fn json_output_is_an_array_of_findings() {
    let file = examples().join("invalid/tool-config-breaks-server.yaml");
    let output = thv(&[
        "validate",
        "-o",
        "json",
        "-f",
        file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let findings: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON array");
    assert_eq!(findings.len(), 2, "{findings:?}");
    let server = &findings[1];
    for key in [
        "file", "kind", "name", "path", "message", "reason", "severity",
    ] {
        assert!(server[key].is_string(), "{key} in {server}");
    }
    assert_eq!(server["document"], 2);
    assert_eq!(server["kind"], "MCPServer");
    assert_eq!(server["name"], "github");
    assert_eq!(server["severity"], "error");
    assert_eq!(server["reason"], "Conflict");
}

#[test]
fn json_output_of_valid_files_is_an_empty_array() {
    let dir = examples();
    let output = thv(&[
        "validate",
        "-o",
        "json",
        "-f",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success());
    let findings: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON array");
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn warnings_do_not_fail_validation() {
    let file = examples().join("mcpserver-full.yaml");
    let output = thv(&["validate", "-f", file.to_str().expect("utf-8 path")]);
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("mcpserver-full.yaml:1: warning: spec.toolConfigRef: MCPToolConfig github-tools does not exist yet"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn missing_file_is_a_usage_error() {
    let output = thv(&["validate", "-f", "/nonexistent/manifest.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such file"));
}

#[test]
fn missing_filename_is_a_usage_error() {
    assert_eq!(thv(&["validate"]).status.code(), Some(2));
}

#[test]
fn directories_are_read_recursively_only_with_r() {
    let dir = examples();
    let flat = thv(&["validate", "-f", dir.to_str().expect("utf-8 path")]);
    assert!(
        flat.status.success(),
        "examples/invalid is not read without -R"
    );
    let recursive = thv(&["validate", "-R", "-f", dir.to_str().expect("utf-8 path")]);
    assert_eq!(recursive.status.code(), Some(1));
}

fn thv_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_thv"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("thv runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input written");
    child.wait_with_output().expect("thv finishes")
}

const SERVER: &str = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPServer\nmetadata: {name: github}\nspec: {image: a/b:1, toolConfigRef: {name: tools}}\n";
const TOOLS: &str = "apiVersion: toolhive.stacklok.dev/v1beta1\nkind: MCPToolConfig\nmetadata: {name: tools, namespace: other}\nspec: {toolsFilter: [search]}\n";

#[test]
fn references_resolve_within_a_namespace_only() {
    let input = format!("{SERVER}---\n{TOOLS}");
    let elsewhere = stdout(&thv_stdin(&["validate", "-f", "-"], &input));
    assert!(
        elsewhere.contains(
            "<stdin>:1: warning: spec.toolConfigRef: MCPToolConfig tools does not exist yet"
        ),
        "{elsewhere}"
    );
    let same = thv_stdin(&["validate", "-n", "other", "-f", "-"], &input);
    assert!(same.status.success());
    assert_eq!(stdout(&same), "");
}

#[test]
fn a_second_definition_of_the_same_object_is_a_warning() {
    let input = format!("{SERVER}---\n{SERVER}");
    let text = stdout(&thv_stdin(&["validate", "-f", "-"], &input));
    assert!(
        text.contains(
            "<stdin>:2: warning: metadata.name: MCPServer github is also defined at <stdin>:1"
        ),
        "{text}"
    );
}

#[test]
fn an_unserved_version_is_refused_at_api_version() {
    let input = SERVER.replace("v1beta1", "v2");
    let output = thv_stdin(&["validate", "-f", "-"], &input);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with(
            "<stdin>:1: apiVersion: toolhive.stacklok.dev/v2 is not a served version of MCPServer"
        ),
        "{}",
        stdout(&output)
    );
}

#[test]
fn documents_of_other_kinds_are_skipped() {
    let input = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: x}}\nspec: {{}}\n---\n{}",
        SERVER.replace(", toolConfigRef: {name: tools}", "")
    );
    let output = thv_stdin(&["validate", "-f", "-"], &input);
    assert!(output.status.success(), "{}", stdout(&output));
    assert_eq!(stdout(&output), "");
}
