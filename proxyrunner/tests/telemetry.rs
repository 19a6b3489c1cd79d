//! OTLP traces: a span per MCP POST reaches the collector as OTLP/HTTP JSON, continues
//! the client's W3C trace, and the upstream is told the proxy's span. OTLP metrics: the
//! proxy's counters reach the collector under ToolHive's instrument names.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::{call, post, proxy, runconfig, upstream};

type Kept = Arc<Mutex<Vec<Value>>>;

/// An OTLP/HTTP collector that keeps what it is sent to `/v1/traces` and `/v1/metrics`.
async fn collector() -> (String, Kept, Kept) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let metrics = Arc::new(Mutex::new(Vec::new()));
    let (kept, kept_metrics) = (received.clone(), metrics.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (kept, kept_metrics) = (kept.clone(), kept_metrics.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (kept, kept_metrics) = (kept.clone(), kept_metrics.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if let Ok(value) = serde_json::from_slice(&body) {
                            match path.as_str() {
                                "/v1/traces" => kept.lock().expect("lock").push(value),
                                "/v1/metrics" => kept_metrics.lock().expect("lock").push(value),
                                _ => {}
                            }
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"{}",
                        ))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received, metrics)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_exported_as_a_child_span_of_the_clients_trace() {
    let up = upstream().await;
    let (collector_url, received, _) = collector().await;
    let config = runconfig(
        &up.url,
        json!({"telemetry": {"endpoint": collector_url, "insecure": true, "tracing_enabled": true,
            "sampling_rate": 1.0, "service_name": "mcp-echo"}}),
    );
    let p = proxy(config, 1 << 20).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{parent}-01");
    let (status, _, _) = post(
        &p,
        &call(1, "tools/call", json!({"name": "echo", "arguments": {}})),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(status, 200);

    let mut span = None;
    for _ in 0..100 {
        span = received
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|batch| {
                batch["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .next();
        if span.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = span.expect("the collector received a span within 10 s");
    assert_eq!(span["traceId"], trace);
    assert_eq!(span["parentSpanId"], parent);
    assert_eq!(span["name"], "tools/call echo");
    assert_eq!(span["kind"], 2);
    let batch = received.lock().expect("lock")[0].clone();
    assert_eq!(
        batch["resourceSpans"][0]["resource"]["attributes"][0],
        json!({"key": "service.name", "value": {"stringValue": "mcp-echo"}})
    );
    let upstream_traceparent = up.seen.lock().expect("lock").headers[0]
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    assert_eq!(
        upstream_traceparent,
        format!(
            "00-{trace}-{}-01",
            span["spanId"].as_str().unwrap_or_default()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_reach_an_otlp_collector_without_prometheus() {
    let up = upstream().await;
    let (collector_url, _, received) = collector().await;
    let config = runconfig(
        &up.url,
        json!({"telemetry": {"endpoint": collector_url, "insecure": true, "metrics_enabled": true,
            "service_name": "mcp-echo"}}),
    );
    let validated =
        runconfig::validate(&runconfig::from_value(config.clone()).expect("loads")).expect("valid");
    let p = proxy(config, 1 << 20).await;
    // Kept for OTLP although Prometheus is off; exported here at a test's pace (the
    // proxy's own exporter runs every OTEL_METRIC_EXPORT_INTERVAL, 60 s by default).
    let metrics = p.metrics.clone().expect("metrics kept for OTLP export");
    let telemetry = validated.proxy.telemetry.as_ref().expect("telemetry");
    proxyrunner::middleware::metrics_export::Exporter::new(metrics, telemetry)
        .expect("an exporter for metricsEnabled with an endpoint")
        .spawn(Duration::from_millis(100));
    let (status, _, _) = post(
        &p,
        &call(1, "tools/call", json!({"name": "echo", "arguments": {}})),
        &[],
    )
    .await;
    assert_eq!(status, 200);

    let mut tool_calls = None;
    for _ in 0..100 {
        tool_calls = received
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find_map(|body| {
                body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
                    .as_array()?
                    .iter()
                    .find(|m| m["name"] == "toolhive_mcp_tool_calls")
                    .cloned()
            });
        if tool_calls.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tool_calls = tool_calls.expect("the collector received the tool-call counter within 10 s");
    let point = &tool_calls["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "1");
    assert!(
        point["attributes"]
            .to_string()
            .contains(r#"{"key":"tool","value":{"stringValue":"echo"}}"#)
    );
    let batch = received.lock().expect("lock")[0].clone();
    assert_eq!(
        batch["resourceMetrics"][0]["resource"]["attributes"][0],
        json!({"key": "service.name", "value": {"stringValue": "mcp-echo"}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_metrics_are_pushed_when_the_proxy_stops() {
    let up = upstream().await;
    let (collector_url, _, received) = collector().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runconfig.json");
    let config = runconfig(
        &up.url,
        json!({"telemetry": {"endpoint": collector_url, "insecure": true, "metrics_enabled": true}}),
    );
    std::fs::write(&path, config.to_string()).expect("write");
    // The default interval (60 s) is far longer than this test: only the shutdown
    // push can deliver the numbers.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path);
    let (mut child, url) = support::spawn_listening(command).await;
    let (status, _, _) = post(
        &support::Proxy::at(url),
        &call(1, "tools/call", json!({"name": "echo", "arguments": {}})),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the proxy stops within 10 s")
        .expect("wait");
    assert!(status.success(), "{status}");
    let pushed = received.lock().expect("lock").clone();
    assert_eq!(pushed.len(), 1, "one push, at shutdown: {pushed:?}");
    assert!(pushed[0].to_string().contains("toolhive_mcp_tool_calls"));
}
