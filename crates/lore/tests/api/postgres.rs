//! What only PostgreSQL does: several `lore serve` processes on one database (sharing the
//! ingestion queue, each job claimed once with SKIP LOCKED and a lease, answering the same
//! searches), and `lore migrate` from an embedded installation.

use std::collections::{HashMap, HashSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, http_client, spawn_app, spawn_app_in, wait_healthy};

/// The test database, or `None` (the test says so) when none is configured.
fn database() -> Option<String> {
    match std::env::var("LORE_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(std::env::var_os("LORE_REQUIRE_POSTGRES").is_none(), "LORE_TEST_DATABASE_URL is not set");
            eprintln!("skipped: LORE_TEST_DATABASE_URL is not set (scripts/pg-up provisions one)");
            None
        }
    }
}

/// A server process, killed when the test ends, pass or fail.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(data_dir: &std::path::Path, database_url: &str, port: u16) -> Node {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .args(["--registration", "open", "--registrations-per-hour", "0"])
        .env("LORE_DATABASE_URL", database_url)
        .env("LORE_LOG", "warn")
        .spawn()
        .expect("start lore");
    Node(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// The ids of a search's results, in order.
async fn result_ids(node: &TestApp, token: &str, kb: &str, query: &str, mode: &str) -> Vec<String> {
    let (status, v) =
        node.post(token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": mode})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let hits = v["results"].as_array().cloned().unwrap_or_default();
    hits.iter().map(|h| h["chunk_id"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn two_nodes_share_one_database_and_process_each_document_once() {
    // The suite's PostgreSQL pass runs every other test on PostgreSQL; this one already does.
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        return;
    }
    let Some(base_url) = database() else { return };
    let url = lore_store::postgres::create_scratch_schema(&base_url).await.expect("schema");
    // One data directory holds the uploads and the master key both nodes use (on several
    // machines: a shared volume).
    let dir = tempfile::tempdir().expect("tempdir");
    let http = http_client();
    let (port_a, port_b) = (free_port(), free_port());
    let a = start_node(dir.path(), &url, port_a);
    let node_a = TestApp {
        base: format!("http://127.0.0.1:{port_a}"),
        http: http.clone(),
        server: None,
        _dir: tempfile::tempdir().expect("t"),
    };
    wait_healthy(&http, &node_a.base).await;
    let b = start_node(dir.path(), &url, port_b);
    let node_b = TestApp {
        base: format!("http://127.0.0.1:{port_b}"),
        http: http.clone(),
        server: None,
        _dir: tempfile::tempdir().expect("t"),
    };
    wait_healthy(&http, &node_b.base).await;

    // An account made on one node signs in on the other.
    let token = node_a.register("cluster").await;
    let (status, me) = node_b.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let kb = node_b.create_kb(&token, "shared").await;

    const DOCS: usize = 200;
    let mut ids = Vec::with_capacity(DOCS);
    for i in 0..DOCS {
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        let text = if i % 2 == 0 {
            format!("# 集群文档 {i}\n\n两个节点共享一个数据库。编号 marker{i} 的文档讲述退款政策第 {i} 条。")
        } else {
            format!("# Cluster note {i}\n\nTwo nodes share one database. Document marker{i} covers shipping rule {i}.")
        };
        let (status, v) = node.upload(&token, &kb, &format!("doc{i}.md"), text).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }

    // Every document is processed, by either node, exactly once.
    let mut claimed_by: HashMap<String, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let reader = if i % 2 == 0 { &node_b } else { &node_a };
        let doc: Value = reader.wait_done(&token, id).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        let claims: Vec<&str> = doc["processing_log"]
            .as_array()
            .expect("log")
            .iter()
            .filter(|e| e["stage"] == "claim")
            .filter_map(|e| e["message"].as_str())
            .collect();
        assert_eq!(claims.len(), 1, "document {i} was claimed {} times: {doc}", claims.len());
        let node = claims[0].trim_start_matches("claimed by ").split('/').next().expect("node").to_string();
        *claimed_by.entry(node).or_default() += 1;
    }
    assert_eq!(claimed_by.len(), 2, "both nodes took work: {claimed_by:?}");
    assert_eq!(claimed_by.values().sum::<usize>(), DOCS);

    // The statistics the database keeps agree, read from either node.
    for node in [&node_a, &node_b] {
        let (_, v) = node.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
        assert_eq!(v["document_count"].as_i64(), Some(DOCS as i64), "{v}");
        assert_eq!(v["chunk_count"].as_i64(), Some(DOCS as i64), "{v}");
    }

    // Both nodes answer the same, in Chinese and English, in every mode.
    for (query, mode) in [
        ("marker17", "fulltext"),
        ("退款政策", "fulltext"),
        ("shipping rule", "fulltext"),
        ("两个节点共享数据库", "vector"),
        ("which rule covers shipping", "hybrid"),
        ("退款", "hybrid"),
    ] {
        let from_a = result_ids(&node_a, &token, &kb, query, mode).await;
        let from_b = result_ids(&node_b, &token, &kb, query, mode).await;
        assert!(!from_a.is_empty(), "{mode} search for {query} found nothing");
        assert_eq!(from_a, from_b, "{mode} search for {query}");
    }
    let hit = result_ids(&node_b, &token, &kb, "marker17", "fulltext").await;
    let (_, top) = node_a.get(&token, &format!("/v1/documents/{}/chunks", ids[17])).await;
    let chunk_ids: HashSet<String> = top["data"]
        .as_array()
        .or_else(|| top.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert!(hit.first().is_some_and(|h| chunk_ids.contains(h)), "marker17 finds document 17 first: {hit:?} {top}");

    drop((a, b));
}

#[tokio::test]
async fn an_embedded_installation_moves_to_postgres_without_reembedding() {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        return;
    }
    let Some(base_url) = database() else { return };
    let app = spawn_app().await;
    let token = app.register("mover").await;
    let kb = app.create_kb(&token, "moving").await;
    let texts = [
        ("退款.md", "# 退款政策\n\n购买后三十天内可以申请全额退款，运费由我们承担。"),
        ("shipping.md", "# Shipping\n\nOrders ship within two business days; express delivery takes one day."),
        ("新品.txt", "新品上市：智能音箱支持中文语音控制和多房间播放。"),
    ];
    for (name, text) in texts {
        let doc = app.ingest(&token, &kb, name, text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }
    let (status, key) = app.post(&token, "/v1/api-keys", json!({"name": "moved", "scopes": ["read", "search"]})).await;
    assert!(status.is_success(), "{key}");
    let api_key = key["key"].as_str().expect("key").to_string();
    let queries = [("退款", "fulltext"), ("how fast is delivery", "vector"), ("智能音箱", "hybrid")];
    let mut before = Vec::new();
    for (query, mode) in queries {
        before.push(result_ids(&app, &token, &kb, query, mode).await);
    }
    let (_, kb_before) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    let dir = app.stop().await;
    let data = dir.path().join("data");

    let url = lore_store::postgres::create_scratch_schema(&base_url).await.expect("schema");
    let migrate = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
            .args(["migrate", "--from"])
            .arg(&data)
            .args(["--to", url])
            .output()
            .expect("run lore migrate")
    };
    let out = migrate(&url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("copied document_chunks") && stdout.contains("checksum of embeddings matches"), "{stdout}");
    // Run again (as after an interruption): nothing is copied twice and it verifies again.
    let again = migrate(&url);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success() && stdout.contains("0 rows inserted"), "{stdout}");

    // The same data directory (uploads, master key) served from PostgreSQL.
    let app = spawn_app_in(dir, |c| c.database_url = Some(url.clone())).await;
    let (status, me) = app.get(&api_key, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "the API key still works: {me}");
    let (_, login) =
        app.post("", "/v1/auth/login", json!({"username": "mover", "password": "correct horse battery"})).await;
    let token = login["token"].as_str().expect("password still works").to_string();
    let (_, kb_after) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    for field in ["document_count", "chunk_count", "total_size_bytes"] {
        assert_eq!(kb_after[field], kb_before[field], "{field}: {kb_after}");
    }
    // The same chunks (their ids would change if anything were processed again) give the same
    // answers in every mode: the copied embeddings are what is searched.
    for ((query, mode), expected) in queries.iter().zip(&before) {
        assert!(!expected.is_empty(), "{mode} search for {query} found something before the move");
        assert_eq!(&result_ids(&app, &token, &kb, query, mode).await, expected, "{mode} search for {query}");
    }
    app.shutdown().await;
}
