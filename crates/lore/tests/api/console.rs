//! The web console, end to end in headless Chromium (Debian's chromium and chromium-driver,
//! installed by `scripts/browser-up`), driven over the W3C WebDriver protocol against a real
//! server, with a local OpenAI-compatible provider for the agent. Screenshots of every page are
//! saved under `target/console-screenshots/`.
//!
//! Without a browser the browser test says so and passes, unless `LORE_REQUIRE_BROWSER` is set,
//! as the project's test command sets it. The cookie, CSRF and header checks need no browser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{body, code, spawn_app, spawn_app_with};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session behind chromedriver.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser whose language is `lang` (`en-US`, `zh-CN`).
    async fn start(lang: &str) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("LORE_REQUIRE_BROWSER").is_none(),
                "chromium and chromium-driver are missing (scripts/browser-up installs them)"
            );
            eprintln!("skipped: no {CHROMIUM} / {CHROMEDRIVER} (scripts/browser-up installs them)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        lore_core::tls::ensure_provider();
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(90)).build().expect("client");
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{root}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            format!("--lang={lang}"),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": {"intl.accept_languages": lang}},
        }}});
        let resp = http.post(format!("{root}/session")).json(&caps).send().await.expect("new session");
        let v: Value = resp.json().await.expect("session json");
        let id = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Some(Browser { http, session: format!("{root}/session/{id}"), driver, shots, _profile: profile })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body).await.unwrap_or_else(|v| panic!("webdriver {path}: {v}"))
    }

    async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await.expect("webdriver");
        let status = resp.status();
        let v: Value = resp.json().await.expect("webdriver json");
        if status.is_success() { Ok(v["value"].clone()) } else { Err(v["value"].clone()) }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Waits until `script` returns something truthy, and returns it.
    async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = self.js(script, args.clone()).await;
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot("timeout").await;
                panic!("timed out waiting for {what}; page text: {}", self.page_text().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn page_text(&self) -> String {
        self.js("return document.body.innerText", json!([])).await.as_str().unwrap_or_default().to_string()
    }

    /// The element matching `css`, once it is on the page.
    async fn find(&self, css: &str) -> String {
        self.until(css, "return document.querySelector(arguments[0]) !== null", json!([css])).await;
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await;
        v[ELEMENT].as_str().expect("element id").to_string()
    }

    /// Clicks an element, again if the page redrew it or something lay over it at that moment.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let el = self.find(css).await;
            match self.try_call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("clicking {css} again: {}", e["error"]);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("could not click {css}: {e}"),
            }
        }
    }

    /// Types into a field (after clearing it): real key input, Chinese included.
    async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({"text": text})).await;
    }

    async fn wait_text(&self, what: &str, needle: &str) {
        self.until(what, "return document.body.innerText.includes(arguments[0])", json!([needle])).await;
    }

    async fn accept_dialog(&self) {
        self.post("/alert/accept", json!({})).await;
    }

    async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).expect("png");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

const ZH_DOC: &str = "# 退货政策\n\n购买后三十天内可以申请全额退款。退款会在五个工作日内退回原支付账户。\n\n\
                      # 会员\n\n会员每月可以享受一次免费配送服务。";
const EN_DOC: &str = "# Shipping\n\nOrders ship within two business days. International delivery takes about ten days.\n\n\
                      # Warranty\n\nEvery device carries a two-year warranty against manufacturing defects.";
/// A file that tries to run script in the console in every way a renderer might fall for.
const HOSTILE_MD: &str = "# Hostile notes\n\n<script>window.__pwned = 'script'</script>\n\n\
                          <img src=x onerror=\"window.__pwned = 'img'\"> payload marker zebra\n\n\
                          [click](javascript:window.__pwned='link')";

