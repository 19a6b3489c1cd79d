//! Keycloak on loopback (its server distribution from Maven Central, installed by
//! `scripts/peers.sh`), with a realm `thv` in which one client's tokens can be exchanged
//! (RFC 8693, Keycloak's standard token exchange) by the proxy's client for tokens of
//! the MCP server's audience:
//!
//! | client | what it is |
//! |---|---|
//! | `mcp-client` / `mcp-client-secret` | the MCP client; its tokens' `aud` holds `thv-proxy` |
//! | `thv-proxy` / `proxy-secret` | the proxy; may exchange tokens for `mcp-backend` |
//! | `mcp-backend` | the MCP server, an audience only |
//! | `other-backend` | a client `thv-proxy` may not ask tokens for |
//! | `stranger` / `stranger-secret` | tokens without `thv-proxy` in `aud` |
//!
//! The realm is imported at start-up into an in-memory database: every start is fresh.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::proxy::{Running, TempDir, free_port};
use crate::repo_root;

/// The realm's name.
pub const REALM: &str = "thv";
/// How long Keycloak may take to serve the realm (a first start rebuilds the server).
const STARTUP: Duration = Duration::from_secs(300);

/// A running Keycloak.
pub struct Keycloak {
    /// `http://127.0.0.1:PORT/realms/thv`, the issuer of its tokens.
    pub issuer: String,
    /// The process (`kc.sh` and its JVM, one process group).
    pub process: Running,
    _import: TempDir,
}

/// An audience mapper putting `audience` into access tokens.
fn audience_mapper(audience: &str) -> Value {
    json!({
        "name": format!("aud-{audience}"),
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "consentRequired": false,
        "config": {
            "included.client.audience": audience,
            "id.token.claim": "false",
            "access.token.claim": "true",
            "introspection.token.claim": "true"
        }
    })
}

/// A confidential client with a service account (client credentials grant).
fn client(id: &str, secret: &str, mappers: Vec<Value>, attributes: Value) -> Value {
    json!({
        "clientId": id,
        "enabled": true,
        "publicClient": false,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": false,
        "directAccessGrantsEnabled": false,
        "serviceAccountsEnabled": true,
        "protocol": "openid-connect",
        "protocolMappers": mappers,
        "attributes": attributes,
    })
}

fn realm() -> Value {
    json!({
        "realm": REALM,
        "enabled": true,
        "sslRequired": "none",
        "accessTokenLifespan": 600,
        "clients": [
            client("mcp-client", "mcp-client-secret", vec![audience_mapper("thv-proxy")], json!({})),
            client("thv-proxy", "proxy-secret", vec![audience_mapper("mcp-backend")],
                json!({"standard.token.exchange.enabled": "true"})),
            {"clientId": "mcp-backend", "enabled": true, "bearerOnly": true, "protocol": "openid-connect"},
            {"clientId": "other-backend", "enabled": true, "bearerOnly": true, "protocol": "openid-connect"},
            client("stranger", "stranger-secret", vec![], json!({})),
        ],
    })
}

/// `KEY=value` lines `scripts/peers.sh` prints (it installs Keycloak when missing).
fn peers_value(key: &str) -> anyhow::Result<String> {
    let script = repo_root().join("scripts/peers.sh");
    let output = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .with_context(|| format!("peers.sh printed no {key}="))
}

impl Keycloak {
    /// Starts Keycloak on a free loopback port and waits until the realm is served.
    pub async fn start() -> anyhow::Result<Self> {
        let home = peers_value("KEYCLOAK_HOME")?;
        let java = peers_value("KEYCLOAK_JAVA_HOME")?;
        let import = TempDir::new("keycloak-import");
        // The directory importer reads `<realm>-realm.json`.
        std::fs::write(
            import.path().join(format!("{REALM}-realm.json")),
            realm().to_string(),
        )?;
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(format!("{home}/bin/kc.sh"));
        command
            .args([
                "start-dev",
                "--http-host=127.0.0.1",
                &format!("--http-port={port}"),
                // Tokens carry this issuer whatever host name a request used.
                &format!("--hostname={base}"),
                "--db=dev-mem",
                // The management interface (health, metrics) stays off.
                "--health-enabled=false",
                "--metrics-enabled=false",
            ])
            .env("JAVA_HOME", &java)
            .env("JAVA_OPTS_KC_HEAP", "-Xms64m -Xmx256m")
            .env(
                "JAVA_OPTS_APPEND",
                format!(
                    "-XX:TieredStopAtLevel=1 -Dkeycloak.migration.dir={}",
                    import.path().display()
                ),
            );
        let mut process = Running::start("keycloak", command);
        process.drain_stdout();
        let issuer = format!("{base}/realms/{REALM}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok((200, _)) = request("GET", &discovery, &[], String::new()).await {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "Keycloak served no realm {REALM} within {STARTUP:?}; its log:\n{}",
                    process.stderr_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(Self {
            issuer,
            process,
            _import: import,
        })
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    /// The JWKS endpoint.
    pub fn jwks_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer)
    }

    /// An access token of client `id` (client credentials grant).
    pub async fn token(&self, id: &str, secret: &str) -> anyhow::Result<String> {
        let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        let (status, answer) = request(
            "POST",
            &self.token_url(),
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await?;
        if status != 200 {
            bail!("Keycloak refused a token to {id}: HTTP {status}: {answer}");
        }
        let answer: Value = serde_json::from_str(&answer)?;
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token in Keycloak's answer")
    }

    /// The realm's signing keys.
    pub async fn jwks(&self) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
        let (status, body) = request("GET", &self.jwks_url(), &[], String::new()).await?;
        if status != 200 {
            bail!("Keycloak's JWKS: HTTP {status}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

/// One HTTP/1.1 request on its own connection: status and body.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> anyhow::Result<(u16, String)> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("URL without host")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", authority.as_str());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
