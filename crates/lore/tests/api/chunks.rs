//! Chunks curated by hand over the API: an edited chunk is found by its new words and vector and
//! not by its old words, a disabled chunk by nothing, an added chunk like any other; scopes,
//! bindings and tenants hold. The PostgreSQL pass runs the same on PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, code, spawn_app};

/// The chunk ids a search returns, in order.
async fn found(app: &TestApp, token: &str, kb: &str, query: &str, mode: &str) -> Vec<String> {
    let (status, v) =
        app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": mode})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["results"].as_array().into_iter().flatten().filter_map(|h| h["chunk_id"].as_str().map(str::to_string)).collect()
}

async fn key(app: &TestApp, token: &str, body: Value) -> String {
    let (status, v) = app.post(token, "/v1/api-keys", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["key"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn chunks_are_edited_disabled_and_added_by_hand() {
    let app = spawn_app().await;
    let token = app.register("curator").await;
    let kb = app.create_kb(&token, "手册").await;
    let doc = app
        .ingest(
            &token,
            &kb,
            "手册.md",
            "# 售后手册\n\n退款在三十天内受理，原路退回。\n\nShipping takes two business days by courier.",
        )
        .await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let doc_id = doc["id"].as_str().expect("id").to_string();
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{doc_id}/chunks")).await;
    let chunks = chunks["data"].as_array().expect("chunks").clone();
    let first = chunks[0]["id"].as_str().expect("id").to_string();
    assert_eq!(chunks[0]["enabled"], true);
    assert!(chunks[0]["edited_at"].is_null());
    let (_, before) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert!(found(&app, &token, &kb, "退款", "fulltext").await.contains(&first), "{chunks:?}");

    // Edited: found by the new words (full text and vector), not the old ones.
    let text = "保修期为两年，紫罗兰色款式除外。The warranty lasts two years except for the violet model.";
    let (status, edited) = app
        .patch(&token, &format!("/v1/chunks/{first}"), json!({"content": text, "metadata": {"reviewed_by": "李雷"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!((edited["content"].as_str(), edited["metadata"]["reviewed_by"].as_str()), (Some(text), Some("李雷")));
    assert!(edited["edited_at"].is_string() && edited["enabled"] == true, "{edited}");
    assert_eq!(found(&app, &token, &kb, "紫罗兰", "fulltext").await.first(), Some(&first));
    assert_eq!(found(&app, &token, &kb, "violet warranty", "fulltext").await.first(), Some(&first));
    assert!(!found(&app, &token, &kb, "退款", "fulltext").await.contains(&first), "the old words are gone");
    assert_eq!(found(&app, &token, &kb, text, "vector").await.first(), Some(&first), "re-embedded");
    let (_, after) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(after["chunk_count"], before["chunk_count"]);

    // Disabled: found by nothing, kept; enabled: back.
    let (status, v) = app.patch(&token, &format!("/v1/chunks/{first}"), json!({"enabled": false})).await;
    assert_eq!((status, v["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    for mode in ["fulltext", "vector", "hybrid"] {
        assert!(!found(&app, &token, &kb, "紫罗兰 violet warranty", mode).await.contains(&first), "{mode}");
    }
    let (_, listed) = app.get(&token, &format!("/v1/documents/{doc_id}/chunks")).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(chunks.len()));
    app.patch(&token, &format!("/v1/chunks/{first}"), json!({"enabled": true})).await;
    assert_eq!(found(&app, &token, &kb, "紫罗兰", "fulltext").await.first(), Some(&first));

    // Added by hand: after the last chunk, counted and found.
    let (status, added) = app
        .post(
            &token,
            &format!("/v1/documents/{doc_id}/chunks"),
            json!({"content": "发票可在订单页面下载。Invoices are downloadable from the order page."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["chunk_index"].as_i64(), Some(chunks.len() as i64));
    let added_id = added["id"].as_str().expect("id").to_string();
    assert_eq!(found(&app, &token, &kb, "发票", "fulltext").await.first(), Some(&added_id));
    assert_eq!(found(&app, &token, &kb, "invoices downloadable", "hybrid").await.first(), Some(&added_id));
    let (_, kb_now) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(kb_now["chunk_count"].as_i64(), before["chunk_count"].as_i64().map(|n| n + 1));
    let (status, one) = app.get(&token, &format!("/v1/chunks/{added_id}")).await;
    assert_eq!((status, one["document_id"].as_str()), (StatusCode::OK, Some(doc_id.as_str())));

    // Bad input is refused with its code and changes nothing.
    for bad in [
        json!({"content": "   "}),
        json!({"content": "x".repeat(20_001)}),
        json!({"colour": "red"}),
        json!({"metadata": {"big": "x".repeat(17_000)}}),
    ] {
        let (status, v) = app.patch(&token, &format!("/v1/chunks/{first}"), bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    // A search key may read but not edit; a key bound elsewhere and another account see nothing.
    let searcher = key(&app, &token, json!({"name": "s", "scopes": ["search", "read"]})).await;
    assert_eq!(app.get(&searcher, &format!("/v1/chunks/{first}")).await.0, StatusCode::OK);
    let (status, v) = app.patch(&searcher, &format!("/v1/chunks/{first}"), json!({"enabled": false})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let other_kb = app.create_kb(&token, "other").await;
    let bound =
        key(&app, &token, json!({"name": "b", "scopes": ["upload", "read"], "knowledge_base_id": other_kb})).await;
    let (status, _) = app.patch(&bound, &format!("/v1/chunks/{first}"), json!({"enabled": false})).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "{status}");
    let (status, _) = app.post(&bound, &format!("/v1/documents/{doc_id}/chunks"), json!({"content": "x"})).await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "{status}");
    let stranger = app.register("stranger").await;
    let (status, v) = app.patch(&stranger, &format!("/v1/chunks/{first}"), json!({"content": "mine"})).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _) = app.post(&stranger, &format!("/v1/documents/{doc_id}/chunks"), json!({"content": "mine"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, still) = app.get(&token, &format!("/v1/chunks/{first}")).await;
    assert_eq!((still["content"].as_str(), still["enabled"].as_bool()), (Some(text), Some(true)));
    app.shutdown().await;
}

/// Q&A entries: imported from XLSX (headers 问题/答案) or CSV (columns named in the config), and
/// added over the API. Search matches the question (the answer too with `match_answer`) and
/// returns the answer with it; a table without the two columns fails with a message saying how
/// to name them. The table is read in a parser process, under the same budgets as any file.
#[tokio::test]
async fn question_and_answer_pairs_are_imported_and_found_by_their_question() {
    let app = spawn_app().await;
    let token = app.register("faq").await;
    let kb = app.create_kb(&token, "常见问题").await;
    let rows = |pairs: &[(&str, &str)]| {
        let mut rows = vec![vec!["问题".to_string(), "答案".to_string(), "备注".to_string()]];
        rows.extend(pairs.iter().map(|(q, a)| vec![q.to_string(), a.to_string(), "内部".to_string()]));
        rows
    };
    let xlsx = lore_ingest::samples::xlsx_from(&rows(&[
        ("怎么申请退货？", "在订单页点击申请售后，七天内寄回即可。"),
        ("How long does shipping take?", "Orders arrive within two business days."),
        ("发票怎么开？", ""), // no answer: skipped
    ]));
    let qa = json!({"strategy_type": "qa"}).to_string();
    let upload = |bytes: Vec<u8>, name: &'static str, config: String| {
        let app = &app;
        let (token, kb) = (&token, &kb);
        async move {
            let form = reqwest::multipart::Form::new()
                .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name))
                .text("chunking_config", config);
            let (status, v) = app.upload_form(token, kb, form).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{v}");
            app.wait_done(token, v["id"].as_str().expect("id")).await
        }
    };
    let doc = upload(xlsx, "faq.xlsx", qa.clone()).await;
    assert_eq!((doc["status"].as_str(), doc["chunk_count"].as_i64()), (Some("completed"), Some(2)), "{doc}");

    let search = |query: &'static str, mode: &'static str| {
        let app = &app;
        let (token, kb) = (&token, &kb);
        async move {
            let (status, v) = app
                .post(token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": mode}))
                .await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["results"].as_array().cloned().unwrap_or_default()
        }
    };
    // Found by the question's words, the answer returned with it.
    let hits = search("退货", "fulltext").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["metadata"]["qa"]["answer"], "在订单页点击申请售后，七天内寄回即可。");
    assert!(hits[0]["content"].as_str().is_some_and(|c| c.starts_with("怎么申请退货？\n在订单页")), "{hits:?}");
    let hits = search("how long is shipping", "hybrid").await;
    assert_eq!(hits[0]["metadata"]["qa"]["question"], "How long does shipping take?");
    // Not by the answer's words alone, unless asked.
    assert!(search("寄回", "fulltext").await.is_empty(), "the answer is not matched by default");
    // A row past the limits (a 2,001-character question) is skipped, and the log says so.
    let csv = format!("Frage,Antwort\n会员积分会过期吗？,积分每年十二月三十一日清零。\n{},太长\n", "问".repeat(2001));
    let config = json!({"strategy_type": "qa", "config": {"question_column": "Frage", "answer_column": "Antwort", "match_answer": true}});
    let doc = upload(csv.into_bytes(), "faq.csv", config.to_string()).await;
    assert_eq!((doc["status"].as_str(), doc["chunk_count"].as_i64()), (Some("completed"), Some(1)), "{doc}");
    assert!(doc["processing_log"].to_string().contains("1 rows skipped"), "{doc}");
    assert_eq!(search("清零", "fulltext").await.len(), 1, "with match_answer the answer's words match");

    // Added over the API, to a Q&A document.
    let (status, added) = app
        .post(
            &token,
            &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id")),
            json!({"question": "可以开发票吗？", "answer": "可以，在个人中心申请电子发票。"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["metadata"]["qa"]["question"], "可以开发票吗？");
    assert_eq!(search("开发票", "fulltext").await[0]["chunk_id"], added["id"]);
    assert!(
        search("个人中心", "fulltext").await.is_empty(),
        "an entry added without match_answer matches its question"
    );
    let (status, v) = app
        .post(
            &token,
            &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id")),
            json!({"question": "只有问题？"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // A table without the columns says how to name them; a text file holds no table.
    let csv = "name,price\n音箱,199\n";
    let doc = upload(csv.as_bytes().to_vec(), "prices.csv", qa.clone()).await;
    assert_eq!(
        (doc["status"].as_str(), doc["error_code"].as_str()),
        (Some("failed"), Some("no_text_content")),
        "{doc}"
    );
    assert!(
        doc["error_message"].as_str().is_some_and(|m| m.contains("问题") && m.contains("question_column")),
        "{doc}"
    );
    let doc = upload("问题：这不是表格".as_bytes().to_vec(), "notes.txt", qa).await;
    assert_eq!(
        (doc["status"].as_str(), doc["error_code"].as_str()),
        (Some("failed"), Some("unsupported_file_type")),
        "{doc}"
    );
    app.shutdown().await;
}

/// Chunks added by hand count against the per-document chunk budget like processing's: a tenant
/// cannot grow one document past it one request at a time. (A server process of its own: the
/// budgets are the process's.)
#[tokio::test]
async fn chunks_added_by_hand_keep_to_the_chunk_budget() {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "1", "--max-chunks-per-document", "3"])
        .args(["--registration", "open", "--registrations-per-hour", "0"])
        .env("LORE_LOG", "warn")
        .spawn()
        .expect("start lore");
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        http: super::http_client(),
        server: None,
        _dir: tempfile::tempdir().expect("t"),
    };
    super::wait_healthy(&app.http, &app.base).await;
    let token = app.register("budgeted").await;
    let kb = app.create_kb(&token, "预算").await;
    let doc = app.ingest(&token, &kb, "一段.md", "只有一段：预算之内。One paragraph, within budget.").await;
    assert_eq!((doc["status"].as_str(), doc["chunk_count"].as_i64()), (Some("completed"), Some(1)), "{doc}");
    let path = format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"));
    for i in 0..2 {
        let (status, v) =
            app.post(&token, &path, json!({"content": format!("手工分块 {i}. Hand-made chunk {i}.")})).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, v) = app.post(&token, &path, json!({"question": "还能加吗？", "answer": "不能，已到上限。"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "too_many_chunks"), "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("max-chunks-per-document")), "{v}");
    let (_, chunks) = app.get(&token, &path).await;
    assert_eq!(chunks["data"].as_array().map(Vec::len), Some(3));
    let _ = child.kill();
    let _ = child.wait();
}

/// Questions generated per chunk by the owner's chat model (here a local OpenAI-compatible
/// server): stored in the chunk's metadata, found by words only the questions have, in Chinese
/// and English, and by vector; edited by hand like the rest of the chunk. A model that fails
/// costs the questions, not the document.
#[tokio::test]
async fn questions_generated_for_each_chunk_find_it() {
    let (base, seen) = super::agents::provider(
        r#"{"questions": {"1": ["设备多久需要换一次滤芯？"], "2": ["How do I reset the router to factory settings?"]}}"#,
    )
    .await;
    let app = spawn_app().await;
    let token = app.register("questioner").await;
    app.put(
        &token,
        "/v1/config",
        json!({"openai_api_key": "sk-questions-0000", "openai_base_url": format!("{base}/ok")}),
    )
    .await;
    for bad in [
        json!({"provider": "gemini", "model": "g"}),
        json!({"provider": "openai", "model": "gpt-4o-mini", "questions_per_chunk": 11}),
        json!({"provider": "openai", "model": ""}),
    ] {
        let (status, v) = app
            .post(&token, "/v1/knowledge-bases", json!({"name": "bad", "settings": {"question_generation": bad}}))
            .await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");
    }
    let chunking =
        json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 800, "merge_short_paragraphs": false}});
    let generation = json!({"provider": "openai", "model": "gpt-4o-mini", "questions_per_chunk": 2});
    let kb_with = |name: &str, questions: bool| {
        let mut settings = json!({"chunking_config": chunking});
        if questions {
            settings["question_generation"] = generation.clone();
        }
        json!({"name": name, "settings": settings})
    };
    let text = "净水器的滤芯每六个月更换一次，以保证出水质量。\n\nHold the pin button for ten seconds to restore the router's defaults.";
    let mut kbs = Vec::new();
    for (name, questions) in [("有问题", true), ("无问题", false)] {
        let (status, v) = app.post(&token, "/v1/knowledge-bases", kb_with(name, questions)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let kb = v["id"].as_str().expect("id").to_string();
        let doc = app.ingest(&token, &kb, "说明.md", text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        kbs.push((kb, doc));
    }
    let (kb, doc) = &kbs[0];
    let (plain_kb, _) = &kbs[1];
    let log = doc["processing_log"].to_string();
    assert!(log.contains("2 questions for 2 of 2 chunks by openai/gpt-4o-mini in 1 calls"), "{log}");
    assert!(log.contains("1000 prompt + 500 completion tokens"), "{log}");
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "one call for both chunks, none for the other knowledge base");
        let (_, headers, body) = &seen[0];
        assert_eq!(headers["authorization"], "Bearer sk-questions-0000");
        assert_eq!(body["response_format"]["type"], "json_object");
        let prompt = body["messages"][1]["content"].as_str().expect("prompt");
        assert!(prompt.contains("N = 2") && prompt.contains("[1]\n净水器") && prompt.contains("[2]\nHold"), "{prompt}");
    }
    let doc_id = doc["id"].as_str().expect("id");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{doc_id}/chunks")).await;
    let chunks = chunks["data"].as_array().expect("chunks").clone();
    assert_eq!(chunks[0]["metadata"]["questions"], json!(["设备多久需要换一次滤芯？"]), "{chunks:?}");
    assert_eq!(chunks[1]["metadata"]["questions"], json!(["How do I reset the router to factory settings?"]));
    let (zh, en) = (chunks[0]["id"].as_str().expect("id"), chunks[1]["id"].as_str().expect("id"));

    // Words only the questions have find the chunk; without questions they find nothing.
    assert_eq!(found(&app, &token, kb, "设备", "fulltext").await.first().map(String::as_str), Some(zh));
    assert_eq!(found(&app, &token, kb, "factory settings", "fulltext").await.first().map(String::as_str), Some(en));
    assert!(found(&app, &token, plain_kb, "factory settings", "fulltext").await.is_empty());
    assert!(found(&app, &token, plain_kb, "设备", "fulltext").await.is_empty());

    // The questions are the chunk's second vector, searched with its content by default.
    let question = "How do I reset the router to factory settings?";
    let score = |target: Option<&str>| {
        let mut body = json!({"query": question, "mode": "vector"});
        if let Some(target) = target {
            body["search_target"] = json!(target);
        }
        let (app, token, kb) = (&app, &token, kb.clone());
        async move {
            let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            (v["results"][0]["chunk_id"].as_str().map(str::to_string), v["results"][0]["score"].as_f64().unwrap_or(0.0))
        }
    };
    let (by_default, default_score) = score(None).await;
    let (by_content, content_score) = score(Some("content")).await;
    assert_eq!(by_default.as_deref(), Some(en));
    // (The built-in model embeds queries and passages with different prefixes: not quite 1.)
    assert!(default_score > 0.95, "the question itself matches: {default_score}");
    assert!(
        by_content.as_deref() != Some(en) || content_score + 0.05 < default_score,
        "{content_score} vs {default_score}"
    );

    // Curated by hand: new questions are indexed and embedded, the old ones gone.
    let (status, v) = app
        .patch(&token, &format!("/v1/chunks/{en}"), json!({"metadata": {"questions": ["路由器怎么恢复出厂设置？"]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(found(&app, &token, kb, "出厂设置", "fulltext").await.first().map(String::as_str), Some(en));
    assert!(!found(&app, &token, kb, "factory settings", "fulltext").await.iter().any(|c| c == en));

    // A model whose answer breaks: the document completes without questions, and says why.
    app.put(&token, "/v1/config", json!({"openai_base_url": format!("{base}/garbage")})).await;
    let doc = app.ingest(&token, kb, "另一份.md", "路由器的指示灯为绿色时表示联网正常。").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let log = doc["processing_log"].to_string();
    assert!(log.contains("0 questions for 0 of 1 chunks") && log.contains("1 calls failed"), "{log}");
    app.shutdown().await;
}
