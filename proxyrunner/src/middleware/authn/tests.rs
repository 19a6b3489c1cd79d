//! Authentication, specified by the requests a client sends.

use serde_json::json;

use super::*;
use crate::middleware::fixtures::{self, oidc, request};

fn authentication(proxy: serde_json::Value) -> Authentication {
    let config = fixtures::validated(proxy);
    Authentication::new(
        Authenticator::new(config.proxy.oidc.as_ref()).expect("builds"),
        false,
        "",
        ProxyMode::StreamableHttp,
    )
}

fn hs256_token() -> String {
    let claims = json!({"iss": "https://idp.example.com", "aud": "mcp", "sub": "mallory",
                        "exp": now() + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
    )
    .expect("signs")
}

#[tokio::test]
async fn admits_everyone_as_anonymous_without_oidc() {
    let authn = authentication(json!({}));
    let mut parts = request(&[("authorization", "Bearer anything")]);
    let principal = authn.admit(&mut parts).await.expect("admitted");
    assert_eq!(principal, Some(Principal::anonymous()));
    assert!(
        parts.headers.contains_key(AUTHORIZATION),
        "without OIDC the header is the server's business"
    );
}

#[tokio::test]
async fn rejects_request_without_bearer_token_pointing_at_resource_metadata() {
    let authn = authentication(oidc());
    for headers in [&[][..], &[("authorization", "Basic YWxpY2U6c2VjcmV0")][..]] {
        let mut parts = request(headers);
        let refused = authn.admit(&mut parts).await.expect_err("refused");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            refused.headers()[WWW_AUTHENTICATE],
            "Bearer resource_metadata=\"http://proxy.example/.well-known/oauth-protected-resource\""
        );
    }
}

#[tokio::test]
async fn rejects_symmetric_tokens_without_fetching_keys() {
    let authn = authentication(oidc());
    let token = format!("Bearer {}", hs256_token());
    let mut parts = request(&[("authorization", &token)]);
    let refused = authn.admit(&mut parts).await.expect_err("refused");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()[WWW_AUTHENTICATE].to_str().expect("ASCII");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("symmetric"), "{challenge}");
}

#[tokio::test]
async fn rejects_opaque_tokens_without_an_introspection_endpoint() {
    let authn = authentication(oidc());
    let mut parts = request(&[("authorization", "Bearer opaque-token")]);
    let refused = authn.admit(&mut parts).await.expect_err("refused");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn serves_protected_resource_metadata_only_when_tokens_are_required() {
    let headers = request(&[]).headers;
    let anonymous = authentication(json!({}));
    let answer = anonymous
        .serve(METADATA_PATH, &headers)
        .expect("the path is authentication's");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);

    let protected = authentication(oidc());
    let answer = protected
        .serve(METADATA_PATH, &headers)
        .expect("the path is authentication's");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(protected.serve("/mcp", &headers).is_none());
    assert!(
        protected
            .serve("/.well-known/oauth-protected-resourcex", &headers)
            .is_none()
    );
}

#[test]
fn advertises_the_endpoint_clients_use() {
    let headers = request(&[]).headers;
    let authn = Authentication::new(Authenticator::Anonymous, false, "/github", ProxyMode::Sse);
    assert_eq!(
        authn.resource_url(&headers),
        "http://proxy.example/github/sse"
    );
}
