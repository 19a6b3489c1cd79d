//! Registry documents from fixtures in `../testdata`: both formats normalise to the same
//! shape, problems are located by JSON path, and the output is stable.

use api::registry::RegistryFormat;
use serde_json::{Value, json};

use super::*;

const TOOLHIVE: &str = include_str!("../testdata/toolhive.json");
const TOOLHIVE_NORMALISED: &str = include_str!("../testdata/toolhive.normalised.json");
const UPSTREAM: &str = include_str!("../testdata/upstream.json");
const UPSTREAM_API: &str = include_str!("../testdata/upstream-api.json");
const INVALID: &str = include_str!("../testdata/invalid-toolhive.json");

fn parsed(text: &str, format: Option<RegistryFormat>) -> Parsed {
    parse(text.as_bytes(), format).unwrap_or_else(|e| panic!("parses: {e}"))
}

fn problems(text: &str, format: Option<RegistryFormat>) -> Vec<String> {
    match parse(text.as_bytes(), format) {
        Ok(p) => panic!("expected problems, parsed {p:?}"),
        Err(Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn output(registry: &Registry) -> Value {
    let text = render(registry).expect("renders").text;
    serde_json::from_str(&text).expect("output is JSON")
}

#[test]
fn toolhive_document_normalises_to_the_golden_output() {
    let parsed = parsed(TOOLHIVE, None);
    assert_eq!(parsed.format, RegistryFormat::Toolhive);
    assert_eq!(parsed.registry.len(), 4);
    let text = render(&parsed.registry).expect("renders").text;
    if std::env::var_os("THV_UPDATE_GOLDEN").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/controllers/mcpregistry/testdata/toolhive.normalised.json"
        );
        std::fs::write(path, &text).expect("golden file written");
        return;
    }
    assert_eq!(
        text, TOOLHIVE_NORMALISED,
        "run with THV_UPDATE_GOLDEN=1 to update testdata/toolhive.normalised.json if the change is intended"
    );
}

#[test]
fn tier_and_status_are_normalised_to_their_canonical_spelling() {
    let registry = parsed(TOOLHIVE, None).registry;
    let fetch = &registry.servers["fetch"].common;
    assert_eq!(
        (fetch.tier, fetch.status),
        (Some(Tier::Official), Some(Status::Active))
    );
}

#[test]
fn fields_the_operator_does_not_interpret_are_kept() {
    let out = output(&parsed(TOOLHIVE, None).registry);
    assert_eq!(out["servers"]["fetch"]["target_port"], json!(8080));
    assert_eq!(
        out["servers"]["fetch"]["permissions"]["network"]["outbound"]["allow_port"],
        json!([443])
    );
    assert_eq!(
        out["remote_servers"]["notion"]["headers"][0]["secret"],
        json!(true)
    );
}

#[test]
fn key_order_of_the_source_does_not_change_the_hash() {
    let reordered = json!({
        "servers": {"time": {"tags": ["time"], "transport": "stdio", "image": "docker.io/mcp/time:latest", "description": "d", "env_vars": [{"required": true, "name": "TZ"}]}},
        "version": "1"
    });
    let original = json!({
        "version": "1",
        "servers": {"time": {"description": "d", "image": "docker.io/mcp/time:latest", "transport": "stdio", "tags": ["time"], "env_vars": [{"name": "TZ", "required": true}]}}
    });
    let hash = |v: &Value| {
        let bytes = serde_json::to_vec(v).expect("json");
        render(&parsed(std::str::from_utf8(&bytes).expect("utf8"), None).registry)
            .map(|r| r.hash)
            .ok()
    };
    assert_eq!(hash(&reordered), hash(&original));
}

#[test]
fn upstream_document_converts_packages_remotes_and_toolhive_extensions() {
    let parsed = parsed(UPSTREAM, None);
    assert_eq!(parsed.format, RegistryFormat::Upstream);
    let out = output(&parsed.registry);
    assert_eq!(
        out,
        json!({
            "version": "1.0.0",
            "last_updated": "2026-11-02T00:00:00Z",
            "servers": {
                "io.github.stacklok/fetch": {
                    "image": "ghcr.io/stackloklabs/gofetch/server:1.0.1",
                    "description": "Fetches a URL and returns its content as markdown.",
                    "transport": "streamable-http",
                    "tier": "Official",
                    "status": "Active",
                    "tools": ["fetch"],
                    "tags": ["web", "fetch"],
                    "env_vars": [{"name": "USER_AGENT", "description": "User agent to send", "required": false, "secret": false, "default": "thv"}],
                    "permissions": {"network": {"outbound": {"allow_port": [443]}}},
                    "repository_url": "https://github.com/StacklokLabs/gofetch",
                    "target_port": 8080,
                    "title": "Fetch"
                }
            },
            "remote_servers": {
                "com.notion/mcp": {
                    "url": "https://mcp.notion.com/mcp",
                    "description": "Notion workspace access.",
                    "transport": "streamable-http",
                    "tools": [],
                    "headers": [{"name": "Authorization", "description": "Bearer token", "required": true, "secret": true}]
                }
            }
        })
    );
    assert_eq!(
        parsed.skipped,
        [
            "io.github.someone/npm-only has no OCI package (found npm); the operator runs container images only"
        ]
    );
}

#[test]
fn registry_api_listing_keeps_the_latest_version_of_each_server() {
    let parsed = parsed(UPSTREAM_API, None);
    assert_eq!(parsed.format, RegistryFormat::Upstream);
    let time = &parsed.registry.servers["io.github.example/time"];
    assert_eq!(time.common.description, "Time, latest version.");
    // Older server.json schemas carry the tag in `version`.
    assert_eq!(time.image, "docker.io/mcp/time:1.1.0");
}

#[test]
fn plain_list_of_server_json_entries_is_upstream() {
    let text = json!([{
        "name": "io.github.example/time",
        "description": "Time.",
        "version": "1.0.0",
        "packages": [{"registryType": "oci", "identifier": "docker.io/mcp/time:1", "transport": {"type": "stdio"}}]
    }])
    .to_string();
    let parsed = parsed(&text, None);
    assert_eq!(parsed.registry.servers.len(), 1);
}

#[test]
fn problems_name_the_json_path_and_what_is_allowed() {
    assert_eq!(
        problems(INVALID, None),
        [
            "servers.fetch.image: missing; an OCI image reference such as ghcr.io/org/server:1.0.0",
            "servers.fetch.transport: \"grpc\" is not allowed; one of stdio, sse, streamable-http",
            "servers.fetch.tools[1]: a number; a tool name",
            "servers.time.description: empty; a sentence saying what the server does",
            "servers.time.tier: \"Gold\" is not allowed; Official or Community",
            "remote_servers.notion.url: \"ftp://mcp.notion.com\" is not an http(s) URL; an absolute http(s) URL such as https://mcp.example.com/mcp",
            "remote_servers.notion.transport: \"stdio\" is not allowed; sse or streamable-http (a remote server is reached over HTTP)",
        ]
    );
}

#[test]
fn upstream_problems_are_located_in_the_entry() {
    let text = json!({"data": {"servers": [
        {"name": "no-namespace", "description": "x", "packages": []},
        {"name": "io.github.x/y", "packages": [{"registryType": "oci", "identifier": "img:1", "transport": {"type": "carrier-pigeon"}}]}
    ]}})
    .to_string();
    assert_eq!(
        problems(&text, None),
        [
            "data.servers[0].name: \"no-namespace\" is not an upstream server name; <reverse-DNS namespace>/<name>, e.g. io.github.org/server",
            "data.servers[1].description: missing; a sentence saying what the server does",
        ]
    );
    let text = json!({"data": {"servers": [
        {"name": "io.github.x/y", "description": "y", "packages": [{"registryType": "oci", "identifier": "img:1", "transport": {"type": "carrier-pigeon"}}]}
    ]}})
    .to_string();
    assert_eq!(
        problems(&text, None),
        [
            "data.servers[0].packages[0].transport.type: \"carrier-pigeon\" is not allowed; one of stdio, sse, streamable-http"
        ]
    );
}

#[test]
fn names_with_dots_are_quoted_in_paths() {
    let text = json!({"servers": {"io.github.x/y": {"description": "d", "transport": "stdio"}}})
        .to_string();
    assert_eq!(
        problems(&text, None),
        [
            "servers[\"io.github.x/y\"].image: missing; an OCI image reference such as ghcr.io/org/server:1.0.0"
        ]
    );
}

#[test]
fn invalid_json_is_reported_with_its_position() {
    let problems = problems("{\"servers\": {", None);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .starts_with(".: not valid JSON (EOF while parsing an object at line 1 column 13)"),
        "{problems:?}"
    );
}

#[test]
fn unknown_shapes_are_refused_naming_both_formats() {
    for text in ["{\"items\": []}", "42"] {
        let problems = problems(text, None);
        assert!(
            problems[0].contains("neither registry format"),
            "{problems:?}"
        );
    }
}

#[test]
fn explicit_format_that_does_not_fit_says_which_format_it_looks_like() {
    let problems = problems(UPSTREAM, Some(RegistryFormat::Toolhive));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("the document looks like the upstream format")),
        "{problems:?}"
    );
}

#[test]
fn explicit_format_is_used() {
    assert_eq!(
        parsed(TOOLHIVE, Some(RegistryFormat::Toolhive)).format,
        RegistryFormat::Toolhive
    );
}

#[test]
fn many_problems_are_summarised() {
    let servers: serde_json::Map<String, Value> = (0..8)
        .map(|i| {
            (
                format!("s{i}"),
                json!({"description": "d", "transport": "stdio"}),
            )
        })
        .collect();
    let text = json!({"servers": servers}).to_string();
    let error = parse(text.as_bytes(), None).expect_err("invalid");
    assert_eq!(error.0.len(), 8);
    assert!(error.to_string().ends_with("; and 3 more"), "{error}");
}
