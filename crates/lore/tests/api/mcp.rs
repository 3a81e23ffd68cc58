//! The Model Context Protocol, over streamable HTTP (`/mcp`) and over stdio (`lore mcp`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{ZH_DOC, body, spawn_app};

#[tokio::test]
async fn agents_search_over_mcp_http() {
    let app = spawn_app().await;
    let token = app.register("agent-host").await;
    let kb = app.create_kb(&token, "知识").await;
    app.ingest(&token, &kb, "zh.md", ZH_DOC).await;
    let (_, created) = app.post(&token, "/v1/api-keys", json!({"name": "mcp", "scopes": ["search", "read"]})).await;
    let key = created["key"].as_str().expect("key").to_string();
    let rpc = |message: Value| {
        let (http, url, key) = (app.http.clone(), app.url("/mcp"), key.clone());
        async move {
            // As a streamable HTTP client sends it: it takes JSON or an event stream back.
            let request = http.post(url).bearer_auth(key).header("accept", "application/json, text/event-stream");
            body(request.json(&message).send().await.expect("send")).await
        }
    };
    // A client that takes no event stream is refused in Lore's JSON error shape, with a code.
    let refused = app.http.post(app.url("/mcp")).bearer_auth(&key).json(&json!({})).send().await.expect("send");
    let (status, v) = body(refused).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(v["error"]["code"], "not_acceptable", "{v}");
    let (status, v) = rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["result"]["serverInfo"]["name"], "lore");
    let (status, _) = rpc(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, v) = rpc(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let names: Vec<&str> =
        v["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        vec!["list_knowledge_bases", "search", "list_documents", "get_document", "list_agents", "ask_agent"]
    );
    let (_, v) = rpc(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"knowledge_base_id": kb, "query": "中文分词"}}})).await;
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(v["result"]["structuredContent"]["results"][0]["filename"], "zh.md");
    assert!(v["result"]["content"][0]["text"].as_str().expect("text").contains("中文分词"));
    // Agents answer over MCP too, with citations.
    let (status, _) = app.post(&token, "/v1/agents", json!({"name": "分词专家", "knowledge_base_ids": [kb]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, v) = rpc(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "list_agents", "arguments": {}}}),
    )
    .await;
    assert_eq!(v["result"]["structuredContent"]["agents"][0]["name"], "分词专家", "{v}");
    let (_, v) = rpc(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "ask_agent", "arguments": {"agent": "分词专家", "question": "中文分词有什么用？"}}})).await;
    assert_eq!(v["result"]["isError"], false, "{v}");
    let answer = &v["result"]["structuredContent"];
    assert!(answer["message"]["content"].as_str().is_some_and(|c| c.contains("[1]")), "{v}");
    assert_eq!(answer["message"]["citations"][0]["filename"], "zh.md");
    // Tool failures are results the model can read; unknown methods are protocol errors.
    let (_, v) = rpc(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_document", "arguments": {"document_id": "00000000-0000-0000-0000-000000000000"}}})).await;
    assert_eq!(v["result"]["isError"], true);
    let (_, v) = rpc(json!({"jsonrpc": "2.0", "id": 5, "method": "nope"})).await;
    assert_eq!(v["error"]["code"], -32601);
    let (_, v) =
        rpc(json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "search", "arguments": {}}}))
            .await;
    assert_eq!(v["error"]["code"], -32602);
    // The endpoint needs credentials like the rest of the API.
    let (status, _) = body(
        app.http
            .post(app.url("/mcp"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

#[tokio::test]
async fn agents_search_over_mcp_stdio() {
    let app = spawn_app().await;
    let token = app.register("stdio-host").await;
    let kb = app.create_kb(&token, "kb").await;
    app.ingest(&token, &kb, "zh.md", ZH_DOC).await;
    let (base, token2, kb2) = (app.base.clone(), token.clone(), kb.clone());
    let answers = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lore"))
            .arg("mcp")
            .env("LORE_SERVER", &base)
            .env("LORE_API_KEY", &token2)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("lore mcp");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut answers = Vec::new();
        for message in [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "host", "version": "1"}}}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_knowledge_bases", "arguments": {}}}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"knowledge_base_id": kb2, "query": "倒排索引", "top_k": 3}}}),
        ] {
            writeln!(stdin, "{message}").expect("write");
            stdin.flush().expect("flush");
            if message.get("id").is_some() {
                let mut line = String::new();
                stdout.read_line(&mut line).expect("read");
                answers.push(serde_json::from_str::<Value>(&line).expect("json answer"));
            }
        }
        drop(stdin);
        let _ = child.wait();
        answers
    })
    .await
    .expect("join");
    assert!(answers[0]["result"]["capabilities"]["tools"].is_object(), "{}", answers[0]);
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "lore");
    assert_eq!(answers[1]["result"]["structuredContent"]["knowledge_bases"][0]["name"], "kb");
    assert_eq!(answers[2]["result"]["structuredContent"]["results"][0]["filename"], "zh.md", "{}", answers[2]);
    app.shutdown().await;
}
