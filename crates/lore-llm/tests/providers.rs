//! Each provider against a local server on 127.0.0.1 that speaks its real wire format: streamed
//! answers, usage, error bodies, and the ways a provider misbehaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use lore_llm::{ChatConfig, ChatEvent, ChatRequest, LlmError, Message, Role, complete};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn sse(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(
            |(name, data)| {
                if name.is_empty() { format!("data: {data}\n\n") } else { format!("event: {name}\ndata: {data}\n\n") }
            },
        )
        .collect()
}

fn event_stream(body: String) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn request(question: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::new(Role::System, "Answer from the context."), Message::new(Role::User, question)],
        max_tokens: Some(200),
        temperature: Some(0.1),
        top_p: None,
        json_output: false,
    }
}

fn config(provider: &str, base: &str) -> ChatConfig {
    let mut config = ChatConfig::new(provider, "test-model");
    config.base_url = Some(base.to_string());
    config.api_key = Some("sk-test".into());
    config.backoff = Duration::from_millis(10);
    config.timeout = Duration::from_secs(5);
    // The test servers listen on 127.0.0.1, which the default policy refuses.
    config.outbound.allowed = lore_core::outbound::Policy::parse_allowed("127.0.0.1/32").expect("cidr");
    config
}

#[tokio::test]
async fn openai_compatible_streams_tokens_and_usage() {
    let seen = Arc::new(std::sync::Mutex::new(Value::Null));
    let seen2 = seen.clone();
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let seen = seen2.clone();
            async move {
                assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-test");
                *seen.lock().expect("lock") = body.0;
                let chunk = |delta: Value, finish: Value| {
                    json!({"id": "c1", "object": "chat.completion.chunk", "model": "test-model",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                };
                event_stream(
                    sse(&[
                        ("", chunk(json!({"role": "assistant", "content": ""}), Value::Null)),
                        ("", chunk(json!({"content": "混合检索"}), Value::Null)),
                        ("", chunk(json!({"content": " works [1]."}), Value::Null)),
                        ("", chunk(json!({}), json!("stop"))),
                        ("", json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}})),
                    ]) + "data: [DONE]\n\n",
                )
            }
        }),
    );
    let base = serve(router).await;
    let model = lore_llm::connect(&config("openai", &format!("{base}/v1"))).expect("model");
    let mut events = lore_llm::ChatModel::stream(&model, request("混合检索怎么用?")).await.expect("stream");
    let mut pieces = Vec::new();
    let mut done = None;
    while let Some(event) = events.recv().await {
        match event.expect("event") {
            ChatEvent::Delta(p) => pieces.push(p),
            ChatEvent::Done { usage, finish_reason } => done = Some((usage, finish_reason)),
        }
    }
    assert_eq!(pieces, ["混合检索", " works [1]."]);
    let (usage, finish) = done.expect("done event");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.estimated), (42, 7, false));
    assert_eq!(finish.as_deref(), Some("stop"));
    let body = seen.lock().expect("lock").clone();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["max_tokens"], 200);
}

#[tokio::test]
async fn anthropic_messages_stream() {
    let router = Router::new().route(
        "/v1/messages",
        post(|headers: HeaderMap, body: axum::Json<Value>| async move {
            assert_eq!(headers["x-api-key"], "sk-test");
            assert_eq!(headers["anthropic-version"], "2023-06-01");
            assert_eq!(body["system"], "Answer from the context.");
            assert_eq!(body["messages"][0]["role"], "user");
            event_stream(sse(&[
                ("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "test-model", "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}})),
                ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                ("ping", json!({"type": "ping"})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "，世界"}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}})),
                ("message_stop", json!({"type": "message_stop"})),
            ]))
        }),
    );
    let base = serve(router).await;
    let model = lore_llm::connect(&config("anthropic", &base)).expect("model");
    let answer = complete(&model, request("hi")).await.expect("answer");
    assert_eq!(answer.text, "Hello，世界");
    assert_eq!((answer.usage.prompt_tokens, answer.usage.completion_tokens), (25, 15));
    assert_eq!(answer.finish_reason.as_deref(), Some("end_turn"));
}

