use std::collections::HashMap;

use http::{HeaderValue, Request};
use http_body_util::BodyExt;

use super::*;

fn pod(name: &str, instance: &str, last: u8) -> PodTarget {
    PodTarget {
        name: name.to_owned(),
        instance: instance.to_owned(),
        address: SocketAddr::from(([10, 0, 0, last], 8080)),
    }
}

fn three_pods() -> Arc<PodRouter> {
    let router = PodRouter::new();
    router.set_targets(vec![
        pod("fixture-2", "c/0", 3),
        pod("fixture-0", "a/0", 1),
        pod("fixture-1", "b/0", 2),
    ]);
    router
}

fn request(method: Method, uri: &str, session: Option<&str>) -> http::request::Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(session) = session {
        builder = builder.header(SESSION_HEADER, session);
    }
    builder.body(()).expect("a request").into_parts().0
}

fn session_header(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SESSION_HEADER, HeaderValue::from_str(id).expect("a header"));
    headers
}

/// Initializes `id` through the router as the HTTP upstream does; the pod it landed on.
fn initialize(router: &Arc<PodRouter>, id: &str) -> String {
    let route = router
        .route(false, &request(Method::POST, "/mcp", None))
        .expect("a pod");
    let name = route.target.name.clone();
    assert!(route.learn(StatusCode::OK, &session_header(id)).is_none());
    name
}

async fn body_of(response: Response<Body>) -> serde_json::Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

#[test]
fn a_session_id_that_is_not_text_is_a_session_nobody_knows() {
    let router = three_pods();
    let mut parts = request(Method::POST, "/mcp", None);
    parts.headers.insert(
        SESSION_HEADER,
        HeaderValue::from_bytes(b"s\xff1").expect("obs-text is a valid header value"),
    );
    assert!(
        matches!(router.route(false, &parts), Err(Unroutable::SessionGone(_))),
        "refused as an unknown session, not sent to a pod as a new one"
    );
}

#[test]
fn new_sessions_spread_evenly_across_the_pods() {
    let router = three_pods();
    let mut per_pod: HashMap<String, usize> = HashMap::new();
    for i in 0..30 {
        *per_pod
            .entry(initialize(&router, &format!("s{i}")))
            .or_default() += 1;
    }
    assert_eq!(per_pod.len(), 3);
    assert!(per_pod.values().all(|n| *n == 10), "{per_pod:?}");
    assert_eq!(
        router.sessions_per_pod(),
        [
            ("fixture-0".to_owned(), 10),
            ("fixture-1".to_owned(), 10),
            ("fixture-2".to_owned(), 10)
        ]
    );
}

#[test]
fn a_new_session_goes_to_the_pod_with_the_fewest() {
    let router = three_pods();
    for i in 0..3 {
        initialize(&router, &format!("s{i}"));
    }
    // fixture-1's session ends: the next one goes there.
    let on_1 = ["s0", "s1", "s2"]
        .into_iter()
        .find(|s| router.session(s).expect("pinned").name == "fixture-1")
        .expect("one session on fixture-1");
    router.forget(on_1);
    assert_eq!(initialize(&router, "next"), "fixture-1");
}

#[test]
fn initializes_in_flight_count_as_load() {
    let router = three_pods();
    // Three initializes awaiting their responses: none knows its session id yet.
    let picks: Vec<Pick> = (0..3).map(|_| router.pick().expect("a pod")).collect();
    let mut names: Vec<&str> = picks.iter().map(|p| p.target().name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["fixture-0", "fixture-1", "fixture-2"]);
    // A pick that never got a session (a stateless server, a failed initialize) stops
    // counting when dropped.
    drop(picks);
    assert!(router.lock().pending.is_empty());
}

#[test]
fn every_request_of_a_session_goes_to_its_pod() {
    let router = three_pods();
    let home = initialize(&router, "abc");
    for _ in 0..5 {
        initialize(&router, "other");
    }
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let route = router
            .route(false, &request(method, "/mcp", Some("abc")))
            .expect("routed");
        assert_eq!(route.target.name, home);
    }
}

