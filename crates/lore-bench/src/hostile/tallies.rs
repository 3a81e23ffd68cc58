//! What a run counts, and the verdict it gives.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::*;

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) server_errors: u64,
    /// 502/504 from a provider the campaign broke on purpose (counted, not a finding).
    pub(crate) gateway: u64,
    /// 4xx answers by code.
    pub(crate) refusals: BTreeMap<String, u64>,
    /// Findings, each counted once per distinct message.
    pub(crate) findings: BTreeMap<String, u64>,
    /// Hostile files by kind and outcome.
    pub(crate) files: BTreeMap<String, u64>,
    /// Addresses the policy let through because the operator allowed 127.0.0.1/32.
    pub(crate) allowed_loopback: BTreeMap<String, u64>,
    pub(crate) slowest_ms: f64,
    pub(crate) slowest: String,
    /// What the amplification probe cost.
    pub(crate) amplification: String,
    /// The document the server took longest over (seconds, what).
    pub(crate) slowest_document: (f64, String),
    /// The longest the victim's upload waited for the attacker's files (seconds, upload to done).
    pub(crate) victim_wait: f64,
}

/// What a call may answer.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Expect {
    /// 2xx, or 4xx with a code.
    Answer,
    /// Like `Answer`, and 502/504 with a provider's code too (the campaign broke the provider).
    Upstream,
    /// Only these statuses (a refusal).
    Only(&'static [u16]),
    /// 2xx (setup).
    Success,
}

pub(crate) struct Ctx {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    /// The victim's secrets: no byte of them may reach the attacker or the outside caller.
    pub(crate) secrets: Vec<String>,
    pub(crate) tally: Mutex<Tally>,
    pub(crate) probe: Mutex<Option<Probe>>,
}

impl Ctx {
    pub(crate) fn finding(&self, message: String) {
        eprintln!("FINDING: {message}");
        *self.tally.lock().expect("tally").findings.entry(message).or_default() += 1;
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and judges its answer; `hostile` calls (the attacker's, the outside
    /// caller's) are searched for the victim's secrets. The status and body, or `None` when no
    /// answer came.
    pub(crate) async fn call(
        &self, what: &str, request: reqwest::RequestBuilder, expect: Expect, hostile: bool,
    ) -> Option<(u16, Value)> {
        let started = Instant::now();
        let result = request.timeout(CLIENT_TIMEOUT).send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.tally.lock().expect("tally").requests += 1;
                let why = if e.is_timeout() {
                    format!("no answer within {} s", CLIENT_TIMEOUT.as_secs())
                } else {
                    format!("{e}")
                };
                self.finding(format!("{what}: {why}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                self.finding(format!("{what}: the answer's body broke off: {e}"));
                String::new()
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
        if hostile {
            for secret in &self.secrets {
                if text.contains(secret.as_str()) {
                    self.finding(format!("{what}: the answer holds the victim's secret: {}", shorten(&text)));
                }
            }
        }
        let mut tally = self.tally.lock().expect("tally");
        tally.requests += 1;
        if ms > tally.slowest_ms {
            tally.slowest_ms = ms;
            tally.slowest = what.to_string();
        }
        let gateway_code = matches!(
            code.as_str(),
            "llm_unavailable" | "llm_bad_response" | "llm_timeout" | "embedding_failed" | "model_unavailable"
        );
        let problem = if status >= 500 {
            if expect == Expect::Upstream && matches!(status, 502..=504) && gateway_code {
                tally.gateway += 1;
                None
            } else {
                tally.server_errors += 1;
                Some(format!("{status} {}", shorten(&text)))
            }
        } else if (400..500).contains(&status) {
            if code.is_empty() {
                Some(format!("{status} without an error code: {}", shorten(&text)))
            } else {
                *tally.refusals.entry(code.clone()).or_default() += 1;
                match expect {
                    Expect::Success => Some(format!("{status} {}", shorten(&text))),
                    Expect::Only(allowed) if !allowed.contains(&status) && status != 429 => {
                        Some(format!("{status} (expected one of {allowed:?}) {}", shorten(&text)))
                    }
                    _ => None,
                }
            }
        } else {
            match expect {
                Expect::Only(allowed) if !allowed.contains(&status) => {
                    Some(format!("{status}, accepted (expected one of {allowed:?}) {}", shorten(&text)))
                }
                _ if status >= 300 => Some(format!("{status} {}", shorten(&text))),
                _ => None,
            }
        };
        drop(tally);
        if let Some(problem) = problem {
            self.finding(format!("{what}: {problem}"));
        }
        Some((status, body))
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    pub(crate) fn post(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(token).json(&body)
    }

    pub(crate) fn patch(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path)).bearer_auth(token).json(&body)
    }

    pub(crate) fn put(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.put(self.url(path)).bearer_auth(token).json(&body)
    }

    /// A setup call that must succeed; its body.
    pub(crate) async fn must(&self, what: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        match self.call(what, request, Expect::Success, false).await {
            Some((status, body)) if (200..300).contains(&status) => Ok(body),
            other => anyhow::bail!("setup: {what} failed: {other:?}"),
        }
    }

    pub(crate) fn upload(
        &self, kb: &str, token: &str, name: &str, bytes: Vec<u8>, chunking: Option<String>,
    ) -> reqwest::RequestBuilder {
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        if let Some(config) = chunking {
            form = form.text("chunking_config", config);
        }
        self.http.post(self.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(token).multipart(form)
    }

    /// Waits until each document is completed or failed; its final view (`None`: it never ended).
    pub(crate) async fn settle(&self, token: &str, doc: &str) -> Option<Value> {
        self.settle_since(token, doc, Instant::now()).await
    }

    /// Like `settle`, for a document uploaded at `since`. The deadline counts the document's own
    /// processing: while it waits its turn in the queue (`pending`) the clock restarts, since a
    /// queue one tenant filled is that tenant's wait, not the cost of this document. Waiting in
    /// the queue has its own, longer bound.
    pub(crate) async fn settle_since(&self, token: &str, doc: &str, since: Instant) -> Option<Value> {
        let queue_deadline = Instant::now() + QUEUE_DEADLINE;
        let mut processing_since = since;
        loop {
            let response = self
                .http
                .get(self.url(&format!("/v1/documents/{doc}")))
                .bearer_auth(token)
                .timeout(CLIENT_TIMEOUT)
                .send()
                .await;
            if let Ok(r) = response
                && let Ok(v) = r.json::<Value>().await
            {
                match v["status"].as_str() {
                    Some("completed" | "failed") => return Some(v),
                    Some("pending") => processing_since = Instant::now(),
                    _ => {}
                }
            }
            if processing_since.elapsed() >= DOCUMENT_DEADLINE || Instant::now() >= queue_deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long the server took over a document: from its last claim by a worker (its time waiting
/// in the queue left out) to its last change.
pub(crate) fn processing_seconds(v: &Value) -> Option<f64> {
    let at = |t: &Value| t.as_str().and_then(|t| t.parse::<lore_core::model::Timestamp>().ok());
    let claimed = v["processing_log"]
        .as_array()
        .and_then(|log| log.iter().rev().find(|e| e["stage"] == "claim"))
        .and_then(|e| at(&e["at"]))
        .or_else(|| at(&v["created_at"]))?;
    Some((at(&v["updated_at"])? - claimed).num_milliseconds() as f64 / 1000.0)
}

pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(240).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('\n', " ")
}

pub(crate) fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"].as_str().map(str::to_string).with_context(|| format!("no id in {}", shorten(&v.to_string())))
}
