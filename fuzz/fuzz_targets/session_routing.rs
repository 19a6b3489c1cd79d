//! Any sequence of requests, responses and pod changes through the `PodRouter` that
//! sends each MCP session of an HTTP server to the pod holding it, with session ids
//! taken from fuzzed `Mcp-Session-Id` headers (requests and responses) and fuzzed
//! `?sessionId=` queries (legacy SSE).
//!
//! Nothing may panic, and the router must agree with a plain model of it after every
//! step: a named session goes to the pod it was pinned to while that pod is routable,
//! and is refused (404) otherwise; a request naming no session goes to a pod with the
//! fewest sessions; the per-pod session counts match.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use proxyrunner::backend::pods::{Pinned, PodRouter, PodTarget, Route, Unroutable};
use proxyrunner::transport::sse::session_param;

const SLOTS: usize = 4;
const HEADER: &str = "mcp-session-id";

/// The fuzz input, read a byte at a time (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.byte() % 24).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    fn status(&mut self) -> StatusCode {
        match self.byte() % 5 {
            0 => StatusCode::OK,
            1 => StatusCode::ACCEPTED,
            2 => StatusCode::NOT_FOUND,
            3 => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The pods and the sessions, as the router should see them.
#[derive(Default)]
struct Model {
    present: [bool; SLOTS],
    generation: [u8; SLOTS],
    /// Session id → pod slot.
    sessions: HashMap<String, usize>,
}

impl Model {
    fn target(&self, slot: usize) -> PodTarget {
        PodTarget {
            name: format!("p{slot}"),
            instance: format!("i{slot}/{}", self.generation[slot]),
            address: SocketAddr::from(([10, 0, 0, slot as u8], 8080)),
        }
    }

    fn targets(&self) -> Vec<PodTarget> {
        (0..SLOTS)
            .filter(|s| self.present[*s])
            .map(|s| self.target(s))
            .collect()
    }

    fn slot_of(address: SocketAddr) -> usize {
        match address {
            SocketAddr::V4(v4) => usize::from(v4.ip().octets()[3]),
            SocketAddr::V6(_) => unreachable!("the harness uses IPv4 only"),
        }
    }

    fn count(&self, slot: usize) -> usize {
        self.sessions.values().filter(|s| **s == slot).count()
    }

    /// The router's per-pod counts equal the model's.
    fn agrees(&self, router: &PodRouter) {
        let counted: Vec<(String, usize)> = router.sessions_per_pod();
        let expected: Vec<(String, usize)> = (0..SLOTS)
            .filter(|s| self.present[*s])
            .map(|s| (format!("p{s}"), self.count(s)))
            .collect();
        assert_eq!(counted, expected, "sessions per pod");
    }

    /// Where a request naming `id` must go, or that it is refused.
    fn expect_named(&mut self, id: &str, routed: Result<SocketAddr, Unroutable>) {
        match (self.sessions.get(id), routed) {
            (Some(slot), Ok(address)) => assert_eq!(
                Self::slot_of(address),
                *slot,
                "session {id:?} went to another pod"
            ),
            (None, Err(Unroutable::SessionGone(_))) => {}
            (Some(slot), Err(e)) => panic!("session {id:?} of pod p{slot} refused: {e}"),
            (None, Ok(address)) => panic!("unknown session {id:?} routed to {address}"),
            (None, Err(e)) => panic!("unknown session {id:?} refused for another reason: {e}"),
        }
    }

    /// A request naming no session goes to a pod with the fewest sessions.
    fn expect_new(&self, routed: &Result<SocketAddr, Unroutable>) {
        let fewest = (0..SLOTS)
            .filter(|s| self.present[*s])
            .map(|s| self.count(s))
            .min();
        match (fewest, routed) {
            (None, Err(Unroutable::NoPods)) => {}
            (Some(fewest), Ok(address)) => assert_eq!(
                self.count(Self::slot_of(*address)),
                fewest,
                "a new session went to a busier pod"
            ),
            (fewest, routed) => panic!(
                "new session with fewest={fewest:?}: {:?}",
                routed.as_ref().map(|_| ())
            ),
        }
    }
}

fn request(
    method: Method,
    uri: &str,
    session: Option<HeaderValue>,
) -> Option<http::request::Parts> {
    let mut request = Request::builder().method(method).uri(uri).body(()).ok()?;
    if let Some(value) = session {
        request.headers_mut().insert(HEADER, value);
    }
    Some(request.into_parts().0)
}

/// Routes a request: the route, and where it went (what the model checks).
fn route(
    router: &Arc<PodRouter>,
    legacy_sse: bool,
    parts: &http::request::Parts,
) -> (Result<Route, Unroutable>, Result<SocketAddr, Unroutable>) {
    let route = router.route(legacy_sse, parts);
    let routed = route.as_ref().map(|r| r.address()).map_err(Clone::clone);
    (route, routed)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let router = PodRouter::new();
    let mut model = Model::default();
    let mut streams: Vec<(String, Pinned)> = Vec::new();
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        match input.byte() % 7 {
            // Pods come, go and are recreated under the same name.
            0 => {
                let (present, recreated) = (input.byte(), input.byte());
                for slot in 0..SLOTS {
                    model.present[slot] = present & (1 << slot) != 0;
                    if recreated & (1 << slot) != 0 {
                        model.generation[slot] = model.generation[slot].wrapping_add(1);
                    }
                }
                router.set_targets(model.targets());
                let present = model.present;
                model.sessions.retain(|_, slot| present[*slot]);
                // A recreated pod is another instance: its sessions are gone.
                if recreated != 0 {
                    model
                        .sessions
                        .retain(|_, slot| recreated & (1 << *slot) == 0);
                }
            }
            // Streamable HTTP: a request naming no session; the pod may answer one.
            1 => {
                let Some(parts) = request(Method::POST, "/mcp", None) else {
                    continue;
                };
                let (route, routed) = route(&router, false, &parts);
                model.expect_new(&routed);
                let (status, answered) = (input.status(), input.bytes());
                let Ok(route) = route else { continue };
                let mut headers = HeaderMap::new();
                let answered = HeaderValue::from_bytes(&answered).ok();
                if let Some(value) = &answered {
                    headers.insert(HEADER, value.clone());
                }
                let _ = route.learn(status, &headers);
                if let Some(id) = answered.as_ref().and_then(|v| v.to_str().ok())
                    && status.is_success()
                {
                    model.sessions.insert(
                        id.to_owned(),
                        Model::slot_of(routed.unwrap_or_else(|_| unreachable!())),
                    );
                }
            }
            // Streamable HTTP: a request naming a session (any header bytes).
            2 => {
                let delete = input.byte() % 2 == 0;
                let raw = input.bytes();
                let Ok(value) = HeaderValue::from_bytes(&raw) else {
                    continue;
                };
                let method = if delete { Method::DELETE } else { Method::POST };
                let Some(parts) = request(method, "/mcp", Some(value.clone())) else {
                    continue;
                };
                let route = router.route(false, &parts);
                let status = input.status();
                let Ok(id) = value.to_str() else {
                    // An id that is not text names no session the router could know.
                    assert!(
                        matches!(route, Err(Unroutable::SessionGone(_))),
                        "an unreadable session id was not refused"
                    );
                    continue;
                };
                model.expect_named(
                    id,
                    route.as_ref().map(|r| r.address()).map_err(Clone::clone),
                );
                let Ok(route) = route else {
                    model.sessions.remove(id);
                    continue;
                };
                let _ = route.learn(status, &HeaderMap::new());
                if status == StatusCode::NOT_FOUND || (delete && status.is_success()) {
                    model.sessions.remove(id);
                }
            }
            // Legacy SSE: a POST to `/messages?<query>`.
            3 => {
                let query = String::from_utf8_lossy(&input.bytes()).into_owned();
                let uri = format!("/messages?{query}");
                let Ok(uri) = uri.parse::<http::Uri>() else {
                    continue;
                };
                let Some(parts) = request(Method::POST, &uri.to_string(), None) else {
                    continue;
                };
                let (route, routed) = route(&router, true, &parts);
                match session_param(parts.uri.query()) {
                    Some(id) => {
                        model.expect_named(&id, routed);
                        if route.is_err() {
                            model.sessions.remove(&id);
                        }
                    }
                    None => model.expect_new(&routed),
                }
            }
            // Legacy SSE: a stream opens; its `endpoint` event names its session.
            4 => {
                let Some(parts) = request(Method::GET, "/sse", None) else {
                    continue;
                };
                let (route, routed) = route(&router, true, &parts);
                model.expect_new(&routed);
                let id = String::from_utf8_lossy(&input.bytes()).into_owned();
                let Ok(route) = route else { continue };
                let Some(pick) = route.learn(StatusCode::OK, &HeaderMap::new()) else {
                    panic!("a stream without a session id kept no pick");
                };
                let slot = Model::slot_of(pick.target().address);
                streams.push((id.clone(), pick.pin_while(&id)));
                model.sessions.insert(id, slot);
            }
            // A legacy SSE stream closes: its session ends.
            5 => {
                if streams.is_empty() {
                    continue;
                }
                let at = usize::from(input.byte()) % streams.len();
                let (id, pinned) = streams.swap_remove(at);
                drop(pinned);
                model.sessions.remove(&id);
            }
            // The server ends a session.
            _ => {
                let id = String::from_utf8_lossy(&input.bytes()).into_owned();
                router.forget(&id);
                model.sessions.remove(&id);
            }
        }
        model.agrees(&router);
    }
});