#[test]
fn delete_forgets_the_session() {
    let router = three_pods();
    initialize(&router, "abc");
    let route = router
        .route(false, &request(Method::DELETE, "/mcp", Some("abc")))
        .expect("routed");
    route.learn(StatusCode::OK, &HeaderMap::new());
    assert_eq!(
        router.session("abc"),
        Err(Unroutable::SessionGone("abc".to_owned()))
    );
}

#[test]
fn a_session_the_server_no_longer_knows_is_forgotten() {
    let router = three_pods();
    initialize(&router, "abc");
    let route = router
        .route(false, &request(Method::POST, "/mcp", Some("abc")))
        .expect("routed");
    route.learn(StatusCode::NOT_FOUND, &HeaderMap::new());
    assert!(router.session("abc").is_err());
}

#[tokio::test]
async fn a_session_whose_pod_is_gone_is_answered_404_with_a_json_rpc_error() {
    let router = three_pods();
    let home = initialize(&router, "abc");
    let rest: Vec<PodTarget> = router
        .targets()
        .iter()
        .filter(|t| t.name != home)
        .cloned()
        .collect();
    router.set_targets(rest);
    let refused = router
        .route(false, &request(Method::POST, "/mcp", Some("abc")))
        .err()
        .expect("refused");
    assert_eq!(refused, Unroutable::SessionGone("abc".to_owned()));
    let response = refused.response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = body_of(response).await;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], code::SESSION_NOT_FOUND);
    // The client initializes again and lands on a pod that is there.
    assert_ne!(initialize(&router, "again"), home);
}

#[test]
fn a_restarted_server_loses_its_sessions_even_when_its_pod_stays() {
    let router = three_pods();
    let home = initialize(&router, "abc");
    let restarted: Vec<PodTarget> = router
        .targets()
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if t.name == home {
                t.instance.push_str("-restarted");
            }
            t
        })
        .collect();
    router.set_targets(restarted);
    assert!(router.session("abc").is_err());
}

#[tokio::test]
async fn without_a_ready_pod_requests_are_answered_503_at_once() {
    let router = PodRouter::new();
    assert!(!router.has_targets());
    let refused = router
        .route(false, &request(Method::POST, "/mcp", None))
        .err()
        .expect("refused");
    assert_eq!(refused, Unroutable::NoPods);
    let response = refused.response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_of(response).await["error"]["code"], code::UNAVAILABLE);
}

#[test]
fn an_unknown_session_is_answered_404() {
    let router = three_pods();
    assert!(matches!(
        router.route(false, &request(Method::GET, "/mcp", Some("never"))),
        Err(Unroutable::SessionGone(_))
    ));
}

#[test]
fn a_legacy_sse_session_lives_as_long_as_its_stream() {
    let router = three_pods();
    let route = router
        .route(true, &request(Method::GET, "/sse", None))
        .expect("a pod");
    let home = route.target.name.clone();
    // No Mcp-Session-Id: the stream's endpoint event will name the session.
    let pick = route
        .learn(StatusCode::OK, &HeaderMap::new())
        .expect("the pick for the stream");
    let stream = pick.pin_while("s-1");
    let post = router
        .route(
            true,
            &request(Method::POST, "/messages?sessionId=s-1", None),
        )
        .expect("routed");
    assert_eq!(post.target.name, home);
    drop(stream);
    assert!(
        router
            .route(
                true,
                &request(Method::POST, "/messages?sessionId=s-1", None)
            )
            .is_err()
    );
}

#[test]
fn readiness_sees_the_routable_pods() {
    let router = PodRouter::new();
    let changes = router.subscribe();
    router.set_targets(vec![pod("fixture-0", "a/0", 1)]);
    assert!(changes.has_changed().expect("the router lives"));
    assert!(router.has_targets());
    assert_eq!(
        router.targets().first().map(|t| t.address),
        Some(SocketAddr::from(([10, 0, 0, 1], 8080)))
    );
}

