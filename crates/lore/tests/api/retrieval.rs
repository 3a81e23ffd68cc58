//! Semantic and hybrid retrieval end to end: the built-in multilingual model, the vector index
//! under deletes, filters and kill -9, and a remote OpenAI-compatible embedder served locally.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, spawn_app, spawn_app_in, spawn_app_with, start_binary, wait_healthy};

const DOCS: &[(&str, &str)] = &[
    ("cat.txt", "The cat sat on the windowsill all afternoon, watching the birds in the garden."),
    ("revenue.txt", "Quarterly revenue grew by twelve percent thanks to strong sales in Asia."),
    ("password.txt", "To reset your password, open Settings and choose Account security."),
    ("coffee.txt", "我每天早上喝一杯咖啡，然后坐地铁去公司上班。"),
    ("noodles.txt", "这家餐厅的面条非常好吃，价格也很便宜，周末总是排长队。"),
    ("beijing.txt", "北京有很多历史古迹，比如故宫和长城，每年吸引大量游客。"),
];

async fn ingest_all(app: &TestApp, token: &str, kb: &str) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for (name, text) in DOCS {
        let doc = app.ingest(token, kb, name, *text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        ids.push((name.to_string(), doc["id"].as_str().expect("id").to_string()));
    }
    ids
}