#[tokio::test]
async fn cohere_chat_v2_stream() {
    let router = Router::new().route(
        "/v2/chat",
        post(|headers: HeaderMap, body: axum::Json<Value>| async move {
            assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-test");
            assert_eq!(body["stream"], true);
            event_stream(sse(&[
                ("message-start", json!({"id": "x", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}})),
                ("content-start", json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})),
                ("content-delta", json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Bonjour"}}}})),
                ("content-delta", json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " 你好"}}}})),
                ("content-end", json!({"type": "content-end", "index": 0})),
                ("message-end", json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 9, "output_tokens": 3}, "tokens": {"input_tokens": 70, "output_tokens": 3}}}})),
            ]))
        }),
    );
    let base = serve(router).await;
    let model = lore_llm::connect(&config("cohere", &base)).expect("model");
    let answer = complete(&model, request("hi")).await.expect("answer");
    assert_eq!(answer.text, "Bonjour 你好");
    assert_eq!((answer.usage.prompt_tokens, answer.usage.completion_tokens), (70, 3));
    assert_eq!(answer.finish_reason.as_deref(), Some("COMPLETE"));
}

#[tokio::test]
async fn retries_429_and_5xx_then_answers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/chat/completions",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "0")], r#"{"error":{"message":"slow down"}}"#)
                        .into_response(),
                    1 => (StatusCode::BAD_GATEWAY, "upstream down").into_response(),
                    // A server that ignores `stream: true` answers whole.
                    _ => axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                                            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}))
                    .into_response(),
                }
            }
        }),
    );
    let base = serve(router).await;
    let model = lore_llm::connect(&config("vllm", &base)).expect("model");
    let answer = complete(&model, request("hi")).await.expect("answer after retries");
    assert_eq!(answer.text, "ok");
    assert_eq!(answer.usage.prompt_tokens, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_rejection_is_reported_at_once_with_the_providers_message() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/v1/messages",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})),
                )
            }
        }),
    );
    let base = serve(router).await;
    let model = lore_llm::connect(&config("anthropic", &base)).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("rejected");
    assert!(
        matches!(&error, LlmError::Rejected(m) if m.contains("invalid x-api-key") && m.contains("401")),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn persistent_server_errors_end_as_unavailable() {
    let router =
        Router::new().route("/chat/completions", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }));
    let base = serve(router).await;
    let model = lore_llm::connect(&config("openai", &base)).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("fails");
    assert!(matches!(&error, LlmError::Unavailable(m) if m.contains("500") && m.contains("3 attempts")), "{error:?}");
}

/// A raw HTTP server that sends a head and the given body pieces, then does what `then` says.
async fn raw_server(pieces: Vec<&'static str>, hang: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let pieces = pieces.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await;
                for piece in pieces {
                    let _ = socket.write_all(piece.as_bytes()).await;
                    let _ = socket.flush().await;
                }
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_stalled_stream_times_out_after_the_tokens_so_far() {
    let base = raw_server(vec!["data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"], true).await;
    let mut config = config("openai", &base);
    config.timeout = Duration::from_millis(500);
    let model = lore_llm::connect(&config).expect("model");
    let mut events = lore_llm::ChatModel::stream(&model, request("hi")).await.expect("stream starts");
    assert_eq!(events.recv().await, Some(Ok(ChatEvent::Delta("par".into()))));
    let started = std::time::Instant::now();
    assert!(matches!(events.recv().await, Some(Err(LlmError::Timeout(_)))));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, never answered
        }
    });
    let mut config = config("cohere", &base);
    config.timeout = Duration::from_millis(300);
    let model = lore_llm::connect(&config).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("times out");
    assert!(matches!(error, LlmError::Timeout(_)), "{error:?}");
}

