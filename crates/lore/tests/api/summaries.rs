//! What a chunk is found by besides its text: its summary vector, from a summary the owner's chat
//! model writes (`settings.summary_config`, here a local OpenAI-compatible server) or, without
//! one, from its title, section and most central sentences; and the default chunking, which keeps
//! a document the model reads at once whole. The PostgreSQL pass runs the same on PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, code, spawn_app};

/// The first hit's chunk id and score for a vector search against `target`.
async fn top(app: &TestApp, token: &str, kb: &str, query: &str, target: Option<&str>) -> (String, f64) {
    let mut body = json!({"query": query, "mode": "vector"});
    if let Some(target) = target {
        body["search_target"] = json!(target);
    }
    let (status, v) = app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let hit = &v["results"][0];
    (hit["chunk_id"].as_str().unwrap_or_default().to_string(), hit["score"].as_f64().unwrap_or(0.0))
}

async fn chunks_of(app: &TestApp, token: &str, doc: &Value) -> Vec<Value> {
    let id = doc["id"].as_str().expect("id");
    let (_, chunks) = app.get(token, &format!("/v1/documents/{id}/chunks")).await;
    chunks["data"].as_array().expect("chunks").clone()
}

#[tokio::test]
async fn summaries_written_by_the_chat_model_are_each_chunks_summary_vector() {
    let router_summary = "How to restore a home router to its factory defaults with the pin button.";
    let (base, seen) = super::agents::provider(
        r#"{"summaries": {"2": "家电手册中净水器滤芯的更换周期：每六个月更换一次。", "3": "How to restore a home router to its factory defaults with the pin button."}}"#,
    )
    .await;
    let app = spawn_app().await;
    let token = app.register("summariser").await;
    app.put(
        &token,
        "/v1/config",
        json!({"openai_api_key": "sk-summaries-0000", "openai_base_url": format!("{base}/ok")}),
    )
    .await;
    for bad in [
        json!({"provider": "gemini", "model": "g"}),
        json!({"provider": "openai", "model": " "}),
        json!({"provider": "openai"}),
    ] {
        let (status, v) =
            app.post(&token, "/v1/knowledge-bases", json!({"name": "bad", "settings": {"summary_config": bad}})).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");
    }
    let settings = json!({
        "chunking_config": {"strategy_type": "custom", "config": {"max_chunk_size": 400, "split_on_headings": true}},
        "summary_config": {"provider": "openai", "model": "gpt-4o-mini"},
    });
    let (status, v) = app.post(&token, "/v1/knowledge-bases", json!({"name": "摘要", "settings": settings})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let kb = v["id"].as_str().expect("id").to_string();
    let text = "# 家电手册\n\n## 净水器保养\n\n净水器的滤芯需要定期更换，以保证出水质量。\n\n## Router\n\n\
                Hold the pin button for ten seconds. The lights blink and the settings are erased.";
    let doc = app.ingest(&token, &kb, "手册.md", text).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let log = doc["processing_log"].to_string();
    assert!(log.contains("2 summaries for 2 of 3 chunks by openai/gpt-4o-mini in 1 calls"), "{log}");
    assert!(log.contains("1000 prompt + 500 completion tokens"), "{log}");
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "one call for the three chunks");
        let prompt = seen[0].2["messages"][1]["content"].as_str().expect("prompt").to_string();
        assert!(prompt.starts_with("Document: 家电手册"), "{prompt}");
        assert!(prompt.contains("[2]\nSection: 家电手册 › 净水器保养\n## 净水器保养"), "{prompt}");
        assert!(prompt.contains("[3]\nSection: 家电手册 › Router\n## Router"), "{prompt}");
    }
    let chunks = chunks_of(&app, &token, &doc).await;
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert_eq!(chunks[1]["metadata"]["section_path"], json!(["家电手册", "净水器保养"]));
    assert_eq!(chunks[2]["metadata"]["summary"], json!(router_summary));
    assert!(chunks[0]["metadata"]["summary"].is_null());
    let router = chunks[2]["id"].as_str().expect("id").to_string();

    // The summary is the chunk's second vector, searched with its content by default.
    let (by_summary, summary_score) = top(&app, &token, &kb, router_summary, Some("summary")).await;
    let (by_default, default_score) = top(&app, &token, &kb, router_summary, None).await;
    let (_, content_score) = top(&app, &token, &kb, router_summary, Some("content")).await;
    assert_eq!((by_summary.as_str(), by_default.as_str()), (router.as_str(), router.as_str()));
    // (The built-in model embeds queries and passages with different prefixes: not quite 1.)
    assert!(summary_score > 0.93 && default_score > 0.93, "{summary_score} {default_score}");
    assert!(content_score + 0.05 < summary_score, "{content_score} vs {summary_score}");

    // Rewritten by hand: the new summary is embedded, in Chinese as in English.
    let (status, v) = app
        .patch(&token, &format!("/v1/chunks/{router}"), json!({"metadata": {"summary": "路由器如何恢复出厂设置。"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (hit, score) = top(&app, &token, &kb, "路由器如何恢复出厂设置。", Some("summary")).await;
    assert_eq!(hit, router);
    assert!(score > 0.93, "{score}");
    app.shutdown().await;
}

#[tokio::test]
async fn without_a_model_the_summary_is_the_chunks_central_sentences() {
    let app = spawn_app().await;
    let token = app.register("extractor").await;
    let kb = app.create_kb(&token, "抽取").await;
    // A lead that only sets the scene, sentences about one subject, and a stray one; and a
    // one-sentence chunk, whose summary would only repeat it.
    let docs = [
        (
            "vitamins.txt",
            "Background notes.\n\nThis report was written during a long and rainy autumn. Vitamin D deficiency \
             raises the risk of hip fractures in older adults. Older adults given vitamin D had fewer hip fractures. \
             Fracture risk fell most when vitamin D was given with calcium. The committee thanks its reviewers.",
            "Vitamin D deficiency raises the risk of hip fractures in older adults.",
        ),
        (
            "音箱.txt",
            "产品说明\n\n本文写于去年冬天，由市场部整理。智能音箱支持中文和英文语音控制。这款智能音箱的语音控制可以识别多种方言。\
             用户也可以用语音控制音箱播放音乐。感谢各位同事的帮助。",
            "智能音箱的语音控制可以识别方言。",
        ),
    ];
    for (name, text, central) in docs {
        let doc = app.ingest(&token, &kb, name, text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        let chunks = chunks_of(&app, &token, &doc).await;
        assert_eq!(chunks.len(), 1, "a short document stays whole: {chunks:?}");
        let (hit, summary_score) = top(&app, &token, &kb, central, Some("summary")).await;
        let (_, content_score) = top(&app, &token, &kb, central, Some("content")).await;
        assert_eq!(hit, chunks[0]["id"].as_str().expect("id"));
        // The summary leaves the scene-setting and the stray sentences out.
        eprintln!("{name}: summary {summary_score}, content {content_score}");
        assert!(summary_score > content_score, "{name}: {summary_score} vs {content_score}");
    }
    let short = app.ingest(&token, &kb, "short.txt", "退货请在七天内联系客服。").await;
    let chunk = chunks_of(&app, &token, &short).await[0]["id"].as_str().expect("id").to_string();
    let (hit, summary_score) = top(&app, &token, &kb, "七天内退货", Some("summary")).await;
    let (_, content_score) = top(&app, &token, &kb, "七天内退货", Some("content")).await;
    assert_eq!(hit, chunk);
    assert!((summary_score - content_score).abs() < 1e-6, "one vector: {summary_score} vs {content_score}");
    app.shutdown().await;
}

/// With nothing configured, a document the embedding model reads at once is one chunk however
/// many characters it has; a longer one is cut between paragraphs into chunks of at most the
/// model's window, counted in its tokens.
#[tokio::test]
async fn the_default_chunking_keeps_what_the_model_reads_whole() {
    let app = spawn_app().await;
    let token = app.register("defaults").await;
    let kb = app.create_kb(&token, "默认").await;
    let english: String =
        (0..16).map(|i| format!("Paragraph {i} explains one more step of the installation.\n\n")).collect();
    let chinese: String = (0..8).map(|i| format!("第{i}段：安装步骤说明，请按顺序操作。\n\n")).collect();
    for (name, text) in [("whole.txt", english.clone()), ("整篇.txt", format!("{chinese}{english}"))] {
        assert!(text.chars().count() > 800, "longer than the old 800-character chunks");
        let doc = app.ingest(&token, &kb, name, text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        assert_eq!(chunks_of(&app, &token, &doc).await.len(), 1, "{name} stays whole");
    }
    let long: String = (0..40)
        .map(|i| format!("第{i}段：这是一段较长的中文说明，介绍设备的安装、使用和保养方法。Paragraph {i} explains it in English too.\n\n"))
        .collect();
    let (status, v) = app.post(&token, "/v1/chunking/preview", json!({"text": long, "knowledge_base_id": kb})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let chunks = v["chunks"].as_array().expect("chunks");
    assert!(chunks.len() >= 3, "{v}");
    for chunk in chunks {
        let size = chunk["size"].as_u64().expect("size in tokens");
        assert!((100..=512).contains(&size), "{chunk}");
        let content = chunk["content"].as_str().expect("content");
        assert!(content.starts_with('第') && content.ends_with("too."), "cut between paragraphs: {content}");
    }
    app.shutdown().await;
}
