//! What only PostgreSQL does: several `lore serve` processes on one database (sharing the
//! ingestion queue, each job claimed once with SKIP LOCKED and a lease, answering the same
//! searches), and `lore migrate` from an embedded installation.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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

/// A fresh schema of the test database for a test that starts nodes of its own; `None` where
/// there is no database, or in the suite's PostgreSQL pass (which runs every other test there).
async fn scratch_database() -> Option<String> {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        return None;
    }
    let base_url = database()?;
    Some(lore_store::postgres::create_scratch_schema(&base_url).await.expect("schema"))
}

/// Two nodes on one database, each with a data directory of its own, sharing the master key.
struct TwoNodes {
    node_a: TestApp,
    node_b: TestApp,
    dir_a: PathBuf,
    dir_b: PathBuf,
    key: String,
    http: reqwest::Client,
    /// Dropped at the test's end: the processes stop, then their directories go.
    running: Running,
}

struct Running {
    _processes: (Node, Node),
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Starts node A, then node B once A answers; `flags` gives a node's extra flags from its data
/// directory.
async fn two_nodes(url: &str, flags: impl Fn(&Path) -> Vec<String>) -> TwoNodes {
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let key = new_master_key();
    let http = http_client();
    let start = async |dir: &Path| {
        let port = free_port();
        let extra = flags(dir);
        let process = start_node_with(dir, url, port, &key, &extra.iter().map(String::as_str).collect::<Vec<_>>());
        let node = client_of(port, &http);
        wait_healthy(&http, &node.base).await;
        (process, node)
    };
    let (a, node_a) = start(dir_a.path()).await;
    let (b, node_b) = start(dir_b.path()).await;
    let (dir_a_path, dir_b_path) = (dir_a.path().to_path_buf(), dir_b.path().to_path_buf());
    let running = Running { _processes: (a, b), _dirs: (dir_a, dir_b) };
    TwoNodes { node_a, node_b, dir_a: dir_a_path, dir_b: dir_b_path, key, http, running }
}

/// A server process, killed when the test ends, pass or fail.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(data_dir: &std::path::Path, database_url: &str, port: u16, master_key: &str) -> Node {
    start_node_with(data_dir, database_url, port, master_key, &[])
}

/// A node with its own data directory: nothing shared with the others but the database URL and
/// the master key (as the README's "Many nodes" section has it).
fn start_node_with(
    data_dir: &std::path::Path, database_url: &str, port: u16, master_key: &str, extra: &[&str],
) -> Node {
    let child = node_command(data_dir, database_url, port, master_key, extra).spawn().expect("start lore");
    Node(child)
}

fn node_command(
    data_dir: &std::path::Path, database_url: &str, port: u16, master_key: &str, extra: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lore"));
    command
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--registration", "open", "--registrations-per-hour", "0"])
        .args(if extra.contains(&"--workers") { &[][..] } else { &["--workers", "2"][..] })
        .args(extra)
        .env("LORE_DATABASE_URL", database_url)
        .env("LORE_MASTER_KEY", master_key)
        .env("LORE_LOG", "warn");
    command
}

/// A client of the node listening on `port` (started by the test as a process).
fn client_of(port: u16, http: &reqwest::Client) -> TestApp {
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        http: http.clone(),
        server: None,
        _dir: tempfile::tempdir().expect("t"),
    }
}