/// Two loopback servers standing in for pods: each answers with its name in
/// `x-pod`, the session it was asked for in `x-session`, a new `Mcp-Session-Id`
/// (`<name>-<n>`) to a request without one, and the `Host` it got in `x-host`.
mod forwarding {
    use std::sync::atomic::AtomicU32;

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::backend::http::{DEDICATED, Dedicated, HostHeader, Upstream};

    async fn fake_pod(name: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        let sessions = Arc::new(AtomicU32::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let sessions = sessions.clone();
                        async move {
                            let mut response = Response::builder().header("x-pod", name).header(
                                "x-host",
                                request
                                    .headers()
                                    .get("host")
                                    .cloned()
                                    .unwrap_or(HeaderValue::from_static("none")),
                            );
                            match request.headers().get(SESSION_HEADER) {
                                Some(s) => response = response.header("x-session", s.clone()),
                                None => {
                                    let n = sessions.fetch_add(1, Ordering::Relaxed);
                                    response =
                                        response.header(SESSION_HEADER, format!("{name}-{n}"));
                                }
                            }
                            response.body(crate::reply::full("{}"))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        address
    }

    fn client_request(session: Option<&str>) -> http::request::Parts {
        let mut parts = request(Method::POST, "/mcp", session);
        parts
            .headers
            .insert("host", HeaderValue::from_static("mcp.example.com"));
        parts
    }

    async fn send(upstream: &Upstream, session: Option<&str>) -> (String, HeaderMap) {
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let response = upstream
            .forward(client_request(session), crate::reply::empty(), peer)
            .await
            .expect("forwarded");
        let (parts, body) = response.into_parts();
        let _ = body.collect().await;
        let pod = parts
            .headers
            .get("x-pod")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        (pod, parts.headers)
    }

    #[tokio::test]
    async fn one_client_connection_carrying_sessions_of_two_pods_reaches_each_pod() {
        let (a, b) = (fake_pod("a").await, fake_pod("b").await);
        let router = PodRouter::new();
        router.set_targets(vec![
            PodTarget {
                name: "a".into(),
                instance: "a/0".into(),
                address: a,
            },
            PodTarget {
                name: "b".into(),
                instance: "b/0".into(),
                address: b,
            },
        ]);
        let url = url::Url::parse("http://127.0.0.1:9/mcp").expect("a URL");
        let upstream = Upstream::new(&url, "/mcp", HostHeader::Preserve, false)
            .expect("an upstream")
            .with_pods(router.clone());
        // All on one client connection (one dedicated upstream connection).
        DEDICATED
            .scope(Dedicated::default(), async {
                let mut sessions = Vec::new();
                for _ in 0..4 {
                    let (pod, headers) = send(&upstream, None).await;
                    let id = headers[SESSION_HEADER].to_str().expect("text").to_owned();
                    assert!(id.starts_with(&pod), "{id} created on {pod}");
                    assert_eq!(headers["x-host"], "mcp.example.com", "Host preserved");
                    sessions.push(id);
                }
                let pods: std::collections::BTreeSet<&str> =
                    sessions.iter().map(|s| &s[..1]).collect();
                assert_eq!(pods.len(), 2, "spread: {sessions:?}");
                for _ in 0..3 {
                    for id in &sessions {
                        let (pod, headers) = send(&upstream, Some(id)).await;
                        assert!(id.starts_with(&pod), "{id} served by {pod}");
                        assert_eq!(headers["x-session"], id.as_str());
                    }
                }
            })
            .await;
        // Pod a goes away: its sessions are answered 404 at once, b's still served.
        router.set_targets(vec![PodTarget {
            name: "b".into(),
            instance: "b/0".into(),
            address: b,
        }]);
        let response = upstream
            .forward(
                client_request(Some("a-0")),
                crate::reply::empty(),
                SocketAddr::from(([127, 0, 0, 1], 40000)),
            )
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let (pod, _) = send(&upstream, Some("b-0")).await;
        assert_eq!(pod, "b");
    }
}

#[test]
fn sessions_nobody_uses_are_forgotten_but_an_open_sse_stream_holds_its_own() {
    // Wide margins: a loaded CI machine may oversleep.
    let router = PodRouter::with_session_idle(Duration::from_millis(1000));
    router.set_targets(vec![pod("fixture-0", "a/0", 1)]);
    initialize(&router, "quiet");
    initialize(&router, "busy");
    let stream = router.pick().expect("a pod").pin_while("streaming");
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(router.session("busy").is_ok(), "a used session stays");
    }
    assert_eq!(
        router.session("quiet"),
        Err(Unroutable::SessionGone("quiet".to_owned())),
        "unused for longer than the idle bound"
    );
    assert!(
        router.session("streaming").is_ok(),
        "held by its open stream"
    );
    std::thread::sleep(Duration::from_millis(1100));
    drop(router.pick().expect("a pod"));
    assert_eq!(
        router.sessions_per_pod(),
        [("fixture-0".to_owned(), 1)],
        "a new session's pick swept the idle one; the stream's stays"
    );
    drop(stream);
    assert_eq!(router.sessions_per_pod(), [("fixture-0".to_owned(), 0)]);
}

use crate::test_redis::Redis;

impl Redis {
    fn shared(&self, password: Option<&str>) -> Arc<SharedSessions> {
        let password = password.map(str::to_owned);
        Arc::new(
            SharedSessions::new(
                &self.config(),
                password,
                "team-a",
                "fixture",
                Duration::from_secs(60),
            )
            .expect("settings"),
        )
    }
}

/// Two proxy replicas watching the same pods, sharing sessions through `shared`.
fn replicas(shared: &Arc<SharedSessions>) -> (Arc<PodRouter>, Arc<PodRouter>) {
    let (a, b) = (three_pods(), three_pods());
    a.share_sessions(shared.clone());
    b.share_sessions(shared.clone());
    (a, b)
}

/// Initializes `id` on `router` as the HTTP upstream does, sharing what it learned.
async fn initialize_shared(router: &Arc<PodRouter>, id: &str) -> String {
    let route = router
        .route(false, &request(Method::POST, "/mcp", None))
        .expect("a pod");
    let name = route.target.name.clone();
    let change = route.shared_change(StatusCode::OK, &session_header(id));
    assert!(route.learn(StatusCode::OK, &session_header(id)).is_none());
    router.share(change.expect("a new session is shared")).await;
    name
}

#[tokio::test]
async fn a_session_created_on_one_replica_is_routed_by_another() {
    let redis = Redis::start(None);
    let shared = redis.shared(None);
    assert!(shared.ping().await);
    let (a, b) = replicas(&shared);
    let pod = initialize_shared(&a, "s1").await;

    // Replica b has never seen s1: it finds it in Redis and sends it to the same pod.
    let parts = request(Method::POST, "/mcp", Some("s1"));
    assert!(matches!(
        b.route(false, &parts),
        Err(Unroutable::SessionGone(_))
    ));
    let route = b.adopt(&parts, "s1".to_owned()).await.expect("adopted");
    assert_eq!(route.target.name, pod);
    assert!(route.learn(StatusCode::OK, &HeaderMap::new()).is_none());
    // Pinned on b from now on, without Redis.
    assert_eq!(b.session("s1").expect("pinned").name, pod);

    // The client deletes it through b: a forgets it too (Redis) on its next miss.
    let delete = request(Method::DELETE, "/mcp", Some("s1"));
    let route = b.route(false, &delete).expect("routed");
    let change = route.shared_change(StatusCode::OK, &HeaderMap::new());
    assert_eq!(change, Some(SharedChange::Ended("s1".to_owned())));
    b.share(change.expect("ended")).await;
    let c = three_pods();
    c.share_sessions(shared.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.adopt(&parts, "s1".to_owned()).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the deleted session stayed in Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A session nobody created is unknown everywhere.
    assert!(matches!(
        b.adopt(
            &request(Method::POST, "/mcp", Some("nobody")),
            "nobody".to_owned()
        )
        .await,
        Err(Unroutable::SessionGone(_))
    ));
}

/// Makes the Redis on `port` hold every client's commands for `millis` (`CLIENT PAUSE`,
/// sent on a connection of its own).
fn pause_redis(port: u16, millis: u64) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let millis = millis.to_string();
    let command = format!(
        "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n${}\r\n{millis}\r\n$3\r\nALL\r\n",
        millis.len()
    );
    stream.write_all(command.as_bytes()).expect("sends");
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).expect("answers");
    assert_eq!(&reply, b"+OK\r\n");
}

