//! Prometheus metrics at `/metrics`: HTTP requests by route template and status, latencies,
//! the ingestion queue, documents by status, ingestion stage durations, search latency by mode,
//! rate-limit rejections. Labels never carry tenant data (no ids, no names, no queries).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Installs the process-wide recorder once; servers started later in the process share it.
pub fn init() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are disabled: another recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts and times every routed request by its route template.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("lore_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("lore_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The exposition text, with the gauges read from the database at scrape time.
pub async fn render(state: &AppState) -> Option<String> {
    let handle = init()?;
    if let Ok(depth) = state.store.pending_jobs().await {
        metrics::gauge!("lore_ingest_queue_depth").set(depth as f64);
    }
    if let Ok(counts) = state.store.document_status_counts().await {
        for (status, n) in counts {
            metrics::gauge!("lore_documents", "status" => status.as_str()).set(n as f64);
        }
    }
    handle.run_upkeep();
    Some(handle.render())
}

pub fn stage(stage: &'static str, seconds: f64) {
    metrics::histogram!("lore_ingest_stage_duration_seconds", "stage" => stage).record(seconds);
}

pub fn document_processed(outcome: &'static str) {
    metrics::counter!("lore_ingest_documents_total", "outcome" => outcome).increment(1);
}

pub fn search(mode: &'static str, seconds: f64) {
    metrics::histogram!("lore_search_duration_seconds", "mode" => mode).record(seconds);
}

/// The label of an embedding space: a built-in model's own name, else only its provider. Model
/// names are chosen by users, so they never become labels (unbounded series, tenant data).
fn space_label(space: &str) -> String {
    let (provider, model) = space.split_once('/').unwrap_or(("local", space));
    match provider {
        "local" if lore_embed::provision::known(model).is_some() => space.to_string(),
        "local" => "local/other".into(),
        "openai" | "cohere" | "tei" => provider.to_string(),
        _ => "other".into(),
    }
}

/// Chunks embedded by the model, and chunks whose embedding came from the cache.
pub fn embedded(space: &str, computed: usize, cached: usize) {
    let space = space_label(space);
    metrics::counter!("lore_embedding_chunks_total", "space" => space.clone(), "source" => "model")
        .increment(computed as u64);
    metrics::counter!("lore_embedding_chunks_total", "space" => space, "source" => "cache").increment(cached as u64);
}

pub fn embedding_duration(space: &str, seconds: f64) {
    metrics::histogram!("lore_embedding_duration_seconds", "space" => space_label(space)).record(seconds);
}

/// A chat-model call and the tokens it used; the provider is a fixed name, never tenant data.
pub fn llm_call(provider: &str, outcome: &'static str, prompt_tokens: u64, completion_tokens: u64) {
    let provider = if lore_llm::PROVIDERS.contains(&provider) { provider.to_string() } else { "other".into() };
    metrics::counter!("lore_llm_calls_total", "provider" => provider.clone(), "outcome" => outcome).increment(1);
    metrics::counter!("lore_llm_tokens_total", "provider" => provider.clone(), "kind" => "prompt")
        .increment(prompt_tokens);
    metrics::counter!("lore_llm_tokens_total", "provider" => provider, "kind" => "completion")
        .increment(completion_tokens);
}

pub fn rate_limit_rejection(reason: &'static str) {
    metrics::counter!("lore_rate_limit_rejections_total", "reason" => reason).increment(1);
}

/// Handler for `GET /metrics`.
pub async fn endpoint(State(state): State<AppState>) -> Response {
    use axum::response::IntoResponse;
    match render(&state).await {
        Some(text) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => crate::error::error(lore_core::error::Code::Unavailable, "metrics are not enabled in this process")
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_chosen_model_names_never_become_labels() {
        assert_eq!(super::space_label("local/multilingual-e5-small"), "local/multilingual-e5-small");
        assert_eq!(super::space_label("openai/my-secret-model-7f3a@64"), "openai");
        assert_eq!(super::space_label("local/用户的模型"), "local/other");
        assert_eq!(super::space_label("weird"), "local/other");
    }
}
