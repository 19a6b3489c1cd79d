//! Headers added toward a remote server (`workload.remote.headers`, an MCPRemoteProxy's
//! `headerForward`): a literal value and one read from the environment (a Secret's, in
//! Kubernetes) reach the server on every request, and a client cannot override them.

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// An MCP server on loopback that answers every request with the headers it received.
async fn header_echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
    url
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let reply = json!({"jsonrpc": "2.0", "id": body["id"], "result": {"headers": seen}});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(reply.to_string())))
        .expect("response"))
}

#[tokio::test]
async fn configured_headers_reach_the_remote_server_and_the_client_cannot_override_them() {
    let upstream = header_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = support::runconfig(&upstream, json!({}));
    config["workload"]["remote"]["headers"] = json!([
        {"name": "X-Tenant-ID", "value": "engineering"},
        {"name": "X-API-Key", "value_env": "THV_TEST_API_KEY"},
    ]);
    let path = dir.path().join("runconfig.json");
    std::fs::write(&path, config.to_string()).expect("write RunConfig");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        // A Secret's value as the kubelet passes it, with the newline of a file.
        .env("THV_TEST_API_KEY", "s3cret\n");
    let (_child, url) = support::spawn_listening(command).await;
    let proxy = support::Proxy::at(url);
    let (status, _, body) = support::post(
        &proxy,
        &support::call(1, "tools/list", json!({})),
        &[("x-tenant-id", "someone-else"), ("x-api-key", "guess")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = &body["result"]["headers"];
    assert_eq!(seen["x-tenant-id"], "engineering", "{seen}");
    assert_eq!(seen["x-api-key"], "s3cret", "{seen}");
}

#[tokio::test]
async fn configured_headers_reach_a_container_servers_http_endpoint_too() {
    let upstream = header_echo().await;
    let address: std::net::SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .parse()
        .expect("host:port");
    let config = json!({
        "schema_version": "v1",
        "name": "scripted",
        "workload": {"container": {
            "image": "local/echo", "transport": "streamable-http",
            "target_host": address.ip().to_string(), "target_port": address.port(),
            "headers": [{"name": "Authorization", "value": "Bearer from-a-secret"}],
        }},
        "proxy": {"host": "127.0.0.1", "port": 8080},
    });
    let proxy = support::proxy(config, 1 << 20).await;
    let (status, _, body) = support::post(
        &proxy,
        &support::call(1, "tools/list", json!({})),
        &[("authorization", "Bearer the-callers")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"]["headers"]["authorization"], "Bearer from-a-secret",
        "{body}"
    );
}

#[tokio::test]
async fn a_header_whose_environment_variable_is_missing_stops_the_proxy_with_its_name() {
    let upstream = header_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = support::runconfig(&upstream, json!({}));
    config["workload"]["remote"]["headers"] =
        json!([{"name": "X-API-Key", "value_env": "THV_TEST_NOT_SET"}]);
    let path = dir.path().join("runconfig.json");
    std::fs::write(&path, config.to_string()).expect("write RunConfig");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env_remove("THV_TEST_NOT_SET")
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("workload.remote.headers[0].value_env")
            && stderr.contains("THV_TEST_NOT_SET"),
        "{stderr}"
    );
}
