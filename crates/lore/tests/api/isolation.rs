//! The isolation matrix: every operation of the OpenAPI document that addresses one of the
//! owner's objects, called by every kind of wrong caller, answers as the contract says and leaks
//! none of the owner's data (unique canary strings are planted in names, content and messages).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use super::{TestApp, body, spawn_app_with};

const CANARY: &str = "CANARY7f3a";

struct Caller {
    name: &'static str,
    token: Option<String>,
    /// The statuses this caller may get for another owner's object.
    allowed: &'static [u16],
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let url = app.url(path);
    let mut request = match method {
        "get" => app.http.get(&url),
        "delete" => app.http.delete(&url),
        "put" => app.http.put(&url).json(&json!({})),
        "patch" if path.starts_with("/v1/chunks/") => app.http.patch(&url).json(&json!({"enabled": false})),
        "patch" => app.http.patch(&url).json(&json!({"name": "renamed"})),
        _ if path.ends_with("/chunks") => app.http.post(&url).json(&json!({"content": "intruder chunk"})),
        _ if path.ends_with("/documents") => app
            .http
            .post(&url)
            .multipart(Form::new().part("file", Part::bytes(b"intruder text".to_vec()).file_name("intruder.txt"))),
        _ if path.ends_with("/chat") => app.http.post(&url).json(&json!({"message": "hello"})),
        _ if path.ends_with("/search") => app.http.post(&url).json(&json!({"query": "canary"})),
        _ => app.http.post(&url).json(&json!({})),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.expect("send");
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn no_wrong_caller_reaches_or_sees_another_owners_objects() {
    let root = tempfile::tempdir().expect("root");
    std::fs::write(root.path().join("canary.md"), format!("# {CANARY} folder\n\n{CANARY} synced text")).expect("write");
    let root_path = root.path().to_path_buf();
    let app = spawn_app_with(move |c| {
        c.embedding_model = None;
        c.source_roots = vec![root_path];
        c.sync_check_interval = Duration::from_secs(3600);
    })
    .await;

    // The owner's objects, each carrying the canary.
    let owner = app.register("owner-iso").await;
    let (_, kb) = app.post(&owner, "/v1/knowledge-bases", json!({"name": format!("{CANARY} kb")})).await;
    let kb = kb["id"].as_str().expect("kb").to_string();
    let doc = app.ingest(&owner, &kb, "canary.txt", format!("{CANARY} secret document text")).await;
    let doc = doc["id"].as_str().expect("doc").to_string();
    let (_, chunks) = app.get(&owner, &format!("/v1/documents/{doc}/chunks")).await;
    let chunk = chunks["data"][0]["id"].as_str().expect("a chunk").to_string();
    let (_, agent) =
        app.post(&owner, "/v1/agents", json!({"name": format!("{CANARY} agent"), "knowledge_base_ids": [kb]})).await;
    let agent = agent["id"].as_str().expect("agent").to_string();
    let (_, answer) =
        app.post(&owner, &format!("/v1/agents/{agent}/chat"), json!({"message": format!("{CANARY} question")})).await;
    let conversation = answer["conversation_id"].as_str().expect("conversation").to_string();
    let (_, source) = app
        .post(
            &owner,
            "/v1/data-sources",
            json!({"name": format!("{CANARY} source"), "knowledge_base_id": kb,
            "source_type": "local_folder", "config": {"path": root.path()}}),
        )
        .await;
    let source = source["id"].as_str().expect("source").to_string();
    let (_, key) = app
        .post(
            &owner,
            "/v1/api-keys",
            json!({"name": format!("{CANARY} key"), "scopes": ["search", "upload", "read", "delete"]}),
        )
        .await;
    let owner_key_id = key["api_key"]["id"].as_str().expect("key id").to_string();
    let (_, revoked) = app.post(&owner, "/v1/api-keys", json!({"name": "revoked", "scopes": ["read", "search"]})).await;
    app.delete(&owner, &format!("/v1/api-keys/{}", revoked["api_key"]["id"].as_str().expect("id"))).await;
    let expires = (lore_core::now() + Duration::from_secs(1)).to_rfc3339();
    let (_, expired) = app
        .post(&owner, "/v1/api-keys", json!({"name": "expiring", "scopes": ["read", "search"], "expires_at": expires}))
        .await;
    let other_kb_key: String = {
        let (_, second_kb) = app.post(&owner, "/v1/knowledge-bases", json!({"name": "second"})).await;
        let (_, k) = app
            .post(&owner, "/v1/api-keys", json!({"name": "bound", "scopes": ["search", "upload", "read", "delete"], "knowledge_base_id": second_kb["id"]}))
            .await;
        k["key"].as_str().expect("key").to_string()
    };
    // A key for searching only: everything else on a knowledge base or document needs another scope.
    let (_, scopeless) = app.post(&owner, "/v1/api-keys", json!({"name": "search-only", "scopes": ["search"]})).await;

    // Another tenant, with a session and with a key of every scope.
    let intruder = app.register("intruder-iso").await;
    let (_, intruder_key) = app
        .post(&intruder, "/v1/api-keys", json!({"name": "all", "scopes": ["search", "upload", "read", "delete"]}))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the expiring key has expired

    let callers = [
        Caller { name: "no token", token: None, allowed: &[401] },
        Caller { name: "other user's session", token: Some(intruder.clone()), allowed: &[404] },
        Caller {
            name: "other user's key",
            token: Some(intruder_key["key"].as_str().expect("key").to_string()),
            allowed: &[403, 404],
        },
        Caller { name: "revoked key", token: Some(revoked["key"].as_str().expect("key").to_string()), allowed: &[401] },
        Caller { name: "expired key", token: Some(expired["key"].as_str().expect("key").to_string()), allowed: &[401] },
        Caller { name: "key bound to another knowledge base", token: Some(other_kb_key.clone()), allowed: &[403, 404] },
        Caller {
            name: "key without the scope",
            token: Some(scopeless["key"].as_str().expect("key").to_string()),
            allowed: &[403, 404],
        },
    ];

    // Every operation on one of the owner's objects, from the API's own description.
    let (_, doc_json) = body(app.http.get(app.url("/openapi.json")).send().await.expect("send")).await;
    let ids = [
        ("/v1/knowledge-bases/{id}", kb.as_str()),
        ("/v1/documents/{id}", doc.as_str()),
        ("/v1/agents/{id}", agent.as_str()),
        ("/v1/conversations/{id}", conversation.as_str()),
        ("/v1/data-sources/{id}", source.as_str()),
        ("/v1/api-keys/{id}", owner_key_id.as_str()),
        ("/v1/chunks/{id}", chunk.as_str()),
    ];
    let mut cells = 0;
    for (template, item) in doc_json["paths"].as_object().expect("paths") {
        let Some((_, id)) = ids.iter().find(|(prefix, _)| template.starts_with(prefix)) else { continue };
        // Other path parameters (a PDF's page) take a value that exists for the owner.
        let path = template.replace("{id}", id).replace("{page}", "1");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            // Every route has its line in the authorisation table; the matrix reads it.
            let rule = lore_server::authz::rule_for(method, template)
                .unwrap_or_else(|| panic!("{method} {template} is missing from the authorisation table"));
            for caller in &callers {
                // The key bound to another knowledge base meets every route, and every object
                // reached through another (an agent's knowledge bases, a conversation's citations,
                // a data source's knowledge base). The search-only key is refused wherever the
                // table asks for another scope; searching and chatting are its job.
                if caller.name.starts_with("key without")
                    && rule.need == lore_server::authz::Need::Scope(lore_core::model::Scope::Search)
                {
                    continue;
                }
                let (status, text) = call(&app, method, &path, caller.token.as_deref()).await;
                cells += 1;
                assert!(!text.contains(CANARY), "{} {method} {path}: leaked the owner's data: {text}", caller.name);
                assert!(
                    caller.allowed.contains(&status.as_u16()),
                    "{} {method} {path}: {status} (expected one of {:?}): {text}",
                    caller.name,
                    caller.allowed
                );
            }
        }
    }
    eprintln!("isolation matrix: {cells} cells");
    assert!(cells >= 100, "the matrix covered only {cells} cells");

    // Lists never show another owner's objects.
    for list in [
        "/v1/knowledge-bases",
        "/v1/agents",
        "/v1/conversations",
        "/v1/data-sources",
        "/v1/api-keys",
        "/v1/notifications",
        "/v1/usage/agents",
        "/v1/usage/api",
    ] {
        let (status, text) = call(&app, "get", list, Some(&intruder)).await;
        assert_eq!(status, StatusCode::OK, "{list}: {text}");
        assert!(!text.contains(CANARY), "{list} leaked: {text}");
        assert!(!text.contains(&kb) && !text.contains(&agent), "{list} leaked an id: {text}");
    }
    let (_, text) = call(&app, "post", "/v1/search", Some(&intruder)).await;
    assert!(!text.contains(CANARY), "cross-knowledge-base search leaked: {text}");
    // A key bound to another of the owner's knowledge bases lists nothing outside it, and is
    // refused on what spans the whole account.
    for list in ["/v1/knowledge-bases", "/v1/agents", "/v1/conversations", "/v1/data-sources"] {
        let (status, text) = call(&app, "get", list, Some(&other_kb_key)).await;
        assert_eq!(status, StatusCode::OK, "{list}: {text}");
        assert!(
            !text.contains(CANARY) && !text.contains(&agent) && !text.contains(&conversation),
            "{list} leaked: {text}"
        );
    }
    for list in ["/v1/notifications", "/v1/usage/agents", "/v1/usage/api", "/v1/api-keys", "/v1/config"] {
        let (status, text) = call(&app, "get", list, Some(&other_kb_key)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{list}: {text}");
    }
    let (_, text) = call(&app, "post", "/v1/search", Some(&other_kb_key)).await;
    assert!(!text.contains(CANARY), "a bound key's search leaked: {text}");

    // The canary is where it belongs: the owner sees it (the check above can see a leak).
    let (status, text) = call(&app, "get", &format!("/v1/knowledge-bases/{kb}"), Some(&owner)).await;
    assert!(status.is_success() && text.contains(CANARY), "{text}");
    let (_, text) = call(&app, "get", &format!("/v1/conversations/{conversation}/messages"), Some(&owner)).await;
    assert!(text.contains(CANARY), "{text}");
    // Nothing the wrong callers sent changed the owner's objects.
    let (_, agent_now) = app.get(&owner, &format!("/v1/agents/{agent}")).await;
    assert_eq!(agent_now["name"], format!("{CANARY} agent"));
    let (_, docs) = app.get(&owner, &format!("/v1/knowledge-bases/{kb}/documents")).await;
    assert_eq!(docs["data"].as_array().expect("docs").len(), 1, "no intruder upload landed: {docs}");
    app.shutdown().await;
}