fn new_master_key() -> String {
    lore_server::secrets::MasterKey::generate().expect("key").to_base64()
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
    let Some(url) = scratch_database().await else { return };
    // Each node has its own data directory, as on separate machines: they share only the
    // database URL and the master key. Uploaded files live in the database.
    let TwoNodes { node_a, node_b, dir_a, dir_b, http, running, .. } = two_nodes(&url, |_| Vec::new()).await;

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

    // The administrator sees both nodes, from either; the file uploaded through one node comes
    // back byte for byte from the other.
    let (status, nodes) = node_b.get(&token, "/v1/admin/nodes").await;
    assert_eq!(status, StatusCode::OK, "{nodes}");
    let listed: HashSet<String> =
        nodes["data"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str().map(str::to_string)).collect();
    assert_eq!(listed, claimed_by.keys().cloned().collect::<HashSet<_>>(), "{nodes}");
    for n in nodes["data"].as_array().expect("nodes") {
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"), "{n}");
        assert!(n["schema_version"].as_i64().is_some_and(|v| v >= 5), "{n}");
        assert!(n["address"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{n}");
    }
    let file = http
        .get(format!("{}/v1/documents/{}/file", node_b.base, ids[0]))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(file.status(), StatusCode::OK);
    let text = file.text().await.expect("body");
    assert!(text.starts_with("# 集群文档 0\n\n两个节点共享一个数据库。"), "{text}");
    // No node wrote an upload under its own data directory.
    for dir in [&dir_a, &dir_b] {
        let local: Vec<_> = walk(&dir.join("blobs")).into_iter().filter(|p| !p.contains("staging")).collect();
        assert!(local.is_empty(), "{local:?}");
    }

    drop(running);
}

/// A rolling upgrade from the previous release, whose database stops at schema version 4 (no
/// uploads in the database, no master-key check, no node table) and whose nodes keep uploads in
/// their own data directories. Two nodes of this release start on it at once: one migrates, the
/// other waits for it; a node of the previous release goes on beside them exactly when the new
/// migrations are readable by it; the old documents' files come into the database, so the node
/// that never had them serves them; old and new documents are found from both nodes.
#[tokio::test]
async fn two_nodes_upgrade_a_previous_release_database() {
    let Some(url) = scratch_database().await else { return };
    let key = new_master_key();
    let http = http_client();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));

    // The previous release's installation: written through this release, then taken back to
    // where the previous release left it (migration 5 only adds tables), its uploads in node A's
    // data directory.
    let port = free_port();
    let old = start_node(dir_a.path(), &url, port, &key);
    let node = client_of(port, &http);
    wait_healthy(&http, &node.base).await;
    let token = node.register("upgrader").await;
    let kb = node.create_kb(&token, "before the upgrade").await;
    let mut before = Vec::new();
    for (name, text) in [
        ("退款.md", "# 退款政策\n\n升级之前上传：购买后三十天内可以申请全额退款。"),
        ("shipping.md", "# Shipping\n\nUploaded before the upgrade: orders ship within two business days."),
    ] {
        let doc = node.ingest(&token, &kb, name, text).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        let blob = lore_core::blob::key_for_hash(doc["file_hash"].as_str().expect("hash"));
        let path = dir_a.path().join("blobs").join(&blob);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(&path, text).expect("the previous release's upload");
        before.push((doc["id"].as_str().expect("id").to_string(), text));
    }
    drop(old);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "DROP TABLE blob_parts; DROP TABLE blobs; DROP TABLE cluster_settings; DROP TABLE nodes;
         DELETE FROM lore_migrations WHERE version = 5",
    )
    .execute(&pool)
    .await
    .expect("back to schema 4");

    // Both nodes of this release start at once.
    let (port_a, port_b) = (free_port(), free_port());
    let a = start_node(dir_a.path(), &url, port_a, &key);
    let b = start_node(dir_b.path(), &url, port_b, &key);
    let node_a = client_of(port_a, &http);
    let node_b = client_of(port_b, &http);
    wait_healthy(&http, &node_a.base).await;
    wait_healthy(&http, &node_b.base).await;
    let migrated: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT version, readable_by FROM lore_migrations WHERE version > 4 ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("migrations");
    let expected: Vec<(i64, Option<i64>)> = lore_store::schema::POSTGRES
        .iter()
        .filter(|m| m.version > 4)
        .map(|m| (m.version, Some(m.readable_by)))
        .collect();
    assert_eq!(migrated, expected, "each migration applied once, with the oldest version that reads it");
    // A previous-release node goes on beside the upgraded ones exactly when every newer migration
    // is readable by it (5 is: it only adds tables; 6 is not: it must not re-embed a disabled
    // chunk); otherwise it refuses to start and says to upgrade.
    let mut conn = pool.acquire().await.expect("conn");
    let readable = lore_store::schema::postgres_readable_by(&mut conn, 4).await;
    if expected.iter().all(|(_, by)| by.is_some_and(|by| by <= 4)) {
        readable.expect("a previous-release node goes on");
    } else {
        let refused = readable.expect_err("a previous-release node must stop");
        assert!(refused.message.contains("upgrade this node"), "{refused}");
    }
    let refused = lore_store::schema::postgres_readable_by(&mut conn, 3).await.expect_err("too old");
    assert!(refused.message.contains("upgrade this node"), "{refused}");
    drop(conn);

    // The old files reach the database from node A; node B, which never had them, serves them.
    for (id, text) in &before {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = http
                .get(format!("{}/v1/documents/{id}/file", node_b.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("download");
            if r.status() == StatusCode::OK {
                assert_eq!(r.text().await.expect("body"), *text);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{id} never reached the database: {}", r.status());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // New documents through either node; old and new found from both, in Chinese and English.
    for (i, node) in [&node_a, &node_b].into_iter().enumerate() {
        let doc = node
            .ingest(
                &token,
                &kb,
                &format!("after{i}.md"),
                format!("# 升级之后 {i}\n\nUploaded after the upgrade through node {i}."),
            )
            .await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }
    for (query, mode) in
        [("全额退款", "fulltext"), ("ship within two business days", "hybrid"), ("升级之后", "fulltext")]
    {
        let from_a = result_ids(&node_a, &token, &kb, query, mode).await;
        assert!(!from_a.is_empty(), "{mode} search for {query} found nothing");
        assert_eq!(from_a, result_ids(&node_b, &token, &kb, query, mode).await, "{mode} search for {query}");
    }
    pool.close().await;
    drop((a, b));
}

/// A key edited through one node is enforced by the other within the key cache's lifetime (5 s),
/// though the other node had just authenticated it.
#[tokio::test]
async fn a_key_edited_on_one_node_is_enforced_on_the_other() {
    let Some(url) = scratch_database().await else { return };
    let TwoNodes { node_a, node_b, running, .. } = two_nodes(&url, |_| Vec::new()).await;

    let token = node_a.register("keyholder").await;
    let (status, created) = node_a.post(&token, "/v1/api-keys", json!({"name": "集群密钥", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let api_key = created["key"].as_str().expect("key").to_string();
    let id = created["api_key"]["id"].as_str().expect("id");
    assert_eq!(node_b.get(&api_key, "/v1/me").await.0, StatusCode::OK, "node B has it cached now");
    let (status, v) =
        node_a.patch(&token, &format!("/v1/api-keys/{id}"), json!({"security": {"allowed_ips": ["10.0.0.0/8"]}})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let edited = std::time::Instant::now();
    loop {
        let (status, v) = node_b.get(&api_key, "/v1/me").await;
        if status == StatusCode::FORBIDDEN {
            assert_eq!(v["error"]["code"], "ip_not_allowed", "{v}");
            break;
        }
        assert!(edited.elapsed() < std::time::Duration::from_secs(8), "node B still accepts the key: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eprintln!("node B enforced the edit after {:?}", edited.elapsed());
    drop(running);
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// Nodes that each keep uploads in a directory of their own (`--blob-url file:///...` not
/// shared): a node that cannot read a document's file puts it back, and the node that stored it
/// processes it, so every document completes. A file no node has fails its document with
/// `file_unavailable` and a message naming the configuration to fix.
#[tokio::test]
async fn a_node_that_cannot_read_a_file_leaves_it_to_one_that_can() {
    let Some(url) = scratch_database().await else { return };
    let own_blobs = |dir: &Path| vec!["--blob-url".to_string(), format!("file://{}", dir.join("own-blobs").display())];
    let TwoNodes { node_a, node_b, key, http, running, .. } = two_nodes(&url, own_blobs).await;
    let app = |port: u16| client_of(port, &http);
    let token = node_a.register("apart").await;
    let kb = node_a.create_kb(&token, "apart").await;
    // Both nodes beat before the uploads, so each knows the other is there.
    for _ in 0..100 {
        let (_, nodes) = node_a.get(&token, "/v1/admin/nodes").await;
        if nodes["data"].as_array().is_some_and(|n| n.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    const DOCS: usize = 40;
    let mut ids = Vec::new();
    for i in 0..DOCS {
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        let text = format!("# 分开存放 {i}\n\nEach node keeps its own files. 文件 {i} 只在一个节点上。");
        let (status, v) = node.upload(&token, &kb, &format!("apart{i}.md"), text).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let mut passed_on = 0;
    for id in &ids {
        let doc = node_a.wait_done(&token, id).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        let log = doc["processing_log"].as_array().expect("log");
        passed_on += log.iter().filter(|e| e["stage"] == "unreadable").count();
    }
    eprintln!("{passed_on} claims passed a document on to the node holding its file");

    // A third node that takes no jobs (`--workers 0`, an API-only node) keeps its uploads to
    // itself: both working nodes try its file, and the document fails with a message that says
    // what to configure.
    let dir_c = tempfile::tempdir().expect("tempdir");
    let flag_c = format!("file://{}", dir_c.path().join("own-blobs").display());
    let port_c = free_port();
    let c = start_node_with(dir_c.path(), &url, port_c, &key, &["--blob-url", &flag_c, "--workers", "0"]);
    let node_c = app(port_c);
    wait_healthy(&http, &node_c.base).await;
    let (status, v) =
        node_c.upload(&token, &kb, "private.md", "# 只在 C 上 only on C\n\nNo worker can read this.").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let doc = node_a.wait_done(&token, v["id"].as_str().expect("id")).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error_code"], "file_unavailable", "{doc}");
    let message = doc["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("no node could read") && message.contains("--blob-url"), "{doc}");
    drop(c);
    drop(running);
}

/// A node whose master key is not the installation's refuses to start, saying what to set;
/// another node with the right key starts.
#[tokio::test]
async fn a_node_with_another_master_key_refuses_to_start() {
    let Some(url) = scratch_database().await else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let key = new_master_key();
    let http = http_client();
    let port_a = free_port();
    let a = start_node(dir_a.path(), &url, port_a, &key);
    wait_healthy(&http, &format!("http://127.0.0.1:{port_a}")).await;

    let mut wrong = node_command(dir_b.path(), &url, free_port(), &new_master_key(), &[]);
    wrong.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = wrong.spawn().expect("start lore");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed().as_secs() < 60, "the node with the wrong key is still running");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let output = child.wait_with_output().expect("output");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    assert!(!status.success(), "{said}");
    assert!(said.contains("master key") && said.contains("LORE_MASTER_KEY"), "{said}");
    assert!(!said.contains(&key), "the message must not hold a key: {said}");

    // Without LORE_MASTER_KEY a node makes a key of its own in its data directory: refused too.
    let mut own = node_command(dir_b.path(), &url, free_port(), "", &[]);
    own.env_remove("LORE_MASTER_KEY").stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let output = own.output().expect("run lore");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("LORE_MASTER_KEY"), "{output:?}");

    let port_c = free_port();
    let c = start_node(dir_b.path(), &url, port_c, &key);
    wait_healthy(&http, &format!("http://127.0.0.1:{port_c}")).await;
    drop((a, c));
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
