//! Agents end to end: answers with citations from the knowledge, conversations with memory,
//! streaming, the OpenAI-compatible endpoint, rate limits, routing and usage, against local
//! servers on 127.0.0.1 that speak each provider's real wire format.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::IntoResponse;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, code, spawn_app, spawn_app_with};

const REFUND: &str = "退款政策\n\n购买后三十天内可以申请全额退款。退款会在五个工作日内退回原支付账户。";
const SHIPPING: &str =
    "Shipping policy\n\nOrders ship within two business days. International delivery takes about ten days.";

/// What the local provider saw: path, headers, body.
pub(super) type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

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

/// A local provider: OpenAI-compatible at `/ok`, Anthropic at `/anthropic`, Cohere at `/cohere`,
/// and misbehaving ones at `/fail` (500), `/hang` (never answers) and `/garbage` (a broken stream).
pub(super) async fn provider(answer: &'static str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let router = Router::new()
        .route(
            "/ok/chat/completions",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let seen = s1.clone();
                async move {
                    let stream = body["stream"] == true;
                    seen.lock().expect("lock").push(("openai".into(), headers, body.0));
                    let chunk = |delta: Value, finish: Value| json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                    assert!(stream, "Lore streams");
                    let mut mid = answer.len() / 2;
                    while !answer.is_char_boundary(mid) {
                        mid -= 1;
                    }
                    let (a, b) = answer.split_at(mid);
                    event_stream(
                        sse(&[
                            ("", chunk(json!({"role": "assistant", "content": a}), Value::Null)),
                            ("", chunk(json!({"content": b}), Value::Null)),
                            ("", chunk(json!({}), json!("stop"))),
                            ("", json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 500}})),
                        ]) + "data: [DONE]\n\n",
                    )
                }
            }),
        )
        .route(
            "/anthropic/v1/messages",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let seen = s2.clone();
                async move {
                    seen.lock().expect("lock").push(("anthropic".into(), headers, body.0));
                    event_stream(sse(&[
                        ("message_start", json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 200, "output_tokens": 1}}})),
                        ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": answer}})),
                        ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}})),
                        ("message_stop", json!({"type": "message_stop"})),
                    ]))
                }
            }),
        )
        .route(
            "/cohere/v2/chat",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let seen = s3.clone();
                async move {
                    seen.lock().expect("lock").push(("cohere".into(), headers, body.0));
                    event_stream(sse(&[
                        ("content-delta", json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": answer}}}})),
                        ("message-end", json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 300, "output_tokens": 30}}}})),
                    ]))
                }
            }),
        )
        .route("/fail/chat/completions", post(|| async { (AxumStatus::INTERNAL_SERVER_ERROR, r#"{"error":{"message":"model crashed"}}"#) }))
        .route(
            "/hang/chat/completions",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/garbage/chat/completions", post(|| async { event_stream("data: {\"choices\":[{\"delta\":{\"content\":\"半\"}}]}\n\ndata: <html>\n\n".into()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), seen)
}

/// A server without embeddings: hybrid search runs on full text, which these tests need no model for.
async fn app_without_embeddings() -> TestApp {
    spawn_app_with(|c| c.embedding_model = None).await
}

async fn knowledge(app: &TestApp, token: &str) -> (String, String, String) {
    let kb = app.create_kb(token, "policies").await;
    let refund = app.ingest(token, &kb, "退款.md", REFUND).await;
    let shipping = app.ingest(token, &kb, "shipping.txt", SHIPPING).await;
    assert_eq!((refund["status"].as_str(), shipping["status"].as_str()), (Some("completed"), Some("completed")));
    (kb, refund["id"].as_str().expect("id").into(), shipping["id"].as_str().expect("id").into())
}

async fn create_agent(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, v) = app.post(token, "/v1/agents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

/// The events of a server-sent event stream, as (event name, data).
async fn read_sse(resp: reqwest::Response) -> Vec<(String, String)> {
    assert!(resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = resp.text().await.expect("stream");
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.trim_start().to_string());
                }
            }
            (name, data.join("\n"))
        })
        .filter(|(_, data)| !data.is_empty())
        .collect()
}