#[tokio::test]
async fn a_lookup_redis_answers_too_late_once_is_tried_again() {
    let redis = Redis::start(None);
    let shared = redis.shared(None);
    let (a, b) = replicas(&shared);
    let pod = initialize_shared(&a, "s1").await;
    // Longer than one command's timeout, shorter than two: the first lookup gets no
    // answer in time, the second does. Without the retry the client would be told its
    // session is gone (404) and to start over.
    pause_redis(redis.port, 2_000);
    let parts = request(Method::POST, "/mcp", Some("s1"));
    let route = b
        .adopt(&parts, "s1".to_owned())
        .await
        .expect("adopted on the second lookup");
    assert_eq!(route.target.name, pod);
}

#[tokio::test]
async fn a_shared_session_whose_pod_is_gone_is_not_adopted() {
    let redis = Redis::start(None);
    let shared = redis.shared(None);
    let (a, b) = replicas(&shared);
    let pod = initialize_shared(&a, "s1").await;
    // Replica b sees the pod go (deleted, restarted: its sessions died with it).
    let left: Vec<PodTarget> = a
        .targets()
        .iter()
        .filter(|t| t.name != pod)
        .cloned()
        .collect();
    b.set_targets(left);
    let parts = request(Method::POST, "/mcp", Some("s1"));
    assert!(matches!(
        b.adopt(&parts, "s1".to_owned()).await,
        Err(Unroutable::SessionGone(_))
    ));
}