#[tokio::test]
async fn a_newcomer_does_everything_in_the_console_in_a_real_browser() {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        // The console only speaks the HTTP API, which the rest of this suite checks on both stores.
        eprintln!("skipped on the PostgreSQL pass");
        return;
    }
    let Some(browser) = Browser::start("en-US").await else { return };
    let (provider, _) = super::agents::provider("购买后三十天内可以申请全额退款 [1]。").await;
    let files = tempfile::tempdir().expect("files");
    // A folder the operator allows as a data source, with one Chinese file in it.
    let shared = files.path().join("shared");
    std::fs::create_dir_all(&shared).expect("shared folder");
    std::fs::write(shared.join("会员须知.md"), "# 会员须知\n\n会员积分每年清零一次，清零前会提前通知。").expect("file");
    let shared_root = shared.clone();
    let app = spawn_app_with(move |c| c.source_roots = vec![shared_root]).await;
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path.display().to_string()
    };
    let zh = write("退货政策.md", ZH_DOC);
    let en = write("shipping.md", EN_DOC);
    let hostile_md = write("hostile.md", HOSTILE_MD);
    // Plain text keeps the markup verbatim, so the console must show it as text.
    let hostile_txt = write("hostile.txt", &format!("{HOSTILE_MD}\n\nThe same tricks, as plain text."));
    let page = |hash: &str| format!("{}/#{hash}", app.base);

    // Sign up.
    browser.goto(&app.url("/")).await;
    browser.find("#signin-form").await;
    browser.screenshot("01-sign-in").await;
    browser.click("#to-signup").await;
    browser.fill("#signup-form input[name=username]", "newcomer").await;
    browser.fill("#signup-form input[name=email]", "newcomer@example.com").await;
    browser.fill("#signup-form input[name=full_name]", "新用户 Newcomer").await;
    browser.fill("#signup-form input[name=password]", "correct horse battery").await;
    browser.screenshot("02-sign-up").await;
    browser.click("#signup-form button[type=submit]").await;
    browser.find("#kb-create").await;
    let cookie_visible = browser.js("return document.cookie.includes('lore_session')", json!([])).await;
    assert_eq!(cookie_visible, false, "the session cookie is HttpOnly");

    // A knowledge base, and four files uploaded at once.
    browser.fill("#kb-create input[name=name]", "客服知识库 Support").await;
    browser.click("#kb-create button[type=submit]").await;
    browser.find("#dropzone").await;
    assert_labelled(&browser).await;
    let input = browser.find("#file-input").await;
    browser
        .post(&format!("/element/{input}/value"), json!({"text": format!("{zh}\n{en}\n{hostile_md}\n{hostile_txt}")}))
        .await;
    browser
        .until(
            "four uploads to complete",
            "const rows = [...document.querySelectorAll('#uploads li')];
             return rows.length === 4 && rows.every(r => r.dataset.state === 'completed')",
            json!([]),
        )
        .await;
    browser
        .until("the live statistics", "return document.getElementById('stat-docs').textContent === '4'", json!([]))
        .await;
    browser.screenshot("03-knowledge-base-documents").await;
    // The same file again: a duplicate notice, not a second document.
    let input = browser.find("#file-input").await;
    browser.post(&format!("/element/{input}/value"), json!({"text": en})).await;
    browser
        .until("the duplicate notice", "return document.querySelector('#uploads li[data-state=duplicate]')", json!([]))
        .await;

    // A broken file fails on its own, with a readable error.
    let broken = write("broken.pdf", "%PDF-1.7 this is not really a PDF");
    let input = browser.find("#file-input").await;
    browser.post(&format!("/element/{input}/value"), json!({"text": broken})).await;
    let failure = browser
        .until(
            "the broken file's error",
            "const r = document.querySelector('#uploads li[data-file=\"broken.pdf\"][data-state=failed]');
             return r && r.textContent",
            json!([]),
        )
        .await;
    assert!(failure.as_str().unwrap_or_default().contains("Failed: "), "{failure}");
    browser.screenshot("04-upload-failure").await;

    // The hostile files are shown as text and run nothing.
    for (name, shot) in [("hostile.md", "05-document-markdown"), ("hostile.txt", "06-document-text")] {
        let href = browser
            .until(
                "the hostile document's row",
                "const a = [...document.querySelectorAll('#doc-list a')].find(a => a.textContent === arguments[0]);
                 return a && a.getAttribute('href')",
                json!([name]),
            )
            .await;
        browser.goto(&format!("{}/{}", app.base, href.as_str().expect("href"))).await;
        browser.wait_text("the hostile chunk", "payload marker zebra").await;
        if name.ends_with(".txt") {
            browser.wait_text("the markup shown as text", "<script>window.__pwned = 'script'</script>").await;
        }
        browser.screenshot(shot).await;
        assert_no_script_ran(&browser).await;
        browser.js("history.back()", json!([])).await;
        browser.find("#doc-list a").await;
    }
    let kb_id = app_kb_id(&browser).await;

    // Chunking settings: a description in plain language, and the live preview.
    browser.goto(&page(&format!("/kbs/{kb_id}?tab=settings"))).await;
    browser.find("#preview-count").await;
    assert_labelled(&browser).await;
    browser.fill("#chunk-description", "按段落切分，每块不超过200字").await;
    browser.click("#generate-config").await;
    browser
        .until(
            "a generated configuration",
            "return document.getElementById('chunk-config').value.includes('paragraph')",
            json!([]),
        )
        .await;
    browser
        .until(
            "the preview",
            "const p = document.getElementById('preview-count'); return p && p.textContent.includes('paragraph')",
            json!([]),
        )
        .await;
    browser.screenshot("07-knowledge-base-settings").await;
    browser.click("#kb-save").await;
    browser.wait_text("the saved settings", "Saved").await;
    let (status, login) =
        app.post("", "/v1/auth/login", json!({"username": "newcomer", "password": "correct horse battery"})).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["token"].as_str().expect("token").to_string();
    let (_, kb) = app.get(&token, &format!("/v1/knowledge-bases/{kb_id}")).await;
    assert_eq!(kb["settings"]["chunking_config"]["strategy_type"], "paragraph", "{kb}");
    assert!(kb["settings"]["question_generation"].is_null(), "off unless a provider is chosen: {kb}");
    assert_eq!(kb["embedding_space"], "local/multilingual-e5-small", "saving settings keeps the model: {kb}");

    // Search in both languages, with scores and highlights.
    browser.goto(&page("/search")).await;
    assert_labelled(&browser).await;
    for (query, expected) in [
        ("怎么申请退款", "退货政策.md"),
        ("how long does international delivery take", "shipping.md"),
        ("zebra", "hostile"),
        ("退款", "退货政策.md"),
    ] {
        // The page draws itself after it loads: clear the results once they are there.
        browser
            .until(
                "the search page",
                "const r = document.querySelector('#search-results'); return r !== null && (r.replaceChildren(), true)",
                json!([]),
            )
            .await;
        browser.fill("#search-query", query).await;
        browser.click("#search-form button[type=submit]").await;
        let first = browser
            .until(
                "search results",
                "const r = document.querySelector('#search-results .result .meta');
                 return r && document.querySelector('#search-summary') && r.textContent",
                json!([]),
            )
            .await;
        assert!(first.as_str().unwrap_or_default().contains(expected), "{query}: first result {first}");
        let marks = browser
            .js("return [...document.querySelectorAll('#search-results mark')].map(m => m.textContent)", json!([]))
            .await;
        assert!(marks.as_array().is_some_and(|m| !m.is_empty()), "{query}: no highlight");
        assert_no_script_ran(&browser).await;
    }
    browser.screenshot("08-search").await;

    // Settings: the provider key goes in and comes back masked.
    browser.goto(&page("/settings")).await;
    browser.find("#settings-form").await;
    assert_labelled(&browser).await;
    browser.fill("#secret-openai_api_key", "sk-console-test-123456").await;
    browser.fill("#url-openai", &format!("{provider}/ok")).await;
    browser.click("#settings-save").await;
    browser
        .until(
            "the masked key",
            "const k = document.getElementById('secret-openai_api_key');
             return k && k.value === '' && k.placeholder.includes('3456') && !k.placeholder.includes('console-test')",
            json!([]),
        )
        .await;
    browser.screenshot("09-settings").await;

    // An agent on the local provider; a streamed answer with a citation that opens its chunk.
    browser.goto(&page("/agents/new")).await;
    browser.fill("#agent-name", "退款助手").await;
    browser.js("const s = document.getElementById('agent-provider'); s.value = 'openai'; s.dispatchEvent(new Event('change'))", json!([])).await;
    browser.fill("#agent-model", "local-model").await;
    browser.click("#agent-form input[data-pick=kb]").await;
    browser.click("#agent-save").await;
    browser.find("#chat-form").await;
    assert_labelled(&browser).await;
    browser.fill("#chat-input", "怎么退款？").await;
    browser.click("#chat-send").await;
    let answer = browser
        .until(
            "a cited answer",
            "const m = document.querySelector('.msg.assistant:not(.streaming) ol.citations a');
             return m && document.querySelector('.msg.assistant').innerText",
            json!([]),
        )
        .await;
    assert!(answer.as_str().unwrap_or_default().contains("三十天内可以申请全额退款"), "{answer}");
    browser.screenshot("10-agent-chat").await;
    browser.click(".msg.assistant a.cite").await;
    browser.until("the cited chunk", "return document.querySelector('.chunk-card.target')", json!([])).await;
    let cited = browser.js("return document.querySelector('.chunk-card.target').innerText", json!([])).await;
    assert!(cited.as_str().unwrap_or_default().contains("三十天"), "{cited}");
    browser.screenshot("11-cited-chunk").await;
    // The cited document's original file downloads with the console's session.
    let href = browser.js("return document.querySelector('#doc-file').getAttribute('href')", json!([])).await;
    let fetched = browser
        .js(
            "return fetch(arguments[0]).then(async (r) => [r.status, r.headers.get('content-disposition'), await r.text()])",
            json!([href]),
        )
        .await;
    assert_eq!(fetched[0], 200, "{fetched}");
    assert!(fetched[1].as_str().unwrap_or_default().starts_with("attachment"), "{fetched}");
    assert!(fetched[2].as_str().unwrap_or_default().contains("三十天内可以申请全额退款"), "{fetched}");
    // Chunks curated by hand: edited in place, disabled, enabled again, and one added.
    browser.click(".chunk-card.target .chunk-edit-button").await;
    browser.find(".chunk-card.target textarea.chunk-text").await;
    browser
        .js(
            "const t = document.querySelector('.chunk-card.target textarea.chunk-text'); t.value = arguments[0];",
            json!(["退款政策：购买后四十五天内可以申请全额退款。"]),
        )
        .await;
    browser.click(".chunk-card.target .chunk-save").await;
    browser.wait_text("the edited chunk", "四十五天内").await;
    browser
        .until("the edited mark", "return document.querySelector('.chunk-card.target .chunk-edited')", json!([]))
        .await;
    browser.click(".chunk-card.target .chunk-toggle").await;
    browser
        .until(
            "the disabled chunk",
            "return document.querySelector('.chunk-card.target.disabled .chunk-state')",
            json!([]),
        )
        .await;
    assert_labelled(&browser).await;
    browser.screenshot("12-chunk-disabled").await;
    browser.click(".chunk-card.target .chunk-toggle").await;
    browser.until("the enabled chunk", "return !document.querySelector('.chunk-card.target.disabled') && document.querySelector('.chunk-card.target')", json!([])).await;
    let before = browser.js("return document.querySelectorAll('.chunk-card').length", json!([])).await;
    browser.fill("#chunk-new", "发票可在订单页面下载。Invoices are on the order page.").await;
    browser.click("#chunk-add-form button[type=submit]").await;
    browser.wait_text("the added chunk", "Invoices are on the order page.").await;
    let after = browser.js("return document.querySelectorAll('.chunk-card').length", json!([])).await;
    assert_eq!(after.as_i64(), before.as_i64().map(|n| n + 1));

    // Q&A: a first entry written by hand makes a list, a table is imported into the knowledge
    // base, an entry is edited and found by its new question, and one is disabled.
    browser.goto(&page(&format!("/kbs/{kb_id}?tab=qa"))).await;
    browser.find("#qa-empty").await;
    assert_labelled(&browser).await;
    browser.fill("#qa-new-question", "可以开发票吗？").await;
    browser.fill("#qa-new-answer", "可以，在订单页申请电子发票。").await;
    browser.click("#qa-add button[type=submit]").await;
    browser.wait_text("the first entry", "在订单页申请电子发票").await;
    let table = write(
        "常见问题.csv",
        "问题,答案\n会员积分会过期吗？,每年年底清零一次。\nDo you ship abroad?,\"Yes, to 30 countries.\"\n",
    );
    let input = browser.find("#qa-file").await;
    browser.post(&format!("/element/{input}/value"), json!({"text": table})).await;
    browser.click("#qa-import button[type=submit]").await;
    browser.wait_text("the imported entries", "Yes, to 30 countries.").await;
    let count = browser.js("return document.querySelectorAll('#qa-table tbody tr').length", json!([])).await;
    assert_eq!(count, 3, "one entry by hand, two imported");
    browser.fill("#qa-filter", "ship").await;
    let shown = browser
        .js("return [...document.querySelectorAll('#qa-table tbody tr')].filter(r => !r.hidden).length", json!([]))
        .await;
    assert_eq!(shown, 1);
    browser.fill("#qa-filter", "").await;
    // Newest list first: the imported table's first row is the points question.
    let row = "#qa-table tr:nth-child(1)";
    browser.click(&format!("{row} .qa-edit-button")).await;
    browser.fill(&format!("{row} textarea.qa-question"), "会员积分什么时候清零？").await;
    browser.click(&format!("{row} .qa-save")).await;
    browser.wait_text("the edited question", "会员积分什么时候清零？").await;
    browser.screenshot("13-qa-entries").await;
    let (_, search) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb_id}/search"),
            json!({"query": "什么时候清零", "mode": "fulltext"}),
        )
        .await;
    assert_eq!(search["results"][0]["metadata"]["qa"]["question"], "会员积分什么时候清零？", "{search}");
    assert_eq!(search["results"][0]["metadata"]["qa"]["answer"], "每年年底清零一次。", "{search}");
    browser.click("#qa-table tr:nth-child(3) .qa-toggle").await;
    browser
        .until("the disabled entry", "return document.querySelector('#qa-table tr.disabled .qa-state')", json!([]))
        .await;

    // Evaluations: golden questions against two configurations, compared in a table and a chart.
    browser.goto(&page(&format!("/kbs/{kb_id}?tab=evaluations"))).await;
    browser.find("#eval-empty").await;
    assert_labelled(&browser).await;
    browser
        .js(
            "document.getElementById('eval-questions').value = arguments[0]; return true",
            json!(["退款多久退回原支付账户？ | 五个工作日\nHow long does international delivery take? | ten days"]),
        )
        .await;
    browser.click("#eval-mode-vector").await;
    browser.click("#eval-form button[type=submit]").await;
    browser.until("the evaluation's chart", "return document.querySelector('#eval-chart rect.bar')", json!([])).await;
    let rows =
        browser.js("return document.querySelectorAll('#eval-table tr[data-status=completed]').length", json!([])).await;
    assert_eq!(rows, 2, "hybrid and full text, side by side");
    browser.screenshot("13-evaluations").await;

    // Administration (the first account administers the installation): the server's readiness
    // and limits, users deactivated and reactivated, an invitation, a file type's extensions.
    app.register("second-user").await;
    browser.goto(&page("/admin")).await;
    browser.find("#admin-server").await;
    assert_labelled(&browser).await;
    let server = browser.js("return document.querySelector('#admin-server').innerText", json!([])).await;
    let server = server.as_str().unwrap_or_default().to_string();
    assert!(
        server.contains("ready") && server.contains("max_upload_bytes") && server.contains("max_chunks_per_document"),
        "{server}"
    );
    browser.click("tr[data-user=second-user] .user-toggle").await;
    browser
        .until(
            "the user deactivated",
            "return document.querySelector('tr[data-user=second-user] .badge.paused')",
            json!([]),
        )
        .await;
    let (status, v) =
        app.post("", "/v1/auth/login", json!({"username": "second-user", "password": "correct horse battery"})).await;
    assert_eq!(
        (status.as_u16(), v["error"]["code"].as_str()),
        (401, Some("user_inactive")),
        "a deactivated account cannot sign in"
    );
    browser.click("tr[data-user=second-user] .user-toggle").await;
    browser
        .until(
            "the user reactivated",
            "return document.querySelector('tr[data-user=second-user] .badge.active')",
            json!([]),
        )
        .await;
    browser.fill("#invite-email", "colleague@example.com").await;
    browser.click("#invite-form button[type=submit]").await;
    let token = browser
        .until(
            "the invitation token",
            "const p = document.querySelector('#invite-token'); return p && p.textContent",
            json!([]),
        )
        .await;
    assert!(token.as_str().unwrap_or_default().contains("inv_"), "{token}");
    browser
        .js(
            "const i = document.querySelector('tr[data-type=markdown] .type-extensions'); i.value = i.value + ', mdx';",
            json!([]),
        )
        .await;
    browser.click("tr[data-type=markdown] .type-save").await;
    browser
        .until("the saved extensions", "const i = document.querySelector('tr[data-type=markdown] .type-extensions'); return i && i.value.includes('mdx')", json!([]))
        .await;
    browser.screenshot("12-administration").await;
    browser.goto(&page("/agents")).await;
    browser.wait_text("the agent list", "退款助手").await;

    // An API key: shown once, works, is revoked.
    browser.goto(&page("/keys")).await;
    browser.find("#key-form").await;
    assert_labelled(&browser).await;
    browser.fill("#key-name", "ci key").await;
    browser.click("#key-form button[type=submit]").await;
    let key = browser
        .until("the new key", "const k = document.getElementById('new-key'); return k && k.value", json!([]))
        .await;
    let key = key.as_str().expect("key").to_string();
    assert!(key.starts_with("lore_"), "{key}");
    browser.screenshot("12-api-key-created").await;
    let search = |key: String| {
        let app = &app;
        async move {
            let resp =
                app.http.post(app.url("/v1/search")).bearer_auth(key).json(&json!({"query": "退款"})).send().await;
            body(resp.expect("send")).await
        }
    };
    assert_eq!(search(key.clone()).await.0, StatusCode::OK);
    browser.click("tr[data-state=active] button.danger").await;
    browser.accept_dialog().await;
    browser.until("the revoked key", "return document.querySelector('tr[data-state=revoked]')", json!([])).await;
    let (status, v) = search(key).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "api_key_revoked"));
    browser.screenshot("13-api-keys").await;

    // The audit log: the key just created and revoked, filtered by action; administrators may
    // read everyone's, including the other account's registration.
    browser.goto(&page("/audit")).await;
    browser
        .until(
            "the revoked key's entry",
            "return document.querySelector('tr[data-action=\"api_key.revoked\"]')",
            json!([]),
        )
        .await;
    assert_labelled(&browser).await;
    browser.js("const s = document.getElementById('audit-action'); s.value = 'api_key.'; return true", json!([])).await;
    browser.click("#audit-filters button[type=submit]").await;
    browser
        .until(
            "only key entries",
            "const rows = [...document.querySelectorAll('#audit-table tbody tr')];
             return rows.length >= 2 && rows.every(r => (r.dataset.action || '').startsWith('api_key.'))",
            json!([]),
        )
        .await;
    browser.screenshot("13-audit-log").await;
    browser.goto(&page("/audit?all=1&action=auth.registered")).await;
    browser
        .until(
            "everyone's registrations",
            "return document.querySelectorAll('#audit-table tbody tr[data-action=\"auth.registered\"]').length >= 2",
            json!([]),
        )
        .await;

    // Usage charts, data sources, notifications.
    browser.goto(&page("/usage")).await;
    browser.until("the API usage chart", "return document.querySelector('#chart-api rect.bar')", json!([])).await;
    browser.until("the agent token chart", "return document.querySelector('#chart-tokens rect.bar')", json!([])).await;
    browser.screenshot("14-usage").await;
    browser.goto(&page("/sources")).await;
    browser.fill("#source-name", "共享文件夹 Shared").await;
    browser.fill("#source-path", &shared.display().to_string()).await;
    browser.click("#source-form button[type=submit]").await;
    browser.click("section[data-source] button[data-action=sync]").await;
    let added = browser
        .until(
            "a completed sync",
            "const r = document.querySelector('section[data-source] tr[data-status=completed]');
             return r && r.children[2].textContent",
            json!([]),
        )
        .await;
    assert_eq!(added, "1", "the folder's one file is added");
    browser.screenshot("15-data-sources").await;
    browser.goto(&page("/notifications")).await;
    browser.wait_text("the sync's notification", "sync_completed").await;
    browser.screenshot("16-notifications").await;

    // Chinese: the whole console switches, and stays switched.
    browser.goto(&page("/kbs")).await;
    browser.click("#lang-switch").await;
    browser
        .until("the Chinese console", "return document.getElementById('nav-kbs').textContent === '知识库'", json!([]))
        .await;
    assert_eq!(browser.js("return document.documentElement.lang", json!([])).await, "zh-CN");
    browser.wait_text("the Chinese table", "文档").await;
    browser.screenshot("17-knowledge-bases-zh").await;
    browser.goto(&page("/search")).await;
    browser.find("#search-form").await;
    browser.wait_text("Chinese labels", "查询").await;
    browser.screenshot("18-search-zh").await;
    browser.goto(&page(&format!("/kbs/{kb_id}"))).await;
    browser.wait_text("Chinese labels", "把文件拖到这里").await;
    browser.screenshot("19-knowledge-base-zh").await;

    // A phone's width: nothing overflows sideways.
    browser.post("/window/rect", json!({"width": 390, "height": 844})).await;
    browser.goto(&page("/kbs")).await;
    browser.find("#kb-table").await;
    let fits = browser.js("return document.documentElement.scrollWidth <= window.innerWidth + 1", json!([])).await;
    assert_eq!(fits, true, "the console fits a phone's width");
    browser.screenshot("20-phone-knowledge-bases").await;
    browser.goto(&page("/agents")).await;
    browser.wait_text("the agent list", "退款助手").await;
    browser.screenshot("21-phone-agents").await;

    // Signing out ends the session on the server too.
    browser.click("#sign-out").await;
    browser.find("#signin-form").await;
    browser.goto(&page("/kbs")).await;
    browser.find("#signin-form").await;
    browser.quit().await;

    // A browser that prefers Chinese gets the console in Chinese from the start.
    let Some(chinese) = Browser::start("zh-CN").await else { return };
    chinese.goto(&app.url("/")).await;
    chinese.find("#signin-form").await;
    chinese.wait_text("the Chinese sign-in", "用户名或邮箱").await;
    assert_eq!(chinese.js("return document.documentElement.lang", json!([])).await, "zh-CN");
    chinese.screenshot("22-sign-in-zh").await;
    chinese.quit().await;
    app.shutdown().await;
}