async fn search_mode(app: &TestApp, token: &str, kb: &str, query: &str, extra: Value) -> Value {
    let mut body = json!({ "query": query });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn filenames(v: &Value) -> Vec<String> {
    v["results"].as_array().expect("results").iter().map(|r| r["filename"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn questions_find_passages_that_share_no_words_in_chinese_and_english() {
    let app = spawn_app().await;
    let token = app.register("semantic").await;
    let kb = app.create_kb(&token, "mixed").await;
    let ids = ingest_all(&app, &token, &kb).await;

    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", ids[0].1)).await;
    assert_eq!(chunks["data"][0]["embedding_model"], "local/multilingual-e5-small", "{chunks}");

    for (query, expected) in [
        ("feline resting by a window", "cat.txt"),
        ("How can I change my login credentials?", "password.txt"),
        ("company earnings increase", "revenue.txt"),
        ("哪家饭馆物美价廉", "noodles.txt"),
        ("紫禁城在哪座城市", "beijing.txt"),
        ("上班路上的饮品", "coffee.txt"),
    ] {
        let v = search_mode(&app, &token, &kb, query, json!({"mode": "vector", "top_k": 3})).await;
        assert_eq!(v["mode"], "vector");
        assert_eq!(v["embedding_model"], "local/multilingual-e5-small");
        assert_eq!(filenames(&v).first().map(String::as_str), Some(expected), "{query}: {v}");
        let score = v["results"][0]["score"].as_f64().expect("score");
        assert!(score > 0.0 && score <= 1.0, "cosine similarity: {v}");
    }
    // Full text cannot find these: the words differ.
    let v = search_mode(&app, &token, &kb, "feline resting by a window", json!({"mode": "fulltext"})).await;
    assert!(!filenames(&v).contains(&"cat.txt".to_string()), "{v}");

    // Hybrid is the default mode and reports both evidences.
    let v = search_mode(&app, &token, &kb, "reset password settings", json!({})).await;
    assert_eq!(v["mode"], "hybrid");
    assert_eq!(filenames(&v)[0], "password.txt", "{v}");
    assert!(v["results"][0]["vector_score"].as_f64().is_some() && v["results"][0]["fulltext_score"].as_f64().is_some());
    let v = search_mode(&app, &token, &kb, "故宫", json!({"mode": "hybrid", "search_target": "both"})).await;
    assert_eq!(filenames(&v)[0], "beijing.txt", "{v}");

    // A threshold drops weak matches; a bad one is refused.
    let v = search_mode(&app, &token, &kb, "feline", json!({"mode": "vector", "similarity_threshold": 0.99})).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(0), "{v}");
    let (status, v) = app
        .post(&token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "x", "weights": {"vector": -1}}))
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));

    // POST /v1/search covers every knowledge base of the caller in one embedding space, and only theirs.
    let kb2 = app.create_kb(&token, "second").await;
    app.ingest(&token, &kb2, "tea.txt", "绿茶和红茶都来自同一种植物。").await;
    let (status, v) = app.post(&token, "/v1/search", json!({"query": "茶叶", "mode": "vector", "top_k": 2})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(filenames(&v)[0], "tea.txt", "{v}");
    let other = app.register("stranger").await;
    let (_, v) = app.post(&other, "/v1/search", json!({"query": "茶叶", "mode": "vector"})).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(0), "{v}");
    let (status, _) = app.post(&other, "/v1/search", json!({"query": "茶叶", "knowledge_base_ids": [kb2]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn the_vector_index_honours_deletes_and_filters() {
    let app = spawn_app().await;
    let token = app.register("vectors").await;
    let kb = app.create_kb(&token, "index").await;
    let ids = ingest_all(&app, &token, &kb).await;
    let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone()).expect("doc");
    let query = "feline resting by a window";
    let vector = json!({"mode": "vector", "top_k": 3});

    let (status, _) = app.delete(&token, &format!("/v1/documents/{}", id_of("cat.txt"))).await;
    assert_eq!(status, StatusCode::OK);
    let v = search_mode(&app, &token, &kb, query, vector.clone()).await;
    assert!(!filenames(&v).contains(&"cat.txt".to_string()), "a deleted document is not found: {v}");
    let (status, _) = app.post(&token, &format!("/v1/documents/{}/restore", id_of("cat.txt")), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let v = search_mode(&app, &token, &kb, query, vector.clone()).await;
    assert_eq!(filenames(&v)[0], "cat.txt", "restored: {v}");

    // A filter to a document far from the query still yields that document: no top-k-then-filter.
    let v = search_mode(
        &app,
        &token,
        &kb,
        query,
        json!({"mode": "vector", "top_k": 3, "filters": {"document_ids": [id_of("revenue.txt")]}}),
    )
    .await;
    assert_eq!(filenames(&v), vec!["revenue.txt"], "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn embedded_chunks_survive_kill_9_and_the_index_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let http = super::http_client();
    let mut child = start_binary(dir.path(), port, 2);
    wait_healthy(&http, &base).await;
    let app = TestApp { base: base.clone(), http: http.clone(), server: None, _dir: tempfile::tempdir().expect("t") };
    let token = app.register("crashy").await;
    let kb = app.create_kb(&token, "crash").await;
    ingest_all(&app, &token, &kb).await;
    // The graph is saved every minute or so; dying now leaves it only in the change log.
    child.kill().expect("kill -9");
    child.wait().expect("wait");

    let mut child = start_binary(dir.path(), port, 2);
    wait_healthy(&http, &base).await;
    for (query, expected) in [("feline resting by a window", "cat.txt"), ("紫禁城在哪座城市", "beijing.txt")] {
        let v = search_mode(&app, &token, &kb, query, json!({"mode": "vector", "top_k": 6})).await;
        assert_eq!(filenames(&v).len(), 6, "every chunk is back in the index: {v}");
        assert_eq!(filenames(&v)[0], expected, "{v}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A local server speaking OpenAI's /v1/embeddings: vectors from hashed character bigrams, a 429
/// with Retry-After on the first call, and 401 for any key but the right one.
async fn fake_openai() -> (String, Arc<AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode as S};
    use axum::response::IntoResponse;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-right") {
                    return (S::UNAUTHORIZED, axum::Json(json!({"error": {"message": "Incorrect API key provided"}})))
                        .into_response();
                }
                if n == 0 {
                    return (S::TOO_MANY_REQUESTS, [("retry-after", "0")], axum::Json(json!({"error": {"message": "slow down"}})))
                        .into_response();
                }
                let inputs: Vec<String> = body["input"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let mut v = vec![0f32; 64];
                        let chars: Vec<char> = text.to_lowercase().chars().collect();
                        for w in chars.windows(2) {
                            v[(w[0] as usize * 31 + w[1] as usize) % 64] += 1.0;
                        }
                        json!({"object": "embedding", "index": i, "embedding": v})
                    })
                    .collect();
                axum::Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), calls)
}

#[tokio::test]
async fn an_openai_compatible_provider_embeds_with_retries_and_clear_errors() {
    let (base_url, calls) = fake_openai().await;
    let app = spawn_app().await;
    let token = app.register("remote").await;
    let (status, v) =
        app.put(&token, "/v1/config", json!({"openai_api_key": "sk-right", "openai_base_url": base_url})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let settings = json!({"embedding_config": {"provider": "openai", "model": "toy-embed", "dimensions": 64}});
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "remote", "settings": settings})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kb = v["id"].as_str().expect("id").to_string();
    let doc = app.ingest(&token, &kb, "a.txt", "apples and oranges").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    app.ingest(&token, &kb, "b.txt", "数据库索引结构").await;
    assert!(calls.load(Ordering::SeqCst) >= 3, "the 429 was retried");
    let v = search_mode(&app, &token, &kb, "数据库", json!({"mode": "vector", "top_k": 1})).await;
    assert_eq!(v["embedding_model"], "openai/toy-embed@64");
    assert_eq!(filenames(&v), vec!["b.txt"], "{v}");

    // A wrong key fails the document with a code that says so; nothing is retried forever.
    let (status, _) = app.put(&token, "/v1/config", json!({"openai_api_key": "sk-wrong"})).await;
    assert_eq!(status, StatusCode::OK);
    let settings = json!({"embedding_config": {"provider": "openai", "model": "toy-embed-2"}});
    let (_, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "wrong key", "settings": settings})).await;
    let kb2 = v["id"].as_str().expect("id").to_string();
    let doc = app.ingest(&token, &kb2, "c.txt", "pears").await;
    assert_eq!(
        (doc["status"].as_str(), doc["error_code"].as_str()),
        (Some("failed"), Some("embedding_provider_rejected")),
        "{doc}"
    );
    assert!(doc["error_message"].as_str().unwrap_or("").contains("Incorrect API key"), "{doc}");
    assert!(!doc.to_string().contains("sk-wrong"), "the key is never echoed");

    // Unknown providers are refused when the knowledge base is configured, not at upload.
    let settings = json!({"embedding_config": {"provider": "magic"}});
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "bad", "settings": settings})).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_embedding_config"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn with_embeddings_off_vector_search_says_so_and_hybrid_runs_on_full_text() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let token = app.register("plain").await;
    let kb = app.create_kb(&token, "plain").await;
    let doc = app.ingest(&token, &kb, "a.txt", "全文检索 still works").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let (status, v) =
        app.post(&token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "全文", "mode": "vector"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("embedding_not_configured")));
    let v = search_mode(&app, &token, &kb, "全文检索", json!({})).await;
    assert_eq!(v["mode"], "fulltext");
    assert!(v["warning"].as_str().is_some_and(|w| w.contains("embedding_not_configured")), "{v}");
    assert_eq!(filenames(&v), vec!["a.txt"]);
    app.shutdown().await;
}