#[tokio::test]
async fn an_extractive_agent_answers_from_the_knowledge_with_citations_in_chinese_and_english() {
    // The default server: the built-in multilingual model, hybrid retrieval.
    let app = spawn_app().await;
    let token = app.register("helpdesk").await;
    let (kb, refund, shipping) = knowledge(&app, &token).await;
    let agent =
        create_agent(&app, &token, json!({"name": "客服", "knowledge_base_ids": [kb], "max_documents": 2})).await;
    assert_eq!(agent["model_provider"], "extractive");
    assert_eq!(agent["conversation_mode"], "multi_turn");
    let id = agent["id"].as_str().expect("id");

    let (status, v) = app.post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "退款多久能到账？"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["extractive"], true);
    let content = v["message"]["content"].as_str().expect("content");
    assert!(content.starts_with("根据知识库中的资料"), "{content}");
    assert!(content.contains("五个工作日"), "{content}");
    let citations = v["message"]["citations"].as_array().expect("citations");
    assert!(citations.iter().any(|c| c["document_id"] == refund.as_str() && c["filename"] == "退款.md"), "{v}");
    let first = &citations[0];
    assert!(first["chunk_id"].is_string() && first["snippet"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(content.contains(&format!("[{}]", first["index"])), "markers match citations: {v}");
    assert_eq!(v["usage"]["cost"], "0");
    let conversation = v["conversation_id"].as_str().expect("conversation").to_string();

    // A question that shares no words with its passage still finds it (semantic), in English.
    let (status, v) = app
        .post(
            &token,
            &format!("/v1/agents/{id}/chat"),
            json!({"message": "How long does delivery abroad take?", "conversation_id": conversation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"]["content"].as_str().expect("content").starts_with("From the knowledge base"), "{v}");
    assert!(
        v["message"]["citations"].as_array().expect("c").iter().any(|c| c["document_id"] == shipping.as_str()),
        "{v}"
    );
    assert_eq!(v["conversation_id"], conversation.as_str());

    let (_, messages) = app.get(&token, &format!("/v1/conversations/{conversation}/messages")).await;
    let messages = messages["data"].as_array().expect("messages");
    assert_eq!(
        messages.iter().map(|m| m["role"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["user", "assistant", "user", "assistant"]
    );
    assert_eq!(messages[0]["content"], "退款多久能到账？");
    assert!(messages[1]["citations"][0]["filename"].is_string(), "{messages:?}");
    let (_, list) = app.get(&token, &format!("/v1/conversations?agent_id={id}")).await;
    assert_eq!(list["data"][0]["title"], "退款多久能到账？");

    let (_, usage) = app.get(&token, "/v1/usage/agents").await;
    assert_eq!(usage["total_calls"], 2, "{usage}");
    assert_eq!(usage["days"][0]["agent_name"], "客服");
    app.shutdown().await;
}

#[tokio::test]
async fn a_provider_agent_answers_streams_remembers_and_accounts() {
    let (base, seen) = provider("三十天内可以申请全额退款 [1]。").await;
    let app = app_without_embeddings().await;
    let token = app.register("buyer").await;
    let (kb, refund, _) = knowledge(&app, &token).await;
    let (status, v) = app
        .put(
            &token,
            "/v1/config",
            json!({"openai_api_key": "sk-user-key-123456", "openai_base_url": format!("{base}/ok")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let agent = create_agent(
        &app,
        &token,
        json!({
            "name": "退款助手", "model_provider": "openai", "model_name": "gpt-4o-mini",
            "model_parameters": {"temperature": 0.2, "max_tokens": 300},
            "system_prompt": "你只回答退款问题。", "knowledge_base_ids": [kb], "max_documents": 3,
            "domain_keywords": ["退款"], "context_window": 4096
        }),
    )
    .await;
    let id = agent["id"].as_str().expect("id").to_string();

    let (status, v) = app.post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "怎么退款？"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["content"], "三十天内可以申请全额退款 [1]。");
    assert_eq!(v["extractive"], false);
    let citations = v["message"]["citations"].as_array().expect("citations");
    assert_eq!(citations.len(), 1, "only the cited passage: {v}");
    assert_eq!(
        (citations[0]["index"].as_i64(), citations[0]["document_id"].as_str()),
        (Some(1), Some(refund.as_str()))
    );
    // 1000 × 0.15/1e6 + 500 × 0.60/1e6 (gpt-4o-mini's list price).
    assert_eq!(
        (v["usage"]["prompt_tokens"].as_u64(), v["usage"]["completion_tokens"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(v["usage"]["cost"], "0.00045");
    let conversation = v["conversation_id"].as_str().expect("conversation").to_string();
    {
        let seen = seen.lock().expect("lock");
        let (_, headers, body) = seen.last().expect("a provider call");
        assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-user-key-123456");
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["max_tokens"], 300);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][0]["content"], "你只回答退款问题。");
        let user =
            body["messages"].as_array().expect("m").last().expect("last")["content"].as_str().unwrap_or("").to_string();
        assert!(
            user.contains("[1] ") && user.contains("三十天内可以申请全额退款") && user.contains("怎么退款？"),
            "{user}"
        );
    }

    // Streaming, in the same conversation: tokens, then the whole answer; the history goes along.
    let resp = app
        .http
        .post(app.url(&format!("/v1/agents/{id}/chat")))
        .bearer_auth(&token)
        .json(&json!({"message": "退款要多久？", "conversation_id": conversation, "stream": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let events = read_sse(resp).await;
    let tokens: String = events
        .iter()
        .filter(|(name, _)| name == "token")
        .map(|(_, data)| {
            serde_json::from_str::<Value>(data).expect("json")["content"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(tokens, "三十天内可以申请全额退款 [1]。");
    let (name, done) = events.last().expect("events");
    assert_eq!(name, "done");
    let done: Value = serde_json::from_str(done).expect("json");
    assert_eq!(done["conversation_id"], conversation.as_str());
    assert_eq!(done["message"]["citations"][0]["index"], 1);
    assert_eq!(done["usage"]["cost"], "0.00045");
    {
        let seen = seen.lock().expect("lock");
        let messages = seen.last().expect("call").2["messages"].as_array().expect("messages").clone();
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap_or("")).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"], "history is sent: {messages:?}");
        assert_eq!(messages[1]["content"], "怎么退款？");
    }

    // Memory older than memory_retention_days is not used.
    let (status, v) = app.patch(&token, &format!("/v1/agents/{id}"), json!({"memory_retention_days": 0})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["system_prompt"], "你只回答退款问题。", "a patch keeps what it does not name");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, _) = app
        .post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "还有吗？", "conversation_id": conversation}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<String> = seen.lock().expect("lock").last().expect("call").2["messages"]
        .as_array()
        .expect("m")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(roles, ["system", "user"]);

    let (_, messages) = app.get(&token, &format!("/v1/conversations/{conversation}/messages")).await;
    assert_eq!(messages["data"].as_array().expect("m").len(), 6);
    let (_, usage) = app.get(&token, &format!("/v1/usage/agents?agent_id={id}")).await;
    assert_eq!((usage["total_calls"].as_i64(), usage["total_tokens"].as_i64()), (Some(3), Some(4500)), "{usage}");
    assert_eq!(usage["total_cost"], "0.00135");
    assert_eq!(usage["days"][0]["failed"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn anthropic_and_cohere_agents_use_their_own_protocols_and_sealed_keys() {
    let (base, seen) = provider("Orders ship within two business days [2].").await;
    let app = app_without_embeddings().await;
    let token = app.register("shipper").await;
    let (kb, _, shipping) = knowledge(&app, &token).await;
    let agent = create_agent(
        &app,
        &token,
        json!({"name": "claude", "model_provider": "anthropic", "model_name": "claude-3-5-haiku-latest",
               "model_parameters": {"base_url": format!("{base}/anthropic"), "api_key": "sk-ant-agent-secret-9876"},
               "knowledge_base_ids": [kb]}),
    )
    .await;
    assert_eq!(agent["model_parameters"]["api_key"], "••••9876", "the key is shown masked: {agent}");
    assert!(!agent.to_string().contains("sk-ant-agent-secret"));
    let id = agent["id"].as_str().expect("id");
    let (status, v) =
        app.post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "when do orders ship?"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["content"], "Orders ship within two business days [2].");
    // claude-3-5-haiku: 200 × 0.80/1e6 + 20 × 4.00/1e6
    assert_eq!((v["usage"]["prompt_tokens"].as_u64(), v["usage"]["cost"].as_str()), (Some(200), Some("0.00024")));
    let cited: Vec<&str> =
        v["message"]["citations"].as_array().expect("c").iter().filter_map(|c| c["document_id"].as_str()).collect();
    assert!(cited.len() <= 1, "{v}");
    {
        let seen = seen.lock().expect("lock");
        let (_, headers, body) = seen.last().expect("call");
        assert_eq!(headers["x-api-key"], "sk-ant-agent-secret-9876");
        assert!(body["system"].as_str().is_some_and(|s| s.contains("knowledge base")), "{body}");
        assert_eq!(body["messages"][0]["role"], "user");
    }
    // A patch that does not name the key keeps it; the key can be changed.
    let (_, v) = app
        .patch(
            &token,
            &format!("/v1/agents/{id}"),
            json!({"model_parameters": {"base_url": format!("{base}/anthropic")}}),
        )
        .await;
    assert_eq!(v["model_parameters"]["api_key"], "••••9876", "{v}");

    let agent = create_agent(
        &app,
        &token,
        json!({"name": "command", "model_provider": "cohere", "model_name": "command-r",
               "model_parameters": {"base_url": format!("{base}/cohere"), "price": {"input": "1", "output": "2"}},
               "knowledge_base_ids": [kb]}),
    )
    .await;
    let (status, v) = app
        .post(
            &token,
            &format!("/v1/agents/{}/chat", agent["id"].as_str().expect("id")),
            json!({"message": "shipping abroad"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The agent's own price wins: 300 × 1/1e6 + 30 × 2/1e6.
    assert_eq!(v["usage"]["cost"], "0.00036");
    assert!(
        v["message"]["citations"]
            .as_array()
            .expect("c")
            .iter()
            .all(|c| c["document_id"] == shipping.as_str() || c["index"] != 2)
    );
    assert_eq!(seen.lock().expect("lock").last().expect("call").0, "cohere");
    app.shutdown().await;
}

#[tokio::test]
async fn a_misbehaving_provider_yields_a_clear_error_and_a_failed_usage_row() {
    let (base, _) = provider("unused").await;
    let app = app_without_embeddings().await;
    let token = app.register("unlucky").await;
    let (kb, _, _) = knowledge(&app, &token).await;
    let agent_at = |name: &str, path: &str| {
        json!({"name": name, "model_provider": "vllm", "model_name": "qwen2.5",
               "model_parameters": {"base_url": format!("{base}/{path}"), "timeout_seconds": 1, "max_attempts": 2},
               "knowledge_base_ids": [kb]})
    };
    for (path, status, expected) in [
        ("fail", StatusCode::BAD_GATEWAY, "llm_unavailable"),
        ("hang", StatusCode::GATEWAY_TIMEOUT, "llm_timeout"),
        ("garbage", StatusCode::BAD_GATEWAY, "llm_bad_response"),
    ] {
        let agent = create_agent(&app, &token, agent_at(path, path)).await;
        let id = agent["id"].as_str().expect("id");
        let started = std::time::Instant::now();
        let (got, v) = app.post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "refund?"})).await;
        assert_eq!((got, code(&v)), (status, expected), "{path}: {v}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path} must not hang");
        if path == "fail" {
            assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("model crashed")), "{v}");
        }
        // Streamed, the failure is an error event after whatever came before.
        let resp = app
            .http
            .post(app.url(&format!("/v1/agents/{id}/chat")))
            .bearer_auth(&token)
            .json(&json!({"message": "refund?", "stream": true}))
            .send()
            .await
            .expect("send");
        let events = read_sse(resp).await;
        let (name, data) = events.last().expect("an event");
        assert_eq!(name, "error", "{path}: {events:?}");
        assert_eq!(serde_json::from_str::<Value>(data).expect("json")["error"]["code"], expected);
    }
    let (_, usage) = app.get(&token, "/v1/usage/agents").await;
    let failed: i64 = usage["days"].as_array().expect("days").iter().map(|d| d["failed"].as_i64().unwrap_or(0)).sum();
    assert_eq!((usage["total_calls"].as_i64(), failed), (Some(6), 6), "{usage}");
    // No conversation was left with a question and no answer.
    let (_, list) = app.get(&token, "/v1/conversations").await;
    assert_eq!(list["data"].as_array().expect("list").len(), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn agents_are_validated_isolated_and_rate_limited() {
    let app = app_without_embeddings().await;
    let owner = app.register("owner").await;
    let other = app.register("other").await;
    let (kb, _, _) = knowledge(&app, &owner).await;

    for (body, expected) in [
        (json!({"name": "a", "user_prompt_template": "没有问题占位符 {context}"}), "invalid_agent_config"),
        (json!({"name": "a", "user_prompt_template": "{question} {secret}"}), "invalid_agent_config"),
        (json!({"name": "a", "model_provider": "gemini", "model_name": "x"}), "invalid_agent_config"),
        (json!({"name": "a", "model_provider": "openai"}), "invalid_agent_config"),
        (json!({"name": "a", "model_parameters": {"temprature": 1}}), "invalid_agent_config"),
        (json!({"name": "a", "max_documents": 0}), "invalid_agent_config"),
        (json!({"name": "a", "unknown_field": 1}), "validation_failed"),
        (json!({"name": ""}), "invalid_agent_config"),
    ] {
        let (status, v) = app.post(&owner, "/v1/agents", body.clone()).await;
        assert_eq!(code(&v), expected, "{body}: {v}");
        assert!(status.is_client_error());
    }
    let (status, v) = app.post(&other, "/v1/agents", json!({"name": "thief", "knowledge_base_ids": [kb]})).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "another owner's knowledge base: {v}");

    let agent = create_agent(
        &app,
        &owner,
        json!({"name": "limited", "knowledge_base_ids": [kb], "rate_limit_per_hour": 2,
               "user_prompt_template": "资料：{context}\n历史：{history}\n问题：{question}"}),
    )
    .await;
    let id = agent["id"].as_str().expect("id");
    let (status, v) = app.post(&owner, "/v1/agents", json!({"name": "limited"})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "agent_name_taken"));

    // Another owner sees nothing of it.
    for path in [format!("/v1/agents/{id}")] {
        let (status, v) = app.get(&other, &path).await;
        assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    }
    let (status, _) = app.post(&other, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.patch(&other, &format!("/v1/agents/{id}"), json!({"name": "mine"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&other, &format!("/v1/agents/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&other, "/v1/agents").await;
    assert_eq!(list["data"].as_array().expect("list").len(), 0);

    let (status, v) = app.post(&owner, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let conversation = v["conversation_id"].as_str().expect("c").to_string();
    let (status, _) = app.get(&other, &format!("/v1/conversations/{conversation}/messages")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post(&other, "/v1/agents/route", json!({"question": "退款"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the other user has no agents to route to");

    // API keys: chatting needs the search scope; managing agents needs a session.
    let (_, key) = app.post(&owner, "/v1/api-keys", json!({"name": "reader", "scopes": ["read"]})).await;
    let reader = key["key"].as_str().expect("key").to_string();
    let (status, v) = app.post(&reader, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    assert_eq!(app.get(&reader, &format!("/v1/agents/{id}")).await.0, StatusCode::OK);
    let (status, v) = app.post(&reader, "/v1/agents", json!({"name": "by key"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "session_required"));

    // The second call of the hour passes; the third is refused with Retry-After.
    let (status, _) = app.post(&owner, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
    assert_eq!(status, StatusCode::OK);
    let resp = app
        .http
        .post(app.url(&format!("/v1/agents/{id}/chat")))
        .bearer_auth(&owner)
        .json(&json!({"message": "退款"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((3000..=3600).contains(&wait), "{wait}");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(code(&v), "rate_limited");
    let (_, usage) = app.get(&owner, "/v1/usage/agents").await;
    assert_eq!(usage["total_calls"], 2, "a refused call is not counted: {usage}");

    // An inactive agent does not answer.
    let (_, v) =
        app.patch(&owner, &format!("/v1/agents/{id}"), json!({"is_active": false, "rate_limit_per_hour": null})).await;
    assert_eq!(v["rate_limit_per_hour"], Value::Null);
    let (status, v) = app.post(&owner, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "agent_inactive"));
    assert_eq!(app.delete(&owner, &format!("/v1/agents/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&owner, &format!("/v1/conversations/{conversation}")).await.0, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn openai_clients_talk_to_an_agent_unchanged() {
    let (base, seen) = provider("Two business days [1].").await;
    let app = app_without_embeddings().await;
    let token = app.register("sdk").await;
    let (kb, _, _) = knowledge(&app, &token).await;
    create_agent(
        &app,
        &token,
        json!({"name": "shop-bot", "model_provider": "openai", "model_name": "gpt-4o",
               "model_parameters": {"base_url": format!("{base}/ok")}, "knowledge_base_ids": [kb]}),
    )
    .await;
    let (_, key) = app.post(&token, "/v1/api-keys", json!({"name": "sdk", "scopes": ["search"]})).await;
    let key = key["key"].as_str().expect("key").to_string();
    let request = json!({
        "model": "shop-bot",
        "messages": [
            {"role": "system", "content": "ignored: the agent's prompt rules"},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "How fast do orders ship?"}]}
        ],
        "temperature": 0.5, "n": 1
    });
    let (status, v) = app.post(&key, "/v1/chat/completions", request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "shop-bot");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Two business days [1].");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 1500);
    assert!(v["citations"][0]["document_id"].is_string(), "{v}");
    {
        let seen = seen.lock().expect("lock");
        let roles: Vec<&str> = seen.last().expect("call").2["messages"]
            .as_array()
            .expect("m")
            .iter()
            .map(|m| m["role"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
    }

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let resp =
        app.http.post(app.url("/v1/chat/completions")).bearer_auth(&key).json(&streamed).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let events = read_sse(resp).await;
    assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> =
        events.iter().filter(|(_, d)| d != "[DONE]").map(|(_, d)| serde_json::from_str(d).expect("json")).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Two business days [1].");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert_eq!(chunks.last().expect("usage chunk")["usage"]["completion_tokens"], 500);

    // By id too; an unknown model is a 404; no conversation is kept for these stateless calls.
    let (status, v) = app
        .post(&key, "/v1/chat/completions", json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, v) = app
        .post(
            &key,
            "/v1/chat/completions",
            json!({"model": "shop-bot", "messages": [{"role": "assistant", "content": "x"}]}),
        )
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (_, list) = app.get(&token, "/v1/conversations").await;
    assert_eq!(list["data"].as_array().expect("list").len(), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn questions_are_routed_to_the_agent_that_knows_the_domain() {
    let app = app_without_embeddings().await;
    let token = app.register("router").await;
    let finance = create_agent(
        &app,
        &token,
        json!({"name": "财务", "domain_keywords": ["发票", "报销"], "expertise_areas": ["财务制度"]}),
    )
    .await;
    let it = create_agent(
        &app,
        &token,
        json!({"name": "IT", "domain_keywords": ["password", "VPN", "登录"], "expertise_areas": ["accounts"]}),
    )
    .await;
    for (question, expected) in [
        ("发票丢了还能报销吗？", &finance),
        ("I forgot my password and cannot log in", &it),
        ("登录不上 VPN 怎么办", &it),
    ] {
        let (status, v) = app.post(&token, "/v1/agents/route", json!({"question": question})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["agent"]["id"], expected["id"], "{question}: {v}");
        assert!(v["reason"].as_str().is_some_and(|r| r.contains("mentions")), "{v}");
        assert_eq!(v["candidates"].as_array().expect("candidates").len(), 2);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_agent_reads_only_the_sources_it_is_bounded_to() {
    let app = app_without_embeddings().await;
    let token = app.register("bounded").await;
    let (kb, refund, shipping) = knowledge(&app, &token).await;
    let other_kb = app.create_kb(&token, "other").await;
    let secret = app.ingest(&token, &other_kb, "secret.txt", "退款 secret: the vault code is 4711.").await;
    assert_eq!(secret["status"], "completed");

    let cited = |v: &Value| -> Vec<String> {
        v["message"]["citations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["document_id"].as_str().map(str::to_string))
            .collect()
    };
    // Bounded to one knowledge base: the other's passages are never used.
    let agent = create_agent(&app, &token, json!({"name": "one-kb", "knowledge_base_ids": [kb]})).await;
    let (_, v) = app
        .post(
            &token,
            &format!("/v1/agents/{}/chat", agent["id"].as_str().expect("id")),
            json!({"message": "退款 secret vault"}),
        )
        .await;
    assert!(cited(&v).contains(&refund) && !cited(&v).contains(&secret["id"].as_str().expect("id").to_string()), "{v}");
    // No knowledge bases named: all of the owner's.
    let all = create_agent(&app, &token, json!({"name": "everything"})).await;
    let (_, v) = app
        .post(&token, &format!("/v1/agents/{}/chat", all["id"].as_str().expect("id")), json!({"message": "vault code"}))
        .await;
    assert!(cited(&v).contains(&secret["id"].as_str().expect("id").to_string()), "{v}");

    // Bounded to a file type: only Markdown documents.
    let (_, types) = app.get(&token, "/v1/file-types").await;
    let markdown = types["data"].as_array().expect("types").iter().find(|t| t["name"] == "markdown").expect("markdown")
        ["id"]
        .clone();
    let md_only =
        create_agent(&app, &token, json!({"name": "md-only", "knowledge_base_ids": [kb], "file_type_ids": [markdown]}))
            .await;
    assert_eq!(md_only["file_type_ids"], json!([markdown]));
    let (_, v) = app
        .post(
            &token,
            &format!("/v1/agents/{}/chat", md_only["id"].as_str().expect("id")),
            json!({"message": "退款 shipping orders"}),
        )
        .await;
    assert!(cited(&v).contains(&refund) && !cited(&v).contains(&shipping), "{v}");

    // Links must exist and be the owner's.
    let (status, v) = app
        .post(&token, "/v1/agents", json!({"name": "ds", "data_source_ids": ["00000000-0000-0000-0000-000000000001"]}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    let (status, _) = app.post(&token, "/v1/agents", json!({"name": "ft", "file_type_ids": [987654]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A key bound to another knowledge base does not see this agent at all.
    let (_, key) = app
        .post(&token, "/v1/api-keys", json!({"name": "bound", "scopes": ["search"], "knowledge_base_id": other_kb}))
        .await;
    let bound = key["key"].as_str().expect("key").to_string();
    let (status, v) = app
        .post(&bound, &format!("/v1/agents/{}/chat", agent["id"].as_str().expect("id")), json!({"message": "退款"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // Through the all-knowledge agent, such a key reaches its own knowledge base only.
    let (status, v) = app
        .post(&bound, &format!("/v1/agents/{}/chat", all["id"].as_str().expect("id")), json!({"message": "退款 vault"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(cited(&v), vec![secret["id"].as_str().expect("id").to_string()], "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn chunking_from_a_description_asks_the_users_model_and_falls_back_to_the_rules() {
    let (base, seen) = provider(
        r#"Here it is: {"chunking_config": {"strategy_type": "paragraph", "config": {"max_chunk_size": 600, "max_paragraphs_per_chunk": 3}}, "reasoning": "按段落分块，每块最多三段。"}"#,
    )
    .await;
    let (bad_base, _) = provider(r#"{"chunking_config": {"strategy_type": "magic"}}"#).await;
    let app = app_without_embeddings().await;
    let token = app.register("describer").await;
    let description = "按照段落分块，每个分块最多包含3个段落";

    // No provider configured: the built-in rules.
    let (status, v) = app.post(&token, "/v1/chunking/from-description", json!({"description": description})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["chunking_config"]["strategy_type"], "paragraph");
    assert_eq!(v["chunking_config"]["llm_provider"], "rules", "{v}");
    assert_eq!(v["chunking_config"]["nl_description"], description);

    // With the user's OpenAI key (here a local OpenAI-compatible server): the model is asked for JSON.
    app.put(
        &token,
        "/v1/config",
        json!({"openai_api_key": "sk-describe-0000", "openai_base_url": format!("{base}/ok")}),
    )
    .await;
    let (status, v) = app.post(&token, "/v1/chunking/from-description", json!({"description": description})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let config = &v["chunking_config"];
    assert_eq!(config["strategy_type"], "paragraph");
    assert_eq!(config["config"]["max_paragraphs_per_chunk"], 3);
    assert_eq!(config["llm_provider"], "openai/gpt-4o-mini");
    assert_eq!(config["generation_reasoning"], "按段落分块，每块最多三段。");
    assert_eq!(v["strategy"]["max_chunk_size"], 600);
    {
        let seen = seen.lock().expect("lock");
        let (_, headers, body) = seen.last().expect("the model was asked");
        assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-describe-0000");
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["messages"][1]["content"], description);
    }
    // The generated configuration is accepted as a knowledge base's chunking config as it is.
    let (status, v) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "described", "settings": {"chunking_config": config}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // An answer that is not a valid configuration: the rules read the description, with a warning.
    app.put(&token, "/v1/config", json!({"openai_base_url": format!("{bad_base}/ok")})).await;
    let (status, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": "500-character chunks with 50 overlap"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["chunking_config"]["strategy_type"], "fixed");
    assert!(v["warning"].as_str().is_some_and(|w| w.contains("invalid")), "{v}");
    // The rules can be asked for by name; an unknown provider is refused.
    let (_, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": description, "llm_provider": "none"}))
        .await;
    assert!(v.get("warning").is_none() && v["chunking_config"]["llm_provider"] == "rules", "{v}");
    let (status, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": description, "llm_provider": "gemini"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (status, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": "make it nice", "llm_provider": "none"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "description_not_understood"));
    app.shutdown().await;
}

/// A scripted three-turn conversation: the third question ("它的价格呢？") names no product, so
/// searched as asked it finds the watch, whose text says 价格 most; searched with the subject of
/// the questions it leans on, it finds the speaker. Rewriting is on by default and can be turned off.
#[tokio::test]
async fn follow_up_questions_are_searched_with_the_subject_they_lean_on() {
    let app = spawn_app().await;
    let token = app.register("followup").await;
    let (kb, speaker, watch) = products(&app, &token).await;
    let (speaker, watch) = (speaker.as_str(), watch.as_str());
    let script = ["智能音箱支持哪些语言？", "它防水吗？", "它的价格呢？"];
    let first_cited = |agent: String| {
        let (app, token) = (&app, &token);
        async move { converse(app, token, &agent, &script).await.0 }
    };
    let rewriting =
        create_agent(&app, &token, json!({"name": "改写", "knowledge_base_ids": [kb], "max_documents": 1})).await;
    let literal = create_agent(
        &app,
        &token,
        json!({"name": "照字面", "knowledge_base_ids": [kb], "max_documents": 1, "model_parameters": {"rewrite_follow_ups": false}}),
    )
    .await;
    assert_eq!(first_cited(rewriting["id"].as_str().expect("id").to_string()).await, speaker, "with rewriting");
    assert_eq!(first_cited(literal["id"].as_str().expect("id").to_string()).await, watch, "without rewriting");
    app.shutdown().await;
}

/// A knowledge base of two products: a speaker (its languages, not waterproof, its price) and a
/// watch whose text says 价格 most. Its id, then the speaker's and the watch's document ids.
async fn products(app: &TestApp, token: &str) -> (String, String, String) {
    // Fused by rank: with two documents, each list's scores scaled to 0..1 are 1 and 0, so
    // weighted fusion (the default) ties them and the tie falls by id.
    let (status, v) = app
        .post(token, "/v1/knowledge-bases", json!({"name": "产品", "settings": {"search_config": {"fusion": "rrf"}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kb = v["id"].as_str().expect("id").to_string();
    let speaker = "# 智能音箱\n\n智能音箱支持中文和英文语音控制，机身不防水，售价三百九十九元。";
    let speaker = app.ingest(token, &kb, "智能音箱.md", speaker).await;
    let watch = "# 智能手表\n\n智能手表价格：价格九百九十九元，价格含表带，价格全国统一。";
    let watch = app.ingest(token, &kb, "智能手表.md", watch).await;
    let id = |doc: &Value| doc["id"].as_str().expect("id").to_string();
    (kb, id(&speaker), id(&watch))
}

/// Asks `agent` each question in turn, in one conversation: the document the last answer cited
/// first, that answer, and the metadata of its stored assistant message.
async fn converse(app: &TestApp, token: &str, agent: &str, questions: &[&str]) -> (String, Value, Option<Value>) {
    let mut conversation: Option<String> = None;
    let mut last = Value::Null;
    for question in questions {
        let mut body = json!({"message": question});
        if let Some(c) = &conversation {
            body["conversation_id"] = json!(c);
        }
        let (status, v) = app.post(token, &format!("/v1/agents/{agent}/chat"), body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        conversation = v["conversation_id"].as_str().map(str::to_string);
        last = v;
    }
    let conversation = conversation.expect("conversation");
    let (_, messages) = app.get(token, &format!("/v1/conversations/{conversation}/messages")).await;
    let record = messages["data"].as_array().and_then(|m| m.last()).map(|m| m["metadata"].clone());
    (last["message"]["citations"][0]["document_id"].as_str().unwrap_or("").to_string(), last, record)
}

/// A local OpenAI-compatible model that plays each step of query understanding by its
/// instructions: it rewrites every follow-up to ask for the speaker's price, paraphrases and
/// imagines an answer about the speaker, and answers anything else with a citation. Each call
/// reports 100 prompt and 10 completion tokens. Every system prompt it saw is kept.
async fn scripted_model() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move |body: axum::Json<Value>| {
            let log = log.clone();
            async move {
                let system = body["messages"][0]["content"].as_str().unwrap_or_default().to_string();
                let user = body["messages"].as_array().and_then(|m| m.last()).map(|m| m["content"].to_string());
                log.lock().expect("lock").push(format!("{system}\n{}", user.unwrap_or_default()));
                let reply = if system.contains("Rewrite the user's last question") {
                    "智能音箱的售价是多少？"
                } else if system.contains("different phrasings") {
                    "1. 智能音箱 价格\n- 音箱卖多少钱"
                } else if system.contains("as a document in a knowledge base might") {
                    "智能音箱售价三百九十九元，支持中文和英文语音控制。"
                } else {
                    "答案见资料 [1]。"
                };
                let chunk = |delta: Value, finish: Value| json!({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                event_stream(
                    sse(&[
                        ("", chunk(json!({"role": "assistant", "content": reply}), Value::Null)),
                        ("", chunk(json!({}), json!("stop"))),
                        ("", json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}})),
                    ]) + "data: [DONE]\n\n",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/v1"), seen)
}

/// Query understanding with the agent's chat model: a follow-up the rules take as standing alone
/// ("价格是多少？" names its own subject, 价格) finds the watch as asked and by rule, and the speaker
/// once the model rewrites it from the conversation. Paraphrases and a hypothetical answer find the
/// speaker for a question that names nothing. Each step's prompt, output, tokens and cost are in the
/// answer's record, and its tokens in the agent's usage.
#[tokio::test]
async fn the_chat_model_rewrites_paraphrases_and_imagines_before_retrieval() {
    let (base, prompts) = scripted_model().await;
    let app = spawn_app().await;
    let token = app.register("understander").await;
    let (kb, speaker, watch) = products(&app, &token).await;
    let (speaker, watch) = (speaker.as_str(), watch.as_str());
    let agent = |name: &str, params: Value| {
        let mut params = params;
        params["base_url"] = json!(base);
        json!({"name": name, "knowledge_base_ids": [kb], "max_documents": 1, "model_provider": "openai",
               "model_name": "gpt-4o-mini", "model_parameters": params})
    };
    let converse = |id: String, questions: Vec<&'static str>| {
        let (app, token) = (&app, &token);
        async move { converse(app, token, &id, &questions).await }
    };
    let script = vec!["智能音箱支持哪些语言？", "它防水吗？", "价格是多少？"];
    for bad in [json!({"rewrite_follow_ups": "always"}), json!({"multi_query": 6}), json!({"hyde": "yes"})] {
        let (status, v) = app.post(&token, "/v1/agents", agent("坏", bad)).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent_config"), "{v}");
    }
    let by_rule = create_agent(&app, &token, agent("按规则", json!({}))).await;
    let (cited, _, _) = converse(by_rule["id"].as_str().expect("id").into(), script.clone()).await;
    assert_eq!(cited, watch, "as asked, 价格 finds the watch");
    assert!(prompts.lock().expect("lock").iter().all(|p| !p.contains("Rewrite")), "rules ask no model");

    let by_model = create_agent(&app, &token, agent("模型改写", json!({"rewrite_follow_ups": "model"}))).await;
    let (cited, answer, record) = converse(by_model["id"].as_str().expect("id").into(), script.clone()).await;
    assert_eq!(cited, speaker, "rewritten from the conversation, it asks for the speaker's price");
    let record = record.expect("the assistant message");
    let steps = record["query"]["steps"].as_array().expect("steps").clone();
    assert_eq!(steps.len(), 1, "{record}");
    assert_eq!(steps[0]["step"], "rewrite");
    let prompt = steps[0]["prompt"].as_str().expect("prompt");
    assert!(
        prompt.contains("User: 智能音箱支持哪些语言？") && prompt.contains("Last question: 价格是多少？"),
        "{prompt}"
    );
    assert_eq!(steps[0]["output"], "智能音箱的售价是多少？");
    assert_eq!((steps[0]["prompt_tokens"].as_u64(), steps[0]["completion_tokens"].as_u64()), (Some(100), Some(10)));
    assert_eq!(record["query"]["searched"], json!(["智能音箱的售价是多少？"]));
    assert_eq!(answer["usage"]["prompt_tokens"], 200, "the answer and the rewrite: {answer}");

    // One question that names nothing: paraphrases and a hypothetical answer find the speaker.
    let plain = create_agent(&app, &token, agent("原样", json!({}))).await;
    let (cited, _, _) = converse(plain["id"].as_str().expect("id").into(), vec!["卖多少钱？"]).await;
    assert_ne!(cited, speaker, "as asked, nothing points at the speaker");
    let expanded = create_agent(&app, &token, agent("扩展", json!({"multi_query": 2, "hyde": true}))).await;
    let expanded_id = expanded["id"].as_str().expect("id").to_string();
    let (cited, answer, record) = converse(expanded_id.clone(), vec!["卖多少钱？"]).await;
    assert_eq!(cited, speaker);
    let record = record.expect("the assistant message");
    let steps: Vec<&str> =
        record["query"]["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["multi_query", "hyde"]);
    assert_eq!(
        record["query"]["searched"],
        json!(["卖多少钱？", "智能音箱 价格", "音箱卖多少钱", "智能音箱售价三百九十九元，支持中文和英文语音控制。"])
    );
    assert_eq!(answer["usage"]["prompt_tokens"], 300, "{answer}");
    let (_, usage) = app.get(&token, &format!("/v1/usage/agents?agent_id={expanded_id}")).await;
    assert_eq!(usage["total_tokens"], 330, "{usage}");
    app.shutdown().await;
}
