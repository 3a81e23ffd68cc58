//! Regression tests for what a hostile tenant tried (issue 18): each failed before its fix.
//! A local listener on 127.0.0.1 plays every outside service and records what reaches it.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, code, spawn_app, spawn_app_with};

/// What reached the listener: path and the headers and body as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, String)>>>);

impl Recorder {
    fn everything(&self) -> String {
        self.0.lock().expect("lock").iter().map(|(p, r)| format!("{p}\n{r}\n")).collect()
    }

    fn requests_to(&self, suffix: &str) -> usize {
        self.0.lock().expect("lock").iter().filter(|(p, _)| p.ends_with(suffix)).count()
    }
}

/// An OpenAI-compatible listener: embeddings answered (a vector per text from its characters),
/// anything else refused with 400; every request recorded with its headers.
async fn listener() -> (String, Recorder) {
    let recorder = Recorder::default();
    let seen = recorder.clone();
    let app =
        axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut record = format!("{headers:?}\n");
                record.push_str(&body);
                seen.0.lock().expect("lock").push((uri.path().to_string(), record));
                if !uri.path().ends_with("/embeddings") {
                    return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"message": "no such model"}})));
                }
                let body: Value = serde_json::from_str(&body).unwrap_or_default();
                let data: Vec<Value> = body["input"]
                    .as_array()
                    .map(|inputs| {
                        inputs
                            .iter()
                            .enumerate()
                            .map(|(i, text)| {
                                let mut v = vec![0.1f32; 8];
                                for (j, c) in text.as_str().unwrap_or_default().chars().enumerate() {
                                    v[(c as usize + j) % 8] += 1.0;
                                }
                                json!({"index": i, "embedding": v})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (StatusCode::OK, axum::Json(json!({"data": data, "usage": {"prompt_tokens": 1, "total_tokens": 1}})))
            }
        });
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(socket, app).await });
    (format!("http://{addr}/v1"), recorder)
}

