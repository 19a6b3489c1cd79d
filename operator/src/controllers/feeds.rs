//! Watches shared by the controllers: one watch per kind, each event sent to every
//! controller that subscribed to it.
//!
//! The MCPServer and MCPRemoteProxy controllers watch the same nine kinds their specs
//! reference and the same seven kinds they apply; the MCPRegistry controller watches
//! users' ConfigMaps as they do. One watch each instead of one per controller took the
//! operator from 40 watches to 24: fewer connections held open on the API server, and
//! fewer re-opened when their timeout ends them.
//!
//! kube's own way to share a watch (`reflector::store_shared` with the controller's
//! `*_shared_stream` methods) keeps a store of every object of the kind, which none of
//! these metadata-only watches needs. Here a task drives the watch and sends each object
//! into one bounded channel per subscriber, in order: a subscriber that falls behind
//! holds the watch, as one controller's slow trigger stream held its own watch before.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{Stream, StreamExt};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::controllers::mcpserver::Watched;
use crate::controllers::mcpserver::apply::Applied;
use crate::controllers::{scoped_api, triggers};
use crate::labels;

/// Events a subscriber may have waiting before the watch waits for it.
const BACKLOG: usize = 64;

/// What a feed is for: the selector of its watch and what is done with each event once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// The objects the operator applies for MCPServers and MCPRemoteProxies.
    Owned,
    /// Every object but the operator's own: what users reference.
    Referenced,
}

/// One feed per kind, role and namespace scope.
type Key = (TypeId, Role, Option<String>);

/// The shared watches of one operator.
pub struct Feeds {
    client: kube::Client,
    applied: Arc<Applied>,
    feeds: Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>>,
}

impl Feeds {
    /// Feeds that watch with `client`; the owned kinds' events are told to `applied`.
    pub fn new(client: kube::Client, applied: Arc<Applied>) -> Self {
        Self {
            client,
            applied,
            feeds: Mutex::default(),
        }
    }

    /// The `K` objects the operator applies for MCPServers and MCPRemoteProxies (each
    /// controller's mapper keeps those of its own kind). Each event is told to
    /// [`Applied`] once, before any controller sees it, and a watch that lists anew
    /// makes it forget what was applied of `K`.
    pub(crate) fn owned<K: Watched>(
        &self,
        namespace: &Option<String>,
    ) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static {
        let api = scoped_api::<PartialObjectMeta<K>>(&self.client, namespace);
        let observed = self.applied.clone();
        let relisted = self.applied.clone();
        self.subscribe(Role::Owned, namespace, move || {
            triggers::touched_relisted(
                api,
                watcher::Config::default().labels(&labels::proxied_selector()),
                move || relisted.forget::<K>(),
            )
            .map(move |event| {
                if let Ok(object) = &event {
                    observed.observe(object);
                }
                event
            })
        })
    }

    /// Every `K` object but the operator's own (what users reference).
    pub(crate) fn referenced<K: Watched>(
        &self,
        namespace: &Option<String>,
    ) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static {
        let api = scoped_api::<PartialObjectMeta<K>>(&self.client, namespace);
        self.subscribe(Role::Referenced, namespace, move || {
            triggers::touched(api, watcher::Config::default().labels(labels::NOT_APPLIED))
        })
    }

    /// A new subscriber of the feed of `T` for `role`: the running feed's, or one started
    /// with the watch `start` makes (the first subscriber's, or after every earlier one
    /// went).
    fn subscribe<T, S>(
        &self,
        role: Role,
        namespace: &Option<String>,
        start: impl FnOnce() -> S,
    ) -> impl Stream<Item = Result<T, watcher::Error>> + Send + 'static
    where
        T: Clone + Send + Sync + 'static,
        S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let key = (TypeId::of::<T>(), role, namespace.clone());
        let mut feeds = lock(&self.feeds);
        let running = feeds
            .get(&key)
            .and_then(|feed| Arc::clone(feed).downcast::<Feed<T>>().ok())
            .filter(|feed| feed.join(sender.clone()));
        if running.is_none() {
            let feed = Arc::new(Feed {
                subscribers: Mutex::new(Some(vec![sender])),
            });
            feeds.insert(key, feed.clone());
            tokio::spawn(pump(start(), feed));
        }
        futures::stream::unfold(receiver, |mut receiver| async move {
            let object = receiver.recv().await?;
            Some((Ok(object), receiver))
        })
    }
}

