//! RFC 8693 token exchange toward the MCP server: the token endpoint, the client, the
//! audience and scopes asked for, the kind of token traded, and the header the new token
//! goes in.

use url::{Host, Url};

use crate::config::TokenExchange;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::{Check, RESTRICTED_HEADERS};

/// RFC 8693's URN of an access token, the default subject token type.
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693's URN of an OpenID Connect ID token.
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693's URN of a JWT.
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Validated token exchange settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedTokenExchange {
    /// The token endpoint.
    pub token_url: Url,
    /// The proxy's client ID.
    pub client_id: Option<String>,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// The audience asked for.
    pub audience: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// The subject token type, as its RFC 8693 URN.
    pub subject_token_type: &'static str,
    /// The header the exchanged token goes in, lower case; `None` replaces
    /// `Authorization`.
    pub header_name: Option<String>,
}

/// The RFC 8693 URN of a subject token type written short (`access_token`, `id_token`,
/// `jwt`) or in full; `None` for anything else.
pub fn token_type_urn(text: &str) -> Option<&'static str> {
    [ACCESS_TOKEN, ID_TOKEN, JWT].into_iter().find(|urn| {
        text == *urn || urn.strip_prefix("urn:ietf:params:oauth:token-type:") == Some(text)
    })
}

/// Checks the token exchange settings (that the proxy authenticates callers, whose
/// tokens it trades, is checked with `oidc`).
pub fn validate(
    exchange: &TokenExchange,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedTokenExchange> {
    let token_url = token_url(exchange.token_url.trim(), &path.key("token_url"), check);
    let audience = exchange.audience.trim();
    if audience.is_empty() {
        check.fail(
            path.key("audience"),
            Reason::Required,
            "the audience is empty",
            "the MCP server's identifier at the authorization server, e.g. mcp-backend",
        );
    }
    let client_id = exchange
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let mut client_secret_env = None;
    if let Some(env) = &exchange.client_secret_env {
        if check.env_name(&path.key("client_secret_env"), env) {
            client_secret_env = Some(env.clone());
        }
        if client_id.is_none() {
            check.fail(
                path.key("client_id"),
                Reason::Required,
                "a client secret is set without a client ID",
                "the proxy's client ID at the authorization server (clientId)",
            );
        }
    }
    let mut scopes_valid = true;
    for (i, scope) in exchange.scopes.iter().enumerate() {
        scopes_valid &= check.scope(&path.key("scopes").index(i), scope);
    }
    let subject_token_type = match exchange.subject_token_type.as_deref() {
        None | Some("") => Some(ACCESS_TOKEN),
        Some(text) => {
            let urn = token_type_urn(text);
            if urn.is_none() {
                check.fail(
                    path.key("subject_token_type"),
                    Reason::NotSupported,
                    format!("{text:?} is not a subject token type"),
                    "access_token, id_token or jwt, or its urn:ietf:params:oauth:token-type: URN",
                );
            }
            urn
        }
    };
    let header_name = match exchange.header_name.as_deref() {
        None | Some("") => Some(None),
        Some(name) => header_name(name, &path.key("header_name"), check),
    };
    if !scopes_valid || audience.is_empty() {
        return None;
    }
    Some(ValidatedTokenExchange {
        token_url: token_url?,
        client_id: client_id.map(str::to_owned),
        client_secret_env,
        audience: audience.to_owned(),
        scopes: exchange.scopes.clone(),
        subject_token_type: subject_token_type?,
        header_name: header_name?,
    })
}

/// An https URL, or an http one whose traffic stays on the machine or in the cluster
/// (loopback, `localhost`, a Service's name): the request carries the caller's token
/// and the proxy's secret.
fn token_url(text: &str, path: &FieldPath, check: &mut Check) -> Option<Url> {
    let url = check.url(path, text, true, "")?;
    if url.scheme() == "http" && !stays_in_cluster(&url) {
        check.fail(
            path.clone(),
            Reason::InsecureUrl,
            format!(
                "{text:?} uses http to a host outside the cluster; the caller's token and the client secret would travel unencrypted"
            ),
            "an https URL (http is accepted only for loopback and in-cluster Service names such as keycloak.auth.svc)",
        );
        return None;
    }
    Some(url)
}

fn stays_in_cluster(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || !name.contains('.')
                || name.ends_with(".svc")
                || name.ends_with(".svc.cluster.local")
        }
        None => false,
    }
}