#[tokio::test]
async fn semantic_chunking_cuts_where_the_topic_changes() {
    let app = spawn_app().await;
    let token = app.register("topics").await;
    let zh = "猫是一种常见的宠物。猫喜欢吃鱼和老鼠。很多猫每天睡十几个小时。小猫出生时眼睛是闭着的。\
              今天股市大幅上涨。央行宣布下调贷款利率。投资者对经济前景感到乐观。银行股领涨大盘。";
    let en = "Cats are popular pets. Cats like to eat fish. Many cats sleep for most of the day. Kittens are \
              born with their eyes closed. The stock market rose sharply today. The central bank cut interest \
              rates. Investors are optimistic about the economy. Bank shares led the gains.";
    let config = json!({"strategy_type": "semantic", "config": {"max_chunk_size": 400, "min_chunk_size": 0}});
    for (text, pets, money) in [(zh, ["猫"], ["股", "利率"]), (en, ["Cats"], ["stock", "bank"])] {
        let (status, v) =
            app.post(&token, "/v1/chunking/preview", json!({"text": text, "chunking_config": config})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let chunks: Vec<&str> =
            v["chunks"].as_array().expect("chunks").iter().filter_map(|c| c["content"].as_str()).collect();
        assert!(chunks.len() >= 2, "two topics, at least two chunks: {chunks:?}");
        for c in &chunks {
            let about_pets = pets.iter().any(|p| c.contains(p));
            let about_money = money.iter().any(|m| c.contains(m));
            assert!(!(about_pets && about_money), "a chunk mixes the topics: {chunks:?}");
        }
    }
    // Uploads chunk the same way, and say so in each chunk's metadata.
    let kb = app.create_kb(&token, "semantic").await;
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(en.as_bytes().to_vec()).file_name("topics.txt"))
        .text("chunking_config", config.to_string());
    let (status, v) = app.upload_form(&token, &kb, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let doc = app.wait_done(&token, v["id"].as_str().expect("id")).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    let chunks = chunks["data"].as_array().expect("chunks");
    assert!(chunks.len() >= 2 && chunks.iter().all(|c| c["metadata"]["strategy"] == "semantic"), "{chunks:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_new_embedding_model_reembeds_in_the_background_while_search_stays_on_the_old_one() {
    let (base_url, _) = fake_openai().await;
    let app = spawn_app().await;
    let token = app.register("switcher").await;
    app.put(&token, "/v1/config", json!({"openai_api_key": "sk-right", "openai_base_url": base_url})).await;
    let settings = json!({"embedding_config": {"provider": "openai", "model": "toy-embed", "dimensions": 64}});
    let (_, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "switch", "settings": settings})).await;
    let kb = v["id"].as_str().expect("id").to_string();
    app.ingest(&token, &kb, "a.txt", "apples and oranges").await;
    let doc = app.ingest(&token, &kb, "b.txt", "数据库索引结构").await;
    let (_, v) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(v["embedding_space"], "openai/toy-embed@64", "{v}");

    // Without workers the re-embedding waits; search answers from the old space meanwhile.
    let app = spawn_app_in(app.stop().await, |c| c.workers = 0).await;
    let (status, v) = app
        .patch(
            &token,
            &format!("/v1/knowledge-bases/{kb}"),
            json!({"settings": {"embedding_config": {"provider": "local"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["embedding_space"], "openai/toy-embed@64");
    let v = search_mode(&app, &token, &kb, "数据库", json!({"mode": "vector", "top_k": 1})).await;
    assert_eq!(
        (v["embedding_model"].as_str(), filenames(&v)),
        (Some("openai/toy-embed@64"), vec!["b.txt".to_string()])
    );

    // With workers it completes, and search moves to the new model in one step.
    let app = spawn_app_in(app.stop().await, |_| {}).await;
    let mut switched = false;
    for _ in 0..300 {
        let (_, v) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
        if v["embedding_space"] == "local/multilingual-e5-small" {
            switched = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(switched, "re-embedding completed");
    let v = search_mode(&app, &token, &kb, "database index", json!({"mode": "vector", "top_k": 1})).await;
    assert_eq!(v["embedding_model"], "local/multilingual-e5-small");
    assert_eq!(filenames(&v), vec!["b.txt"], "{v}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    assert_eq!(chunks["data"][0]["embedding_model"], "local/multilingual-e5-small");
    app.shutdown().await;
}

#[tokio::test]
async fn chunk_sizes_can_count_the_embedding_models_tokens() {
    let app = spawn_app().await;
    let token = app.register("tokens").await;
    let text = "Hybrid retrieval combines dense vectors with BM25 ranking over segmented terms. \
                混合检索把向量召回和全文检索结合起来，中文按词切分后建立倒排索引。"
        .repeat(12);
    let preview = |unit: &str| json!({"text": text, "chunking_config": {"strategy_type": "fixed", "config": {"chunk_size": 64, "chunk_overlap": 0, "size_unit": unit}}});
    let (status, chars) = app.post(&token, "/v1/chunking/preview", preview("characters")).await;
    assert_eq!(status, StatusCode::OK, "{chars}");
    let (status, tokens) = app.post(&token, "/v1/chunking/preview", preview("tokens")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["size_unit"], "tokens");
    let sizes: Vec<u64> =
        tokens["chunks"].as_array().expect("chunks").iter().map(|c| c["size"].as_u64().unwrap_or(0)).collect();
    // Sizes are the multilingual model's own token counts: within the limit (a token or two of
    // slack where a cut falls inside a word), and most chunks nearly full.
    assert!(sizes.iter().all(|&s| s <= 66), "{sizes:?}");
    assert!(sizes.iter().filter(|&&s| s >= 48).count() * 2 >= sizes.len(), "{sizes:?}");
    let char_counts: Vec<u64> =
        tokens["chunks"].as_array().expect("c").iter().map(|c| c["char_count"].as_u64().unwrap_or(0)).collect();
    assert!(
        char_counts.iter().any(|&c| c > 64),
        "a 64-token chunk holds more than 64 characters of English: {char_counts:?}"
    );
    assert!(tokens["chunk_count"].as_u64() < chars["chunk_count"].as_u64(), "{tokens} vs {chars}");

    // A knowledge base configured in tokens chunks its uploads so.
    let (status, kb) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "tokens", "settings": {"chunking_config": {"strategy_type": "paragraph", "config": {"max_chunk_size": 40, "size_unit": "tokens"}}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let doc = app.ingest(&token, kb["id"].as_str().expect("id"), "mixed.txt", text.clone()).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    assert!(chunks["data"].as_array().expect("chunks").len() > 3, "{chunks}");

    let (status, v) = app.post(&token, "/v1/chunking/preview", preview("words")).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_chunking_config"))
    );
    app.shutdown().await;
}

/// The caller's own search defaults (`PUT /v1/config`: `max_search_results`,
/// `default_similarity_threshold`) apply where neither the request nor the knowledge base sets
/// its own, to searches and to agents, which search the same way.
#[tokio::test]
async fn the_users_search_defaults_apply_unless_overridden() {
    let app = spawn_app().await;
    let token = app.register("defaults").await;
    let kb = app.create_kb(&token, "默认值").await;
    let paragraphs: Vec<String> =
        (1..=5).map(|i| format!("第{i}条：退款规则 refund rule number {i}，适用于第{i}类商品。")).collect();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(paragraphs.join("\n\n").into_bytes()).file_name("规则.md"))
        .text(
            "chunking_config",
            json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 60, "merge_short_paragraphs": false}})
                .to_string(),
        );
    let (status, doc) = app.upload_form(&token, &kb, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let doc = app.wait_done(&token, doc["id"].as_str().expect("id")).await;
    assert_eq!((doc["status"].as_str(), doc["chunk_count"].as_i64()), (Some("completed"), Some(5)), "{doc}");
    let count = |body: Value| {
        let app = &app;
        let token = &token;
        let kb = &kb;
        async move {
            let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["results"].as_array().map(Vec::len).unwrap_or(0)
        }
    };
    assert_eq!(count(json!({"query": "退款规则", "mode": "fulltext"})).await, 5);

    // The user's default number of results, then the knowledge base's, then the request's.
    let (status, v) = app.put(&token, "/v1/config", json!({"max_search_results": 2})).await;
    assert!(status.is_success(), "{v}");
    assert_eq!(count(json!({"query": "退款规则", "mode": "fulltext"})).await, 2);
    assert_eq!(count(json!({"query": "refund rule", "mode": "hybrid"})).await, 2);
    assert_eq!(count(json!({"query": "退款规则", "mode": "fulltext", "top_k": 4})).await, 4);
    let (status, v) = app
        .patch(&token, &format!("/v1/knowledge-bases/{kb}"), json!({"settings": {"search_config": {"top_k": 3}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(count(json!({"query": "退款规则", "mode": "fulltext"})).await, 3);

    // The user's default similarity threshold: an unrelated query's vector matches fall under it.
    let unrelated = json!({"query": "quantum chromodynamics lattice gauge theory", "mode": "vector"});
    assert!(count(unrelated.clone()).await > 0, "without a threshold every chunk is some distance away");
    app.put(&token, "/v1/config", json!({"default_similarity_threshold": 0.97})).await;
    assert_eq!(count(unrelated.clone()).await, 0);
    let mut explicit = unrelated.clone();
    explicit["similarity_threshold"] = json!(0.0);
    assert!(count(explicit).await > 0, "the request's own threshold wins");

    // An agent without its own threshold searches under the user's: nothing close enough, so
    // its answer cites nothing; with its own threshold it cites.
    let (_, agent) =
        app.post(&token, "/v1/agents", json!({"name": "严格", "knowledge_base_ids": [kb], "max_documents": 3})).await;
    let agent = agent["id"].as_str().expect("agent").to_string();
    let ask = |agent: String| {
        let app = &app;
        let token = &token;
        async move {
            let (status, v) = app
                .post(token, &format!("/v1/agents/{agent}/chat"), json!({"message": "quantum chromodynamics lattice"}))
                .await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["message"]["citations"].as_array().map(Vec::len).unwrap_or(0)
        }
    };
    assert_eq!(ask(agent.clone()).await, 0, "the user's threshold keeps weak passages out");
    app.patch(&token, &format!("/v1/agents/{agent}"), json!({"similarity_threshold": 0.0})).await;
    assert!(ask(agent).await > 0, "the agent's own threshold wins");
    app.shutdown().await;
}

/// A file type that names the embedding models allowed for it refuses an upload into a knowledge
/// base embedding with another (422 `embedding_model_not_allowed`), and takes it once allowed.
#[tokio::test]
async fn file_types_keep_to_their_allowed_embedding_models() {
    let app = spawn_app().await;
    let admin = app.register("registrar").await; // the first account administers the installation
    let kb = app.create_kb(&admin, "受限").await;
    let (_, types) = app.get(&admin, "/v1/file-types").await;
    let markdown = types["data"].as_array().expect("types").iter().find(|t| t["name"] == "markdown").expect("md")["id"]
        .as_i64()
        .expect("id");
    let allow = |models: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            let (status, v) =
                app.patch(admin, &format!("/v1/file-types/{markdown}"), json!({"embedding_models": models})).await;
            assert_eq!(status, StatusCode::OK, "{v}");
        }
    };
    allow(json!(["BAAI/bge-m3"])).await;
    let (status, v) = app.upload(&admin, &kb, "说明.md", "# 说明\n\n只允许特定的嵌入模型。Only some models.").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("embedding_model_not_allowed"))
    );
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("multilingual-e5-small")), "{v}");
    let (_, docs) = app.get(&admin, &format!("/v1/knowledge-bases/{kb}/documents")).await;
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(0), "nothing was stored");
    // Plain text is another type: unaffected.
    let (status, _) = app.upload(&admin, &kb, "notes.txt", "纯文本不受限制。Plain text is not restricted.").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The knowledge base's model by name, or by provider and name.
    for allowed in [json!(["multilingual-e5-small"]), json!(["local/multilingual-e5-small", "BAAI/bge-m3"]), json!([])]
    {
        allow(allowed.clone()).await;
        let text = format!("# 说明\n\n允许：{allowed}");
        let (status, v) = app.upload(&admin, &kb, "说明.md", text).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{allowed}: {v}");
    }
    app.shutdown().await;
}

/// Progress moves by stage and by batch of chunks embedded: a document of 200 chunks, embedded
/// by a slow provider, is seen at several values between chunking and completion, never going
/// back.
#[tokio::test]
async fn progress_moves_per_stage_and_per_batch_embedded() {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let n = body["input"].as_array().map(Vec::len).unwrap_or(0);
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [1.0, (i % 7) as f32, 0.5, 0.25]}))
                .collect();
            axum::Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let lore = spawn_app().await;
    let token = lore.register("patient").await;
    lore.put(&token, "/v1/config", json!({"openai_api_key": "sk-slow", "openai_base_url": base})).await;
    let settings = json!({"embedding_config": {"provider": "openai", "model": "slow-embed", "dimensions": 4}});
    let (_, kb) = lore.post(&token, "/v1/knowledge-bases", json!({"name": "进度", "settings": settings})).await;
    let kb = kb["id"].as_str().expect("kb").to_string();
    let text: String = (0..200).map(|i| format!("第{i}段：进度按阶段推进。Paragraph {i} moves the bar.\n\n")).collect();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(text.into_bytes()).file_name("long.md"))
        .text("chunking_config", json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 60}}).to_string());
    let (status, doc) = lore.upload_form(&token, &kb, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let id = doc["id"].as_str().expect("id").to_string();
    let mut seen: Vec<i64> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, d) = lore.get(&token, &format!("/v1/documents/{id}")).await;
        let progress = d["progress"].as_i64().unwrap_or(0);
        if seen.last() != Some(&progress) {
            seen.push(progress);
        }
        if d["status"] == "completed" || d["status"] == "failed" {
            assert_eq!(d["status"], "completed", "{d}");
            assert_eq!(d["chunk_count"].as_i64(), Some(200));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still processing: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {seen:?}");
    let between: Vec<&i64> = seen.iter().filter(|p| **p > 40 && **p < 100).collect();
    assert!(between.len() >= 2, "several values while embedding: {seen:?}");
    assert_eq!(seen.last(), Some(&100));
    lore.shutdown().await;
}

