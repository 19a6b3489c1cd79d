//! Host and Origin validation: DNS-rebinding protection (MCP transports spec, "Security
//! Warning"). A browser page on a foreign origin, or a request whose `Host` names a host
//! the proxy does not serve, gets 403.
//!
//! - `Origin`, when present, must be one of the allowed origins; a proxy bound to a
//!   loopback address also accepts loopback origins (`http://localhost:*`).
//! - `Host` is checked when the allowed hosts are known: always for a proxy bound to a
//!   loopback address (loopback names only, plus the allowed origins' and `--allowed-host`
//!   hosts); for a proxy bound to all interfaces (a pod) only when hosts are configured,
//!   since its Service and Ingress names are not known to it.

use std::collections::HashSet;

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

/// The allow-lists.
#[derive(Clone, Debug)]
pub struct OriginGuard {
    hosts: Option<HashSet<String>>,
    origins: HashSet<String>,
    loopback: bool,
}

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginGuard {
    /// Builds the guard for a proxy bound to `bind_host`.
    pub fn new(bind_host: &str, allowed_origins: &[url::Url], allowed_hosts: &[String]) -> Self {
        let loopback = is_loopback(bind_host);
        let origins = allowed_origins
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect();
        let mut hosts: HashSet<String> = allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        hosts.extend(
            allowed_origins
                .iter()
                .filter_map(|u| u.host_str().map(str::to_ascii_lowercase)),
        );
        let hosts = if loopback {
            hosts.extend(LOOPBACK_NAMES.iter().map(|h| (*h).to_owned()));
            Some(hosts)
        } else if allowed_hosts.is_empty() {
            None
        } else {
            Some(hosts)
        };
        Self {
            hosts,
            origins,
            loopback,
        }
    }

    /// `Ok` or the reason for a 403.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        if let Some(hosts) = &self.hosts {
            let host = headers
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| "the request has no valid Host header".to_owned())?;
            let name = host_name(host).to_ascii_lowercase();
            if !hosts.contains(&name) {
                return Err(format!("Host {host:?} is not served by this proxy"));
            }
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin
                .to_str()
                .map_err(|_| "the Origin header is not valid text".to_owned())?;
            let allowed = self.origins.contains(origin)
                || (self.loopback
                    && url::Url::parse(origin)
                        .ok()
                        .and_then(|u| u.host_str().map(|h| LOOPBACK_NAMES.contains(&h)))
                        .unwrap_or(false));
            if !allowed {
                return Err(format!("Origin {origin:?} is not allowed"));
            }
        }
        Ok(())
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_loopback(bind_host: &str) -> bool {
    let trimmed = bind_host.trim_start_matches('[').trim_end_matches(']');
    trimmed == "localhost"
        || trimmed
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).expect("valid"));
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).expect("valid"));
        }
        h
    }

    #[test]
    fn loopback_proxy_refuses_foreign_host_and_origin() {
        let guard = OriginGuard::new("127.0.0.1", &[], &[]);
        assert!(guard.check(&headers("127.0.0.1:8080", None)).is_ok());
        assert!(
            guard
                .check(&headers("localhost:8080", Some("http://localhost:3000")))
                .is_ok()
        );
        assert!(guard.check(&headers("[::1]:8080", None)).is_ok());
        assert!(guard.check(&headers("evil.example:8080", None)).is_err());
        assert!(
            guard
                .check(&headers("127.0.0.1:8080", Some("https://evil.example")))
                .is_err()
        );
    }

    #[test]
    fn pod_proxy_checks_origins_and_configured_hosts_only() {
        let origins = [url::Url::parse("https://app.example.com").expect("url")];
        let open = OriginGuard::new("0.0.0.0", &origins, &[]);
        assert!(open.check(&headers("mcp-x-proxy.ns.svc", None)).is_ok());
        assert!(
            open.check(&headers("any", Some("https://app.example.com")))
                .is_ok()
        );
        assert!(
            open.check(&headers("any", Some("https://evil.example")))
                .is_err()
        );
        let strict = OriginGuard::new("0.0.0.0", &origins, &["mcp.example.com".to_owned()]);
        assert!(strict.check(&headers("mcp.example.com", None)).is_ok());
        assert!(strict.check(&headers("app.example.com", None)).is_ok());
        assert!(strict.check(&headers("evil.example", None)).is_err());
    }
}