/// `Some(None)` for `Authorization` (the default), `None` when refused.
fn header_name(name: &str, path: &FieldPath, check: &mut Check) -> Option<Option<String>> {
    let lower = name.to_ascii_lowercase();
    if !crate::validate::is_token(name) {
        check.fail(
            path.clone(),
            Reason::InvalidFormat,
            format!("{name:?} is not an HTTP header name"),
            "letters, digits and !#$%&'*+-.^_`|~, e.g. X-Upstream-Token",
        );
        return None;
    }
    if RESTRICTED_HEADERS.contains(&lower.as_str()) {
        check.fail(
            path.clone(),
            Reason::NotSupported,
            format!("{name} is set by the proxy and cannot carry the exchanged token"),
            "a header of the server's own, e.g. X-Upstream-Token, or none to replace Authorization",
        );
        return None;
    }
    // `Authorization` named explicitly is the default.
    Some(Some(lower).filter(|n| n != "authorization"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exchange: &TokenExchange) -> Result<ValidatedTokenExchange, Vec<(String, Reason)>> {
        let mut check = Check::default();
        let out = validate(exchange, &FieldPath::parse("token_exchange"), &mut check);
        check.outcome(out)
    }

    fn base() -> TokenExchange {
        TokenExchange {
            token_url: "https://idp.example.com/token".to_owned(),
            audience: "mcp-backend".to_owned(),
            ..TokenExchange::default()
        }
    }

    #[test]
    fn short_token_types_become_their_urns() {
        for (short, urn) in [
            ("access_token", ACCESS_TOKEN),
            ("id_token", ID_TOKEN),
            ("jwt", JWT),
            (JWT, JWT),
        ] {
            let exchange = TokenExchange {
                subject_token_type: Some(short.to_owned()),
                ..base()
            };
            assert_eq!(run(&exchange).expect("valid").subject_token_type, urn);
        }
        assert_eq!(
            run(&base()).expect("valid").subject_token_type,
            ACCESS_TOKEN
        );
    }

    #[test]
    fn http_is_accepted_only_where_it_stays_in_the_cluster() {
        for url in [
            "http://127.0.0.1:8080/realms/thv/protocol/openid-connect/token",
            "http://keycloak.auth.svc:8080/token",
            "http://keycloak.auth.svc.cluster.local/token",
            "http://keycloak/token",
        ] {
            let exchange = TokenExchange {
                token_url: url.to_owned(),
                ..base()
            };
            assert!(run(&exchange).is_ok(), "{url}");
        }
        let exchange = TokenExchange {
            token_url: "http://idp.example.com/token".to_owned(),
            ..base()
        };
        assert_eq!(
            run(&exchange).expect_err("refused"),
            [("token_exchange.token_url".to_owned(), Reason::InsecureUrl)]
        );
    }

    #[test]
    fn each_mistake_names_its_field() {
        let exchange = TokenExchange {
            token_url: "ftp://idp/token".to_owned(),
            audience: " ".to_owned(),
            client_secret_env: Some("SECRET".to_owned()),
            scopes: vec!["a b".to_owned()],
            subject_token_type: Some("saml".to_owned()),
            header_name: Some("Content-Length".to_owned()),
            ..TokenExchange::default()
        };
        let problems = run(&exchange).expect_err("refused");
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "token_exchange.token_url",
                "token_exchange.audience",
                "token_exchange.client_id",
                "token_exchange.scopes[0]",
                "token_exchange.subject_token_type",
                "token_exchange.header_name",
            ]
        );
    }

    #[test]
    fn authorization_named_explicitly_is_the_default_header() {
        let exchange = TokenExchange {
            header_name: Some("Authorization".to_owned()),
            ..base()
        };
        assert_eq!(run(&exchange).expect("valid").header_name, None);
        let exchange = TokenExchange {
            header_name: Some("X-Upstream-Token".to_owned()),
            ..base()
        };
        assert_eq!(
            run(&exchange).expect("valid").header_name.as_deref(),
            Some("x-upstream-token")
        );
    }
}
