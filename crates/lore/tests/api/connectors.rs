//! The `web`, `git` and `s3` connectors against real servers the tests start on 127.0.0.1: a web
//! site with robots.txt and a sitemap, a git repository (read in place, and cloned over smart
//! HTTP from `git http-backend`), and moto's S3 server.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::sources::{counts, sync, wait_all_processed};
use super::{TestApp, code, spawn_app_with};

async fn app(root: Option<&Path>, allow_private: bool) -> TestApp {
    let root = root.map(Path::to_path_buf);
    spawn_app_with(move |c| {
        c.embedding_model = None;
        c.source_roots = root.into_iter().collect();
        c.sync_check_interval = Duration::from_secs(3600);
        c.allow_private_sources = allow_private;
        if !allow_private {
            c.allow_outbound.clear();
        }
    })
    .await
}

async fn create_source(app: &TestApp, token: &str, body: Value) -> String {
    let (status, v) = app.post(token, "/v1/data-sources", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_str().expect("id").to_string()
}

fn filenames(docs: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = docs.iter().filter_map(|d| d["filename"].as_str().map(str::to_string)).collect();
    names.sort();
    names
}

// ------------------------------------------------------------------------------------ web

type Site = Arc<Mutex<HashMap<String, (&'static str, String)>>>;

/// A web site on 127.0.0.1 serving what `site` holds (404 for the rest), counting requests.
async fn serve_site(site: Site, hits: Arc<Mutex<Vec<String>>>) -> String {
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (site, hits) = (site.clone(), hits.clone());
        async move {
            hits.lock().expect("lock").push(uri.path().to_string());
            match site.lock().expect("lock").get(uri.path()) {
                Some((content_type, body)) => {
                    ([(axum::http::header::CONTENT_TYPE, *content_type)], body.clone()).into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

use axum::response::IntoResponse;

#[tokio::test]
async fn a_web_site_is_crawled_politely_and_kept_in_sync() {
    let site: Site = Arc::default();
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let base = serve_site(site.clone(), hits.clone()).await;
    let html = "text/html; charset=utf-8";
    {
        let mut s = site.lock().expect("lock");
        s.insert(
            "/robots.txt".into(),
            ("text/plain", format!("User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap.xml\n")),
        );
        s.insert("/sitemap.xml".into(), ("application/xml", format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{base}/orphan.html</loc></url></urlset>"#
        )));
        s.insert(
            "/".into(),
            (
                html,
                r#"<html><head><title>Home</title></head><body><h1>Welcome</h1>
            <p>Start here.</p><a href="/guide.html">Guide</a> <a href="zh/退款.html">退款</a>
            <a href="/private/secret.html">secret</a> <a href="https://elsewhere.example/">elsewhere</a>
            <a href="/hidden.html">hidden</a></body></html>"#
                    .into(),
            ),
        );
        s.insert("/guide.html".into(), (html, "<html><head><title>Shipping guide</title></head><body><p>Shipping takes two business days to most countries.</p><a href=\"/deep/one.html\">deeper</a></body></html>".into()));
        s.insert("/zh/%E9%80%80%E6%AC%BE.html".into(), (html, "<html><head><title>退款政策</title></head><body><p>购买后三十天内可以申请全额退款，运费由商家承担。</p></body></html>".into()));
        s.insert("/private/secret.html".into(), (html, "<html><body>internal salary table</body></html>".into()));
        s.insert(
            "/hidden.html".into(),
            (
                html,
                r#"<html><head><meta name="robots" content="noindex"></head><body>not for indexes</body></html>"#
                    .into(),
            ),
        );
        s.insert("/orphan.html".into(), (html, "<html><head><title>Orphan</title></head><body><p>Only the sitemap links the warranty page: two years of warranty.</p></body></html>".into()));
        s.insert("/deep/one.html".into(), (html, "<html><body><p>Too deep for depth one.</p></body></html>".into()));
    }
    let app = app(None, true).await;
    let token = app.register("crawler").await;
    let kb = app.create_kb(&token, "site").await;
    let id = create_source(
        &app,
        &token,
        json!({"name": "网站", "knowledge_base_id": kb, "source_type": "web", "config": {"url": format!("{base}/"), "max_depth": 1}}),
    )
    .await;
    let run = sync(&app, &token, &id, 1).await;
    assert_eq!(counts(&run), (4, 0, 0, 0), "{run}");
    let docs = wait_all_processed(&app, &token, &kb).await;
    assert_eq!(filenames(&docs), ["guide.html", "index.html", "orphan.html", "退款.html"], "{docs:?}");
    assert!(docs.iter().all(|d| d["status"] == "completed"), "{docs:?}");
    {
        let hits = hits.lock().expect("lock");
        assert!(!hits.iter().any(|p| p.starts_with("/private/")), "robots.txt is honoured: {hits:?}");
        assert!(!hits.iter().any(|p| p.starts_with("/deep/")), "max_depth is honoured: {hits:?}");
    }
    let (_, v) = app.search(&token, &kb, "退款").await;
    assert_eq!(v["results"][0]["filename"], "退款.html", "{v}");
    let (_, v) = app.search(&token, &kb, "warranty").await;
    assert_eq!(v["results"][0]["filename"], "orphan.html", "{v}");
    let doc_id = v["results"][0]["document_id"].as_str().expect("id");
    let (_, doc) = app.get(&token, &format!("/v1/documents/{doc_id}")).await;
    assert_eq!(doc["metadata"]["source_path"], format!("{base}/orphan.html"), "{doc}");

    // Unchanged pages are not processed again; a changed one is; a vanished one goes.
    let run = sync(&app, &token, &id, 2).await;
    assert_eq!(counts(&run), (0, 0, 0, 0), "{run}");
    {
        let mut s = site.lock().expect("lock");
        s.insert("/guide.html".into(), (html, "<html><head><title>Shipping guide</title></head><body><p>Shipping now takes one business day, even abroad.</p></body></html>".into()));
        s.remove("/orphan.html");
    }
    let run = sync(&app, &token, &id, 3).await;
    assert_eq!(counts(&run), (0, 1, 1, 0), "{run}");
    wait_all_processed(&app, &token, &kb).await;
    let (_, v) = app.search(&token, &kb, "abroad").await;
    assert_eq!(v["results"][0]["filename"], "guide.html", "{v}");
    let (_, v) = app.search(&token, &kb, "warranty").await;
    assert!(v["results"].as_array().expect("results").is_empty(), "{v}");

    // A page that fails to load is kept, not taken for vanished.
    site.lock().expect("lock").insert("/guide.html".into(), (html, String::new()));
    site.lock().expect("lock").remove("/robots.txt");
    let run = sync(&app, &token, &id, 4).await;
    assert_eq!(counts(&run).2, 0, "{run}");
    app.shutdown().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let site: Site = Arc::default();
    site.lock().expect("lock").insert("/".into(), ("text/html", "<p>internal admin page</p>".into()));
    let base = serve_site(site, hits.clone()).await;
    let port = base.rsplit(':').next().expect("port");
    let app = app(None, false).await;
    let token = app.register("attacker").await;
    let kb = app.create_kb(&token, "kb").await;
    // A literal private address is refused at once.
    for url in [base.clone(), format!("http://[::1]:{port}/"), "http://169.254.169.254/latest/meta-data/".into()] {
        let (status, v) = app
            .post(
                &token,
                "/v1/data-sources",
                json!({"name": "x", "knowledge_base_id": kb, "source_type": "web", "config": {"url": url}}),
            )
            .await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "source_unreachable"), "{url}: {v}");
    }
    // A name is checked after DNS, when the sync connects.
    let id = create_source(
        &app,
        &token,
        json!({"name": "y", "knowledge_base_id": kb, "source_type": "web", "config": {"url": format!("http://localhost:{port}/")}}),
    )
    .await;
    app.post(&token, &format!("/v1/data-sources/{id}/sync"), json!({})).await;
    let run = super::sources::finished_run(&app, &token, &id, 1).await;
    assert_eq!(run["status"], "failed", "{run}");
    let (_, source) = app.get(&token, &format!("/v1/data-sources/{id}")).await;
    assert!(source["last_error"].as_str().is_some_and(|e| e.contains("private")), "{source}");
    assert!(hits.lock().expect("lock").is_empty(), "nothing reached the internal server");
    app.shutdown().await;
}

// ------------------------------------------------------------------------------------ git

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=Lore", "-c", "user.email=lore@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Serves the repositories under `root` over git's smart HTTP protocol (`git http-backend`, CGI).
async fn serve_git(root: std::path::PathBuf) -> String {
    let router = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let root = root.clone();
            async move {
                let header =
                    move |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let output = tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    let mut child = Command::new("git")
                        .arg("http-backend")
                        .env("GIT_PROJECT_ROOT", &root)
                        .env("GIT_HTTP_EXPORT_ALL", "1")
                        .env("PATH_INFO", uri.path())
                        .env("QUERY_STRING", uri.query().unwrap_or(""))
                        .env("REQUEST_METHOD", method.as_str())
                        .env("CONTENT_TYPE", header("content-type"))
                        .env("CONTENT_LENGTH", body.len().to_string())
                        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
                        .env("GIT_PROTOCOL", header("git-protocol"))
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .expect("git http-backend");
                    child.stdin.take().expect("stdin").write_all(&body).expect("body");
                    child.wait_with_output().expect("output").stdout
                })
                .await
                .expect("join");
                let split = output.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
                let split = split.or_else(|| output.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
                let (at, gap) = split.expect("CGI headers");
                let mut response = axum::http::Response::builder();
                for line in String::from_utf8_lossy(&output[..at]).lines() {
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("status") {
                            let code: u16 = value.trim()[..3].parse().expect("status");
                            response = response.status(code);
                        } else {
                            response = response.header(name.trim(), value.trim());
                        }
                    }
                }
                response.body(axum::body::Body::from(output[at + gap..].to_vec())).expect("response")
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn a_git_branch_is_synced_by_blob_in_place_and_over_http() {
    let root = tempfile::tempdir().expect("root");
    let repo = root.path().join("handbook");
    std::fs::create_dir_all(repo.join("docs")).expect("mkdir");
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("docs/退款.md"), "# 退款政策\n\n购买后三十天内可以申请全额退款。").expect("write");
    std::fs::write(repo.join("README.md"), "# Handbook\n\nShipping takes two business days.").expect("write");
    std::fs::write(repo.join(".gitignore"), "target\n").expect("write");
    std::fs::write(repo.join("logo.bin"), [0u8, 159, 146, 150]).expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let base = serve_git(root.path().to_path_buf()).await;
    let app = app(Some(root.path()), true).await;
    let token = app.register("gitter").await;
    let kb = app.create_kb(&token, "repo").await;
    let remote_kb = app.create_kb(&token, "remote").await;
    let local = create_source(
        &app,
        &token,
        json!({"name": "in place", "knowledge_base_id": kb, "source_type": "git",
               "config": {"url": repo, "branch": "main", "exclude": ["*.bin"]}}),
    )
    .await;
    let remote = create_source(
        &app,
        &token,
        json!({"name": "over http", "knowledge_base_id": remote_kb, "source_type": "git",
               "config": {"url": format!("{base}/handbook"), "include": ["**/*.md"]}}),
    )
    .await;
    for (id, kb) in [(&local, &kb), (&remote, &remote_kb)] {
        let run = sync(&app, &token, id, 1).await;
        assert_eq!(counts(&run), (2, 0, 0, 0), "{run}");
        let docs = wait_all_processed(&app, &token, kb).await;
        assert_eq!(filenames(&docs), ["README.md", "退款.md"], "{docs:?}");
        let (_, v) = app.search(&token, kb, "全额退款").await;
        assert_eq!(v["results"][0]["filename"], "退款.md", "{v}");
    }
    // A commit that changes one file, removes one and touches nothing else.
    std::fs::write(repo.join("README.md"), "# Handbook\n\nShipping now takes one business day, even abroad.")
        .expect("write");
    git(&repo, &["rm", "-q", "docs/退款.md"]);
    git(&repo, &["commit", "-q", "-am", "second"]);
    for (id, kb) in [(&local, &kb), (&remote, &remote_kb)] {
        let run = sync(&app, &token, id, 2).await;
        assert_eq!(counts(&run), (0, 1, 1, 0), "{run}");
        // The changed file is queued again: wait for it before searching.
        wait_all_processed(&app, &token, kb).await;
        let (_, v) = app.search(&token, kb, "abroad").await;
        assert_eq!(v["results"][0]["filename"], "README.md", "{v}");
        let run = sync(&app, &token, id, 3).await;
        assert_eq!(counts(&run), (0, 0, 0, 0), "{run}");
    }
    // An unknown branch fails the run with its reason.
    let (status, _) = app
        .patch(&token, &format!("/v1/data-sources/{local}"), json!({"config": {"url": repo, "branch": "nope"}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.post(&token, &format!("/v1/data-sources/{local}/sync"), json!({})).await;
    let run = super::sources::finished_run(&app, &token, &local, 4).await;
    assert_eq!(run["status"], "failed", "{run}");
    app.shutdown().await;
}

// ------------------------------------------------------------------------------------ s3

/// moto's S3 server on a free port of 127.0.0.1 (scripts/test installs moto); killed on drop.
struct Moto(std::process::Child, String);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (scripts/test installs moto)");
    let moto = Moto(child, format!("http://127.0.0.1:{port}"));
    let http = super::http_client();
    for _ in 0..200 {
        if http.get(&moto.1).send().await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto's S3 server did not start (is moto installed? scripts/test installs it)");
}

struct Bucket {
    http: reqwest::Client,
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
}

impl Bucket {
    async fn create(endpoint: &str, name: &str) -> Self {
        use rusty_s3::S3Action;
        let url = endpoint.parse().expect("endpoint");
        let bucket = rusty_s3::Bucket::new(url, rusty_s3::UrlStyle::Path, name.to_string(), "us-east-1".to_string())
            .expect("bucket");
        let credentials = rusty_s3::Credentials::new("AKIDTEST", "secret-test-key");
        let http = super::http_client();
        let url = bucket.create_bucket(&credentials).sign(Duration::from_secs(60));
        let r = http.put(url).header("content-length", "0").send().await.expect("create");
        let status = r.status();
        assert!(status.is_success(), "{status}: {}", r.text().await.unwrap_or_default());
        Self { http, bucket, credentials }
    }

    async fn put(&self, key: &str, body: &str) {
        use rusty_s3::S3Action;
        let url = self.bucket.put_object(Some(&self.credentials), key).sign(Duration::from_secs(60));
        let r = self.http.put(url).body(body.to_string()).send().await.expect("put");
        assert!(r.status().is_success(), "{}", r.status());
    }

    async fn delete(&self, key: &str) {
        use rusty_s3::S3Action;
        let url = self.bucket.delete_object(Some(&self.credentials), key).sign(Duration::from_secs(60));
        assert!(self.http.delete(url).send().await.expect("delete").status().is_success());
    }

    /// The keys under a prefix.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        use rusty_s3::S3Action;
        let mut list = self.bucket.list_objects_v2(Some(&self.credentials));
        list.with_prefix(prefix);
        let url = list.sign(Duration::from_secs(60));
        let text = self.http.get(url).send().await.expect("list").text().await.expect("body");
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text).expect("listing");
        parsed.contents.into_iter().map(|o| o.key).collect()
    }
}

/// Uploads kept in a bucket instead of the data directory: written there on upload, read back
/// by the worker, deleted with the document's last reference.
#[tokio::test]
async fn uploads_can_live_in_an_s3_bucket() {
    let moto = start_moto().await;
    let bucket = Bucket::create(&moto.1, "uploads").await;
    let endpoint = moto.1.clone();
    let app = spawn_app_with(|c| {
        c.blob_url = Some("s3://uploads/lore".into());
        c.s3_endpoint = Some(endpoint);
        c.s3_credentials = Some(lore_server::state::S3Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret-test-key".into(),
        });
        c.trash_retention = Duration::ZERO;
    })
    .await;
    let token = app.register("bucket-user").await;
    let kb = app.create_kb(&token, "in a bucket").await;
    let doc = app.ingest(&token, &kb, "退款.md", "# 退款政策\n\n购买后三十天内可以申请全额退款。").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let doc2 = app.ingest(&token, &kb, "ship.txt", "Shipping takes two business days.").await;
    assert_eq!(doc2["status"], "completed", "{doc2}");
    let stored = bucket.keys("lore/").await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(
        !std::fs::read_dir(app._dir.path().join("data/blobs")).expect("dir").flatten().any(|e| e.path().is_file()),
        "nothing but the staging folder on local disk"
    );
    let (_, v) = app.search(&token, &kb, "全额退款").await;
    assert_eq!(v["results"][0]["filename"], "退款.md", "{v}");

    let (status, _) = app.delete(&token, &format!("/v1/documents/{}", doc["id"].as_str().expect("id"))).await;
    assert!(status.is_success());
    let report = app.server.as_ref().expect("server").run_maintenance().await.expect("purge");
    assert_eq!((report.documents_purged, report.blobs_deleted), (1, 1), "{report:?}");
    let left = bucket.keys("lore/").await;
    assert_eq!(left.len(), 1, "the deleted document's file is gone from the bucket: {left:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_s3_prefix_is_synced_by_etag() {
    let moto = start_moto().await;
    let bucket = Bucket::create(&moto.1, "handbook").await;
    bucket.put("docs/退款.md", "# 退款政策\n\n购买后三十天内可以申请全额退款。").await;
    bucket.put("docs/guide.txt", "Shipping takes two business days.").await;
    bucket.put("other/skip.txt", "outside the prefix").await;
    let app = app(None, true).await;
    let token = app.register("s3-user").await;
    let kb = app.create_kb(&token, "bucket").await;
    let id = create_source(
        &app,
        &token,
        json!({"name": "桶", "knowledge_base_id": kb, "source_type": "s3",
               "config": {"endpoint": moto.1, "bucket": "handbook", "prefix": "docs/"},
               "credentials": {"access_key_id": "AKIDTEST", "secret_access_key": "secret-test-key"}}),
    )
    .await;
    let (_, source) = app.get(&token, &format!("/v1/data-sources/{id}")).await;
    assert!(!source.to_string().contains("secret-test-key"), "{source}");
    let run = sync(&app, &token, &id, 1).await;
    assert_eq!(counts(&run), (2, 0, 0, 0), "{run}");
    let docs = wait_all_processed(&app, &token, &kb).await;
    assert_eq!(filenames(&docs), ["guide.txt", "退款.md"], "{docs:?}");
    let (_, v) = app.search(&token, &kb, "退款").await;
    assert_eq!(v["results"][0]["filename"], "退款.md", "{v}");

    bucket.put("docs/guide.txt", "Shipping now takes one business day, even abroad.").await;
    bucket.delete("docs/退款.md").await;
    bucket.put("docs/新品.txt", "新品上市：智能音箱支持中文语音。").await;
    let run = sync(&app, &token, &id, 2).await;
    assert_eq!(counts(&run), (1, 1, 1, 0), "{run}");
    wait_all_processed(&app, &token, &kb).await;
    let (_, v) = app.search(&token, &kb, "智能音箱").await;
    assert_eq!(v["results"][0]["filename"], "新品.txt", "{v}");
    let run = sync(&app, &token, &id, 3).await;
    assert_eq!(counts(&run), (0, 0, 0, 0), "{run}");

    // Wrong credentials fail the run with S3's own reason.
    let (status, _) = app
        .patch(
            &token,
            &format!("/v1/data-sources/{id}"),
            json!({"config": {"endpoint": moto.1, "bucket": "no-such-bucket"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.post(&token, &format!("/v1/data-sources/{id}/sync"), json!({})).await;
    let run = super::sources::finished_run(&app, &token, &id, 4).await;
    assert_eq!(run["status"], "failed", "{run}");
    let (_, source) = app.get(&token, &format!("/v1/data-sources/{id}")).await;
    assert!(source["last_error"].as_str().is_some_and(|e| e.contains("NoSuchBucket")), "{source}");
    app.shutdown().await;
}
