//! `spec.rateLimiting` of an MCPServer: token buckets on `tools/call`, kept in the Redis
//! of `spec.sessionStorage` so that every proxy replica draws from the same buckets.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Rate limits of `tools/call` requests. A call must find a token in every bucket that
/// applies to it (the server's shared bucket, the caller's, the tool's); it takes one
/// from each, or from none when it is refused (HTTP 429, JSON-RPC error 429).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.shared) || has(self.perUser) || (has(self.tools) && size(self.tools) > 0)").message("at least one of shared, perUser, or tools must be configured"),
)]
pub struct RateLimitConfig {
    /// One bucket for all callers of the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<RateLimitBucket>,
    /// One bucket per authenticated caller (the token's `sub`), for calls of any tool.
    /// Needs authentication (`oidcConfigRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<RateLimitBucket>,
    /// Limits of single tools, in addition to the server's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tools: Vec<ToolRateLimitConfig>,
}

/// A token bucket: `maxTokens` calls at once, refilled evenly to full over
/// `refillPeriod`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitBucket {
    /// Capacity: the burst of calls allowed at once.
    #[schemars(range(min = 1))]
    pub max_tokens: i32,
    /// Time to refill an empty bucket, a Go duration such as `1m0s`, `30s` or `1h`; the
    /// bucket gains `maxTokens / refillPeriod` tokens per second.
    pub refill_period: String,
}

/// The limits of one tool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.shared) || has(self.perUser)").message("at least one of shared or perUser must be configured"),
)]
pub struct ToolRateLimitConfig {
    /// The tool's name, as clients call it.
    #[schemars(length(min = 1))]
    pub name: String,
    /// One bucket for all callers of this tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<RateLimitBucket>,
    /// One bucket per authenticated caller of this tool. Needs authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<RateLimitBucket>,
}