#[tokio::test]
async fn without_redis_a_replica_answers_as_it_would_alone() {
    let redis = Redis::start(None);
    let shared = redis.shared(None);
    let (a, b) = replicas(&shared);
    initialize_shared(&a, "s1").await;
    drop(redis);
    // Redis is gone: b cannot learn of s1 and says so (404, initialize again) within
    // the command timeout; a still serves it from memory; new sessions still work.
    let parts = request(Method::POST, "/mcp", Some("s1"));
    let started = Instant::now();
    assert!(matches!(
        b.adopt(&parts, "s1".to_owned()).await,
        Err(Unroutable::SessionGone(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(a.session("s1").is_ok());
    initialize_shared(&b, "s2").await;
    assert!(b.session("s2").is_ok());
}

#[tokio::test]
async fn a_redis_with_a_password() {
    let redis = Redis::start(Some("s3cret"));
    let shared = redis.shared(Some("s3cret"));
    assert!(shared.ping().await, "authenticated");
    let (a, b) = replicas(&shared);
    let pod = initialize_shared(&a, "s1").await;
    let parts = request(Method::POST, "/mcp", Some("s1"));
    assert_eq!(
        b.adopt(&parts, "s1".to_owned())
            .await
            .expect("adopted")
            .target
            .name,
        pod
    );

    // Without the password Redis refuses every command; the replica still answers.
    assert!(!redis.shared(None).ping().await);
    // A password variable that is not set is a start-up error naming it.
    let config = runconfig::middleware::sessions::ValidatedSessionRedis {
        password_env: Some("THV_TEST_UNSET_PASSWORD".to_owned()),
        ..redis.config()
    };
    let error = SharedSessions::from_env(&config, "ns", "fixture", Duration::from_secs(60))
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("THV_TEST_UNSET_PASSWORD"),
        "{error}"
    );
}
