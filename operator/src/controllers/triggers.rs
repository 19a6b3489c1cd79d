//! The watches that trigger reconciles, each retried on its own.
//!
//! kube's `Controller` backs off the merged stream of all its watches whenever one of
//! them fails, and the pause holds every watch. After etcd and the API server restarted
//! (`make chaos`), each of the MCPServer controller's fifteen watches was answered
//! `410 Gone` once (its resourceVersion older than the new watch cache: relist), each
//! answer paused all of them for 10 to 30 s, and nothing was reconciled for minutes.
//! Here each watch backs off alone ([`WatchBackoff`]) and its errors are logged and
//! dropped before the streams merge, so one watch's trouble delays no other's events.
//!
//! Every watch asks the API server to end it after 30 to 60 minutes
//! ([`kube_connect::WATCH_TIMEOUT`]), not kube's 290 s: an idle operator's watches then
//! re-open about once an hour each, not twelve times. A connection that died unseen is
//! failed by the kernel about 20 s after its last byte (the keep-alive and
//! `TCP_USER_TIMEOUT` of [`kube_connect`]), and by the client's read timeout
//! ([`READ_TIMEOUT`]) where those are not set; the API server's bookmarks keep that
//! timeout from firing on a live watch.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

/// The first retry of a failed watch.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between retries.
const LONGEST_RETRY: Duration = Duration::from_secs(8);

/// How long the operator's client waits for the next byte of an answer before it takes
/// the connection for dead. The API server sends every watch a bookmark about once a
/// minute (its watch cache's heartbeat), so a live watch never goes this long without a
/// byte. It also ends a watch whose API server is alive below HTTP but stopped
/// answering, which TCP cannot see, and a dead connection where [`kube_connect`] leaves
/// kube's own client (behind a proxy, with an exec credential plugin). Every other
/// request is answered within seconds.
pub const READ_TIMEOUT: Duration = Duration::from_secs(180);

/// The operator's client for `config`: [`kube_connect`]'s (the proxy's), with
/// [`READ_TIMEOUT`] counted from each request sent (not from when its pooled connection
/// went idle).
pub fn client(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    kube_connect::client(config)
}

/// Retry delays of one watch: 250 ms, doubling to 8 s, back to 250 ms after any event.
/// kube's default (client-go's 0.8 to 30 s, plus up to 100 % jitter) can leave a watch
/// asleep for a minute after a short API server outage; `backon`, behind kube's
/// `ExponentialBackoff`, would be a direct dependency for these few lines.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(LONGEST_RETRY);
        Some(now)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// Drops (after logging) the errors of the watch of `kind`, which retries on its own.
fn quiet<K>(
    kind: String,
    events: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    events.filter_map(move |event| {
        futures::future::ready(match event {
            Ok(object) => Some(Ok(object)),
            Err(error) => {
                tracing::warn!(watch = %kind, %error, "watch failed; retrying");
                None
            }
        })
    })
}

/// The objects of `api` as they change, for `Controller::watches_stream` and
/// `owns_stream`.
pub fn touched<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    touched_relisted(api, config, || ())
}

/// [`touched`], calling `relisted` whenever the watch lists the objects anew (at its
/// start, and after its resourceVersion expired): a deletion while it was down is never
/// reported as an event, so what was known of the objects may be stale.
pub fn touched_relisted<K>(
    api: Api<K>,
    config: watcher::Config,
    mut relisted: impl FnMut() + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let kind = K::kind(&()).into_owned();
    quiet(
        kind,
        watcher(api, kube_connect::with_watch_timeout(config))
            .backoff(WatchBackoff::default())
            .inspect_ok(move |event| {
                if matches!(event, watcher::Event::Init) {
                    relisted();
                }
            })
            .touched_objects(),
    )
}

/// The controller's own kind: a store of it, kept by a watch of `api` (each object
/// passed through `modify` on the way in), and the stream that triggers reconciles,
/// for `Controller::for_stream`.
pub fn reflected<K>(
    api: Api<K>,
    config: watcher::Config,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&()).into_owned();
    let events = reflector(
        writer,
        watcher(api, kube_connect::with_watch_timeout(config))
            .backoff(WatchBackoff::default())
            .modify(modify),
    )
    .applied_objects();
    (store, quiet(kind, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_retries_sooner_than_kubes_default_and_starts_over_after_an_event() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<u128> = backoff.by_ref().take(8).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_RETRY));
    }

    #[test]
    fn the_read_timeout_outlasts_a_bookmark_and_ends_before_the_watch() {
        // A watch stays silent no longer than a minute (bookmarks); dead after three.
        const { assert!(READ_TIMEOUT.as_secs() >= 120) };
        const { assert!(*kube_connect::WATCH_TIMEOUT.start() as u64 > READ_TIMEOUT.as_secs()) };
    }

    #[tokio::test]
    async fn errors_are_dropped_and_the_objects_pass() {
        let events = futures::stream::iter([Ok(1), Err(watcher::Error::NoResourceVersion), Ok(2)]);
        let passed: Vec<i32> = quiet("Test".to_owned(), events)
            .map(|e| e.expect("errors are dropped"))
            .collect()
            .await;
        assert_eq!(passed, [1, 2]);
    }
}
