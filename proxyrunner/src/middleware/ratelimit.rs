//! Rate limits of `tools/call` (`spec.rateLimiting`): token buckets kept in the session
//! storage's Redis, so every proxy replica draws from the same buckets.
//!
//! A call finds the buckets that apply to it (the server's shared one, the caller's,
//! the tool's shared one and the caller's for that tool) and takes one token from each
//! in one Lua script, atomically, or from none when any is short: then it is refused
//! (HTTP 429, JSON-RPC error 429 with `retryAfterSeconds`, `Retry-After`), and it does
//! not drain the buckets that had tokens. The time is Redis's own (`TIME`), so replicas
//! with skewed clocks agree. A bucket nobody drew from for twice its refill period is
//! full again, so its key expires.
//!
//! Placed after authorization (a refused call takes no token) and before tool renaming
//! (limits name tools as clients call them). Redis unreachable or slow: the call passes,
//! the outage is logged once and its end (a rate limiter must not take the server down
//! with it).
//!
//! Hand-written rather than with a rate-limiting crate (`governor`): those keep buckets
//! in process memory, and the limit here is across replicas.

use redis::aio::ConnectionManager;
use runconfig::middleware::ratelimit::{Bucket, ValidatedRateLimit};

use super::authn::Principal;
use super::chain::{BuildContext, Middleware, Refusal, Verdict};
use crate::backend::pods::shared::{self, COMMAND_TIMEOUT, Health};
use crate::mcp::Call;
use crate::runner::BuildError;

/// JSON-RPC error code of a rate-limited call: 429, as ToolHive answers (outside the
/// range JSON-RPC reserves).
pub const RATE_LIMITED: i64 = 429;

/// Takes one token from each bucket `KEYS` names, or none when one is short.
/// `ARGV` holds three values per bucket: capacity, tokens per second, key lifetime in
/// seconds. Returns `{'0'}` when taken, or `{i, wait}`: bucket `i` (1-based) is short
/// and holds a token again in `wait` seconds (strings: Lua numbers returned to Redis are
/// truncated to integers).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local level = {}
local short = 0
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local saved = redis.call('HMGET', KEYS[i], 'level', 'at')
  local value = capacity
  if saved[1] and saved[2] then
    local gained = math.max(0, now - tonumber(saved[2])) * rate
    value = math.min(capacity, tonumber(saved[1]) + gained)
  end
  level[i] = value
  if short == 0 and value < 1 then
    short = i
  end
end
local take = 1
if short ~= 0 then
  take = 0
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'level', tostring(level[i] - take), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3 * i]))
end
if short == 0 then
  return {'0'}
end
return {tostring(short), tostring((1 - level[short]) / tonumber(ARGV[3 * short - 1]))}
";

/// The rate-limit stage.
pub struct RateLimiter {
    limit: ValidatedRateLimit,
    redis: ConnectionManager,
    script: redis::Script,
    /// `<keyPrefix>thv-ratelimit:<namespace>/<server>:`.
    prefix: String,
    health: Health,
}

impl Middleware for RateLimiter {
    type Config<'a> = &'a ValidatedRateLimit;

    fn build(
        config: Self::Config<'_>,
        context: &BuildContext<'_>,
    ) -> Result<Option<Self>, BuildError> {
        // Validation refuses rate limits without session storage; this is its Redis.
        let redis = context.config.proxy.session_redis.as_ref().ok_or_else(|| {
            BuildError::Setting(
                "proxy.rate_limit: rate limits are kept in Redis and proxy.session_redis is not set"
                    .to_owned(),
            )
        })?;
        let password =
            shared::password_from_env(redis).map_err(|e| BuildError::Setting(e.to_string()))?;
        let connection =
            shared::connection(redis, password).map_err(|e| BuildError::Setting(e.to_string()))?;
        let namespace = std::env::var("POD_NAMESPACE").unwrap_or_default();
        Ok(Some(Self::new(
            config.clone(),
            connection,
            Health::new(redis),
            &format!(
                "{}thv-ratelimit:{namespace}/{}:",
                redis.key_prefix, context.config.source.name
            ),
        )))
    }

