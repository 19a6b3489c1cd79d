//! Validation and the proxy agree on remote URLs (DESIGN decision 1): every scheme
//! validation admits is one the proxy starts with, and an `https://` upstream is reached
//! over verified TLS. An OIDC provider behind a private CA is trusted through the
//! RunConfig's CA bundle (an MCPOIDCConfig's `caBundleRef`).

mod support;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A private CA and a serving certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params");
    let cert = params.signed_by(&key, &issuer).expect("signed");
    Pki {
        ca_pem,
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

/// An MCP server over HTTPS on loopback that answers every request with one tool.
async fn https_upstream(pki: &Pki) -> String {
    format!("{}/mcp", https_server(pki, answer).await)
}

/// `https://127.0.0.1:<port>` serving `handle` with `pki`'s certificate.
async fn https_server<F, Fut>(pki: &Pki, handle: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .expect("serving certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
    url
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let reply = json!({"jsonrpc": "2.0", "id": body["id"],
                       "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(reply.to_string())))
        .expect("response"))
}

fn options() -> proxyrunner::runner::Options {
    proxyrunner::runner::Options {
        command: Vec::new(),
        host_header: None,
        max_body_bytes: 1 << 20,
        allowed_hosts: Vec::new(),
        listen: None,
        metrics_listen: "127.0.0.1:0".parse().expect("addr"),
        audit_sink: None,
    }
}

#[tokio::test]
async fn every_remote_url_validation_admits_is_one_the_proxy_starts_with() {
    let mut admitted_https = 0;
    for url in [
        "http://127.0.0.1:8080/mcp",
        "https://mcp.example.com/mcp",
        "https://mcp.example.com:8443/",
        "https://10.0.0.7/sse",
        "https://[::1]:9443/mcp",
    ] {
        for transport in ["streamable-http", "sse"] {
            let mut config = support::runconfig(url, json!({}));
            config["workload"]["remote"]["transport"] = json!(transport);
            let config = runconfig::from_value(config).expect("loads");
            let Ok(validated) = runconfig::validate(&config) else {
                continue;
            };
            if let Err(e) = proxyrunner::runner::build(&validated, &options()) {
                panic!("validation admits {url} ({transport}) but the proxy refuses it: {e}");
            }
            admitted_https += usize::from(url.starts_with("https://"));
        }
    }
    assert!(admitted_https > 0, "validation admits https upstreams");
}

#[tokio::test]
async fn an_https_upstream_signed_by_a_trusted_ca_is_proxied_end_to_end() {
    let pki = pki();
    let upstream = https_upstream(&pki).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write CA");
    let config = dir.path().join("runconfig.json");
    std::fs::write(
        &config,
        support::runconfig(&upstream, json!({})).to_string(),
    )
    .expect("write RunConfig");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_thv-proxyrunner"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        // The platform's roots, as an operator sets them for a private CA.
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR");
    let (_child, url) = support::spawn_listening(command).await;
    let proxy = support::Proxy::at(url);
    let (status, _, body) =
        support::post(&proxy, &support::call(1, "tools/list", json!({})), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["tools"][0]["name"], "echo", "{body}");
}

#[tokio::test]
async fn an_https_upstream_no_trusted_root_vouches_for_is_a_bad_gateway() {
    let pki = pki();
    let upstream = https_upstream(&pki).await;
    let proxy = support::proxy(support::runconfig(&upstream, json!({})), 1 << 20).await;
    let (status, _, body) =
        support::post(&proxy, &support::call(1, "tools/list", json!({})), &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_provider_behind_a_private_ca_is_trusted_through_the_ca_bundle() {
    let pki = pki();
    let (key, jwk) = support::es256_key("k1");
    let jwks = Bytes::from(json!({"keys": [jwk]}).to_string());
    let issuer = https_server(&pki, move |_request: Request<Incoming>| {
        let jwks = jwks.clone();
        async move {
            Ok(Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(jwks))
                .expect("response"))
        }
    })
    .await;
    let upstream = support::upstream().await;
    let audience = "https://mcp.example.com";
    let now = support::now();
    let token = support::sign(
        &key,
        &json!({"iss": issuer, "aud": audience, "sub": "alice", "iat": now, "exp": now + 600}),
    );
    let authorization = format!("Bearer {token}");
    let proxy_trusting = |ca: Option<&str>| {
        let mut oidc = json!({"issuer": issuer, "audience": audience,
            "jwks_url": format!("{issuer}/jwks.json"), "allow_private_ip": true});
        if let Some(ca) = ca {
            oidc["ca_bundle"] = json!(ca);
        }
        support::proxy(
            support::runconfig(&upstream.url, json!({"oidc": oidc})),
            1 << 20,
        )
    };
    let list = support::call(1, "tools/list", json!({}));

    let trusting = proxy_trusting(Some(&pki.ca_pem)).await;
    let (status, _, body) = support::post(
        &trusting,
        &list,
        &[("authorization", authorization.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Without the bundle the provider's certificate is not trusted: no key, no entry.
    let public_roots_only = proxy_trusting(None).await;
    let (status, _, body) = support::post(
        &public_roots_only,
        &list,
        &[("authorization", authorization.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_behind_a_private_ca_receives_traces_through_the_ca_bundle() {
    let pki = pki();
    let received = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = received.clone();
    let collector = https_server(&pki, move |request: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            if let Ok(mut seen) = seen.lock() {
                seen.push(request.uri().path().to_owned());
            }
            Ok(Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(b"{}")))
                .expect("response"))
        }
    })
    .await;
    let upstream = support::upstream().await;
    let traced = |ca: Option<&str>| {
        let mut telemetry = json!({"endpoint": collector, "tracing_enabled": true,
            "sampling_rate": 1.0});
        if let Some(ca) = ca {
            telemetry["ca_bundle"] = json!(ca);
        }
        support::proxy(
            support::runconfig(&upstream.url, json!({"telemetry": telemetry})),
            1 << 20,
        )
    };
    let exported = || {
        received
            .lock()
            .map(|r| r.iter().filter(|p| *p == "/v1/traces").count())
            .unwrap_or_default()
    };
    let list = support::call(1, "tools/list", json!({}));

    // Without the bundle the collector's certificate is not trusted: nothing arrives.
    let untrusting = traced(None).await;
    let (status, _, _) = support::post(&untrusting, &list, &[]).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        exported(),
        0,
        "no export without trusting the collector's CA"
    );

    let trusting = traced(Some(&pki.ca_pem)).await;
    let (status, _, _) = support::post(&trusting, &list, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while exported() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no trace reached the collector within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
