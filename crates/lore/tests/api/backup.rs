//! `lore backup` and `lore restore`: a snapshot taken while the server serves (and takes writes)
//! restores into an empty data directory and into an empty PostgreSQL database, with the same
//! rows, files, secrets and answers, whichever store it was taken from (the test command's
//! PostgreSQL pass takes it from PostgreSQL).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, database_env, spawn_app, spawn_app_in};

fn lore(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lore"));
    command.args(args).env("LORE_LOG", "warn").env_remove("LORE_MASTER_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run lore")
}

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The ids of a search's results, in order.
async fn result_ids(app: &TestApp, token: &str, kb: &str, query: &str, mode: &str) -> Vec<String> {
    let (status, v) =
        app.post(token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": mode})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["results"].as_array().into_iter().flatten().filter_map(|h| h["chunk_id"].as_str().map(str::to_string)).collect()
}

const PASSPHRASE: &str = "correct horse battery staple 马";
const QUERIES: [(&str, &str); 4] =
    [("退款", "fulltext"), ("delivery", "fulltext"), ("how fast is delivery", "vector"), ("智能音箱", "hybrid")];

/// What must come back identical: the knowledge base's statistics, each document's file bytes,
/// the answers in every mode, an agent's cited answer, and the provider key (masked: it opened
/// under the restored key).
async fn observe(app: &TestApp, token: &str, kb: &str, agent: &str, docs: &[String]) -> Vec<Value> {
    let mut seen = Vec::new();
    let (_, v) = app.get(token, &format!("/v1/knowledge-bases/{kb}")).await;
    seen.push(json!([v["document_count"], v["chunk_count"], v["total_size_bytes"]]));
    for doc in docs {
        let file =
            app.http.get(app.url(&format!("/v1/documents/{doc}/file"))).bearer_auth(token).send().await.expect("get");
        assert_eq!(file.status(), StatusCode::OK);
        seen.push(json!(file.text().await.expect("body")));
    }
    for (query, mode) in QUERIES {
        let ids = result_ids(app, token, kb, query, mode).await;
        assert!(!ids.is_empty(), "{mode} search for {query} found nothing");
        seen.push(json!(ids));
    }
    for question in ["退款多久能到账？", "How fast is express delivery?"] {
        let (status, v) = app.post(token, &format!("/v1/agents/{agent}/chat"), json!({"message": question})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let citations: Vec<Value> = v["message"]["citations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| json!([c["index"], c["document_id"], c["chunk_id"], c["filename"]]))
            .collect();
        assert!(!citations.is_empty(), "{v}");
        seen.push(json!([v["message"]["content"], citations]));
    }
    let (_, config) = app.get(token, "/v1/config").await;
    seen.push(config["openai_api_key"].clone());
    seen
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_on_either_store_with_identical_answers() {
    let app = spawn_app().await;
    let token = app.register("keeper").await;
    let kb = app.create_kb(&token, "kept").await;
    let texts = [
        ("退款.md", "# 退款政策\n\n购买后三十天内可以申请全额退款，运费由我们承担。"),
        ("shipping.md", "# Shipping\n\nOrders ship within two business days; express delivery takes one day."),
        ("新品.txt", "新品上市：智能音箱支持中文语音控制和多房间播放。"),
    ];
    let mut docs = Vec::new();
    for (name, text) in texts {
        let doc = app.ingest(&token, &kb, name, text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        docs.push(doc["id"].as_str().expect("id").to_string());
    }
    let (status, v) = app.put(&token, "/v1/config", json!({"openai_api_key": "sk-backup-0123456789abcdef"})).await;
    assert!(status.is_success(), "{v}");
    let (status, agent) =
        app.post(&token, "/v1/agents", json!({"name": "客服", "knowledge_base_ids": [kb], "max_documents": 2})).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let agent = agent["id"].as_str().expect("id").to_string();
    let before = observe(&app, &token, &kb, &agent, &docs).await;
    let data = app._dir.path().join("data");
    // On the PostgreSQL pass the installation is the database (and its uploads are in it).
    let source_env: Vec<(&str, String)> = database_env(&data).into_iter().collect();
    let from_postgres = !source_env.is_empty();

    // Another knowledge base takes uploads the whole time the backup runs.
    let busy = app.create_kb(&token, "busy").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (http, base, token, busy, stop) =
            (app.http.clone(), app.base.clone(), token.clone(), busy.clone(), stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || latencies.len() < 5 {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(
                        format!("# 写入 {i}\n\nWrites go on during the backup. 备份时照常写入。").into_bytes(),
                    )
                    .file_name(format!("busy{i}.md")),
                );
                let started = Instant::now();
                let r = http
                    .post(format!("{base}/v1/knowledge-bases/{busy}/documents"))
                    .bearer_auth(&token)
                    .multipart(form)
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                latencies.push(started.elapsed());
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };
    // Archives live apart from the server's directory, which goes when the server stops.
    let kept = tempfile::tempdir().expect("tempdir");
    let archive = kept.path().join("lore.backup");
    let args = [
        "backup",
        "--to",
        archive.to_str().expect("utf-8"),
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--include-master-key",
    ];
    let out = {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut env: Vec<(&str, &str)> = source_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.push(("LORE_BACKUP_PASSPHRASE", PASSPHRASE));
            lore(&args, &env)
        })
        .await
        .expect("join")
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut latencies = writer.await.expect("writer");
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("sealed under the passphrase"), "{}", said(&out));
    latencies.sort();
    eprintln!(
        "upload latency while the backup ran: {} uploads, p50 {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().expect("some")
    );

    // The archive checks out; one changed byte does not.
    let out = lore(&["backup", "--verify", archive.to_str().expect("utf-8")], &[]);
    assert!(out.status.success() && said(&out).contains("intact"), "{}", said(&out));
    let source = if from_postgres { "postgres backup" } else { "embedded backup" };
    assert!(said(&out).contains(source), "{}", said(&out));
    let mut bytes = std::fs::read(&archive).expect("read");
    let needle = "全额退款".as_bytes();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the file is in the archive");
    bytes[at] ^= 1;
    let tampered = kept.path().join("tampered.backup");
    std::fs::write(&tampered, &bytes).expect("write");
    let out = lore(&["backup", "--verify", tampered.to_str().expect("utf-8")], &[]);
    assert!(!out.status.success() && said(&out).contains("SHA-256"), "{}", said(&out));
    app.shutdown().await;

    // Embedded → embedded: a new data directory, the key unsealed with the passphrase.
    let dir = tempfile::tempdir().expect("tempdir");
    let restored = dir.path().join("data");
    let restore = |target: &std::path::Path, extra: &[&str], passphrase: &str| {
        let mut args =
            vec!["restore", "--from", archive.to_str().expect("utf-8"), "--data-dir", target.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        lore(&args, &[("LORE_BACKUP_PASSPHRASE", passphrase)])
    };
    let out = restore(&restored, &[], "the wrong passphrase, twelve+");
    assert!(!out.status.success() && said(&out).contains("passphrase"), "{}", said(&out));
    std::fs::remove_dir_all(&restored).expect("clean");
    let out = restore(&restored, &[], PASSPHRASE);
    assert!(out.status.success(), "{}", said(&out));
    let out = restore(&restored, &[], PASSPHRASE);
    assert!(!out.status.success() && said(&out).contains("empty data directory"), "{}", said(&out));
    // Embedded, whichever store the backup came from.
    let app = spawn_app_in(dir, |c| c.database_url = None).await;
    assert_eq!(observe(&app, &token, &kb, &agent, &docs).await, before, "the session, data and answers came back");
    app.shutdown().await;

    // → PostgreSQL (when the suite has a database).
    let Ok(base_url) = std::env::var("LORE_TEST_DATABASE_URL") else { return };
    let url = lore_store::postgres::create_scratch_schema(&base_url).await.expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("data");
    let out = restore(&target, &["--database-url", &url], PASSPHRASE);
    assert!(out.status.success(), "{}", said(&out));
    let app = spawn_app_in(dir, |c| c.database_url = Some(url.clone())).await;
    assert_eq!(observe(&app, &token, &kb, &agent, &docs).await, before, "the same on PostgreSQL");
    app.shutdown().await;
}