    async fn decide(&self, principal: &Principal, call: &Call) -> Verdict {
        if call.method != "tools/call" {
            return Verdict::Pass;
        }
        let buckets = self.buckets(principal, call.target.as_deref());
        if buckets.is_empty() {
            return Verdict::Pass;
        }
        match self.take(&buckets).await {
            Some(Taken::Yes) | None => Verdict::Pass,
            Some(Taken::Short { bucket, wait }) => Verdict::Refuse(Refusal {
                code: RATE_LIMITED,
                message: format!("Rate limit exceeded: {bucket}"),
                // Whole seconds, at least one (Retry-After has no fractions).
                retry_after: Some(wait.ceil().max(1.0) as u64),
            }),
        }
    }
}

/// What the script did.
#[derive(Debug, PartialEq)]
enum Taken {
    /// A token from every bucket.
    Yes,
    /// None: `bucket` is short for `wait` seconds.
    Short { bucket: String, wait: f64 },
}

impl RateLimiter {
    /// A limiter drawing from `redis`, its keys under `prefix`.
    pub fn new(
        limit: ValidatedRateLimit,
        redis: ConnectionManager,
        health: Health,
        prefix: &str,
    ) -> Self {
        Self {
            limit,
            redis,
            script: redis::Script::new(TAKE),
            prefix: prefix.to_owned(),
            health,
        }
    }

    /// The buckets a call of `tool` by `principal` draws from: (key suffix, what it is,
    /// bucket). Per-user buckets need an authenticated caller; validation requires
    /// authentication when there are any, so the anonymous caller only meets them on a
    /// misconfigured proxy, where they are skipped.
    fn buckets(&self, principal: &Principal, tool: Option<&str>) -> Vec<(String, String, Bucket)> {
        let user = (!principal.claims.is_empty()).then_some(principal.subject.as_str());
        let mut out = Vec::new();
        if let Some(bucket) = self.limit.shared {
            out.push((
                "shared".to_owned(),
                "the server's shared limit".to_owned(),
                bucket,
            ));
        }
        if let (Some(bucket), Some(user)) = (self.limit.per_user, user) {
            out.push((
                format!("user:{user}"),
                "your limit for this server".to_owned(),
                bucket,
            ));
        }
        if let Some((name, tool)) = tool.and_then(|t| self.limit.tools.get_key_value(t)) {
            if let Some(bucket) = tool.shared {
                out.push((
                    format!("tool:{name}"),
                    format!("the shared limit of tool {name}"),
                    bucket,
                ));
            }
            if let (Some(bucket), Some(user)) = (tool.per_user, user) {
                // The name's length keeps `tool-user:a:b:c` unambiguous.
                out.push((
                    format!("tool-user:{}:{name}:{user}", name.len()),
                    format!("your limit for tool {name}"),
                    bucket,
                ));
            }
        }
        out
    }

    /// Runs the script over `buckets`; `None` when Redis did not answer.
    async fn take(&self, buckets: &[(String, String, Bucket)]) -> Option<Taken> {
        let mut invocation = self.script.prepare_invoke();
        for (suffix, _, bucket) in buckets {
            invocation.key(format!("{}{suffix}", self.prefix));
            // Full again after one refill period; kept for two.
            let lifetime = (bucket.refill.as_secs_f64() * 2.0).ceil().max(1.0) as u64;
            invocation
                .arg(bucket.capacity)
                .arg(format!("{:.9}", bucket.rate()))
                .arg(lifetime);
        }
        let mut redis = self.redis.clone();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, async move {
            invocation.invoke_async::<Vec<String>>(&mut redis).await
        })
        .await;
        let answer = self.health.outcome(
            "rate limiting: reading the buckets",
            "calls pass unlimited until Redis answers",
            result,
        )?;
        let short: usize = answer.first()?.parse().ok()?;
        if short == 0 {
            return Some(Taken::Yes);
        }
        let (_, what, _) = buckets.get(short - 1)?;
        let wait = answer.get(1).and_then(|w| w.parse().ok()).unwrap_or(1.0);
        Some(Taken::Short {
            bucket: what.clone(),
            wait,
        })
    }
}

#[cfg(test)]
mod tests;
