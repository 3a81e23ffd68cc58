//! Per-request bookkeeping for API keys: the `X-RateLimit-*` headers and one `api_usage_logs`
//! row per request. Rows go through a channel to a writer task that inserts them in batches, off
//! the request path; on a clean shutdown the channel is drained before the database closes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lore_core::limits::RateHeaders;
use lore_core::model::{Id, UsageLog};
use lore_core::store::Store;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::auth::{API_KEY_PREFIX, client_ip};
use crate::error::{ResponseError, error};
use crate::state::AppState;

/// Request bodies are logged up to this many bytes of JSON.
const LOGGED_BODY_BYTES: usize = 2048;
/// JSON bodies are buffered (for the log) up to this size; larger ones are refused as the JSON
/// extractor would refuse them anyway.
const MAX_JSON_BODY: usize = 2 * 1024 * 1024;
const BATCH: usize = 500;
/// Rows waiting for the writer, at most.
pub const QUEUE: usize = 20_000;

/// What the authentication step learned about an API-key request, for the layer around it.
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest {
    pub key_id: Id,
    pub user_id: Id,
    pub rate: Option<RateHeaders>,
}

/// A slot the authenticator fills in; shared between the middleware and the extractor.
#[derive(Debug, Clone, Default)]
pub struct RequestRecord(Arc<Mutex<Option<KeyRequest>>>);

impl RequestRecord {
    pub fn set(&self, request: KeyRequest) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(request);
        }
    }

    fn take(&self) -> Option<KeyRequest> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

fn uses_api_key(request: &Request) -> bool {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(_, token)| token.trim().starts_with(API_KEY_PREFIX))
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.contains("json"))
}

/// Replaces the values of keys that look secret, at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_ascii_lowercase();
                if ["password", "secret", "token", "api_key", "apikey", "authorization", "credential", "_key"]
                    .iter()
                    .any(|s| k.contains(s))
                {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The body as it goes into the log: redacted JSON, shortened to the limit.
fn loggable_body(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return Some(json!({"unparsed_bytes": bytes.len()})),
    };
    redact(&mut value);
    let text = value.to_string();
    if text.len() <= LOGGED_BODY_BYTES {
        return Some(value);
    }
    let cut: String = text.chars().take(LOGGED_BODY_BYTES).collect();
    let mut m = Map::new();
    m.insert("truncated".into(), Value::String(cut));
    m.insert("bytes".into(), json!(text.len()));
    Some(Value::Object(m))
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !uses_api_key(&request) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let endpoint = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let method = request.method().to_string();
    let user_agent =
        request.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
    let (mut parts, body) = request.into_parts();
    let ip = client_ip(&parts);
    let (body, logged) = if is_json(&parts.headers) {
        match to_bytes(body, MAX_JSON_BODY).await {
            Ok(bytes) => {
                let logged = loggable_body(&bytes);
                (Body::from(bytes), logged)
            }
            Err(_) => {
                return error(lore_core::error::Code::PayloadTooLarge, "the request body is too large").into_response();
            }
        }
    } else {
        let summary = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|ct| ct.starts_with("multipart/"))
            .map(|_| json!({"multipart": true}));
        (body, summary)
    };
    let record = RequestRecord::default();
    parts.extensions.insert(record.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let Some(key) = record.take() else { return response };
    if let Some(rate) = key.rate {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset));
    }
    let status = response.status();
    let log = UsageLog {
        id: lore_core::new_id(),
        api_key_id: Some(key.key_id),
        user_id: key.user_id,
        endpoint,
        method,
        request_body: logged,
        status_code: i64::from(status.as_u16()),
        response_time_ms: started.elapsed().as_millis() as i64,
        error_message: response.extensions().get::<ResponseError>().map(|e| e.0.clone()),
        ip_address: ip,
        user_agent,
        created_at: lore_core::now(),
    };
    // Bounded: if the writer falls behind, requests wait a little rather than memory growing.
    if state.usage_log.send(log).await.is_err() {
        tracing::warn!("usage log writer has stopped; a row was not recorded");
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::debug!(key = %key.key_id, "API-key request failed with 500");
    }
    response
}

/// Inserts usage rows in batches until every sender is gone, then returns.
pub async fn run_writer(store: Arc<dyn Store>, mut rows: mpsc::Receiver<UsageLog>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rows.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rows.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        if let Err(e) = store.insert_usage_logs(&batch).await {
            tracing::error!(error = %e, rows = batch.len(), "could not write usage logs");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut v =
            json!({"query": "中文", "password": "p", "nested": [{"openai_api_key": "sk"}], "Authorization": "x"});
        redact(&mut v);
        assert_eq!(
            v,
            json!({"query": "中文", "password": "[redacted]", "nested": [{"openai_api_key": "[redacted]"}], "Authorization": "[redacted]"})
        );
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = json!({"query": "长".repeat(5000)}).to_string();
        let logged = loggable_body(body.as_bytes()).expect("logged");
        assert!(logged["truncated"].as_str().expect("cut").chars().count() <= LOGGED_BODY_BYTES);
        assert_eq!(logged["bytes"], body.len());
    }
}
