//! Data sources end to end: a server-side folder keeps a knowledge base in sync, incrementally,
//! on demand and on a schedule; folders outside the operator's roots are refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, code, spawn_app_with};

async fn app_with_root(root: &std::path::Path, interval: Duration) -> TestApp {
    let root = root.to_path_buf();
    spawn_app_with(move |c| {
        c.embedding_model = None;
        c.source_roots = vec![root];
        c.sync_check_interval = interval;
    })
    .await
}

/// Waits for the source's latest run to finish and returns it.
pub(super) async fn finished_run(app: &TestApp, token: &str, source: &str, runs: usize) -> Value {
    for _ in 0..400 {
        let (_, v) = app.get(token, &format!("/v1/data-sources/{source}/syncs")).await;
        let list = v["data"].as_array().cloned().unwrap_or_default();
        if list.len() >= runs && list[0]["status"] != "running" {
            return list[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no finished sync run");
}

pub(super) async fn sync(app: &TestApp, token: &str, source: &str, runs: usize) -> Value {
    let (status, v) = app.post(token, &format!("/v1/data-sources/{source}/sync"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let run = finished_run(app, token, source, runs).await;
    assert_eq!(run["status"], "completed", "{run}");
    run
}

pub(super) async fn wait_all_processed(app: &TestApp, token: &str, kb: &str) -> Vec<Value> {
    for _ in 0..400 {
        let (_, v) = app.get(token, &format!("/v1/knowledge-bases/{kb}/documents")).await;
        let docs = v["data"].as_array().cloned().unwrap_or_default();
        if docs.iter().all(|d| d["status"] == "completed" || d["status"] == "failed") {
            return docs;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("documents were not processed");
}

pub(super) fn counts(run: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| run[k].as_i64().unwrap_or(-1);
    (n("added"), n("updated"), n("removed"), n("failed"))
}

#[tokio::test]
async fn a_folder_keeps_its_knowledge_base_in_sync_incrementally() {
    let root = tempfile::tempdir().expect("root");
    let folder = root.path().join("handbook");
    std::fs::create_dir_all(folder.join("drafts")).expect("mkdir");
    std::fs::create_dir_all(folder.join(".git")).expect("mkdir");
    std::fs::write(folder.join("退款.md"), "# 退款政策\n\n购买后三十天内可以申请全额退款。").expect("write");
    std::fs::write(folder.join("guide.txt"), "Shipping takes two business days.").expect("write");
    std::fs::write(folder.join("drafts/wip.md"), "unfinished draft about refunds").expect("write");
    std::fs::write(folder.join(".git/config"), "[core]").expect("write");
    let app = app_with_root(root.path(), Duration::from_secs(3600)).await;
    let token = app.register("librarian").await;
    let kb = app.create_kb(&token, "handbook").await;

    let (status, source) = app
        .post(
            &token,
            "/v1/data-sources",
            json!({"name": "手册", "knowledge_base_id": kb, "source_type": "local_folder",
                   "config": {"path": folder, "exclude": ["drafts/**"]}, "credentials": {"token": "s3cr3t-value"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert_eq!((source["status"].as_str(), source["has_credentials"].as_bool()), (Some("active"), Some(true)));
    assert!(!source.to_string().contains("s3cr3t"), "credentials are never returned");
    let id = source["id"].as_str().expect("id").to_string();

    let run = sync(&app, &token, &id, 1).await;
    assert_eq!(counts(&run), (2, 0, 0, 0), "{run}");
    assert!(
        folder.join("guide.txt").exists() && folder.join("退款.md").exists(),
        "the source's files stay where they are"
    );
    let docs = wait_all_processed(&app, &token, &kb).await;
    assert_eq!(docs.len(), 2, "drafts and hidden folders are skipped: {docs:?}");
    assert!(docs.iter().all(|d| d["status"] == "completed" && d["data_source_id"] == id.as_str()), "{docs:?}");
    let (_, v) = app.search(&token, &kb, "退款").await;
    assert_eq!(v["results"][0]["filename"], "退款.md", "{v}");
    let (_, doc) =
        app.get(&token, &format!("/v1/documents/{}", v["results"][0]["document_id"].as_str().expect("id"))).await;
    assert_eq!(doc["metadata"]["source_path"], "退款.md", "{doc}");

    // Nothing changed: nothing is read again.
    let run = sync(&app, &token, &id, 2).await;
    assert_eq!(counts(&run), (0, 0, 0, 0), "{run}");

    // Changed, vanished, new, and rewritten with the same bytes.
    std::fs::write(folder.join("guide.txt"), "Shipping now takes one business day, even abroad.").expect("write");
    std::fs::remove_file(folder.join("退款.md")).expect("rm");
    std::fs::write(folder.join("新品.txt"), "新品上市：智能音箱支持中文语音。").expect("write");
    let run = sync(&app, &token, &id, 3).await;
    assert_eq!(counts(&run), (1, 1, 1, 0), "{run}");
    let docs = wait_all_processed(&app, &token, &kb).await;
    assert_eq!(docs.len(), 2, "{docs:?}");
    let (_, v) = app.search(&token, &kb, "abroad").await;
    assert_eq!(v["results"][0]["filename"], "guide.txt", "{v}");
    let (_, v) = app.search(&token, &kb, "two business days").await;
    assert!(
        v["results"].as_array().expect("results").iter().all(|r| !r["content"].as_str().unwrap_or("").contains("two")),
        "{v}"
    );
    let (_, v) = app.search(&token, &kb, "退款").await;
    assert!(v["results"].as_array().expect("results").is_empty(), "a vanished file's document is gone: {v}");
    let (_, v) = app.search(&token, &kb, "智能音箱").await;
    assert_eq!(v["results"][0]["filename"], "新品.txt", "{v}");
    std::thread::sleep(Duration::from_millis(20));
    let same = std::fs::read(folder.join("新品.txt")).expect("read");
    std::fs::write(folder.join("新品.txt"), &same).expect("touch");
    let run = sync(&app, &token, &id, 4).await;
    assert_eq!(counts(&run), (0, 0, 0, 0), "same bytes are not processed again: {run}");

    // Another user sees nothing; a running sync is not doubled.
    let other = app.register("outsider").await;
    assert_eq!(app.get(&other, &format!("/v1/data-sources/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&other, &format!("/v1/data-sources/{id}/sync"), json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&other, &format!("/v1/data-sources/{id}/syncs")).await.0, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&other, "/v1/data-sources").await;
    assert!(list["data"].as_array().expect("list").is_empty());

    // Paused, then deleted: its documents stay.
    let (status, v) =
        app.patch(&token, &format!("/v1/data-sources/{id}"), json!({"status": "paused", "credentials": null})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["status"].as_str(), v["has_credentials"].as_bool()), (Some("paused"), Some(false)));
    assert_eq!(app.delete(&token, &format!("/v1/data-sources/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(wait_all_processed(&app, &token, &kb).await.len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn folders_outside_the_allowed_roots_and_unknown_types_are_refused() {
    let root = tempfile::tempdir().expect("root");
    let outside = tempfile::tempdir().expect("outside");
    let app = app_with_root(root.path(), Duration::from_secs(3600)).await;
    let token = app.register("careful").await;
    let kb = app.create_kb(&token, "kb").await;
    for (config, source_type) in [
        (json!({"path": outside.path()}), "local_folder"),
        (json!({"path": root.path().join("../")}), "local_folder"),
        (json!({"path": "/etc"}), "local_folder"),
        (json!({}), "local_folder"),
        (json!({"path": root.path(), "include": ["[bad"]}), "local_folder"),
        (json!({}), "web"),
        (json!({"url": "ftp://example.com/"}), "web"),
        (json!({"url": "https://example.com", "max_depth": 99}), "web"),
        (json!({"url": "ssh://git@example.com/repo.git"}), "git"),
        (json!({"url": outside.path()}), "git"),
        (json!({"prefix": "docs/"}), "s3"),
        (json!({}), "dropbox"),
    ] {
        let (status, v) = app
            .post(
                &token,
                "/v1/data-sources",
                json!({"name": "x", "knowledge_base_id": kb, "source_type": source_type, "config": config}),
            )
            .await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_source_config"), "{config}: {v}");
    }
    let (status, _) = app
        .post(&token, "/v1/data-sources", json!({"name": "x", "knowledge_base_id": kb, "source_type": "local_folder", "config": {"path": root.path()}, "auto_sync": true}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "auto_sync needs a frequency");
    // Another user's knowledge base is not found.
    let other = app.register("other-owner").await;
    let (status, _) = app
        .post(&other, "/v1/data-sources", json!({"name": "x", "knowledge_base_id": kb, "source_type": "local_folder", "config": {"path": root.path()}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn auto_sync_runs_on_its_schedule() {
    let root = tempfile::tempdir().expect("root");
    std::fs::write(root.path().join("faq.md"), "# FAQ\n\n问：支持中文吗？答：支持。").expect("write");
    let app = app_with_root(root.path(), Duration::from_millis(100)).await;
    let token = app.register("scheduler").await;
    let kb = app.create_kb(&token, "auto").await;
    let (status, source) = app
        .post(
            &token,
            "/v1/data-sources",
            json!({"name": "auto", "knowledge_base_id": kb, "source_type": "local_folder",
                   "config": {"path": root.path()}, "auto_sync": true, "sync_frequency": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().expect("id");
    let run = finished_run(&app, &token, id, 1).await;
    assert_eq!(counts(&run), (1, 0, 0, 0), "{run}");
    let (_, v) = app.get(&token, &format!("/v1/data-sources/{id}")).await;
    assert!(v["last_sync"].is_string() && v["status"] == "active", "{v}");
    // Not due again for an hour: no second run.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, runs) = app.get(&token, &format!("/v1/data-sources/{id}/syncs")).await;
    assert_eq!(runs["data"].as_array().expect("runs").len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn changes_and_failures_notify_in_the_app_and_by_signed_webhook() {
    use std::sync::{Arc, Mutex};
    type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;
    let received: Received = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let mut seen = sink.lock().expect("lock");
                seen.push((headers, body));
                // The first delivery fails: the retry must come.
                if seen.len() == 1 { axum::http::StatusCode::INTERNAL_SERVER_ERROR } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let root = tempfile::tempdir().expect("root");
    std::fs::write(root.path().join("说明.md"), "# 说明\n\n同步后会收到通知。").expect("write");
    std::fs::write(root.path().join("broken.pdf"), b"%PDF-1.7\n this is not really a pdf").expect("write");
    let root_path = root.path().to_path_buf();
    let app = spawn_app_with(move |c| {
        c.embedding_model = None;
        c.source_roots = vec![root_path];
        c.sync_check_interval = Duration::from_secs(3600);
        c.webhook_backoff = Duration::from_millis(20);
        c.allow_private_sources = true; // the receiver is on 127.0.0.1
    })
    .await;
    let token = app.register("notified").await;
    let (status, v) =
        app.put(&token, "/v1/config", json!({"webhook_url": hook, "webhook_secret": "whsec-0123456789"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let kb = app.create_kb(&token, "notes").await;
    let (_, source) = app
        .post(&token, "/v1/data-sources", json!({"name": "notes", "knowledge_base_id": kb, "source_type": "local_folder", "config": {"path": root.path()}}))
        .await;
    let id = source["id"].as_str().expect("id").to_string();
    let run = sync(&app, &token, &id, 1).await;
    assert_eq!(counts(&run), (2, 0, 0, 0), "{run}");
    wait_all_processed(&app, &token, &kb).await;

    // In the app: the sync and the document that failed.
    let mut kinds = Vec::new();
    let mut list = Value::Null;
    for _ in 0..200 {
        list = app.get(&token, "/v1/notifications").await.1;
        kinds = list["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|n| n["kind"].as_str().map(str::to_string))
            .collect();
        let delivered =
            list["data"].as_array().expect("list").iter().all(|n| {
                n["data"]["delivery"].as_array().is_some_and(|d| d.last().is_some_and(|a| a["status"] == 200))
            });
        if kinds.len() == 2 && delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    kinds.sort();
    assert_eq!(kinds, ["document_failed", "sync_completed"], "{list}");
    let failed =
        list["data"].as_array().expect("list").iter().find(|n| n["kind"] == "document_failed").expect("failed");
    assert_eq!(failed["data"]["filename"], "broken.pdf", "{failed}");

    // By webhook: signed, retried after the 500, and the attempts logged.
    let seen = received.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3, "two events, one retried");
    for (headers, body) in &seen {
        let signature = headers["x-lore-signature"].to_str().expect("signature");
        assert_eq!(signature, lore_server::notify::signature("whsec-0123456789", body.as_bytes()));
        let event: Value = serde_json::from_str(body).expect("json");
        assert_eq!(headers["x-lore-event"], event["kind"].as_str().expect("kind"));
    }
    let attempts: Vec<usize> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|n| n["data"]["delivery"].as_array().map(Vec::len).unwrap_or(0))
        .collect();
    assert_eq!(attempts.iter().sum::<usize>(), 3, "{list}");

    // Switched off: errors are not notified any more; other users see none of this.
    app.put(&token, "/v1/config", json!({"error_notifications": false})).await;
    std::fs::write(root.path().join("broken2.pdf"), b"%PDF-1.7\n also broken").expect("write");
    sync(&app, &token, &id, 2).await;
    wait_all_processed(&app, &token, &kb).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, list) = app.get(&token, "/v1/notifications").await;
    assert_eq!(list["data"].as_array().expect("list").iter().filter(|n| n["kind"] == "document_failed").count(), 1);
    let other = app.register("not-notified").await;
    let (_, theirs) = app.get(&other, "/v1/notifications").await;
    assert!(theirs["data"].as_array().expect("list").is_empty());
    app.shutdown().await;
}
