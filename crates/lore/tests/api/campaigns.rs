//! Short versions of the operations campaigns (README, "Operations"), so that CI runs each:
//! crash, machine faults, mixed load (embedded, and two nodes on PostgreSQL), a hostile tenant and
//! schemathesis against the HTTP contract. The isolation matrix and the parser fuzzer have their own tests.

/// Runs the lore binary with `args` and asserts it succeeded with the expected summary.
async fn campaign(args: Vec<String>, expect: &'static str) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lore"));
    cmd.args(&args).env_remove("LORE_DATABASE_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run lore")).await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.contains(expect),
        "lore {}: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The PostgreSQL test database, when the suite has one.
fn test_database() -> Option<String> {
    std::env::var("LORE_TEST_DATABASE_URL").ok()
}

/// Whether this test pass is the HTTP suite's second run on PostgreSQL: the campaigns choose
/// their stores themselves, so they run in the first pass only.
fn postgres_pass() -> bool {
    std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The crash campaign (`lore bench crash`), short: SIGKILL during ingestion, then every accepted
/// upload completes, counts match, no chunk is duplicated and search finds each document. On the
/// embedded store, and on three PostgreSQL nodes (each with its own data directory) when the suite
/// has a database.
#[tokio::test]
async fn a_short_crash_campaign_finds_nothing() {
    if postgres_pass() {
        return;
    }
    let mut databases = vec![None];
    databases.extend(test_database().map(Some));
    for database in databases {
        let mut list = args(&["bench", "crash", "--docs", "60", "--kills", "3", "--vector-checks", "10"]);
        // On PostgreSQL, three nodes: each kill takes one while the others go on.
        list.extend(database.map(|url| args(&["--database-url", &url, "--nodes", "3"])).into_iter().flatten());
        campaign(list, "findings: none").await;
    }
}

/// The fault campaign (`lore bench faults`), short: disk full, read-only data directory and (with
/// PostgreSQL) the database cut away, each while acknowledged documents are in flight. It mounts a
/// tmpfs, so it needs root, as the test command does for PostgreSQL. It is the regression test of
/// its findings: a disk-full rollback that left SQLite's writer in a transaction that never
/// committed, and storage errors answered as 500s and failing the documents they interrupted.
#[tokio::test]
async fn a_short_fault_campaign_finds_nothing() {
    if postgres_pass() {
        return;
    }
    if !is_root() {
        assert!(std::env::var_os("LORE_REQUIRE_POSTGRES").is_none(), "the test command runs as root");
        eprintln!("skipped: the fault campaign mounts a tmpfs and needs root");
        return;
    }
    let mut list = args(&["bench", "faults", "--documents", "10", "--hold", "2"]);
    list.extend(test_database().map(|url| ["--database-url".to_string(), url]).into_iter().flatten());
    let summary = campaign(list, "findings: none").await;
    for fault in ["disk full", "read-only"] {
        assert!(summary.contains(&format!("{fault}: not ready")), "{summary}");
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The load campaign (`lore bench load`), short: the mixed workload answers no 5xx and memory
/// stays flat, on the embedded store and on two nodes sharing PostgreSQL.
#[tokio::test]
async fn a_short_load_campaign_finds_nothing() {
    if postgres_pass() {
        return;
    }
    let short = ["bench", "load", "--seconds", "20", "--clients", "6", "--documents", "30"];
    let summary = campaign(args(&short), " 5xx 0,").await;
    assert!(summary.contains("1 embedded node(s)"), "{summary}");
    if let Some(url) = test_database() {
        let mut list = args(&short);
        list.extend(args(&["--nodes", "2", "--database-url", &url]));
        let summary = campaign(list, " 5xx 0,").await;
        assert!(summary.contains("2 PostgreSQL node(s)"), "{summary}");
    }
}

/// The hostile-tenant campaign (`lore bench hostile`), short: chunking configs at the edges, bombs
/// and malformed files, every address field pointed at a recorder on 127.0.0.2 (and at the
/// metadata service, [::1], 0.0.0.0, a redirect, Lore itself), and every operation with a path
/// parameter called with another tenant's keys. No 5xx, no timeout, no byte of the victim's canary
/// or provider key in any wrong caller's answer, nothing reaches the recorder, memory bounded. On
/// the embedded store, and on PostgreSQL when the suite has a database.
#[tokio::test]
async fn a_short_hostile_campaign_finds_nothing() {
    if postgres_pass() {
        return;
    }
    let mut databases = vec![None];
    databases.extend(test_database().map(Some));
    for database in databases {
        let mut list = args(&["bench", "hostile", "--seconds", "20", "--seed", "18"]);
        let backend = if database.is_some() { "PostgreSQL" } else { "embedded" };
        list.extend(database.map(|url| args(&["--database-url", &url])).into_iter().flatten());
        let summary = campaign(list, "findings: none").await;
        assert!(
            summary.contains(&format!(", {backend}, seed 18)")) && summary.contains("recorder 0 requests"),
            "{summary}"
        );
    }
}

/// The schemathesis campaign (`scripts/campaign/schemathesis`), short: generated requests from
/// /openapi.json get no 5xx and no answer the schema does not describe.
#[tokio::test]
async fn a_short_schemathesis_campaign_finds_nothing() {
    if postgres_pass() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/campaign/schemathesis");
    let mut cmd = std::process::Command::new("bash");
    cmd.args([script, "30"]).env("LORE_BIN", env!("CARGO_BIN_EXE_lore"));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the campaign")).await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 failures, 0 internal errors"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Hostile bodies on every operation that takes one (read from /openapi.json): an oversized body
/// and malformed JSON each get a 4xx in Lore's error shape with a code, never a 5xx, and the server
/// answers normally afterwards. (Uploads, which take multipart, have their own test.)
#[tokio::test]
async fn every_operation_refuses_oversized_and_malformed_bodies_with_a_code() {
    use reqwest::StatusCode;

    let app = super::spawn_app().await;
    let token = app.register("hostile").await;
    let (_, doc) = app.get(&token, "/openapi.json").await;
    let oversized = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let Some(body) = operation["requestBody"]["content"].as_object() else { continue };
            if !body.contains_key("application/json") {
                continue;
            }
            // Ids that exist nowhere: bodies are read before anything is looked up.
            let url = app.url(&path.replace(
                "{id}",
                if path.starts_with("/v1/file-types") { "1" } else { "01a21000-0000-7000-8000-000000000000" },
            ));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            for (what, payload) in [("oversized", oversized.clone()), ("malformed", "{\"name\": [".to_string())] {
                let response = app
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(payload)
                    .send()
                    .await
                    .expect("send");
                let status = response.status();
                let v: serde_json::Value = response.json().await.unwrap_or_default();
                assert!(
                    status.is_client_error() && v["error"]["code"].is_string(),
                    "{method} {path} with a {what} body: {status} {v}"
                );
                if what == "oversized" {
                    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}: {v}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} operations take a JSON body?");
    assert_eq!(app.get(&token, "/v1/knowledge-bases").await.0, StatusCode::OK);
}
