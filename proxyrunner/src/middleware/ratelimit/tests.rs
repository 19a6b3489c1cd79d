use std::collections::BTreeMap;
use std::time::Duration;

use runconfig::middleware::ratelimit::ToolBuckets;
use serde_json::{Map, Value};

use super::*;
use crate::test_redis::Redis;

fn bucket(capacity: u32, refill: Duration) -> Option<Bucket> {
    Some(Bucket { capacity, refill })
}

fn limiter(redis: &Redis, limit: ValidatedRateLimit) -> RateLimiter {
    let config = redis.config();
    let connection = shared::connection(&config, None).expect("settings");
    RateLimiter::new(
        limit,
        connection,
        Health::new(&config),
        "test:thv-ratelimit:ns/fixture:",
    )
}

fn user(sub: &str) -> Principal {
    let mut claims = Map::new();
    claims.insert("sub".to_owned(), Value::from(sub));
    Principal {
        subject: sub.to_owned(),
        claims,
    }
}

fn call(tool: &str) -> Call {
    Call {
        method: "tools/call".to_owned(),
        target: Some(tool.to_owned()),
        arguments: None,
        progress_token: None,
    }
}

/// How many of `n` calls pass, back to back.
async fn passing(limiter: &RateLimiter, principal: &Principal, tool: &str, n: usize) -> usize {
    let mut passed = 0;
    for _ in 0..n {
        if limiter.decide(principal, &call(tool)).await == Verdict::Pass {
            passed += 1;
        }
    }
    passed
}

#[tokio::test]
async fn a_shared_bucket_allows_its_burst_then_refuses_with_the_wait() {
    let redis = Redis::start(None);
    let limit = ValidatedRateLimit {
        shared: bucket(3, Duration::from_secs(60)),
        ..ValidatedRateLimit::default()
    };
    let limiter = limiter(&redis, limit);
    let anyone = Principal::anonymous();
    assert_eq!(passing(&limiter, &anyone, "echo", 3).await, 3);
    match limiter.decide(&anyone, &call("echo")).await {
        Verdict::Refuse(refusal) => {
            assert_eq!(refusal.code, RATE_LIMITED);
            assert!(
                refusal.message.contains("shared limit"),
                "{}",
                refusal.message
            );
            // One token every 20 s.
            assert!(
                (19..=20).contains(&refusal.retry_after.unwrap_or_default()),
                "{refusal:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Other methods are never limited.
    let list = Call {
        method: "tools/list".to_owned(),
        target: None,
        arguments: None,
        progress_token: None,
    };
    assert_eq!(limiter.decide(&anyone, &list).await, Verdict::Pass);
}

#[tokio::test]
async fn buckets_refill_at_their_rate() {
    let redis = Redis::start(None);
    let limit = ValidatedRateLimit {
        shared: bucket(2, Duration::from_millis(400)),
        ..ValidatedRateLimit::default()
    };
    let limiter = limiter(&redis, limit);
    let anyone = Principal::anonymous();
    assert_eq!(passing(&limiter, &anyone, "echo", 5).await, 2);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(passing(&limiter, &anyone, "echo", 5).await, 2, "full again");
}

#[tokio::test]
async fn per_user_and_per_tool_buckets_are_separate_and_all_must_allow() {
    let redis = Redis::start(None);
    let minute = Duration::from_secs(60);
    let limit = ValidatedRateLimit {
        shared: None,
        per_user: bucket(4, minute),
        tools: BTreeMap::from([(
            "search".to_owned(),
            ToolBuckets {
                shared: bucket(3, minute),
                per_user: bucket(2, minute),
            },
        )]),
    };
    let limiter = limiter(&redis, limit);
    let (alice, bob) = (user("alice"), user("bob"));
    // Alice: her search limit (2) stops her first; a refused call takes no token, so
    // her server-wide limit (4) still has 2 for another tool.
    assert_eq!(passing(&limiter, &alice, "search", 5).await, 2);
    assert_eq!(passing(&limiter, &alice, "echo", 5).await, 2);
    // Bob has his own buckets, but shares search's (3, of which Alice took 2).
    assert_eq!(passing(&limiter, &bob, "search", 5).await, 1);
    match limiter.decide(&bob, &call("search")).await {
        Verdict::Refuse(refusal) => {
            assert!(
                refusal.message.contains("shared limit of tool search"),
                "{}",
                refusal.message
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        passing(&limiter, &bob, "echo", 5).await,
        3,
        "bob's own 4, one used"
    );
}

#[tokio::test]
async fn two_replicas_draw_from_the_same_buckets() {
    let redis = Redis::start(None);
    let limit = ValidatedRateLimit {
        shared: bucket(10, Duration::from_secs(60)),
        ..ValidatedRateLimit::default()
    };
    let (a, b) = (limiter(&redis, limit.clone()), limiter(&redis, limit));
    let anyone = Principal::anonymous();
    let (x, y) = tokio::join!(
        passing(&a, &anyone, "echo", 8),
        passing(&b, &anyone, "echo", 8)
    );
    assert_eq!(x + y, 10, "{x} + {y}");
}

#[tokio::test]
async fn without_redis_calls_pass() {
    let redis = Redis::start(None);
    let limit = ValidatedRateLimit {
        shared: bucket(1, Duration::from_secs(60)),
        ..ValidatedRateLimit::default()
    };
    let limiter = limiter(&redis, limit);
    drop(redis);
    let anyone = Principal::anonymous();
    assert_eq!(passing(&limiter, &anyone, "echo", 3).await, 3);
}