/// Every form control on the page has a label a screen reader announces.
async fn assert_labelled(browser: &Browser) {
    let unlabelled = browser
        .js(
            "return [...document.querySelectorAll('main input, main select, main textarea')]
               .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
               .map(e => e.outerHTML.slice(0, 120))",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]), "form controls without a label");
}

async fn assert_no_script_ran(browser: &Browser) {
    let clean = browser
        .js(
            "return window.__pwned === undefined && document.querySelectorAll('main script, main img, main [onerror]').length === 0",
            json!([]),
        )
        .await;
    assert_eq!(clean, true, "document content must never run or become markup");
}

/// The knowledge base the browser last looked at, from the console's own links.
async fn app_kb_id(browser: &Browser) -> String {
    let href = browser
        .until(
            "a knowledge base link",
            "const a = document.querySelector('a[href^=\"#/kbs/\"]'); return a && a.getAttribute('href')",
            json!([]),
        )
        .await;
    let id = href.as_str().expect("href").trim_start_matches("#/kbs/");
    id.split('?').next().unwrap_or(id).to_string()
}

/// The console's cookie session: HttpOnly and SameSite=Strict, accepted by the API, and refused
/// for anything that changes data unless the session's CSRF token comes along. No browser needed.
#[tokio::test]
async fn the_console_session_is_an_httponly_cookie_guarded_against_csrf() {
    let app = spawn_app().await;
    // The page and its assets forbid inline script and foreign origins.
    let resp = app.http.get(app.url("/")).send().await.expect("index");
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let html = resp.text().await.expect("html");
    assert!(html.contains("/console/app.js") && !html.contains("<script>"), "no inline script");
    let js = app.http.get(app.url("/console/app.js")).send().await.expect("js");
    assert!(js.headers()["content-type"].to_str().expect("type").starts_with("text/javascript"));
    assert!(!js.text().await.expect("js").contains("innerHTML"), "the console never parses text as HTML");

    // Sign up through the console: a cookie, no token in the body.
    let resp = app
        .http
        .post(app.url("/console/register"))
        .json(&json!({"username": "cookie", "email": "cookie@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let set_cookie = resp.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict") && set_cookie.contains("Path=/"));
    let session: Value = resp.json().await.expect("json");
    assert!(session.get("token").is_none(), "the token stays in the cookie: {session}");
    let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
    let cookie = set_cookie.split(';').next().expect("pair").to_string();

    // Reads need only the cookie; writes need the CSRF token too.
    let with_cookie =
        |method: reqwest::Method, path: &str| app.http.request(method, app.url(path)).header("cookie", &cookie);
    let (status, me) = body(with_cookie(reqwest::Method::GET, "/v1/me").send().await.expect("me")).await;
    assert_eq!((status, me["username"].as_str()), (StatusCode::OK, Some("cookie")));
    let wrong = "0".repeat(32);
    for (sent, expected) in
        [(None, StatusCode::FORBIDDEN), (Some(&wrong), StatusCode::FORBIDDEN), (Some(&csrf), StatusCode::CREATED)]
    {
        let mut request = with_cookie(reqwest::Method::POST, "/v1/knowledge-bases").json(&json!({"name": "知识库"}));
        if let Some(token) = sent {
            request = request.header("x-csrf-token", token);
        }
        let (status, v) = body(request.send().await.expect("post")).await;
        assert_eq!(status, expected, "CSRF token {sent:?}: {v}");
        if status == StatusCode::FORBIDDEN {
            assert_eq!(code(&v), "csrf_failed");
        }
    }
    // A page reload finds the session (and the same CSRF token) from the cookie alone.
    let (status, again) =
        body(with_cookie(reqwest::Method::GET, "/console/session").send().await.expect("session")).await;
    assert_eq!((status, again["csrf_token"].as_str()), (StatusCode::OK, Some(csrf.as_str())));
    // An API key in the cookie is not a session.
    let token = app.register("keyholder").await;
    let (_, created) = app.post(&token, "/v1/api-keys", json!({"name": "k", "scopes": ["read"]})).await;
    let key = created["key"].as_str().expect("key");
    let resp =
        app.http.get(app.url("/v1/me")).header("cookie", format!("lore_session={key}")).send().await.expect("me");
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_token"));

    // Signing out needs the CSRF token, ends the session and clears the cookie.
    let resp = with_cookie(reqwest::Method::DELETE, "/console/session").send().await.expect("logout");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = with_cookie(reqwest::Method::DELETE, "/console/session")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers()["set-cookie"].to_str().expect("cookie").contains("Max-Age=0"));
    let (status, _) = body(with_cookie(reqwest::Method::GET, "/v1/me").send().await.expect("me")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

/// A passage read from a scan is shown where it stands: its box drawn over the image, and over
/// the PDF page the server renders, at the size the page is shown.
#[tokio::test]
async fn a_cited_region_is_drawn_over_its_image_and_its_pdf_page() {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("skipped on the PostgreSQL pass");
        return;
    }
    if !lore_ingest::scans::ocr_ready() {
        return;
    }
    let Some(browser) = Browser::start("zh-CN").await else { return };
    let app = spawn_app().await;
    let font = lore_ingest::scans::font().expect("font");
    let files = tempfile::tempdir().expect("files");
    let lines = ["Pressure readings are taken every morning.", "每天早上记录一次压力读数。"];
    let page = lore_ingest::scans::render(&font, &lines, 14.0, 200);
    let (png, pdf) = (files.path().join("读数.png"), files.path().join("scan.pdf"));
    std::fs::write(&png, page.png()).expect("png");
    std::fs::write(&pdf, lore_ingest::scans::image_pdf(&[page])).expect("pdf");

    browser.goto(&app.url("/")).await;
    browser.find("#signin-form").await;
    browser.click("#to-signup").await;
    browser.fill("#signup-form input[name=username]", "scanner").await;
    browser.fill("#signup-form input[name=email]", "scanner@example.com").await;
    browser.fill("#signup-form input[name=password]", "correct horse battery").await;
    browser.click("#signup-form button[type=submit]").await;
    browser.find("#kb-create").await;
    browser.fill("#kb-create input[name=name]", "扫描件 Scans").await;
    browser.click("#kb-create button[type=submit]").await;
    let input = browser.find("#file-input").await;
    browser
        .post(&format!("/element/{input}/value"), json!({"text": format!("{}\n{}", png.display(), pdf.display())}))
        .await;
    browser
        .until(
            "two scans read",
            "const rows = [...document.querySelectorAll('#uploads li')];
             return rows.length === 2 && rows.every(r => r.dataset.state === 'completed')",
            json!([]),
        )
        .await;
    let kb = app_kb_id(&browser).await;
    // Each document's first chunk, as a citation would name it.
    let cited = browser
        .post(
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1];
             (async () => {
               const docs = (await (await fetch(`/v1/knowledge-bases/${arguments[0]}/documents`)).json()).data;
               const out = [];
               for (const d of docs) {
                 const chunks = (await (await fetch(`/v1/documents/${d.id}/chunks`)).json()).data;
                 out.push([d.id, d.file_type, chunks[0].id]);
               }
               return out;
             })().then(done);", "args": [kb]}),
        )
        .await;
    let cited = cited.as_array().expect("documents").clone();
    assert_eq!(cited.len(), 2, "{cited:?}");
    for doc in &cited {
        let (id, kind, chunk) =
            (doc[0].as_str().expect("id"), doc[1].as_str().expect("type"), doc[2].as_str().expect("chunk"));
        browser.goto(&app.url(&format!("/#/docs/{id}?chunk={chunk}"))).await;
        let drawn = browser
            .until(
                "the cited region drawn over its page",
                "const img = document.querySelector('#cited-region img');
                 const box = document.querySelector('#cited-region .region');
                 return img && img.complete && img.naturalWidth > 0 && box && [box.offsetWidth, box.offsetHeight, img.clientWidth]",
                json!([]),
            )
            .await;
        let (w, h, shown) =
            (drawn[0].as_f64().unwrap_or(0.0), drawn[1].as_f64().unwrap_or(0.0), drawn[2].as_f64().unwrap_or(0.0));
        assert!(w > 10.0 && h > 2.0 && w < shown, "{kind}: a box within the page as shown: {drawn}");
        browser.screenshot(&format!("20-cited-region-{kind}")).await;
    }
    browser.quit().await;
    app.shutdown().await;
}

/// A team in the console: a viewer switches to the team, searches its knowledge but cannot
/// upload, and loses it when removed; the owner adds, re-roles and removes a member from the team
/// page.
#[tokio::test]
async fn a_team_works_together_in_the_console() {
    if std::env::var("LORE_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("skipped on the PostgreSQL pass");
        return;
    }
    let Some(browser) = Browser::start("en-US").await else { return };
    let app = spawn_app().await;
    let owner = app.register("team-owner").await;
    app.register("team-viewer").await;
    app.register("team-third").await;
    let (_, team) = app.post(&owner, "/v1/workspaces", json!({"name": "客服团队 Support"})).await;
    let ws = team["id"].as_str().expect("team").to_string();
    let (status, _) = app
        .post(&owner, &format!("/v1/workspaces/{ws}/members"), json!({"username": "team-viewer", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let in_team = |request: reqwest::RequestBuilder| request.bearer_auth(&owner).header("X-Lore-Workspace", &ws);
    let (_, kb) = body(
        in_team(app.http.post(app.url("/v1/knowledge-bases")))
            .json(&json!({"name": "团队知识库"}))
            .send()
            .await
            .expect("kb"),
    )
    .await;
    let kb = kb["id"].as_str().expect("kb id").to_string();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(ZH_DOC.as_bytes().to_vec()).file_name("退货政策.md"));
    let (status, doc) = body(
        in_team(app.http.post(app.url(&format!("/v1/knowledge-bases/{kb}/documents"))))
            .multipart(form)
            .send()
            .await
            .expect("up"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let doc = doc["id"].as_str().expect("doc").to_string();
    for _ in 0..600 {
        let (_, d) =
            body(in_team(app.http.get(app.url(&format!("/v1/documents/{doc}")))).send().await.expect("doc")).await;
        if d["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The viewer signs in, switches to the team and searches it.
    let sign_in = |name: &'static str| {
        let browser = &browser;
        let app = &app;
        async move {
            browser.goto(&app.url("/#/signin")).await;
            browser.fill("#signin-form input[name=username]", name).await;
            browser.fill("#signin-form input[name=password]", "correct horse battery").await;
            browser.click("#signin-form button[type=submit]").await;
            browser.find("#workspace-switch").await;
        }
    };
    sign_in("team-viewer").await;
    let switch = "const s = document.querySelector('#workspace-switch'); s.value = arguments[0];
                  s.dispatchEvent(new Event('change')); return true";
    browser.js(switch, json!([ws])).await;
    browser.wait_text("the team's knowledge base", "团队知识库").await;
    browser.screenshot("30-team-viewer-knowledge-bases").await;
    browser.goto(&app.url("/#/search")).await;
    browser.fill("#search-query", "退款多久到账").await;
    browser.click("#search-form button[type=submit]").await;
    browser.wait_text("the team's answer", "五个工作日").await;
    // A viewer's upload is refused, and says why.
    browser.goto(&app.url(&format!("/#/kbs/{kb}"))).await;
    let file = tempfile::NamedTempFile::with_suffix(".txt").expect("file");
    std::fs::write(file.path(), "a viewer's upload").expect("write");
    let input = browser.find("#file-input").await;
    browser.post(&format!("/element/{input}/value"), json!({"text": file.path().display().to_string()})).await;
    let refused = browser
        .until(
            "the refused upload",
            "const r = document.querySelector('#uploads li[data-state=failed]'); return r && r.textContent",
            json!([]),
        )
        .await;
    assert!(refused.as_str().unwrap_or("").contains("viewer"), "{refused}");
    browser.goto(&app.url("/#/team")).await;
    browser.find("#team-members tr[data-member=team-owner]").await;
    assert_eq!(
        browser.js("return document.querySelector('#member-add') === null", json!([])).await,
        true,
        "a viewer adds nobody"
    );
    browser.screenshot("31-team-viewer-members").await;

    // Removed, the viewer's next page no longer reaches the team.
    let (_, me) = app.get(&owner, "/v1/workspaces").await;
    assert_eq!(me["data"].as_array().map(Vec::len), Some(2));
    let viewer_id = {
        let (_, members) = app.get(&owner, &format!("/v1/workspaces/{ws}/members")).await;
        members["data"].as_array().expect("members").iter().find(|m| m["username"] == "team-viewer").expect("viewer")["user_id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let (status, _) = app.delete(&owner, &format!("/v1/workspaces/{ws}/members/{viewer_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Without a reload: the next request finds the team gone, and the console goes home.
    browser.goto(&app.url("/#/search")).await;
    browser
        .until(
            "only the personal workspace",
            "return document.querySelectorAll('#workspace-switch option').length === 1",
            json!([]),
        )
        .await;
    assert!(!browser.page_text().await.contains("团队知识库"));
    browser.click("#sign-out").await;
    browser.find("#signin-form").await;

    // The owner manages members from the team page.
    sign_in("team-owner").await;
    browser.js(switch, json!([ws])).await;
    browser.goto(&app.url("/#/team")).await;
    browser.fill("#member-username", "team-third").await;
    browser.click("#member-add button[type=submit]").await;
    browser.find("#team-members tr[data-member=team-third]").await;
    browser.js("const s = document.querySelector('#role-team-third'); s.value = 'editor'; s.dispatchEvent(new Event('change')); return true", json!([])).await;
    browser.wait_text("the role saved", "Role of team-third changed").await;
    let (_, members) = app.get(&owner, &format!("/v1/workspaces/{ws}/members")).await;
    let third = members["data"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["username"] == "team-third")
        .cloned()
        .expect("third");
    assert_eq!(third["role"], "editor");
    browser.screenshot("32-team-owner-members").await;
    browser.click("#remove-team-third").await;
    browser
        .until(
            "the member removed",
            "return document.querySelector('#team-members tr[data-member=team-third]') === null",
            json!([]),
        )
        .await;
    let (_, members) = app.get(&owner, &format!("/v1/workspaces/{ws}/members")).await;
    assert_eq!(members["data"].as_array().map(Vec::len), Some(1));

    // The owner shares the team's knowledge base into their own workspace, read-only there.
    let owner_id = {
        let (_, me) = app.get(&owner, "/v1/me").await;
        me["id"].as_str().expect("id").to_string()
    };
    browser.goto(&app.url(&format!("/#/kbs/{kb}?tab=settings"))).await;
    browser.find("#kb-sharing #share-form").await;
    browser.js("document.querySelector('#share-target').value = arguments[0]; return true", json!([owner_id])).await;
    browser.click("#share-form button[type=submit]").await;
    browser.find(&format!("#share-list li[data-workspace='{owner_id}']")).await;
    browser.screenshot("33-team-kb-sharing").await;
    browser.js(switch, json!([owner_id])).await;
    browser.wait_text("the shared knowledge base in the personal workspace", "shared with you").await;
    browser.click(&format!("a[href='#/kbs/{kb}']")).await;
    browser.find("#kb-shared-note").await;
    browser.find("#shared-docs a[href^='#/docs/']").await;
    browser.goto(&app.url(&format!("/#/search?kb={kb}"))).await;
    browser.fill("#search-query", "会员配送").await;
    browser.click("#search-form button[type=submit]").await;
    browser.wait_text("the shared answer", "免费配送").await;
    browser.screenshot("34-shared-kb-search").await;

    // An invitation link for team-third, opened before signing in, joins them after.
    browser.js(switch, json!([ws])).await;
    browser.goto(&app.url("/#/team")).await;
    browser.fill("#invite-who", "team-third").await;
    browser.click("#invite-form button[type=submit]").await;
    let link = browser
        .until(
            "the invitation link",
            "const c = document.querySelector('#invite-link'); return c && c.textContent",
            json!([]),
        )
        .await;
    let link = link.as_str().expect("link").to_string();
    assert!(link.contains("#/join?token=wsi_"), "{link}");
    browser.screenshot("35-team-invitation").await;
    browser.click("#sign-out").await;
    browser.find("#signin-form").await;
    // The link redraws the sign-in page: wait for the new form, not the one already there.
    browser.js("document.querySelector('#signin-form').dataset.stale = '1'; return true", json!([])).await;
    browser.goto(&link).await;
    browser
        .until(
            "the sign-in page the link leads to",
            "const f = document.querySelector('#signin-form'); return f && !f.dataset.stale && sessionStorage.getItem('lore_join')",
            json!([]),
        )
        .await;
    browser.fill("#signin-form input[name=username]", "team-third").await;
    browser.fill("#signin-form input[name=password]", "correct horse battery").await;
    browser.click("#signin-form button[type=submit]").await;
    browser.click("#join-button").await;
    browser
        .until(
            "the team in the switcher",
            "const s = document.querySelector('#workspace-switch'); return s && s.value === arguments[0]",
            json!([ws]),
        )
        .await;
    browser.wait_text("the team's knowledge base", "团队知识库").await;
    let (_, members) = app.get(&owner, &format!("/v1/workspaces/{ws}/members")).await;
    let third = members["data"].as_array().expect("members").iter().find(|m| m["username"] == "team-third").cloned();
    assert_eq!(third.map(|m| m["role"].clone()), Some(json!("viewer")));
    browser.quit().await;
    app.shutdown().await;
}
