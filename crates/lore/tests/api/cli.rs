//! The `lore` binary as a client of a running server.

use std::process::Command;

use serde_json::Value;

use super::{ZH_DOC, spawn_app};

fn lore(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    // A command on a data directory also gets the database its test server used.
    let data_dir = args.iter().position(|a| *a == "--data-dir").and_then(|i| args.get(i + 1));
    let out = Command::new(env!("CARGO_BIN_EXE_lore"))
        .args(args)
        .env("LORE_SERVER", base)
        .env("LORE_API_KEY", token)
        .envs(data_dir.and_then(|d| super::database_env(std::path::Path::new(d))))
        .output()
        .expect("run lore");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn import_resumes_reports_failures_and_search_prints_hits() {
    let app = spawn_app().await;
    let token = app.register("cli").await;
    let kb = app.create_kb(&token, "imported").await;
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs/node_modules")).expect("mkdir");
    std::fs::write(root.join("docs/中文.md"), ZH_DOC).expect("write");
    std::fs::write(root.join("docs/notes.txt"), "Reciprocal rank fusion merges ranked lists.").expect("write");
    std::fs::write(root.join("docs/broken.pdf"), "not a pdf").expect("write");
    std::fs::write(root.join("docs/node_modules/dep.md"), "# ignored").expect("write");
    std::fs::write(root.join("docs/.hidden.md"), "# hidden").expect("write");
    let docs = root.join("docs");
    let docs = docs.to_str().expect("path");

    let (base, token2) = (app.base.clone(), token.clone());
    let args = ["import", docs, "--kb", kb.as_str(), "--ignore", "**/node_modules/**"];
    let (code, out, err) = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || lore(&base, &token2, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("join");
    assert_eq!(code, 1, "a failed file is a partial failure\n{out}\n{err}");
    assert!(out.contains("3 files: 3 uploaded (2 processed), 0 already there, 1 failed"), "{out}");
    assert!(out.contains("broken.pdf"), "{out}");

    // Re-running skips what is already there.
    let (base, token2) = (app.base.clone(), token.clone());
    let (code, out, _) = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || lore(&base, &token2, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("join");
    assert!(out.contains("0 uploaded") && out.contains("3 already there"), "{out}");
    assert_eq!(code, 1, "the broken file is still reported");

    let (base, token2, kb2) = (app.base.clone(), token.clone(), kb.clone());
    let (code, out, err) =
        tokio::task::spawn_blocking(move || lore(&base, &token2, &["search", "中文分词", "--kb", &kb2, "--json"]))
            .await
            .expect("join");
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["results"][0]["filename"], "中文.md");

    let (base, token2, kb2) = (app.base.clone(), token.clone(), kb.clone());
    let (code, out, _) =
        tokio::task::spawn_blocking(move || lore(&base, &token2, &["search", "rank fusion", "--kb", &kb2]))
            .await
            .expect("join");
    assert_eq!(code, 0);
    assert!(out.contains("notes.txt"), "{out}");

    let (base, token2) = (app.base.clone(), token.clone());
    let (code, _, err) =
        tokio::task::spawn_blocking(move || lore(&base, &token2, &["search", "x"])).await.expect("join");
    assert_eq!(code, 2, "usage errors exit 2: {err}");
    let (base, token2) = (app.base.clone(), token.clone());
    let (code, out, _) =
        tokio::task::spawn_blocking(move || lore(&base, &token2, &["completions", "bash"])).await.expect("join");
    assert_eq!(code, 0);
    assert!(out.contains("_lore"), "bash completions");
    app.shutdown().await;
}

#[tokio::test]
async fn knowledge_bases_documents_and_keys_from_the_command_line() {
    let app = spawn_app().await;
    let token = app.register("operator").await;
    let run = |args: Vec<&'static str>, extra: Vec<String>| {
        let (base, token) = (app.base.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            all.extend(extra);
            lore(&base, &token, &all.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let (code, out, err) = run(vec!["kb", "create", "命令行知识库"], vec![]).await.expect("join");
    assert_eq!(code, 0, "{err}");
    let kb = out.trim().to_string();
    let (_, out, _) = run(vec!["kb", "list"], vec![]).await.expect("join");
    assert!(out.contains(&kb) && out.contains("命令行知识库"), "{out}");
    let (code, out, _) = run(vec!["key", "create", "--name", "ci", "--scope", "search,read", "--kb"], vec![kb.clone()])
        .await
        .expect("join");
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("lore_"), "{out}");
    let (_, out, _) = run(vec!["key", "list"], vec![]).await.expect("join");
    assert!(out.contains("ci") && out.contains("search"), "{out}");
    let doc = app.ingest(&token, &kb, "d.md", ZH_DOC).await;
    let (_, out, _) = run(vec!["doc", "list", "--kb"], vec![kb.clone()]).await.expect("join");
    assert!(out.contains("d.md") && out.contains("completed"), "{out}");
    let id = doc["id"].as_str().expect("id").to_string();
    let (code, _, _) = run(vec!["doc", "delete"], vec![id.clone()]).await.expect("join");
    assert_eq!(code, 0);
    let (code, _, err) = run(vec!["doc", "delete"], vec![id]).await.expect("join");
    assert_eq!(code, 1, "a second delete is an error: {err}");
    assert!(err.contains("not_found"), "{err}");
    app.shutdown().await;
}

#[tokio::test]
async fn doctor_checks_a_data_directory() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let dir = app.stop().await;
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("path").to_string();
    let (code, out, err) = lore(&base, "", &["doctor", "--data-dir", &data_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("database opens") && !out.contains("FIX"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join("master.key"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (code, out, _) = lore(&base, "", &["doctor", "--data-dir", &data_arg, "--server", &base]);
        assert_eq!(code, 1, "{out}");
        let fix = |what: &str| out.lines().any(|l| l.starts_with("FIX") && l.contains(what));
        assert!(fix("master key") && fix("server at"), "{out}");
    }
}

#[tokio::test]
async fn doctor_checks_that_configured_providers_answer() {
    // A provider that answers (with a 404 at its root: reachable is what counts).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let provider = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, axum::Router::new()).await });
    // An address nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/v1", l.local_addr().expect("addr"))
    };
    let app = super::spawn_app_with(|c| c.embedding_model = None).await;
    let token = app.register("doctor-user").await;
    let (status, v) = app.put(&token, "/v1/config", serde_json::json!({"openai_base_url": provider})).await;
    assert!(status.is_success(), "{v}");
    let (status, v) = app
        .post(
            &token,
            "/v1/agents",
            serde_json::json!({"name": "local", "model_provider": "vllm", "model_name": "m", "model_parameters": {"base_url": closed}}),
        )
        .await;
    assert!(status.is_success(), "{v}");
    let base = app.base.clone();
    let dir = app.stop().await;
    let data_arg = dir.path().join("data").to_str().expect("path").to_string();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || lore(&base, "", &["doctor", "--data-dir", &data_arg])).await.expect("join");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("ok") && l.contains(&provider) && l.contains("answers")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("FIX") && l.contains(&closed) && l.contains("cannot be reached")),
        "{out}"
    );
}
