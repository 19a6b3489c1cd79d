//! Rewriting list results on their way back, by the middleware that rewrite them (tool
//! filter and override, authorization filtering; innermost first): only responses to the list requests the proxy saw are parsed; every
//! other message, and every other SSE event, passes as the bytes it arrived as.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::middleware::authn::Principal;
use crate::middleware::chain::Chain;
use crate::reply::{Body, BoxError};
use crate::sse;

/// The list requests of one POST (id as written → method), and who sent them.
#[derive(Clone)]
pub struct ListRewrite {
    /// Request id → method.
    pub lists: HashMap<String, String>,
    /// The caller.
    pub principal: Principal,
    /// The middleware that rewrite the results.
    pub chain: Arc<Chain>,
}

impl ListRewrite {
    /// Rewrites a JSON-RPC message (or batch) when it answers one of the list requests.
    pub async fn message(&self, bytes: &[u8]) -> Option<Bytes> {
        let mut value: Value = serde_json::from_slice(bytes).ok()?;
        let changed = match &mut value {
            Value::Array(items) => {
                let mut any = false;
                for item in items {
                    any |= self.one(item).await;
                }
                any
            }
            item => self.one(item).await,
        };
        changed.then(|| Bytes::from(value.to_string()))
    }

    async fn one(&self, message: &mut Value) -> bool {
        let Some(id) = message.get("id").map(Value::to_string) else {
            return false;
        };
        let Some(method) = self.lists.get(&id) else {
            return false;
        };
        let Some(result) = message.get_mut("result") else {
            return false;
        };
        self.chain.rewrite(&self.principal, method, result).await;
        true
    }

    /// Applies the rewrite to a response body: whole for JSON, event by event for SSE.
    pub fn response(self, response: Response<Body>) -> Response<Body> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let (mut parts, body) = response.into_parts();
        if content_type.starts_with("text/event-stream") {
            let this = Arc::new(self);
            let mut splitter = sse::Splitter::default();
            let events = body
                .into_data_stream()
                .map(move |chunk| match chunk {
                    Ok(chunk) => Ok(splitter.push(&chunk)),
                    Err(e) => Err(e),
                })
                .then(move |events| {
                    let this = this.clone();
                    async move {
                        let mut out = Vec::new();
                        for event in events? {
                            out.push(this.event(event).await);
                        }
                        Ok::<_, BoxError>(futures::stream::iter(
                            out.into_iter().map(|e| Ok::<_, BoxError>(Frame::data(e))),
                        ))
                    }
                })
                .map(|r| match r {
                    Ok(frames) => frames.left_stream(),
                    Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
                })
                .flatten();
            return Response::from_parts(parts, StreamBody::new(events).boxed_unsync());
        }
        if content_type.starts_with("application/json") {
            parts.headers.remove(CONTENT_LENGTH);
            let body = futures::stream::once(async move {
                let bytes = body.collect().await?.to_bytes();
                let rewritten = self.message(&bytes).await.unwrap_or(bytes);
                Ok::<_, BoxError>(Frame::data(rewritten))
            });
            return Response::from_parts(parts, StreamBody::new(body).boxed_unsync());
        }
        Response::from_parts(parts, body)
    }

    async fn event(&self, event: Bytes) -> Bytes {
        let fields = sse::fields(&event);
        if fields.data.is_empty() || !fields.data.contains("\"result\"") {
            return event;
        }
        match self.message(fields.data.as_bytes()).await {
            Some(data) => sse::encode(
                fields.event.as_deref(),
                fields.id.as_deref(),
                &String::from_utf8_lossy(&data),
            ),
            None => event,
        }
    }
}