/// Hybrid search fuses by normalised scores by default, or by reciprocal rank (`fusion: rrf`),
/// per request or per knowledge base: the fused scores say which was used.
#[tokio::test]
async fn hybrid_fusion_is_rrf_or_weighted_scores() {
    let app = spawn_app().await;
    let token = app.register("fuser").await;
    let kb = app.create_kb(&token, "融合").await;
    for (name, text) in [
        ("退款.md", "# 退款政策\n\n购买后三十天内可以申请全额退款。Refunds within thirty days."),
        ("配送.md", "# 配送说明\n\n订单两个工作日内发货。Orders ship within two business days."),
        ("会员.md", "# 会员积分\n\n积分每年清零一次。Points reset once a year."),
    ] {
        assert_eq!(app.ingest(&token, &kb, name, text).await["status"], "completed");
    }
    let top = |body: Value| {
        let app = &app;
        let (token, kb) = (&token, &kb);
        async move {
            let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            (
                v["results"][0]["filename"].as_str().unwrap_or("").to_string(),
                v["results"][0]["score"].as_f64().unwrap_or(0.0),
            )
        }
    };
    let (file, rrf) = top(json!({"query": "全额退款 refunds", "fusion": "rrf"})).await;
    assert_eq!(file, "退款.md");
    assert!(rrf < 0.1, "reciprocal rank scores are small: {rrf}");
    let (file, weighted) = top(json!({"query": "全额退款 refunds"})).await;
    assert_eq!(file, "退款.md");
    assert!(weighted > 1.5 && weighted <= 2.0 + 1e-9, "first in both lists, scaled: {weighted}");
    assert_eq!(top(json!({"query": "全额退款 refunds", "fusion": "weighted"})).await.1, weighted);
    let (status, v) = app
        .patch(&token, &format!("/v1/knowledge-bases/{kb}"), json!({"settings": {"search_config": {"fusion": "rrf"}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(top(json!({"query": "全额退款 refunds"})).await.1 < 0.1, "the knowledge base's fusion applies");
    assert!(top(json!({"query": "全额退款 refunds", "fusion": "weighted"})).await.1 > 1.5, "the request's wins");
    let (status, v) =
        app.post(&token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "x", "fusion": "borda"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    app.shutdown().await;
}

/// A local reranker that speaks TEI's `/rerank` and vLLM's `/v1/rerank`: it scores a passage
/// 0.9 when it says 官方 or "official", else 0.1, and counts its calls. `/down/rerank` fails.
async fn reranker() -> (String, Arc<AtomicUsize>) {
    use axum::Json;
    use axum::routing::post;
    let calls = Arc::new(AtomicUsize::new(0));
    let score = |text: &Value| {
        if text.as_str().is_some_and(|t| t.contains("官方") || t.contains("official")) { 0.9 } else { 0.1 }
    };
    let (tei_calls, vllm_calls) = (calls.clone(), calls.clone());
    let router = axum::Router::new()
        .route(
            "/tei/rerank",
            post(move |Json(body): Json<Value>| {
                tei_calls.fetch_add(1, Ordering::SeqCst);
                let texts = body["texts"].as_array().cloned().unwrap_or_default();
                let list: Vec<Value> =
                    texts.iter().enumerate().map(|(i, t)| json!({"index": i, "score": score(t)})).collect();
                async move { Json(json!(list)) }
            }),
        )
        .route(
            "/vllm/v1/rerank",
            post(move |Json(body): Json<Value>| {
                vllm_calls.fetch_add(1, Ordering::SeqCst);
                // This one prefers the opposite: what the others score low.
                let docs = body["documents"].as_array().cloned().unwrap_or_default();
                let list: Vec<Value> = docs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| json!({"index": i, "relevance_score": 1.0 - score(t)}))
                    .collect();
                async move { Json(json!({"results": list})) }
            }),
        )
        .route("/down/rerank", post(|| async { (axum::http::StatusCode::BAD_GATEWAY, "down") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), calls)
}

/// A rerank stage after fusion, in Chinese and English: the knowledge base's reorders results and
/// reports `rerank_score`; a search turns it off or brings its own; a reranker that fails leaves
/// the fused order with a warning; an agent's citations follow its reranker.
#[tokio::test]
async fn a_rerank_stage_reorders_the_fused_results() {
    let (base, calls) = reranker().await;
    let app = spawn_app().await;
    let token = app.register("reranker").await;
    for bad in [
        json!({"provider": "magic"}),
        json!({"provider": "tei", "candidates": 500}),
        json!({"provider": "tei", "base_url": "ftp://x"}),
    ] {
        let (status, v) = app
            .post(&token, "/v1/knowledge-bases", json!({"name": "bad", "settings": {"search_config": {"rerank": bad}}}))
            .await;
        assert_eq!((status, super::code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");
    }
    let tei = json!({"provider": "tei", "base_url": format!("{base}/tei"), "candidates": 10, "top_n": 2});
    let (status, v) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "政策", "settings": {"search_config": {"rerank": tei}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kb = v["id"].as_str().expect("id").to_string();
    let mut ids = std::collections::HashMap::new();
    for (name, text) in [
        ("退款.md", "退款政策：退款退款退款，退款需要七天，退款请联系客服。"),
        ("官方.md", "官方说明：退款在三十天内受理。"),
        ("refunds.md", "Refunds refunds refunds: a refund takes seven days, refunds go back to the card."),
        ("official.md", "The official note: a refund is accepted within thirty days."),
        ("其他.md", "发货政策：订单两天内发出。"),
    ] {
        let doc = app.ingest(&token, &kb, name, text).await;
        ids.insert(doc["id"].as_str().expect("id").to_string(), name);
    }
    let search = |body: Value| {
        let (app, token, kb) = (&app, &token, kb.clone());
        async move {
            let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v
        }
    };
    let names = |v: &Value| -> Vec<&str> {
        v["results"].as_array().into_iter().flatten().map(|r| ids[r["document_id"].as_str().expect("doc")]).collect()
    };
    for (query, strong, official) in [("退款", "退款.md", "官方.md"), ("refund", "refunds.md", "official.md")] {
        let fused = search(json!({"query": query, "mode": "fulltext", "rerank": false})).await;
        assert_eq!(names(&fused)[0], strong, "as fused: {fused}");
        assert!(fused["results"][0].get("rerank_score").is_none());
        let reranked = search(json!({"query": query, "mode": "fulltext"})).await;
        assert_eq!(names(&reranked), [official, strong], "reranked, cut to top_n: {reranked}");
        assert_eq!(reranked["results"][0]["rerank_score"].as_f64(), Some(0.9f32 as f64));
        assert!(reranked["results"][0]["score"].as_f64().is_some(), "the fused score stays");
        // A search's own reranker (vLLM's format) wins over the knowledge base's.
        let vllm = json!({"provider": "vllm", "model": "bge-reranker-v2-m3", "base_url": format!("{base}/vllm")});
        let own = search(json!({"query": query, "mode": "hybrid", "top_k": 1, "rerank": vllm})).await;
        assert_ne!(names(&own)[0], official, "{own}");
    }
    let before = calls.load(Ordering::SeqCst);
    search(json!({"query": "退款", "rerank": false})).await;
    assert_eq!(calls.load(Ordering::SeqCst), before, "off means no call");
    let (status, v) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb}/search"),
            json!({"query": "退款", "rerank": {"provider": "nope"}}),
        )
        .await;
    assert_eq!((status, super::code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");

    // A reranker that fails: the fused order, and a warning that says so.
    let down = json!({"provider": "tei", "base_url": format!("{base}/down")});
    let fallback = search(json!({"query": "退款", "mode": "fulltext", "rerank": down})).await;
    assert_eq!(names(&fallback)[0], "退款.md");
    assert!(fallback["warning"].as_str().is_some_and(|w| w.starts_with("rerank_failed")), "{fallback}");

    // An agent cites what its knowledge base's reranker puts first, unless it turns it off.
    for (name, params, first) in [("重排", json!({}), "官方.md"), ("不重排", json!({"rerank": false}), "退款.md")]
    {
        let (status, agent) = app
            .post(
                &token,
                "/v1/agents",
                json!({"name": name, "knowledge_base_ids": [kb], "max_documents": 1, "model_parameters": params}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        let id = agent["id"].as_str().expect("id");
        let (status, v) = app.post(&token, &format!("/v1/agents/{id}/chat"), json!({"message": "退款"})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(ids[v["message"]["citations"][0]["document_id"].as_str().expect("cited")], first, "{v}");
    }
    let (status, v) = app
        .post(&token, "/v1/agents", json!({"name": "坏", "knowledge_base_ids": [kb], "model_parameters": {"rerank": {"provider": "tei", "top_n": 0}}}))
        .await;
    assert_eq!((status, super::code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent_config"), "{v}");
    app.shutdown().await;
}

/// The local reranker: a cross-encoder in the model directory (here a tiny BERT one written by
/// the test, in Hugging Face format) is loaded by name and orders results by its own scores,
/// which are the model's as read directly. A name that is not there is refused at save time.
#[tokio::test]
async fn a_local_cross_encoder_reranks_by_name() {
    let models = std::env::var_os("LORE_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lore-test-models"));
    let name = "tiny-cross-encoder-for-tests";
    lore_embed::testing::tiny_cross_encoder(&models.join(name), "bert", 1);
    let shared = models.clone();
    let app = spawn_app_with(move |c| c.model_dir = shared).await;
    let token = app.register("local-reranker").await;
    let missing = json!({"search_config": {"rerank": {"provider": "local", "model": "no-such-reranker"}}});
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "x", "settings": missing})).await;
    assert_eq!((status, super::code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_model"), "{v}");
    let embedding_model = json!({"search_config": {"rerank": {"provider": "local", "model": "multilingual-e5-small"}}});
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "y", "settings": embedding_model})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an embedding model is not a reranker: {v}");
    let settings = json!({"search_config": {"rerank": {"provider": "local", "model": name, "candidates": 10}}});
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "本地", "settings": settings})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kb = v["id"].as_str().expect("id").to_string();
    for (file, text) in [
        ("a.md", "The refund policy: thirty days."),
        ("b.md", "退款政策：三十天内退款。"),
        ("c.md", "The cat and the refund."),
        ("d.md", "猫的政策。"),
    ] {
        app.ingest(&token, &kb, file, text).await;
    }
    let cross = lore_embed::cross::CrossEncoder::load(&models.join(name)).expect("loads");
    for query in ["refund policy", "退款政策"] {
        let (status, v) = app
            .post(&token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": "vector"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert!(v.get("warning").is_none(), "{v}");
        let results = v["results"].as_array().expect("results");
        assert_eq!(results.len(), 4);
        let scores: Vec<f64> = results.iter().map(|r| r["rerank_score"].as_f64().expect("rerank_score")).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ordered by the reranker: {scores:?}");
        for r in results {
            let content = r["content"].as_str().expect("content");
            let direct = cross.score(query, &[content])[0] as f64;
            assert!((r["rerank_score"].as_f64().expect("score") - direct).abs() < 1e-4, "{content}");
        }
    }
    app.shutdown().await;
}

/// bge-m3 by name, end to end: `lore model pull BAAI/bge-m3` fetches it from a local hub
/// stand-in (a generated XLM-R of bge-m3's 1,024 dimensions), and then the name works wherever a
/// model is named: the server's default, a knowledge base's settings, the user's default. Its
/// 1,024-d vectors are stored and searched on both stores. A model not pulled is refused when
/// it is saved, saying what to run.
#[tokio::test]
async fn bge_m3_by_name_works_end_to_end() {
    use axum::extract::Path as UrlPath;
    let served = tempfile::tempdir().expect("dir");
    lore_embed::testing::tiny_embedding_model(served.path(), "xlm-roberta", 1024);
    let root = served.path().to_path_buf();
    let router = axum::Router::new().route(
        "/{org}/{name}/resolve/main/{*file}",
        axum::routing::get(move |UrlPath((org, name, file)): UrlPath<(String, String, String)>| {
            let root = root.clone();
            async move {
                match (org.as_str(), name.as_str()) {
                    ("BAAI", "bge-m3") => std::fs::read(root.join(file)).map_err(|_| axum::http::StatusCode::NOT_FOUND),
                    _ => Err(axum::http::StatusCode::NOT_FOUND),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hub = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let models = tempfile::tempdir().expect("models");
    let (cache, endpoint) = (models.path().to_path_buf(), hub.clone());
    // The hub stand-in runs on this test's runtime: the command waits off it.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
            .args(["model", "pull", "BAAI/bge-m3", "--model-dir"])
            .arg(cache)
            .env("LORE_HF_ENDPOINT", endpoint)
            .output()
    })
    .await
    .expect("join")
    .expect("runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("BAAI/bge-m3 (1024 dimensions) ready"), "{said}");

    let dir = models.path().to_path_buf();
    let app = spawn_app_with(move |c| {
        c.model_dir = dir;
        c.embedding_model = Some("BAAI/bge-m3".into());
    })
    .await;
    let token = app.register("bge-m3-user").await;
    let (status, v) = app.put(&token, "/v1/config", json!({"default_embedding_model": "BAAI/bge-m3"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = app.put(&token, "/v1/config", json!({"default_embedding_model": "BAAI/bge-large-zh"})).await;
    assert_eq!((status, super::code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_model"), "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("lore model pull BAAI/bge-large-zh")), "{v}");
    let named = json!({"name": "bge", "settings": {"embedding_config": {"provider": "local", "model": "BAAI/bge-m3"}}});
    let (status, kb) = app.post(&token, "/v1/knowledge-bases", named).await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let kb = kb["id"].as_str().expect("id").to_string();
    let texts = ["退款在三十天内受理，原路退回。", "Shipping takes two business days by courier."];
    for (i, text) in texts.iter().enumerate() {
        let doc = app.ingest(&token, &kb, &format!("{i}.md"), *text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }
    let (_, info) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(info["embedding_space"], "local/BAAI/bge-m3", "{info}");
    for text in texts {
        let (status, v) = app
            .post(&token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": text, "mode": "vector"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["embedding_model"], "local/BAAI/bge-m3");
        assert_eq!(v["results"][0]["content"], text, "a text finds itself: {v}");
    }
    app.shutdown().await;
}

/// Evaluations: golden questions in Chinese and English (by document, by chunk, by answer text)
/// run against two configurations; the metrics are kept per configuration with each question's
/// rank, differ where the configurations do, and are another owner's 404.
#[tokio::test]
async fn an_evaluation_compares_search_configurations() {
    let app = spawn_app().await;
    let token = app.register("evaluator-api").await;
    let intruder = app.register("evaluator-intruder").await;
    let kb = app.create_kb(&token, "评测").await;
    let mut docs = Vec::new();
    for (name, text) in [
        ("退款.md", "退款政策：购买后三十天内可以申请全额退款。"),
        ("shipping.md", "Shipping policy: orders ship within two business days."),
        ("会员.md", "会员积分每年年底清零一次。"),
    ] {
        let doc = app.ingest(&token, &kb, name, text).await;
        docs.push(doc["id"].as_str().expect("id").to_string());
    }
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", docs[2])).await;
    let points_chunk = chunks["data"][0]["id"].as_str().expect("chunk").to_string();
    let questions = json!([
        {"question": "退款", "expected_document_ids": [docs[0]]},
        {"question": "shipping", "expected_answer": "two business days"},
        {"question": "积分清零", "expected_chunk_ids": [points_chunk]},
        // Words the text does not share: full text finds nothing, meaning does.
        {"question": "how long do deliveries take", "expected_document_ids": [docs[1]]},
    ]);
    let configurations = json!([{"label": "full text", "mode": "fulltext"}, {"label": "vector", "mode": "vector"}]);
    for (body, why) in [
        (json!({"questions": []}), "no questions"),
        (json!({"questions": [{"question": "q"}]}), "nothing expected"),
        (json!({"questions": questions, "configurations": [{"label": "a"}, {"label": "a"}]}), "labels repeat"),
        (json!({"questions": questions, "configurations": [{"label": "x", "mode": "magic"}]}), "a bad mode"),
    ] {
        let (status, v) = app.post(&token, &format!("/v1/knowledge-bases/{kb}/evaluations"), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {v}");
    }
    let (status, v) = app.post(&intruder, &format!("/v1/knowledge-bases/{kb}/evaluations"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    let body = json!({"name": "全文 vs 向量", "questions": questions, "configurations": configurations, "k": 3});
    let (status, run) = app.post(&token, &format!("/v1/knowledge-bases/{kb}/evaluations"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["status"], "running");
    let id = run["id"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let (_, v) = app.get(&token, &format!("/v1/evaluations/{id}")).await;
        if v["status"] != "running" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    let results = &done["results"]["configurations"];
    let fulltext = &results[0];
    assert_eq!(fulltext["label"], "full text");
    let ranks: Vec<Value> =
        fulltext["questions"].as_array().expect("questions").iter().map(|q| q["rank"].clone()).collect();
    assert_eq!(ranks, [json!(1), json!(1), json!(1), Value::Null], "{fulltext}");
    assert_eq!(fulltext["hit_at_k"], 0.75);
    assert_eq!(fulltext["mrr"], 0.75);
    assert!(fulltext["latency_ms_p50"].as_f64().is_some_and(|ms| ms > 0.0));
    let vector = &results[1];
    assert_eq!(vector["questions"][3]["rank"], 1, "meaning finds the delivery question: {vector}");
    assert!(vector["hit_at_k"].as_f64().expect("hit") > 0.75, "{vector}");
    assert!(vector["ndcg_at_10"].as_f64().expect("ndcg") > fulltext["ndcg_at_10"].as_f64().expect("ndcg"));

    let (_, listed) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/evaluations")).await;
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(app.get(&intruder, &format!("/v1/evaluations/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&intruder, &format!("/v1/knowledge-bases/{kb}/evaluations")).await.0, StatusCode::NOT_FOUND);

    // Two runs of a knowledge base search at once; a third waits its turn.
    let many: Vec<Value> =
        (0..200).map(|_| json!({"question": "退款政策", "expected_document_ids": [docs[0]]})).collect();
    let heavy = json!({"questions": many, "configurations": [{"label": "full text", "mode": "fulltext"}]});
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(app.post(&token, &format!("/v1/knowledge-bases/{kb}/evaluations"), heavy.clone()).await);
    }
    assert!(answers[..2].iter().all(|(status, _)| *status == StatusCode::ACCEPTED), "{answers:?}");
    let (status, v) = &answers[2];
    assert_eq!((*status, super::code(v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{v}");
    app.shutdown().await;
}

/// Golden questions drafted by the owner's chat model (a local OpenAI-compatible server), one a
/// chunk, each expecting the chunk it was drafted from; nothing stored; a key may not spend the
/// owner's model on it.
#[tokio::test]
async fn the_chat_model_drafts_golden_questions_for_review() {
    let (base, seen) = super::agents::provider(
        r#"{"questions": {"1": ["退款多久可以到账？"], "2": ["How many days does shipping take?"]}}"#,
    )
    .await;
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let token = app.register("drafter").await;
    app.put(&token, "/v1/config", json!({"openai_api_key": "sk-draft-0000", "openai_base_url": format!("{base}/ok")}))
        .await;
    let kb = app.create_kb(&token, "草稿").await;
    let zh = app.ingest(&token, &kb, "退款.md", "退款会在五个工作日内退回原支付账户，请耐心等待。").await;
    let en = app.ingest(&token, &kb, "shipping.md", "Orders ship within two business days by courier.").await;
    let body = json!({"provider": "openai", "model": "gpt-4o-mini", "count": 2});
    let (status, draft) = app.post(&token, &format!("/v1/knowledge-bases/{kb}/evaluations/draft"), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let questions = draft["questions"].as_array().expect("questions");
    assert_eq!(questions.len(), 2, "{draft}");
    let by_doc =
        |doc: &Value| questions.iter().find(|q| q["expected_document_ids"][0] == doc["id"]).cloned().expect("drafted");
    let (zh_q, en_q) = (by_doc(&zh), by_doc(&en));
    assert!(zh_q["question"].is_string() && en_q["question"].is_string());
    assert_eq!(zh_q["expected_chunk_ids"].as_array().map(Vec::len), Some(1));
    assert!(draft["log"].as_str().is_some_and(|l| l.contains("2 questions for 2 of 2 chunks")), "{draft}");
    assert_eq!(seen.lock().expect("lock").len(), 1, "one call for both chunks");
    let (_, runs) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/evaluations")).await;
    assert_eq!(runs["data"].as_array().map(Vec::len), Some(0), "a draft is not a run");
    // Reviewed, the draft runs as it is.
    let (status, run) =
        app.post(&token, &format!("/v1/knowledge-bases/{kb}/evaluations"), json!({"questions": questions})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let (_, key) = app.post(&token, "/v1/api-keys", json!({"name": "k", "scopes": ["search", "read"]})).await;
    let key = key["key"].as_str().expect("key");
    let (status, v) = app.post(key, &format!("/v1/knowledge-bases/{kb}/evaluations/draft"), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    app.shutdown().await;
}
