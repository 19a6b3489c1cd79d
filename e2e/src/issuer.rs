//! An ES256 identity provider on a local address: its JWKS served over HTTP, tokens
//! signed with its key or with a key it does not publish. The chaos suite's OIDC
//! scenario and `bench-vs-toolhive`'s middleware row use it.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// The identity provider: its JWKS served at `bind` (an address the clients of its
/// tokens reach, e.g. the pods' bridge).
pub struct Issuer {
    /// The issuer URL (`http://ADDR`); the JWKS is at `{url}/jwks.json`.
    pub url: String,
    key: jsonwebtoken::EncodingKey,
    stranger: jsonwebtoken::EncodingKey,
}

impl Issuer {
    /// Serves the JWKS on `bind` (port 0 picks one) until the process ends.
    pub async fn start(bind: &str) -> anyhow::Result<Self> {
        use base64::Engine;
        let key_pair = |()| -> anyhow::Result<(jsonwebtoken::EncodingKey, serde_json::Value)> {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let point = pair.public_key_raw();
            let (x, y) = point
                .get(1..)
                .filter(|p| p.len() == 64)
                .map(|p| p.split_at(32))
                .ok_or_else(|| anyhow::anyhow!("unexpected P-256 point"))?;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "chaos", "alg": "ES256",
                "use": "sig", "x": b64.encode(x), "y": b64.encode(y)});
            Ok((
                jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
                jwk,
            ))
        };
        let (key, jwk) = key_pair(())?;
        let (stranger, _) = key_pair(())?;
        let jwks = Bytes::from(serde_json::json!({"keys": [jwk]}).to_string());
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let jwks = jwks.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_| {
                        let jwks = jwks.clone();
                        async move {
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(jwks))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, key, stranger })
    }

    /// A token for `sub` and `audience`, expiring `expires_in` seconds from now
    /// (negative: already expired), signed by this issuer or (`forged`) by a key it does
    /// not publish, under the same key id.
    pub fn token(&self, sub: &str, audience: &str, expires_in: i64, forged: bool) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let claims = serde_json::json!({"iss": self.url, "aud": audience, "sub": sub,
            "iat": now - 600, "nbf": now - 600, "exp": now + expires_in});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("chaos".to_owned());
        let key = if forged { &self.stranger } else { &self.key };
        jsonwebtoken::encode(&header, &claims, key).unwrap_or_default()
    }
}