/// The subscribers of one watch; `None` once its task ended.
struct Feed<T> {
    subscribers: Mutex<Option<Vec<mpsc::Sender<T>>>>,
}

impl<T> Feed<T> {
    /// Adds `sender` unless the feed's task ended.
    fn join(&self, sender: mpsc::Sender<T>) -> bool {
        match lock(&self.subscribers).as_mut() {
            Some(subscribers) => {
                subscribers.push(sender);
                true
            }
            None => false,
        }
    }

    /// The subscribers still listening, or `None` when none is (the feed is then ended).
    fn listening(&self) -> Option<Vec<mpsc::Sender<T>>> {
        let mut subscribers = lock(&self.subscribers);
        let open = subscribers.as_mut()?;
        open.retain(|sender| !sender.is_closed());
        if open.is_empty() {
            *subscribers = None;
            return None;
        }
        Some(open.clone())
    }
}

/// Sends every object of `events` to each subscriber of `feed`, until none is left. The
/// errors were logged where the watch retries ([`triggers`]).
async fn pump<T: Clone>(events: impl Stream<Item = Result<T, watcher::Error>>, feed: Arc<Feed<T>>) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let Ok(object) = event else { continue };
        let Some(subscribers) = feed.listening() else {
            return;
        };
        for subscriber in subscribers {
            // A subscriber gone since is dropped at the next event.
            let _ = subscriber.send(object.clone()).await;
        }
    }
}

/// The lock's data even if a holder panicked: every update under these locks is a
/// single push, retain or replace.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds whose client is never used: every watch here is a channel of numbers.
    fn feeds() -> Feeds {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("URL"));
        let client = kube::Client::try_from(config).expect("client");
        Feeds::new(client, Arc::default())
    }

    /// A watch's stream, of the numbers sent into `receiver`.
    fn source(
        receiver: mpsc::UnboundedReceiver<i32>,
    ) -> impl Stream<Item = Result<i32, watcher::Error>> + Send + 'static {
        futures::stream::unfold(receiver, |mut receiver| async move {
            let number = receiver.recv().await?;
            Some((Ok(number), receiver))
        })
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_of_one_watch_in_order() {
        let feeds = feeds();
        let (send, receive) = mpsc::unbounded_channel();
        let mut started = 0;
        let first = feeds.subscribe(Role::Referenced, &None, || {
            started += 1;
            source(receive)
        });
        let second = feeds.subscribe(Role::Referenced, &None, || {
            started += 1;
            source(mpsc::unbounded_channel().1)
        });
        assert_eq!(started, 1, "one watch for both");
        for number in 1..=3 {
            send.send(number).expect("pump listening");
        }
        let first: Vec<i32> = first.take(3).map(|e| e.expect("ok")).collect().await;
        let second: Vec<i32> = second.take(3).map(|e| e.expect("ok")).collect().await;
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(second, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_subscriber_after_every_other_left_starts_the_watch_again() {
        let feeds = feeds();
        let (send, receive) = mpsc::unbounded_channel();
        let first = feeds.subscribe(Role::Owned, &None, || source(receive));
        drop(first);
        // The next event finds no one listening and ends the feed.
        send.send(1).expect("pump listening");
        tokio::time::timeout(std::time::Duration::from_secs(5), send.closed())
            .await
            .expect("the feed's task ended");
        let (again, receive) = mpsc::unbounded_channel();
        let second = feeds.subscribe(Role::Owned, &None, || source(receive));
        let mut second = std::pin::pin!(second);
        again.send(2).expect("a new pump");
        assert_eq!(second.next().await.map(|e| e.expect("ok")), Some(2));
    }

    #[tokio::test]
    async fn feeds_of_other_roles_or_namespaces_are_apart() {
        let feeds = feeds();
        let mut started = 0;
        let mut start = || {
            started += 1;
            source(mpsc::unbounded_channel().1)
        };
        let _a = feeds.subscribe(Role::Owned, &None, &mut start);
        let _b = feeds.subscribe(Role::Referenced, &None, &mut start);
        let _c = feeds.subscribe(Role::Owned, &Some("tools".to_owned()), &mut start);
        let _d = feeds.subscribe(Role::Owned, &None, &mut start);
        assert_eq!(started, 3);
    }
}