#[tokio::test]
async fn malformed_and_truncated_streams_are_errors_not_answers() {
    let base =
        raw_server(vec!["data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", "data: <html>oops\n\n"], false)
            .await;
    let model = lore_llm::connect(&config("openai", &base)).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("malformed");
    assert!(matches!(&error, LlmError::BadResponse(m) if m.contains("not JSON")), "{error:?}");

    // The connection closes before [DONE].
    let base = raw_server(vec!["data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"], false).await;
    let model = lore_llm::connect(&config("openai", &base)).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("truncated");
    assert!(matches!(&error, LlmError::BadResponse(m) if m.contains("ended before")), "{error:?}");

    // An error event mid-stream (Anthropic's overloaded_error).
    let base = raw_server(
        vec!["event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"],
        false,
    )
    .await;
    let model = lore_llm::connect(&config("anthropic", &base)).expect("model");
    let error = complete(&model, request("hi")).await.expect_err("error event");
    assert!(matches!(&error, LlmError::Unavailable(m) if m.contains("Overloaded")), "{error:?}");
}

#[tokio::test]
async fn usage_is_estimated_when_the_provider_reports_none() {
    let base = raw_server(
        vec![
            "data: {\"choices\":[{\"delta\":{\"content\":\"知识库很好\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ],
        false,
    )
    .await;
    let model = lore_llm::connect(&config("ollama", &base)).expect("model");
    let answer = complete(&model, request("hi")).await.expect("answer");
    assert_eq!(answer.text, "知识库很好");
    assert!(answer.usage.estimated);
    assert_eq!(answer.usage.completion_tokens, 5);
    assert!(answer.usage.prompt_tokens > 0);
}

/// A provider's server is whoever an agent's base URL names: what Lore reads of it has a budget.
/// A huge error body is cut to its message, a huge whole answer, an event that never ends and an
/// answer that never stops are errors, not memory.
#[tokio::test]
async fn what_a_provider_sends_is_read_under_a_budget() {
    let huge_error = "e".repeat(20 * 1024 * 1024);
    let huge_json = format!(r#"{{"choices": [{{"message": {{"content": "{}"}}}}]}}"#, "x".repeat(20 * 1024 * 1024));
    let endless_event = format!("data: {}", "y".repeat(2 * 1024 * 1024));
    let piece = sse(&[("", json!({"choices": [{"index": 0, "delta": {"content": "z".repeat(512 * 1024)}}]}))]);
    let endless_answer = piece.repeat(10);
    let router = Router::new()
        .route(
            "/error/chat/completions",
            post(move || {
                let b = huge_error.clone();
                async move { (StatusCode::BAD_REQUEST, b) }
            }),
        )
        .route(
            "/json/chat/completions",
            post(move || {
                let b = huge_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], b).into_response() }
            }),
        )
        .route(
            "/event/chat/completions",
            post(move || {
                let b = endless_event.clone();
                async move { event_stream(b) }
            }),
        )
        .route(
            "/answer/chat/completions",
            post(move || {
                let b = endless_answer.clone();
                async move { event_stream(b) }
            }),
        );
    let base = serve(router).await;
    let ask = |path: &str| {
        let model = lore_llm::connect(&config("openai", &format!("{base}/{path}"))).expect("model");
        async move { complete(&model, request("hi")).await.expect_err("refused") }
    };
    let error = ask("error").await;
    assert!(
        matches!(&error, LlmError::Rejected(m) if m.contains("400") && m.len() < 2_000),
        "{:.200}",
        format!("{error:?}")
    );
    let error = ask("json").await;
    assert!(matches!(&error, LlmError::BadResponse(m) if m.contains("larger than")), "{:.200}", format!("{error:?}"));
    let error = ask("event").await;
    assert!(
        matches!(&error, LlmError::BadResponse(m) if m.contains("event larger than")),
        "{:.200}",
        format!("{error:?}")
    );
    let error = ask("answer").await;
    assert!(matches!(&error, LlmError::BadResponse(m) if m.contains("answer passed")), "{:.200}", format!("{error:?}"));
}
