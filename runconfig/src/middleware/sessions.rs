//! Where the proxy replicas share their MCP sessions: a Redis server.

use crate::config::SessionRedis;
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::Check;

/// Validated Redis settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedSessionRedis {
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database number.
    pub db: i64,
    /// Prefix of every key; empty when unset.
    pub key_prefix: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
}

/// Checks the Redis address (`host:port`, no scheme), database and password variable.
pub fn validate(
    redis: &SessionRedis,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedSessionRedis> {
    let address = redis.address.trim();
    let parsed = if address.is_empty() {
        check.fail(
            path.key("address"),
            Reason::Required,
            "the Redis address is empty",
            "host:port of the Redis server, e.g. redis.toolhive-system.svc:6379",
        );
        None
    } else if address.contains("://") {
        check.fail(
            path.key("address"),
            Reason::InvalidFormat,
            format!("{address:?} is a URL; the address is host:port"),
            "host:port without a scheme, e.g. redis.toolhive-system.svc:6379",
        );
        None
    } else {
        host_port(address, &path.key("address"), check)
    };
    if redis.db < 0 || redis.db > i64::from(i32::MAX) {
        check.fail(
            path.key("db"),
            Reason::OutOfRange,
            format!("database {} is out of range", redis.db),
            "a database number from 0 (Redis serves 0 to 15 unless configured otherwise)",
        );
    }
    let password_env = match &redis.password_env {
        Some(env) if check.env_name(&path.key("password_env"), env) => Some(env.clone()),
        _ => None,
    };
    let (host, port) = parsed?;
    Some(ValidatedSessionRedis {
        host,
        port,
        db: redis.db,
        key_prefix: redis.key_prefix.clone().unwrap_or_default(),
        password_env,
    })
}

/// `host:port` or `[v6]:port`.
fn host_port(address: &str, path: &FieldPath, check: &mut Check) -> Option<(String, u16)> {
    let split = match address.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .map(|(host, port)| (host.to_owned(), port)),
        None => address
            .rsplit_once(':')
            .filter(|(host, _)| !host.contains(':'))
            .map(|(host, port)| (host.to_owned(), port)),
    };
    let Some((host, port)) = split.filter(|(host, _)| !host.is_empty()) else {
        check.fail(
            path.clone(),
            Reason::InvalidFormat,
            format!("{address:?} is not host:port"),
            "host:port of the Redis server, e.g. redis.toolhive-system.svc:6379 ([::1]:6379 for IPv6)",
        );
        return None;
    };
    let port = match port.parse::<i64>() {
        Ok(port) => check.port(path, port)?,
        Err(_) => {
            check.fail(
                path.clone(),
                Reason::InvalidFormat,
                format!("{port:?} in {address:?} is not a port number"),
                "host:port with a port from 1 to 65535, e.g. redis:6379",
            );
            return None;
        }
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(redis: SessionRedis) -> Result<ValidatedSessionRedis, Vec<(String, Reason)>> {
        let mut check = Check::default();
        let out = validate(&redis, &FieldPath::parse("proxy.session_redis"), &mut check);
        check.outcome(out)
    }

    fn at(address: &str) -> SessionRedis {
        SessionRedis {
            address: address.to_owned(),
            ..SessionRedis::default()
        }
    }

    #[test]
    fn addresses() {
        let ok = run(at("redis.toolhive-system.svc:6379")).expect("valid");
        assert_eq!(
            (ok.host.as_str(), ok.port),
            ("redis.toolhive-system.svc", 6379)
        );
        let v6 = run(at("[::1]:6380")).expect("valid");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6380));
        for (bad, reason) in [
            ("", Reason::Required),
            ("redis://redis:6379", Reason::InvalidFormat),
            ("redis", Reason::InvalidFormat),
            (":6379", Reason::InvalidFormat),
            ("redis:http", Reason::InvalidFormat),
            ("redis:0", Reason::OutOfRange),
            ("redis:70000", Reason::OutOfRange),
            ("::1:6379", Reason::InvalidFormat),
        ] {
            let problems = run(at(bad)).expect_err(bad);
            assert_eq!(
                problems,
                vec![("proxy.session_redis.address".to_owned(), reason)],
                "{bad}"
            );
        }
    }

    #[test]
    fn database_and_password() {
        let problems = run(SessionRedis {
            db: -1,
            password_env: Some("1PASS".into()),
            ..at("redis:6379")
        })
        .expect_err("invalid");
        assert_eq!(
            problems,
            vec![
                ("proxy.session_redis.db".to_owned(), Reason::OutOfRange),
                (
                    "proxy.session_redis.password_env".to_owned(),
                    Reason::InvalidFormat
                ),
            ]
        );
        let ok = run(SessionRedis {
            db: 3,
            key_prefix: Some("team-a:".into()),
            password_env: Some("THV_SESSION_REDIS_PASSWORD".into()),
            ..at("10.0.0.7:6379")
        })
        .expect("valid");
        assert_eq!(ok.key_prefix, "team-a:");
        assert_eq!(ok.db, 3);
    }
}
