//! Rate limits of `tools/call`: token buckets, kept in the session storage's Redis so
//! that every proxy replica draws from the same ones.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{RateLimit, RateLimitBucket};
use crate::error::Reason;
use crate::path::FieldPath;
use crate::validate::{Check, go_duration};

/// A validated token bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Capacity.
    pub capacity: u32,
    /// Time to refill it from empty.
    pub refill: Duration,
}

impl Bucket {
    /// Tokens gained per second.
    pub fn rate(&self) -> f64 {
        f64::from(self.capacity) / self.refill.as_secs_f64()
    }
}

/// The buckets of one tool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolBuckets {
    /// Shared by every caller of the tool.
    pub shared: Option<Bucket>,
    /// One per caller of the tool.
    pub per_user: Option<Bucket>,
}

/// Validated rate limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidatedRateLimit {
    /// Shared by every caller.
    pub shared: Option<Bucket>,
    /// One per caller.
    pub per_user: Option<Bucket>,
    /// By tool name.
    pub tools: BTreeMap<String, ToolBuckets>,
}

/// Checks the buckets, and what they need: Redis (`session_redis`) always, an
/// authenticated caller (`oidc`) for per-user buckets.
pub fn validate(
    limit: &RateLimit,
    has_redis: bool,
    has_authentication: bool,
    path: &FieldPath,
    check: &mut Check,
) -> Option<ValidatedRateLimit> {
    let before = check.len();
    if !has_redis {
        check.fail(
            path.clone(),
            Reason::Required,
            "rate limits are kept in Redis and no session storage Redis is configured",
            "session storage in Redis (an MCPServer's spec.sessionStorage)",
        );
    }
    if limit.shared.is_none() && limit.per_user.is_none() && limit.tools.is_empty() {
        check.fail(
            path.clone(),
            Reason::Required,
            "no limit is configured",
            "at least one of shared, per_user or tools",
        );
    }
    let per_user = |check: &mut Check, at: FieldPath| {
        if !has_authentication {
            check.fail(
                at,
                Reason::Required,
                "a per-user limit needs to know the caller, and no authentication is configured",
                "authentication (OIDC), or a shared limit",
            );
        }
    };
    if limit.per_user.is_some() {
        per_user(check, path.key("per_user"));
    }
    let shared = limit
        .shared
        .as_ref()
        .and_then(|b| bucket(b, &path.key("shared"), check));
    let user = limit
        .per_user
        .as_ref()
        .and_then(|b| bucket(b, &path.key("per_user"), check));
    let mut tools = BTreeMap::new();
    for (i, tool) in limit.tools.iter().enumerate() {
        let at = path.key("tools").index(i);
        if tool.name.trim().is_empty() {
            check.fail(
                at.key("name"),
                Reason::Required,
                "the tool name is empty",
                "the name clients call the tool by",
            );
            continue;
        }
        if tool.shared.is_none() && tool.per_user.is_none() {
            check.fail(
                at.clone(),
                Reason::Required,
                format!("no limit is configured for tool {:?}", tool.name),
                "at least one of shared or per_user",
            );
        }
        if tool.per_user.is_some() {
            per_user(check, at.key("per_user"));
        }
        let buckets = ToolBuckets {
            shared: tool
                .shared
                .as_ref()
                .and_then(|b| bucket(b, &at.key("shared"), check)),
            per_user: tool
                .per_user
                .as_ref()
                .and_then(|b| bucket(b, &at.key("per_user"), check)),
        };
        if tools.insert(tool.name.clone(), buckets).is_some() {
            check.fail(
                at.key("name"),
                Reason::Duplicate,
                format!("tool {:?} is listed twice", tool.name),
                "one entry per tool",
            );
        }
    }
    (check.len() == before).then_some(ValidatedRateLimit {
        shared,
        per_user: user,
        tools,
    })
}

fn bucket(bucket: &RateLimitBucket, path: &FieldPath, check: &mut Check) -> Option<Bucket> {
    let capacity = match u32::try_from(bucket.max_tokens) {
        Ok(n) if n >= 1 && bucket.max_tokens <= i64::from(i32::MAX) => Some(n),
        _ => {
            check.fail(
                path.key("max_tokens"),
                Reason::OutOfRange,
                format!("max_tokens {} is out of range", bucket.max_tokens),
                "at least 1",
            );
            None
        }
    };
    let refill = match go_duration(&bucket.refill_period) {
        Some(d) if d >= Duration::from_millis(1) => Some(d),
        Some(_) => {
            check.fail(
                path.key("refill_period"),
                Reason::OutOfRange,
                format!("refill_period {:?} is too short", bucket.refill_period),
                "at least 1ms, e.g. 1m0s or 30s",
            );
            None
        }
        None => {
            check.fail(
                path.key("refill_period"),
                Reason::InvalidFormat,
                format!("{:?} is not a duration", bucket.refill_period),
                "a Go duration such as 1m0s, 30s or 1h",
            );
            None
        }
    };
    Some(Bucket {
        capacity: capacity?,
        refill: refill?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolRateLimit;

    fn run(
        limit: &RateLimit,
        redis: bool,
        authn: bool,
    ) -> Result<ValidatedRateLimit, Vec<(String, Reason)>> {
        let mut check = Check::default();
        let out = validate(
            limit,
            redis,
            authn,
            &FieldPath::parse("proxy.rate_limit"),
            &mut check,
        );
        check.outcome(out)
    }

    fn bucket(max_tokens: i64, refill_period: &str) -> Option<RateLimitBucket> {
        Some(RateLimitBucket {
            max_tokens,
            refill_period: refill_period.to_owned(),
        })
    }

    #[test]
    fn buckets_parse_with_their_rates() {
        let limit = RateLimit {
            shared: bucket(100, "1m0s"),
            per_user: bucket(10, "1m"),
            tools: vec![ToolRateLimit {
                name: "search".into(),
                shared: bucket(5, "30s"),
                per_user: None,
            }],
        };
        let ok = run(&limit, true, true).expect("valid");
        let shared = ok.shared.expect("shared");
        assert_eq!(shared.capacity, 100);
        assert!((shared.rate() - 100.0 / 60.0).abs() < 1e-9);
        assert_eq!(
            ok.tools["search"].shared.map(|b| b.refill),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn what_a_limit_needs_is_named_at_its_field() {
        let limit = RateLimit {
            per_user: bucket(0, "soon"),
            tools: vec![
                ToolRateLimit {
                    name: "search".into(),
                    per_user: bucket(1, "1s"),
                    ..ToolRateLimit::default()
                },
                ToolRateLimit {
                    name: "search".into(),
                    ..ToolRateLimit::default()
                },
            ],
            ..RateLimit::default()
        };
        let problems = run(&limit, false, false).expect_err("invalid");
        let paths: Vec<(&str, Reason)> = problems.iter().map(|(p, r)| (p.as_str(), *r)).collect();
        assert_eq!(
            paths,
            [
                ("proxy.rate_limit", Reason::Required),
                ("proxy.rate_limit.per_user", Reason::Required),
                ("proxy.rate_limit.per_user.max_tokens", Reason::OutOfRange),
                (
                    "proxy.rate_limit.per_user.refill_period",
                    Reason::InvalidFormat
                ),
                ("proxy.rate_limit.tools[0].per_user", Reason::Required),
                ("proxy.rate_limit.tools[1]", Reason::Required),
                ("proxy.rate_limit.tools[1].name", Reason::Duplicate),
            ]
        );
        assert!(
            run(&RateLimit::default(), true, true).is_err(),
            "nothing configured"
        );
    }
}