async fn key(app: &TestApp, owner: &str, scopes: &[&str], kb: Option<&str>) -> String {
    let (status, v) =
        app.post(owner, "/v1/api-keys", json!({"name": "k", "scopes": scopes, "knowledge_base_id": kb})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["key"].as_str().expect("key").to_string()
}

/// Starts a sync of a data source and waits for its run to end; the runs, then the source.
async fn sync_and_wait(app: &TestApp, token: &str, id: &str) -> (Value, Value) {
    let (status, v) = app.post(token, &format!("/v1/data-sources/{id}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let mut runs = Value::Null;
    for _ in 0..300 {
        (_, runs) = app.get(token, &format!("/v1/data-sources/{id}/syncs")).await;
        if runs["data"][0]["status"].as_str().is_some_and(|s| s != "running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, source) = app.get(token, &format!("/v1/data-sources/{id}")).await;
    (runs, source)
}

#[tokio::test]
async fn chunking_configs_that_multiply_the_text_are_refused_before_any_work() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("chunk-bomber").await;
    let kb = app.create_kb(&owner, "kb").await;
    let text = "这是一段中文。This is English text. ".repeat(6_000); // about 200 KB
    let bomb = json!({"strategy_type": "sliding_window", "config": {"window_size": 100000, "step": 1}});
    let (status, v) = app.post(&owner, "/v1/chunking/preview", json!({"text": text, "chunking_config": bomb})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "chunk_overlap_too_large"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("--max-chunk-repetition"), "{v}");
    for bomb in [
        json!({"strategy_type": "fixed", "config": {"chunk_size": 5000, "chunk_overlap": 4999}}),
        json!({"strategy_type": "hierarchical", "config": {"parent_size": 8000, "child_size": 4000, "child_overlap": 3990}}),
    ] {
        let (status, v) =
            app.post(&owner, "/v1/chunking/preview", json!({"text": "短文本", "chunking_config": bomb})).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "chunk_overlap_too_large"), "{v}");
        // The same config is refused where it would be kept.
        let (status, v) = app
            .patch(&owner, &format!("/v1/knowledge-bases/{kb}"), json!({"settings": {"chunking_config": bomb}}))
            .await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "chunk_overlap_too_large"), "{v}");
    }
    // A config that must give more chunks than a document may have: refused before chunking.
    let tiny = json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 1, "min_chunk_size": 0}});
    let (status, v) = app.post(&owner, "/v1/chunking/preview", json!({"text": text, "chunking_config": tiny})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "too_many_chunks"), "{v}");
    // A search-only key may not preview at all; an upload key may.
    let search_key = key(&app, &owner, &["search"], Some(&kb)).await;
    let (status, v) = app.post(&search_key, "/v1/chunking/preview", json!({"text": "hello 你好"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{v}");
    let (status, v) =
        app.post(&search_key, "/v1/chunking/from-description", json!({"description": "每块五百字"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{v}");
    let upload_key = key(&app, &owner, &["upload"], Some(&kb)).await;
    let (status, v) = app.post(&upload_key, "/v1/chunking/preview", json!({"text": "hello 你好"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The server is still there for everyone.
    let (status, _) = app.get(&owner, "/v1/knowledge-bases").await;
    assert_eq!(status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn an_upload_key_cannot_redirect_embeddings_and_the_owners_key_stays_home() {
    let (base, recorder) = listener().await;
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("key-owner").await;
    // The owner's OpenAI key, saved for OpenAI's own address.
    let (status, v) = app.put(&owner, "/v1/config", json!({"openai_api_key": "sk-owner-secret-7f3a"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let kb = app.create_kb(&owner, "kb").await;
    let upload_key = key(&app, &owner, &["upload", "read"], Some(&kb)).await;
    let redirect = json!({"settings": {"embedding_config": {"provider": "openai", "model": "m", "base_url": base}}});
    let (status, v) = app.patch(&upload_key, &format!("/v1/knowledge-bases/{kb}"), redirect.clone()).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "session_required"), "{v}");
    // Other settings stay open to the key.
    let (status, v) = app
        .patch(
            &upload_key,
            &format!("/v1/knowledge-bases/{kb}"),
            json!({"settings": {"chunking_config": {"strategy_type": "fixed", "config": {"chunk_size": 300}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Even the owner's own session pointing a knowledge base elsewhere does not send the key there.
    let (status, v) = app.patch(&owner, &format!("/v1/knowledge-bases/{kb}"), redirect).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let doc = app.ingest(&upload_key, &kb, "a.txt", "向量检索 vector search").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert!(recorder.requests_to("/embeddings") >= 1, "the listener was used");
    assert!(!recorder.everything().contains("sk-owner-secret-7f3a"), "the owner's key leaked");
    app.shutdown().await;
}

#[tokio::test]
async fn models_are_names_and_a_path_reveals_nothing() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("path-prober").await;
    let mut messages = Vec::new();
    for model in ["/etc/shadow", "/dev/zero", "../../etc/passwd", "/no/such/file", "C:\\model.bin"] {
        let settings = json!({"embedding_config": {"provider": "local", "model": model}});
        let (status, v) = app.post(&owner, "/v1/knowledge-bases", json!({"name": "probe", "settings": settings})).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_model"), "{model}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default().replace(model, "MODEL");
        assert!(!message.contains("magic") && !message.contains("denied") && !message.contains("No such"), "{message}");
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "every path gets the same answer: {messages:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn outbound_requests_never_reach_private_addresses_unless_the_operator_allows_them() {
    let app = spawn_app_with(|c| {
        c.embedding_model = None;
        c.allow_outbound.clear();
    })
    .await;
    let owner = app.register("ssrf").await;
    for (field, address) in [
        ("openai_base_url", "http://127.0.0.1:9/v1"),
        ("anthropic_base_url", "http://169.254.169.254/latest"),
        ("cohere_base_url", "http://[::1]:9"),
        ("webhook_url", "http://127.0.0.1:8080/hook"),
        ("webhook_url", "http://10.1.2.3/hook"),
    ] {
        let (status, v) = app.put(&owner, "/v1/config", json!({ field: address })).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "outbound_not_allowed"), "{field}: {v}");
    }
    // An agent on llamacpp's default address (127.0.0.1:8080: Lore itself) or a private one.
    for agent in [
        json!({"name": "loop", "model_provider": "llamacpp", "model_name": "m"}),
        json!({"name": "lan", "model_provider": "openai", "model_name": "m", "model_parameters": {"base_url": "http://192.168.0.9/v1"}}),
    ] {
        let (status, v) = app.post(&owner, "/v1/agents", agent).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "outbound_not_allowed"), "{v}");
    }
    let settings =
        json!({"embedding_config": {"provider": "openai", "model": "m", "base_url": "http://100.64.0.1/v1"}});
    let (status, v) = app.post(&owner, "/v1/knowledge-bases", json!({"name": "x", "settings": settings})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "outbound_not_allowed"), "{v}");
    // Public addresses are fine.
    let (status, v) = app.put(&owner, "/v1/config", json!({"webhook_url": "https://hooks.example.com/lore"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_embedding_cache_is_kept_per_tenant() {
    let (base, recorder) = listener().await;
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let text = "只有租户知道的秘密段落 a passage only its tenant knows";
    let mut tenants = Vec::new();
    for name in ["tenant-a", "tenant-b"] {
        let token = app.register(name).await;
        let (status, v) = app
            .put(&token, "/v1/config", json!({"openai_api_key": format!("sk-{name}"), "openai_base_url": base}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        tenants.push(token);
    }
    let settings = json!({"embedding_config": {"provider": "openai", "model": "toy", "dimensions": 8}});
    let mut embedded = Vec::new();
    for (i, token) in tenants.iter().enumerate() {
        let (_, kb) =
            app.post(token, "/v1/knowledge-bases", json!({"name": format!("kb{i}"), "settings": settings})).await;
        let kb = kb["id"].as_str().expect("kb").to_string();
        let doc = app.ingest(token, &kb, "secret.txt", text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        embedded.push(recorder.requests_to("/embeddings"));
    }
    // The second tenant's identical text was embedded again, with its own key: nothing it could
    // observe or poison came from the first tenant.
    assert!(embedded[1] > embedded[0], "the second tenant reused the first tenant's embeddings: {embedded:?}");
    assert!(recorder.everything().contains("sk-tenant-b"));
    // Within one tenant the cache still saves the second embedding of the same text.
    let (_, kb) = app.post(&tenants[0], "/v1/knowledge-bases", json!({"name": "again", "settings": settings})).await;
    let doc = app.ingest(&tenants[0], kb["id"].as_str().expect("kb"), "again.txt", text).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(recorder.requests_to("/embeddings"), embedded[1], "the owner's own cache was not used");
    app.shutdown().await;
}

#[tokio::test]
async fn other_vendors_never_get_the_users_openai_key() {
    let (base, recorder) = listener().await;
    let app = spawn_app().await;
    let owner = app.register("vendor").await;
    let kb = app.create_kb(&owner, "kb").await;
    app.ingest(&owner, &kb, "a.md", "# 退款\n\n退款在七天内完成。Refunds take seven days.").await;
    let (status, v) = app.put(&owner, "/v1/config", json!({"openai_api_key": "sk-openai-owner-only"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for provider in ["qwen", "deepseek", "openai"] {
        let (status, agent) = app
            .post(
                &owner,
                "/v1/agents",
                json!({"name": provider, "model_provider": provider, "model_name": "m",
                       "knowledge_base_ids": [kb], "model_parameters": {"base_url": base, "max_attempts": 1}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        let (status, v) = app
            .post(
                &owner,
                &format!("/v1/agents/{}/chat", agent["id"].as_str().expect("id")),
                json!({"message": "退款多久？"}),
            )
            .await;
        assert!(status.is_client_error() || status.is_server_error(), "{provider}: {v}");
    }
    assert!(recorder.requests_to("/chat/completions") >= 3, "{}", recorder.everything());
    assert!(!recorder.everything().contains("sk-openai-owner-only"), "the OpenAI key reached another address");
    app.shutdown().await;
}

#[tokio::test]
async fn a_search_spans_a_bounded_number_of_knowledge_bases() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("fan-out").await;
    let kb = app.create_kb(&owner, "kb").await;
    app.ingest(&owner, &kb, "a.txt", "全文检索 full text").await;
    let many: Vec<String> = (0..51).map(|_| lore_core::new_id().to_string()).collect();
    let (status, v) =
        app.post(&owner, "/v1/search", json!({"query": "全文", "mode": "fulltext", "knowledge_base_ids": many})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "too_many_knowledge_bases"), "{v}");
    // The same knowledge base named many times counts once.
    let repeated = vec![kb.clone(); 200];
    let (status, v) = app
        .post(&owner, "/v1/search", json!({"query": "全文", "mode": "fulltext", "knowledge_base_ids": repeated}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1), "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_git_token_is_sealed_never_in_the_url_and_never_echoed() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("git-owner").await;
    let kb = app.create_kb(&owner, "代码 code").await;
    let (status, v) = app
        .post(
            &owner,
            "/v1/data-sources",
            json!({"name": "in url", "knowledge_base_id": kb, "source_type": "git",
                   "config": {"url": "https://user:tok-in-url-55@127.0.0.1:1/repo.git"}}),
        )
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_source_config"), "{v}");
    assert!(!v.to_string().contains("tok-in-url-55"), "{v}");
    // A closed port: the clone fails, and its error must not carry the token.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (status, source) = app
        .post(
            &owner,
            "/v1/data-sources",
            json!({"name": "sealed", "knowledge_base_id": kb, "source_type": "git",
                   "config": {"url": format!("http://127.0.0.1:{port}/repo.git")},
                   "credentials": {"token": "tok-sealed-9c1e"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().expect("id").to_string();
    let reader = key(&app, &owner, &["read", "upload"], Some(&kb)).await;
    let (status, v) = app.get(&reader, &format!("/v1/data-sources/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("tok-sealed-9c1e") && v["has_credentials"] == true, "{v}");
    let (runs, source) = sync_and_wait(&app, &reader, &id).await;
    assert_eq!(runs["data"][0]["status"], "failed", "{runs}");
    for text in [runs.to_string(), source.to_string()] {
        assert!(!text.contains("tok-sealed-9c1e"), "the token was echoed: {text}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn web_source_credentials_never_follow_a_redirect_to_another_host() {
    // One listener, two host names: 127.0.0.1 (the start host) redirects to localhost.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = seen.clone();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
        let recorded = recorded.clone();
        async move {
            let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            recorded.lock().expect("lock").push((format!("{host}{}", uri.path()), format!("{headers:?}")));
            match uri.path() {
                "/" => axum::response::Response::builder()
                    .status(302)
                    .header("location", format!("http://localhost:{port}/landing"))
                    .body(axum::body::Body::empty())
                    .expect("response"),
                "/landing" => axum::response::Response::builder()
                    .header("content-type", "text/html")
                    .body(axum::body::Body::from("<p>落地页 landing page</p>"))
                    .expect("response"),
                _ => axum::response::Response::builder().status(404).body(axum::body::Body::empty()).expect("response"),
            }
        }
    });
    tokio::spawn(async move { axum::serve(socket, app).await });
    let app = spawn_app_with(|c| {
        c.embedding_model = None;
        c.allow_private_sources = true; // the site is on this machine
    })
    .await;
    let owner = app.register("crawler").await;
    let kb = app.create_kb(&owner, "web").await;
    let (status, source) = app
        .post(
            &owner,
            "/v1/data-sources",
            json!({"name": "site", "knowledge_base_id": kb, "source_type": "web",
                   "config": {"url": format!("http://127.0.0.1:{port}/"), "max_depth": 1, "use_sitemaps": false},
                   "credentials": {"headers": {"X-Api-Secret": "hdr-secret-77"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().expect("id").to_string();
    sync_and_wait(&app, &owner, &id).await;
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|(at, headers)| at.starts_with("127.0.0.1") && headers.contains("hdr-secret-77")),
        "the start host gets the credentials: {seen:?}"
    );
    for (at, headers) in &seen {
        if at.starts_with("localhost") {
            assert!(!headers.contains("hdr-secret-77"), "the credentials followed the redirect to {at}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_bucket_listing_that_never_ends_is_cut_off() {
    // An endpoint posing as S3 whose listing always has another page.
    let pages = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = pages.clone();
    let endpoint = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (
                [("content-type", "application/xml")],
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix></Prefix>
<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>page-{n}</NextContinuationToken>
<Contents><Key>skipped/{n}.bin</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e{n}"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"#
                ),
            )
        }
    });
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(socket, endpoint).await });
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("bucket-owner").await;
    let kb = app.create_kb(&owner, "桶 bucket").await;
    let (status, source) = app
        .post(
            &owner,
            "/v1/data-sources",
            json!({"name": "endless", "knowledge_base_id": kb, "source_type": "s3",
                   "config": {"bucket": "bucket", "endpoint": format!("http://{addr}"), "include": ["*.md"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().expect("id").to_string();
    let (runs, source) = sync_and_wait(&app, &owner, &id).await;
    assert_eq!(runs["data"][0]["status"], "failed", "{runs}");
    assert!(source["last_error"].as_str().unwrap_or_default().contains("pages"), "{source}");
    let asked = pages.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1_000..=1_001).contains(&asked), "the listing stopped after {asked} pages");
    app.shutdown().await;
}

#[tokio::test]
async fn an_agent_pointed_at_lore_itself_does_not_loop() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("self-loop").await;
    let kb = app.create_kb(&owner, "kb").await;
    let search_key = key(&app, &owner, &["search"], None).await;
    // The agent's model is Lore's own OpenAI-compatible endpoint, naming the agent itself.
    let (status, agent) = app
        .post(
            &owner,
            "/v1/agents",
            json!({"name": "ouroboros", "model_provider": "openai", "model_name": "ouroboros", "knowledge_base_ids": [kb],
                   "model_parameters": {"base_url": format!("{}/v1", app.base), "api_key": search_key, "max_attempts": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let call = app.post(
        &search_key,
        "/v1/chat/completions",
        json!({"model": "ouroboros", "messages": [{"role": "user", "content": "你好 hello"}]}),
    );
    let (status, v) = tokio::time::timeout(std::time::Duration::from_secs(60), call).await.expect("the call ended");
    assert!(status.is_client_error() || status.is_server_error(), "{v}");
    assert!(v.to_string().contains("loop_detected") || v.to_string().contains("back at Lore"), "{v}");
    // A request that says it came from a Lore server's provider client is refused outright.
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&search_key)
        .header("x-lore-hop", "1")
        .json(&json!({"model": "ouroboros", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    let (status, v) = super::body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "loop_detected"), "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn tiny_steps_and_long_semantic_previews_are_refused() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let owner = app.register("amplifier").await;
    let kb = app.create_kb(&owner, "kb").await;
    let text = "中文和English混合的文本。".repeat(1_500); // about 24,000 characters
    let tiny = json!({"strategy_type": "sliding_window", "config": {"window_size": 10, "step": 1}});
    let (status, v) = app.post(&owner, "/v1/chunking/preview", json!({"text": text, "chunking_config": tiny})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "too_many_chunks"), "{v}");
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(text.clone().into_bytes()).file_name("amplify.txt"))
        .text("chunking_config", tiny.to_string());
    let (status, doc) = app.upload_form(&owner, &kb, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let doc = app.wait_done(&owner, doc["id"].as_str().expect("id")).await;
    assert_eq!(
        (doc["status"].as_str(), doc["error_code"].as_str()),
        (Some("failed"), Some("too_many_chunks")),
        "{doc}"
    );
    let semantic = json!({"strategy_type": "semantic", "config": {}});
    let (status, v) =
        app.post(&owner, "/v1/chunking/preview", json!({"text": text, "chunking_config": semantic})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "resource_limit_exceeded"), "{v}");
    app.shutdown().await;
}
