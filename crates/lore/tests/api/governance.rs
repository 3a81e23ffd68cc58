//! Governance over HTTP: rate limits and quotas, usage logs, key security, the user's
//! configuration with sealed secrets, retention purges, and account controls.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{ZH_DOC, body, chrono_now_plus_ms, code, spawn_app, spawn_app_in, spawn_app_with};

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn new_key(app: &super::TestApp, token: &str, body: Value) -> String {
    let (status, v) = app.post(token, "/v1/api-keys", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["key"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn rate_limits_and_quotas_are_enforced_with_headers() {
    let app = spawn_app().await;
    let token = app.register("limited").await;
    let key = new_key(&app, &token, json!({"name": "rl", "scopes": ["read"], "rate_limit": 3})).await;
    for remaining in [2, 1, 0] {
        let resp = app.http.get(app.url("/v1/me")).bearer_auth(&key).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&resp, "x-ratelimit-remaining"), Some(remaining.to_string()));
        let reset: u64 = header(&resp, "x-ratelimit-reset").expect("reset").parse().expect("number");
        assert!((1..=60).contains(&reset));
    }
    let resp = app.http.get(app.url("/v1/me")).bearer_auth(&key).send().await.expect("send");
    let retry = header(&resp, "retry-after").expect("retry-after");
    assert_eq!(header(&resp, "x-ratelimit-remaining").as_deref(), Some("0"));
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    assert_eq!(v["error"]["type"], "rate_limited");
    assert!(retry.parse::<u64>().expect("seconds") <= 60);

    let quota = new_key(&app, &token, json!({"name": "quota", "scopes": ["read"], "daily_quota": 2})).await;
    assert_eq!(app.get(&quota, "/v1/me").await.0, StatusCode::OK);
    assert_eq!(app.get(&quota, "/v1/me").await.0, StatusCode::OK);
    let resp = app.http.get(app.url("/v1/me")).bearer_auth(&quota).send().await.expect("send");
    let retry: u64 = header(&resp, "retry-after").expect("retry-after").parse().expect("seconds");
    assert!(retry <= 24 * 3600);
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"), "{v}");
    let (_, keys) = app.get(&token, "/v1/api-keys").await;
    let listed = keys["data"].as_array().expect("keys").iter().find(|k| k["name"] == "quota").cloned().expect("key");
    assert_eq!((listed["usage_count_today"].as_i64(), listed["usage_count_month"].as_i64()), (Some(2), Some(2)));

    // Exact under concurrency: 30 requests at once against a limit of 10.
    let burst = new_key(&app, &token, json!({"name": "burst", "scopes": ["read"], "rate_limit": 10})).await;
    let requests = (0..30).map(|_| {
        let (http, url, key) = (app.http.clone(), app.url("/v1/me"), burst.clone());
        tokio::spawn(async move { http.get(url).bearer_auth(key).send().await.expect("send").status() })
    });
    let mut ok = 0;
    for r in requests {
        match r.await.expect("task") {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 10);
    // Sessions are not rate-limited.
    for _ in 0..5 {
        assert_eq!(app.get(&token, "/v1/me").await.0, StatusCode::OK);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn every_key_request_is_logged_redacted_and_survives_shutdown() {
    let app = spawn_app().await;
    let token = app.register("logged").await;
    let kb = app.create_kb(&token, "kb").await;
    let key = new_key(&app, &token, json!({"name": "app", "scopes": ["search", "read"]})).await;
    assert_eq!(app.search(&key, &kb, "中文分词").await.0, StatusCode::OK);
    let (status, v) =
        app.post(&key, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "x", "password": "hunter2"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(app.get(&key, &format!("/v1/knowledge-bases/{kb}")).await.0, StatusCode::OK);
    // Session requests are not API usage.
    app.get(&token, "/v1/me").await;
    let dir = app.stop().await;

    // A clean shutdown drained the log: the rows are there after a restart.
    let app = spawn_app_in(dir, |_| {}).await;
    let (status, login) =
        app.post("", "/v1/auth/login", json!({"username": "logged", "password": "correct horse battery"})).await;
    assert_eq!(status, StatusCode::OK);
    let token = login["token"].as_str().expect("token").to_string();
    let (status, usage) = app.get(&token, "/v1/usage/api").await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let rows = usage["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{usage}");
    let failed = rows.iter().find(|r| r["status_code"] == 422).expect("the failed request");
    assert_eq!(failed["endpoint"], "/v1/knowledge-bases/{id}/search");
    assert_eq!(failed["method"], "POST");
    assert_eq!(failed["request_body"]["password"], "[redacted]");
    assert_eq!(failed["request_body"]["query"], "x");
    assert!(failed["error_message"].as_str().expect("error").starts_with("invalid_body"), "{failed}");
    assert_eq!(failed["ip_address"], "127.0.0.1");
    assert!(failed["response_time_ms"].as_i64().is_some());
    assert!(!usage.to_string().contains("hunter2"));
    assert_eq!(usage["daily"][0]["requests"], 3);
    assert_eq!(usage["daily"][0]["errors"], 1);
    let (_, errors) = app.get(&token, "/v1/usage/api?status=error").await;
    assert_eq!(errors["data"].as_array().map(Vec::len), Some(1));
    let (_, me) = app.get(&token, "/v1/me").await;
    assert_eq!(me["api_calls_count"], 3, "kept by the database");
    let (status, v) = app.get(&token, "/v1/usage/api?status=maybe").await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    app.shutdown().await;
}

#[tokio::test]
async fn key_security_restricts_addresses_and_origins() {
    let app = spawn_app().await;
    let token = app.register("secure").await;
    let elsewhere =
        new_key(&app, &token, json!({"name": "lan", "scopes": ["read"], "security": {"allowed_ips": ["10.0.0.0/8"]}}))
            .await;
    let (status, v) = app.get(&elsewhere, "/v1/me").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "ip_not_allowed"));
    let local = new_key(
        &app,
        &token,
        json!({"name": "local", "scopes": ["read"], "security": {"allowed_ips": ["127.0.0.1", "::1"], "allowed_origins": ["https://app.example.com"]}}),
    )
    .await;
    assert_eq!(app.get(&local, "/v1/me").await.0, StatusCode::OK, "no Origin: a server-side caller");
    let from =
        |origin: &'static str| app.http.get(app.url("/v1/me")).bearer_auth(&local).header("origin", origin).send();
    assert_eq!(from("https://app.example.com").await.expect("send").status(), StatusCode::OK);
    let (status, v) = body(from("https://evil.example.com").await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "origin_not_allowed"));
    let (status, v) = app
        .post(
            &token,
            "/v1/api-keys",
            json!({"name": "bad", "scopes": ["read"], "security": {"allowed_ips": ["not-an-ip"]}}),
        )
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    app.shutdown().await;
}

/// An owner edits a live key: its name, limits, security and expiry change in place, its scopes
/// only narrow, and the change holds at once on this node.
#[tokio::test]
async fn keys_can_be_edited_but_never_widened() {
    let app = spawn_app().await;
    let token = app.register("editor").await;
    let kb = app.create_kb(&token, "编辑").await;
    let (status, created) = app
        .post(
            &token,
            "/v1/api-keys",
            json!({"name": "ci", "scopes": ["search", "read"], "knowledge_base_id": kb, "rate_limit": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    let id = created["api_key"]["id"].as_str().expect("id").to_string();
    let path = format!("/v1/api-keys/{id}");
    assert_eq!(app.get(&key, "/v1/me").await.0, StatusCode::OK);

    // Tighter: 3 requests a minute (this minute's first is spent) and the read scope gone,
    // enforced on the next request.
    let (status, v) = app
        .patch(
            &token,
            &path,
            json!({"name": "只读检索", "scopes": ["search"], "rate_limit": 3, "description": "narrowed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["scopes"].clone(), v["rate_limit"].as_i64()),
        (Some("只读检索"), json!(["search"]), Some(3))
    );
    assert_eq!(v["knowledge_base_id"], kb.as_str(), "the binding stays");
    let (status, v) = app.get(&key, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{v}");
    let (status, v) = app.post(&key, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "退款"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = app.post(&key, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "refund"})).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{v}");

    // Wider scopes are a new key; so is another knowledge base.
    let (status, v) = app.patch(&token, &path, json!({"scopes": ["search", "delete"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_scope"), "{v}");
    let (status, v) = app.patch(&token, &path, json!({"knowledge_base_id": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = app.patch(&token, &path, json!({"scopes": []})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_scope"), "{v}");
    // A limit past the contract's 32-bit integer is refused, on edits as on creation.
    let (status, v) = app.patch(&token, &path, json!({"rate_limit": 2_147_483_648u64})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");
    let (status, v) = app
        .post(&token, "/v1/api-keys", json!({"name": "big", "scopes": ["search"], "daily_quota": 4_000_000_000u64}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{v}");
    // Looser limits, an address list, an expiry; null clears.
    let (status, v) = app
        .patch(&token, &path, json!({"rate_limit": null, "daily_quota": 500, "security": {"allowed_ips": ["10.0.0.0/8"]}, "expires_at": chrono_now_plus_ms(86_400_000)}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["rate_limit"].is_null() && v["daily_quota"] == 500 && v["expires_at"].is_string(), "{v}");
    let (status, v) = app.post(&key, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "退款"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "ip_not_allowed"), "{v}");
    let (status, v) = app.patch(&token, &path, json!({"security": {}, "expires_at": null, "description": null})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["expires_at"].is_null() && v["description"].is_null(), "{v}");
    assert_eq!(
        app.post(&key, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": "退款"})).await.0,
        StatusCode::OK
    );
    for bad in [
        json!({"security": {"allowed_ips": ["not-an-ip"]}}),
        json!({"expires_at": "2000-01-01T00:00:00Z"}),
        json!({"name": ""}),
        json!({"key_hash": "x"}),
    ] {
        let (status, v) = app.patch(&token, &path, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }

    // Only the owner's session edits: not the key itself, not another account.
    let (status, _) = app.patch(&key, &path, json!({"rate_limit": null})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let stranger = app.register("stranger").await;
    let (status, v) = app.patch(&stranger, &path, json!({"name": "mine"})).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // A revoked key stays revoked.
    assert_eq!(app.delete(&token, &path).await.0, StatusCode::NO_CONTENT);
    let (status, v) = app.patch(&token, &path, json!({"name": "back"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(app.get(&key, "/v1/me").await.0, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

/// Behind a trusted reverse proxy the client is the address it forwards (right-most untrusted
/// hop); from anyone else those headers count for nothing. Allowed IPs, `last_used_ip` and the
/// usage log see that one address, and a refused request is in the usage log with its reason.
#[tokio::test]
async fn keys_work_behind_a_trusted_proxy() {
    // The test client stands in for the proxy: it connects from 127.0.0.1.
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")]).await;
    let token = app.register("proxied").await;
    let office = new_key(
        &app,
        &token,
        json!({"name": "办公室", "scopes": ["read"], "security": {"allowed_ips": ["198.51.100.0/24"]}}),
    )
    .await;
    let me = |headers: &[(&'static str, &'static str)]| {
        let mut request = app.http.get(app.url("/v1/me")).bearer_auth(&office);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    // The client forged a first hop; the proxy appended the address it saw.
    let from_office = [("x-forwarded-for", "203.0.113.66, 198.51.100.7")];
    assert_eq!(me(&from_office).await.expect("send").status(), StatusCode::OK);
    assert_eq!(me(&[("forwarded", r#"for="198.51.100.8:5555""#)]).await.expect("send").status(), StatusCode::OK);
    let (status, v) = body(me(&[("x-forwarded-for", "198.51.100.7, 203.0.113.66")]).await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "ip_not_allowed"), "the right-most hop is the client");
    let (status, v) = body(me(&[]).await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "ip_not_allowed"), "the proxy itself is not the office");

    let (_, keys) = app.get(&token, "/v1/api-keys").await;
    let listed = keys["data"].as_array().or(keys.as_array()).expect("keys").clone();
    let key = listed.iter().find(|k| k["name"] == "办公室").expect("the key");
    assert_eq!(key["last_used_ip"], "198.51.100.8", "{key}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let (_, usage) =
            app.get(&token, &format!("/v1/usage/api?api_key_id={}", key["id"].as_str().expect("id"))).await;
        let rows = usage["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= 4 || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut seen: Vec<(i64, String)> = rows
        .iter()
        .map(|r| (r["status_code"].as_i64().unwrap_or(0), r["ip_address"].as_str().unwrap_or("").to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (200, "198.51.100.7".into()),
            (200, "198.51.100.8".into()),
            (403, "127.0.0.1".into()),
            (403, "203.0.113.66".into())
        ],
        "{rows:?}"
    );
    let refused = rows.iter().find(|r| r["status_code"] == 403).expect("refused");
    assert!(refused["error_message"].as_str().is_some_and(|m| m.starts_with("ip_not_allowed")), "{refused}");
    app.shutdown().await;

    // Without --trusted-proxy the same headers change nothing.
    let app = spawn_app().await;
    let token = app.register("direct").await;
    let office = new_key(
        &app,
        &token,
        json!({"name": "office", "scopes": ["read"], "security": {"allowed_ips": ["198.51.100.0/24"]}}),
    )
    .await;
    let forged = app
        .http
        .get(app.url("/v1/me"))
        .bearer_auth(&office)
        .header("x-forwarded-for", "198.51.100.7")
        .header("forwarded", "for=198.51.100.7")
        .send()
        .await
        .expect("send");
    let (status, v) = body(forged).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "ip_not_allowed"));
    app.shutdown().await;
}

/// Every file of the data directory, as bytes, for checking that a secret is nowhere in clear.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn user_config_seals_secrets_and_feeds_defaults() {
    let app = spawn_app().await;
    let token = app.register("configured").await;
    let (status, v) = app.get(&token, "/v1/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((v["sync_notifications"].as_bool(), v["openai_api_key"].as_str()), (Some(true), None));

    let secret = "sk-test-秘密-0123456789abcdef";
    let (status, v) = app
        .put(
            &token,
            "/v1/config",
            json!({"openai_api_key": secret, "default_chunk_size": 12, "default_chunk_overlap": 2,
                   "document_retention_days": 7, "openai_base_url": "http://127.0.0.1:9/v1", "error_notifications": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["openai_api_key"], "••••cdef");
    assert!(!v.to_string().contains(secret));
    assert_eq!((v["default_chunk_size"].as_i64(), v["error_notifications"].as_bool()), (Some(12), Some(false)));
    // A partial update keeps the rest, null clears.
    let (_, v) = app.put(&token, "/v1/config", json!({"default_chunk_overlap": null})).await;
    assert_eq!((v["openai_api_key"].as_str(), v["default_chunk_overlap"].as_i64()), (Some("••••cdef"), None));
    let data_dir = app._dir.path().join("data");
    assert!(!contains(&all_bytes(&data_dir), secret), "the provider key is stored in clear");

    for bad in [
        json!({"default_chunk_size": 0}),
        json!({"default_similarity_threshold": 1.5}),
        json!({"webhook_url": "ftp://x"}),
        json!({"default_chunk_size": 10, "default_chunk_overlap": 10}),
    ] {
        let (status, v) = app.put(&token, "/v1/config", bad.clone()).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{bad}");
    }
    let (status, v) = app.put(&token, "/v1/config", json!({"openai_key": "x"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    // A default embedding model this server cannot use is refused at save time, saying what it
    // has, rather than failing every later upload; one it has, or a provider's, is kept.
    for missing in ["BAAI/bge-m3", "no-such-model", "../../etc/passwd"] {
        let (status, v) = app.put(&token, "/v1/config", json!({"default_embedding_model": missing})).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_model"), "{missing}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("multilingual-e5-small")), "{v}");
    }
    let (_, v) = app.get(&token, "/v1/config").await;
    assert!(v["default_embedding_model"].is_null(), "nothing was saved: {v}");
    for usable in ["multilingual-e5-small", "local/multilingual-e5-small", "openai/text-embedding-3-small"] {
        let (status, v) = app.put(&token, "/v1/config", json!({"default_embedding_model": usable})).await;
        assert_eq!(status, StatusCode::OK, "{usable}: {v}");
    }
    app.put(&token, "/v1/config", json!({"default_embedding_model": null})).await;
    let key = new_key(&app, &token, json!({"name": "k", "scopes": ["read", "upload", "search"]})).await;
    let (status, v) = app.get(&key, "/v1/config").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "session_required"));

    // The user's defaults reach chunking and documents.
    let (_, v) =
        app.post(&token, "/v1/chunking/preview", json!({"text": "一二三四五六七八九十一二三四五六七八九十"})).await;
    assert!(v["chunks"].as_array().expect("chunks").iter().all(|c| c["char_count"].as_i64() <= Some(12)), "{v}");
    let kb = app.create_kb(&token, "kb").await;
    let (status, doc) = app.upload(&token, &kb, "x.md", ZH_DOC).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let expires = doc["expires_at"].as_str().expect("expires_at set by document_retention_days");
    let created = doc["created_at"].as_str().expect("created");
    assert!(expires > created && expires[..4] >= created[..4], "{doc}");
    app.shutdown().await;
}

#[tokio::test]
async fn rotating_the_master_key_keeps_secrets_readable() {
    let app = spawn_app().await;
    let token = app.register("rotator").await;
    app.put(&token, "/v1/config", json!({"anthropic_api_key": "sk-ant-rotate-me-9876"})).await;
    let dir = app.stop().await;
    let data = dir.path().join("data");
    let before = std::fs::read_to_string(data.join("master.key")).expect("key file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
        .args(["keys", "rotate-master", "--data-dir"])
        .arg(&data)
        .env_remove("LORE_MASTER_KEY")
        .envs(super::database_env(&data))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 secrets"));
    assert_ne!(std::fs::read_to_string(data.join("master.key")).expect("key file"), before);

    let app = spawn_app_in(dir, |_| {}).await;
    let (_, login) =
        app.post("", "/v1/auth/login", json!({"username": "rotator", "password": "correct horse battery"})).await;
    let token = login["token"].as_str().expect("token");
    let (status, v) = app.get(token, "/v1/config").await;
    assert_eq!((status, v["anthropic_api_key"].as_str()), (StatusCode::OK, Some("••••9876")), "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_trash_is_purged_after_its_grace_period() {
    let app = spawn_app_with(|c| c.trash_retention = Duration::ZERO).await;
    let token = app.register("purger").await;
    let kb = app.create_kb(&token, "kb").await;
    let other = app.create_kb(&token, "other").await;
    let doc = app.ingest(&token, &kb, "a.md", ZH_DOC).await;
    let shared = app.ingest(&token, &other, "same.md", ZH_DOC).await;
    let solo = app.ingest(&token, &kb, "solo.md", "只在这里的内容。").await;
    // Counted in the blob store itself: a folder on the embedded store, the database on PostgreSQL.
    let hashes: Vec<String> =
        [&doc, &shared, &solo].iter().map(|d| d["file_hash"].as_str().expect("file_hash").to_string()).collect();
    let blobs = async |app: &super::TestApp| {
        let store = app.server.as_ref().expect("server").blobs();
        let mut held = std::collections::BTreeSet::new();
        for hash in &hashes {
            let key = lore_core::blob::key_for_hash(hash);
            if store.size(&key).await.expect("blob size").is_some() {
                held.insert(key);
            }
        }
        held.len()
    };
    assert_eq!(blobs(&app).await, 2, "one blob per distinct content");
    for d in [&doc, &solo] {
        app.delete(&token, &format!("/v1/documents/{}", d["id"].as_str().expect("id"))).await;
    }
    let report = app.server.as_ref().expect("server").run_maintenance().await.expect("purge");
    assert_eq!((report.documents_purged, report.blobs_deleted), (2, 1), "{report:?}");
    assert_eq!(blobs(&app).await, 1, "the blob still used by the other knowledge base stays");
    let (status, _) =
        app.post(&token, &format!("/v1/documents/{}/restore", doc["id"].as_str().expect("id")), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "past the grace period there is nothing to restore");
    let (_, v) = app.search(&token, &other, "中文分词").await;
    assert_eq!(v["results"][0]["document_id"], shared["id"]);
    let (_, me) = app.get(&token, "/v1/me").await;
    assert_eq!(me["storage_used"], shared["file_size"]);
    app.shutdown().await;
}

#[tokio::test]
async fn accounts_are_protected_and_administered() {
    let app = spawn_app().await;
    let admin = app.register("admin").await;
    let (_, me) = app.get(&admin, "/v1/me").await;
    assert_eq!(me["is_superuser"], true, "the first account administers the installation");
    let user = app.register("regular").await;
    let (_, me) = app.get(&user, "/v1/me").await;
    assert_eq!(me["is_superuser"], false);
    let user_id = me["id"].as_str().expect("id").to_string();
    let (status, v) = app.get(&user, "/v1/admin/users").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "superuser_required"));
    let (_, users) = app.get(&admin, "/v1/admin/users").await;
    assert_eq!(users["data"].as_array().map(Vec::len), Some(2));

    // Brute force meets a wall, even when the right password finally comes.
    for _ in 0..5 {
        let (status, _) =
            app.post("", "/v1/auth/login", json!({"username": "regular", "password": "guess guess"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": "regular", "password": "correct horse battery"}))
        .send()
        .await
        .expect("send");
    assert!(resp.headers().contains_key("retry-after"));
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "too_many_login_attempts"));

    // Password change ends the other sessions.
    let (_, second) =
        app.post("", "/v1/auth/login", json!({"username": "admin", "password": "correct horse battery"})).await;
    let second = second["token"].as_str().expect("token").to_string();
    let (status, v) = app
        .post(&admin, "/v1/auth/password", json!({"current_password": "wrong", "new_password": "new password 1"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, _) = app
        .post(
            &admin,
            "/v1/auth/password",
            json!({"current_password": "correct horse battery", "new_password": "new password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&second, "/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&admin, "/v1/me").await.0, StatusCode::OK);
    let (status, _) = app.post("", "/v1/auth/login", json!({"username": "admin", "password": "new password 1"})).await;
    assert_eq!(status, StatusCode::OK);

    // Deactivation locks the account out at once: sessions and keys.
    let user_key = new_key(&app, &user, json!({"name": "k", "scopes": ["read"]})).await;
    let (status, v) = app.patch(&admin, &format!("/v1/admin/users/{user_id}"), json!({"is_active": false})).await;
    assert_eq!((status, v["is_active"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    assert_eq!(app.get(&user, "/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let (status, v) = app.get(&user_key, "/v1/me").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "user_inactive"));
    app.patch(&admin, &format!("/v1/admin/users/{user_id}"), json!({"is_active": true})).await;
    assert_eq!(app.get(&user_key, "/v1/me").await.0, StatusCode::OK);

    // Revoke-all ends this session too.
    let (status, v) = app.delete(&admin, "/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(app.get(&admin, "/v1/me").await.0, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

/// The audit log: sign-ins (and failed ones), keys, configuration with provider keys, knowledge
/// bases and documents deleted and restored, and an administrator's action are each recorded with
/// actor, address and request id; no secret appears; each person reads what concerns them, the
/// administrator everyone's; nothing in the API changes an entry.
#[tokio::test]
async fn security_changes_are_audited_for_their_owner_and_administrators() {
    let app = spawn_app().await;
    let admin = app.register("审计管理员").await;
    let token = app.register("alice-audit").await;
    let bob = app.register("bob-audit").await;
    let login = |name: &str, password: &str| {
        let body = json!({"username": name, "password": password});
        let app = &app;
        async move { app.post("", "/v1/auth/login", body).await }
    };
    assert_eq!(login("alice-audit", "wrong password!").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("nobody-at-all", "wrong password!").await.0, StatusCode::UNAUTHORIZED);
    let (status, signed_in) = login("alice-audit", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");

    let (_, key) = app.post(&token, "/v1/api-keys", json!({"name": "ci", "scopes": ["search", "read"]})).await;
    let key_id = key["api_key"]["id"].as_str().expect("id").to_string();
    app.patch(&token, &format!("/v1/api-keys/{key_id}"), json!({"rate_limit": 5, "scopes": ["search"]})).await;
    let revoked =
        app.http.delete(app.url(&format!("/v1/api-keys/{key_id}"))).bearer_auth(&token).send().await.expect("send");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let request_id = header(&revoked, "x-request-id").expect("every answer names its request");
    app.put(&token, "/v1/config", json!({"openai_api_key": "sk-audit-secret-123", "max_search_results": 7})).await;
    let kb = app.create_kb(&token, "审计知识库").await;
    app.patch(&token, &format!("/v1/knowledge-bases/{kb}"), json!({"settings": {"search_config": {"top_k": 3}}})).await;
    let doc = app.ingest(&token, &kb, "说明.md", ZH_DOC).await;
    let doc = doc["id"].as_str().expect("id");
    app.delete(&token, &format!("/v1/documents/{doc}")).await;
    app.post(&token, &format!("/v1/documents/{doc}/restore"), json!({})).await;
    app.delete(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    let (_, bob_me) = app.get(&bob, "/v1/me").await;
    let bob_id = bob_me["id"].as_str().expect("id").to_string();
    let (status, v) = app.patch(&admin, &format!("/v1/admin/users/{bob_id}"), json!({"is_active": false})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let (status, log) = app.get(&token, "/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["data"].as_array().expect("entries").clone();
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "knowledge_base.deleted",
            "document.restored",
            "document.deleted",
            "knowledge_base.updated",
            "config.updated",
            "api_key.revoked",
            "api_key.updated",
            "api_key.created",
            "auth.sign_in",
            "auth.sign_in_failed",
            "auth.registered",
        ],
        "newest first, alice's only: {log}"
    );
    assert!(!log.to_string().contains("sk-audit-secret"), "no secret in the log");
    let by_action = |action: &str| entries.iter().find(|e| e["action"] == action).expect(action).clone();
    let revoke = by_action("api_key.revoked");
    assert_eq!(revoke["request_id"], request_id.as_str());
    assert_eq!(revoke["ip_address"], "127.0.0.1");
    assert_eq!(revoke["actor"], "alice-audit");
    assert_eq!(revoke["target_type"], "api_key");
    assert_eq!(revoke["target_id"], key_id.as_str());
    assert_eq!(by_action("api_key.updated")["details"]["rate_limit"], 5);
    assert_eq!(by_action("config.updated")["details"]["fields"], json!(["max_search_results", "openai_api_key"]));
    assert_eq!(by_action("auth.sign_in_failed")["details"]["reason"], "wrong_password");
    assert_eq!(by_action("knowledge_base.updated")["details"]["settings"], json!(["search_config"]));
    assert_eq!(by_action("document.deleted")["details"]["filename"], "说明.md");

    // Filters and pages.
    let (_, auth) = app.get(&token, "/v1/audit?action=auth.").await;
    assert_eq!(auth["data"].as_array().map(Vec::len), Some(3), "{auth}");
    let (_, first) = app.get(&token, "/v1/audit?limit=2").await;
    let last_at = first["data"][1]["at"].as_str().expect("at").to_string();
    let (_, next) = app.get(&token, &format!("/v1/audit?limit=1&before={}", last_at.replace('+', "%2B"))).await;
    assert_eq!(next["data"][0]["action"], "document.deleted", "{next}");

    // Bob sees the administrator's action on his account, and nothing of alice's.
    let (_, bob_log) = app.get(&admin, &format!("/v1/admin/audit?user_id={bob_id}")).await;
    let deactivated = &bob_log["data"][0];
    assert_eq!(deactivated["action"], "admin.user_deactivated", "{bob_log}");
    assert_eq!(deactivated["actor"], "审计管理员");
    // The failed sign-in of an unknown name concerns nobody: administrators see it.
    let (status, everything) = app.get(&admin, "/v1/admin/audit?action=auth.sign_in_failed").await;
    assert_eq!(status, StatusCode::OK);
    let tried: Vec<&str> =
        everything["data"].as_array().into_iter().flatten().filter_map(|e| e["actor"].as_str()).collect();
    assert!(tried.contains(&"nobody-at-all") && tried.contains(&"alice-audit"), "{everything}");
    for path in ["/v1/admin/audit", &format!("/v1/audit?user_id={bob_id}")] {
        let (status, v) = app.get(&token, path).await;
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
    }
    // A key reads no audit log, and nothing changes one.
    let read_key = new_key(&app, &token, json!({"name": "reader", "scopes": ["read"]})).await;
    assert_eq!(app.get(&read_key, "/v1/audit").await.0, StatusCode::FORBIDDEN);
    for method in [reqwest::Method::DELETE, reqwest::Method::POST, reqwest::Method::PATCH] {
        let resp =
            app.http.request(method.clone(), app.url("/v1/audit")).bearer_auth(&token).send().await.expect("send");
        assert!(resp.status() == StatusCode::METHOD_NOT_ALLOWED || resp.status() == StatusCode::NOT_FOUND, "{method}");
    }
    app.shutdown().await;
}
