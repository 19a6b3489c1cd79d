//! Validation latency of a full RunConfig with a 50-policy Cedar set: the admission
//! webhook's per-request cost. Target: ≤ 200 µs median. Run: `cargo bench -p runconfig`
//! (or `make bench-runconfig`).
//!
//! Two cases: *warm*, the same policies validated again (re-apply, update, dry-run,
//! proxy start-up after the webhook admitted it: Cedar results come from the entry
//! cache), and *cold*, policies never seen before (every entry parsed and validated).

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn full_config(policies: usize, nonce: u64) -> runconfig::RunConfig {
    let policies: Vec<String> = (0..policies)
        .map(|i| match i % 3 {
            0 => format!(r#"permit(principal, action == Action::"call_tool", resource == Tool::"tool_{i}");"#),
            1 => format!(r#"permit(principal in THVGroup::"team_{i}", action == Action::"get_prompt", resource) when {{ principal.claim_email like "*@example.com" }};"#),
            _ => format!(r#"forbid(principal, action == Action::"read_resource", resource == Resource::"file:///secret/{i}") unless {{ principal.claim_role == "admin" }};"#),
        })
        .map(|p| format!("// revision {nonce}\n{p}"))
        .collect();
    let document = json!({
        "schema_version": runconfig::SCHEMA_VERSION,
        "name": "github",
        "workload": {"container": {
            "image": "ghcr.io/github/github-mcp-server:v0.20.1",
            "transport": "stdio",
            "env": [{"name": "GITHUB_TOOLSETS", "value": "repos"}],
            "secrets": [{"name": "github-token", "key": "token", "target_env": "GITHUB_PERSONAL_ACCESS_TOKEN"}],
            "permission_profile": {"builtin": "network"}
        }},
        "proxy": {
            "port": 8080,
            "oidc": {"issuer": "https://login.example.com/realms/eng", "audience": "github-mcp", "jwks_url": "https://login.example.com/certs", "scopes": ["openid"]},
            "authz": {"type": "cedarv1", "policies": policies, "entities_json": "[]"},
            "audit": {"event_types": ["mcp_tool_call"]},
            "telemetry": {"endpoint": "otel-collector:4318", "tracing_enabled": true, "sampling_rate": "0.1", "insecure": true},
            "tools": {"filter": ["tool_0", "tool_3"], "overrides": {"tool_0": {"name": "first"}}}
        }
    });
    runconfig::from_value(document).expect("benchmark fixture loads")
}

fn validate(c: &mut Criterion) {
    let config = full_config(50, 0);
    assert!(
        runconfig::validate(&config).is_ok(),
        "benchmark fixture must be valid"
    );
    c.bench_function("validate full RunConfig, 50 Cedar policies (warm)", |b| {
        b.iter(|| runconfig::validate(std::hint::black_box(&config)))
    });
    let mut nonce = 0;
    c.bench_function("validate full RunConfig, 50 Cedar policies (cold)", |b| {
        b.iter_batched(
            || {
                nonce += 1;
                full_config(50, nonce)
            },
            |config| runconfig::validate(&config).is_ok(),
            criterion::BatchSize::SmallInput,
        )
    });
    let bytes = runconfig::to_json(&config);
    c.bench_function("from_json + validate, 50 Cedar policies (warm)", |b| {
        b.iter(|| {
            runconfig::from_json(std::hint::black_box(&bytes))
                .map(|c| runconfig::validate(&c).is_ok())
        })
    });
}

criterion_group!(benches, validate);
criterion_main!(benches);
