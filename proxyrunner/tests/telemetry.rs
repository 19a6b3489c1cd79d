//! OTLP traces: a span per MCP POST reaches the collector as OTLP/HTTP JSON, continues
//! the client's W3C trace, and the upstream is told the proxy's span.

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

/// An OTLP/HTTP collector that keeps what it is sent to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let kept = kept.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if path == "/v1/traces"
                            && let Ok(value) = serde_json::from_slice(&body)
                        {
                            kept.lock().expect("lock").push(value);
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
    (url, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_exported_as_a_child_span_of_the_clients_trace() {
    let up = upstream().await;
    let (collector_url, received) = collector().await;
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
