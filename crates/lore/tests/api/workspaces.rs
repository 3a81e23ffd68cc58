//! Team workspaces: the contract (`/v1/workspaces`, members, `X-Lore-Workspace`, the audit log),
//! the role × endpoint matrix read from the authorisation table, and members who leave or are
//! demoted losing access at once, with their keys.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, body, spawn_app};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

impl TestApp {
    /// A request made in workspace `ws` (a session's choice of workspace).
    async fn in_ws(
        &self, token: &str, ws: &str, method: reqwest::Method, path: &str, json: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token).header("X-Lore-Workspace", ws);
        if let Some(json) = json {
            request = request.json(&json);
        }
        body(request.send().await.expect("send")).await
    }

    /// Uploads a text file in workspace `ws` and waits until it is processed.
    async fn ingest_in(&self, token: &str, ws: &str, kb: &str, name: &str, text: &str) {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_string()));
        let resp = self
            .http
            .post(self.url(&format!("/v1/knowledge-bases/{kb}/documents")))
            .bearer_auth(token)
            .header("X-Lore-Workspace", ws)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let (status, doc) = body(resp).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
        let doc = doc["id"].as_str().expect("id").to_string();
        for _ in 0..600 {
            let (_, d) = self.in_ws(token, ws, Method::GET, &format!("/v1/documents/{doc}"), None).await;
            if d["status"] == "completed" {
                return;
            }
            assert_ne!(d["status"], "failed", "{d}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{name} was not processed in time");
    }

    async fn me_id(&self, token: &str) -> String {
        let (_, me) = self.get(token, "/v1/me").await;
        me["id"].as_str().expect("id").to_string()
    }
}

use reqwest::Method;

#[tokio::test]
async fn a_team_shares_knowledge_with_roles_and_removal_takes_effect_at_once() {
    let app = spawn_app().await;
    let alice = app.register("alice-ws").await;
    let bob = app.register("bob-ws").await;
    let carol = app.register("carol-ws").await;
    let dave = app.register("dave-ws").await;
    let (alice_id, bob_id, carol_id) = (app.me_id(&alice).await, app.me_id(&bob).await, app.me_id(&carol).await);

    // The contract: POST /v1/workspaces {name} → {id}; the creator owns it.
    let (status, team) = app.post(&alice, "/v1/workspaces", json!({"name": "研发团队 R&D"})).await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let ws = team["id"].as_str().expect("id").to_string();
    assert_eq!((team["role"].as_str(), team["personal"].as_bool()), (Some("owner"), Some(false)));
    let (_, list) = app.get(&alice, "/v1/workspaces").await;
    let names: Vec<&str> = list["data"].as_array().expect("data").iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(names, ["alice-ws", "研发团队 R&D"], "the personal workspace first: {list}");

    // Members by username (or email), with roles; a second add or an unknown name is refused.
    let members = format!("/v1/workspaces/{ws}/members");
    let (status, v) = app.post(&alice, &members, json!({"username": "bob-ws", "role": "editor"})).await;
    assert_eq!((status, v["role"].as_str()), (StatusCode::CREATED, Some("editor")), "{v}");
    let (status, _) = app.post(&alice, &members, json!({"username": "carol-ws@example.com", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = app.post(&alice, &members, json!({"username": "bob-ws", "role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "already_member"));
    let (status, v) = app.post(&alice, &members, json!({"username": "nobody-here", "role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, v) = app.post(&alice, &members, json!({"username": "dave-ws", "role": "root"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = app.get(&carol, &members).await;
    let listed: Vec<(&str, &str)> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| (m["username"].as_str().unwrap_or(""), m["role"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(listed, [("alice-ws", "owner"), ("bob-ws", "editor"), ("carol-ws", "viewer")]);

    // The editor builds a knowledge base in the team, in Chinese and English.
    let (status, kb) =
        app.in_ws(&bob, &ws, Method::POST, "/v1/knowledge-bases", Some(json!({"name": "共享知识库"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    assert_eq!((kb["workspace_id"].as_str(), kb["created_by"].as_str()), (Some(ws.as_str()), Some(bob_id.as_str())));
    let kb_id = kb["id"].as_str().expect("id").to_string();
    app.ingest_in(&bob, &ws, &kb_id, "handbook.md", "# 报销制度\n\n差旅报销须在出差结束后十五个工作日内提交发票。")
        .await;
    app.ingest_in(
        &bob,
        &ws,
        &kb_id,
        "onboarding.md",
        "# Onboarding\n\nNew engineers receive their laptop on the first Monday.",
    )
    .await;

    // The viewer searches and reads, and can change nothing.
    let search = format!("/v1/knowledge-bases/{kb_id}/search");
    let (status, found) = app.in_ws(&carol, &ws, Method::POST, &search, Some(json!({"query": "差旅报销发票"}))).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(found["results"][0]["content"].as_str().unwrap_or("").contains("十五个工作日"), "{found}");
    let (_, found) = app.in_ws(&carol, &ws, Method::POST, &search, Some(json!({"query": "laptop first Monday"}))).await;
    assert!(found["results"][0]["content"].as_str().unwrap_or("").contains("laptop"), "{found}");
    let (status, _) = app.in_ws(&carol, &ws, Method::GET, &format!("/v1/knowledge-bases/{kb_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, json) in [
        (Method::POST, "/v1/knowledge-bases".to_string(), Some(json!({"name": "mine"}))),
        (Method::DELETE, format!("/v1/knowledge-bases/{kb_id}"), None),
        (Method::PATCH, format!("/v1/knowledge-bases/{kb_id}"), Some(json!({"name": "renamed"}))),
        (Method::POST, "/v1/api-keys".to_string(), Some(json!({"name": "k", "scopes": ["search"]}))),
        (Method::PUT, "/v1/config".to_string(), Some(json!({"default_chunk_size": 600}))),
    ] {
        let (status, v) = app.in_ws(&carol, &ws, method.clone(), &path, json).await;
        assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"), "{method} {path}: {v}");
    }

    // Outsiders: another person's header is a workspace they are not in (404, as any other
    // tenant's object), and the team's objects are not in anyone's personal workspace.
    let (status, v) = app.in_ws(&dave, &ws, Method::GET, "/v1/knowledge-bases", None).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    for token in [&dave, &alice, &bob] {
        let (status, _) = app.get(token, &format!("/v1/knowledge-bases/{kb_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = app.get(&dave, &format!("/v1/workspaces/{ws}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&dave, &members).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = app.in_ws(&alice, "not-a-uuid", Method::GET, "/v1/knowledge-bases", None).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));

    // An editor manages no members and no keys; an admin does.
    let (status, v) = app.post(&bob, &members, json!({"username": "dave-ws", "role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, v) = app.patch(&alice, &format!("{members}/{bob_id}"), json!({"role": "admin"})).await;
    assert_eq!((status, v["role"].as_str()), (StatusCode::OK, Some("admin")), "{v}");
    let key_body = json!({"name": "团队密钥", "scopes": ["search", "read", "upload"]});
    let (status, created) = app.in_ws(&bob, &ws, Method::POST, "/v1/api-keys", Some(key_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    let (_, me) = app.get(&key, "/v1/me").await;
    assert_eq!((me["auth"]["workspace_id"].as_str(), me["auth"]["role"].as_str()), (Some(ws.as_str()), Some("admin")));
    assert_eq!(me["username"], "bob-ws", "the person acting through the key: {me}");
    assert_eq!(app.search(&key, &kb_id, "报销").await.0, StatusCode::OK);
    let (status, v) = app.upload(&key, &kb_id, "by-key.txt", "上传 with the team key").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    // A key acts in its own workspace only.
    let (status, v) = app.in_ws(&key, &alice_id, Method::GET, "/v1/knowledge-bases", None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "workspace_mismatch"));

    // Demoted, the key keeps no more than its maker's role; removed, neither session nor key works.
    let (status, _) = app.patch(&alice, &format!("{members}/{bob_id}"), json!({"role": "viewer"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = app.upload(&key, &kb_id, "after-demotion.txt", "no longer allowed").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"), "{v}");
    assert_eq!(app.search(&key, &kb_id, "报销").await.0, StatusCode::OK);
    let (status, _) = app.delete(&alice, &format!("{members}/{bob_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.in_ws(&bob, &ws, Method::POST, &search, Some(json!({"query": "报销"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the removed member's session loses the workspace at once");
    let (status, v) = app.search(&key, &kb_id, "报销").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "api_key_revoked"), "{v}");
    let (_, mine) = app.get(&bob, "/v1/workspaces").await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1), "only bob's own workspace is left: {mine}");

    // Owners: only an owner makes owners, and a workspace keeps one.
    let (status, _) = app.post(&alice, &members, json!({"username": "dave-ws", "role": "admin"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = app.post(&dave, &members, json!({"username": "bob-ws", "role": "owner"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, v) = app.patch(&dave, &format!("{members}/{alice_id}"), json!({"role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, v) = app.delete(&dave, &format!("{members}/{alice_id}")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, v) = app.patch(&alice, &format!("{members}/{alice_id}"), json!({"role": "admin"})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "last_owner"));
    let (status, v) = app.delete(&alice, &format!("{members}/{alice_id}")).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "last_owner"));
    let (status, v) = app.delete(&carol, &format!("{members}/{alice_id}")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    // Anyone may leave.
    let (status, _) = app.delete(&carol, &format!("{members}/{carol_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A personal workspace has no other members.
    let (status, v) = app
        .post(&alice, &format!("/v1/workspaces/{alice_id}/members"), json!({"username": "bob-ws", "role": "viewer"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "personal_workspace"));

    // The audit log: owners and admins read it; the entries name the actor and the member.
    let audit = format!("/v1/workspaces/{ws}/audit");
    let (status, log) = app.get(&dave, &audit).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> =
        log["data"].as_array().expect("data").iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in
        ["workspace.created", "member.added", "member.role_changed", "member.removed", "member.left", "api_key.created"]
    {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let removal =
        log["data"].as_array().expect("data").iter().find(|e| e["action"] == "member.removed").expect("removal");
    assert_eq!((removal["actor"].as_str(), removal["target_id"].as_str()), (Some("alice-ws"), Some(bob_id.as_str())));
    let (status, _) = app.post(&alice, &members, json!({"username": "carol-ws", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = app.get(&carol, &audit).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));

    // A team account is nobody's sign-in, and administrators' user lists are of people.
    let team_username = format!("workspace-{}", ws.replace('-', ""));
    let (status, _) = app.post("", "/v1/auth/login", json!({"username": team_username, "password": "!"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, users) = app.get(&alice, "/v1/admin/users").await;
    assert_eq!(users["data"].as_array().map(Vec::len), Some(4), "{users}");

    // Deleting a team: its knowledge bases first, then the workspace (owners only).
    let (status, v) = app.delete(&alice, &format!("/v1/workspaces/{ws}")).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "workspace_not_empty"));
    let (status, v) = app.delete(&dave, &format!("/v1/workspaces/{ws}")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, _) = app.in_ws(&alice, &ws, Method::DELETE, &format!("/v1/knowledge-bases/{kb_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&alice, &format!("/v1/workspaces/{ws}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&alice, &format!("/v1/workspaces/{ws}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

/// Every route of the authorisation table, called in a team workspace by a member of each role:
/// below the route's least role it answers 403 `insufficient_role` before the handler runs; at or
/// above it, whatever the handler says, never that.
#[tokio::test]
async fn the_role_matrix_follows_the_authorisation_table() {
    let app = spawn_app().await;
    let owner = app.register("matrix-owner").await;
    let (_, team) = app.post(&owner, "/v1/workspaces", json!({"name": "matrix"})).await;
    let ws = team["id"].as_str().expect("id").to_string();
    let mut callers = vec![("owner", owner.clone())];
    for role in ["admin", "editor", "viewer"] {
        let name = format!("matrix-{role}");
        let token = app.register(&name).await;
        let (status, _) =
            app.post(&owner, &format!("/v1/workspaces/{ws}/members"), json!({"username": name, "role": role})).await;
        assert_eq!(status, StatusCode::CREATED);
        callers.push((role, token));
    }
    let placeholder = "00000000-0000-4000-8000-000000000000";
    let mut checked = 0;
    for rule in lore_server::authz::TABLE {
        // Personal routes (signing in and out, passwords) act on the person, administrators'
        // on the installation, and `/v1/workspaces/{id}` names its own workspace.
        let personal = rule.path.starts_with("/v1/auth/") || rule.path.starts_with("/v1/admin/");
        let path_named = rule.path.starts_with("/v1/workspaces");
        if personal || path_named || rule.path.starts_with("/v1/file-types/") {
            continue;
        }
        let path = rule.path.replace("{id}", placeholder).replace("{page}", "1");
        let method = Method::from_bytes(rule.method.as_bytes()).expect("method");
        for (role, token) in &callers {
            let rank = ["viewer", "editor", "admin", "owner"].iter().position(|r| r == role).expect("role");
            let least = lore_core::model::Role::ALL.iter().position(|r| *r == rule.role).expect("rank");
            let json = if matches!(rule.method, "GET" | "DELETE") { None } else { Some(json!({})) };
            let (status, v) = app.in_ws(token, &ws, method.clone(), &path, json).await;
            let refused = status == StatusCode::FORBIDDEN && code(&v) == "insufficient_role";
            assert_eq!(refused, rank < least, "{role} {} {}: {status} {v}", rule.method, rule.path);
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked} calls");
    app.shutdown().await;
}

/// A knowledge base shared read-only into another workspace: listed, read and searched there,
/// alone or beside that workspace's own, changed by nobody there, and gone when unshared.
#[tokio::test]
async fn a_knowledge_base_is_shared_read_only_into_another_workspace() {
    let app = spawn_app().await;
    let alice = app.register("alice-share").await;
    let bob = app.register("bob-share").await;
    let carol = app.register("carol-share").await;
    let (_, a) = app.post(&alice, "/v1/workspaces", json!({"name": "产品组 Product"})).await;
    let (_, b) = app.post(&bob, "/v1/workspaces", json!({"name": "客服组 Support"})).await;
    let (a, b) = (a["id"].as_str().expect("a").to_string(), b["id"].as_str().expect("b").to_string());
    let (status, _) = app
        .post(&bob, &format!("/v1/workspaces/{b}/members"), json!({"username": "alice-share", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(&alice, &format!("/v1/workspaces/{a}/members"), json!({"username": "carol-share", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Product's knowledge base, and Support's own.
    let (_, kb) = app.in_ws(&alice, &a, Method::POST, "/v1/knowledge-bases", Some(json!({"name": "产品手册"}))).await;
    let kb = kb["id"].as_str().expect("kb").to_string();
    let (_, own) = app.in_ws(&bob, &b, Method::POST, "/v1/knowledge-bases", Some(json!({"name": "客服话术"}))).await;
    let own = own["id"].as_str().expect("own").to_string();
    app.ingest_in(&alice, &a, &kb, "manual.md", "# 充电\n\n设备充满电需要两个小时。The battery lasts ten hours.").await;
    app.ingest_in(
        &bob,
        &b,
        &own,
        "scripts.md",
        "# 问候\n\n客服应先问候客户并确认订单号。Always confirm the order number.",
    )
    .await;

    // Sharing is an admin's, into a workspace the sharer is in, never its own.
    let shares = format!("/v1/knowledge-bases/{kb}/shares");
    let (status, v) = app.in_ws(&carol, &a, Method::POST, &shares, Some(json!({"workspace_id": b}))).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let carol_id = app.me_id(&carol).await;
    let (status, _) = app.in_ws(&alice, &a, Method::POST, &shares, Some(json!({"workspace_id": carol_id}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not a workspace alice is in");
    let (status, _) = app.in_ws(&alice, &a, Method::POST, &shares, Some(json!({"workspace_id": a}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, share) = app.in_ws(&alice, &a, Method::POST, &shares, Some(json!({"workspace_id": b}))).await;
    assert_eq!((status, share["workspace_name"].as_str()), (StatusCode::CREATED, Some("客服组 Support")), "{share}");
    let (_, listed) = app.in_ws(&alice, &a, Method::GET, &shares, None).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    // Support lists, reads and searches it, alone and beside its own.
    let (_, list) = app.in_ws(&bob, &b, Method::GET, "/v1/knowledge-bases", None).await;
    let seen: Vec<(&str, &str)> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|k| (k["name"].as_str().unwrap_or(""), k["workspace_id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(seen, [("客服话术", b.as_str()), ("产品手册", a.as_str())]);
    let (status, _) = app.in_ws(&bob, &b, Method::GET, &format!("/v1/knowledge-bases/{kb}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // Its documents, their chunks and files are readable there too.
    let (status, docs) = app.in_ws(&bob, &b, Method::GET, &format!("/v1/knowledge-bases/{kb}/documents"), None).await;
    assert_eq!(status, StatusCode::OK, "{docs}");
    let doc = docs["data"][0]["id"].as_str().expect("a shared document").to_string();
    let (status, chunks) = app.in_ws(&bob, &b, Method::GET, &format!("/v1/documents/{doc}/chunks"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(chunks.to_string().contains("两个小时"), "{chunks}");
    let (status, file) = app.in_ws(&bob, &b, Method::GET, &format!("/v1/documents/{doc}/file"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(file.to_string().contains("两个小时"), "{file}");
    let (status, _) = app.in_ws(&bob, &b, Method::DELETE, &format!("/v1/documents/{doc}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "read-only");
    let search = format!("/v1/knowledge-bases/{kb}/search");
    let (status, found) = app.in_ws(&bob, &b, Method::POST, &search, Some(json!({"query": "充满电要多久"}))).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(found["results"][0]["content"].as_str().unwrap_or("").contains("两个小时"), "{found}");
    let both = json!({"query": "confirm the order number battery", "knowledge_base_ids": [own, kb], "top_k": 5});
    let (status, found) = app.in_ws(&bob, &b, Method::POST, "/v1/search", Some(both)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let from: std::collections::HashSet<&str> =
        found["results"].as_array().expect("results").iter().filter_map(|r| r["knowledge_base_id"].as_str()).collect();
    assert_eq!(from.len(), 2, "both workspaces' knowledge: {found}");
    // Read-only: nothing changes it from Support, and Support's personal workspaces do not see it.
    for (method, path, json) in [
        (Method::PATCH, format!("/v1/knowledge-bases/{kb}"), Some(json!({"name": "改名"}))),
        (Method::DELETE, format!("/v1/knowledge-bases/{kb}"), None),
        (Method::POST, format!("/v1/knowledge-bases/{kb}/shares"), Some(json!({"workspace_id": b}))),
    ] {
        let (status, v) = app.in_ws(&bob, &b, method.clone(), &path, json).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
    }
    let resp = app
        .http
        .post(app.url(&format!("/v1/knowledge-bases/{kb}/documents")))
        .bearer_auth(&bob)
        .header("X-Lore-Workspace", b.as_str())
        .multipart(
            reqwest::multipart::Form::new()
                .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt")),
        )
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&bob, &format!("/v1/knowledge-bases/{kb}")).await.0, StatusCode::NOT_FOUND);

    // Both logs record it; unshared, Support no longer reaches it.
    let (_, log) = app.get(&bob, &format!("/v1/workspaces/{b}/audit?action=knowledge_base.")).await;
    assert!(log["data"].as_array().expect("log").iter().any(|e| e["action"] == "knowledge_base.shared"), "{log}");
    let (status, _) = app.in_ws(&alice, &a, Method::DELETE, &format!("{shares}/{b}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.in_ws(&bob, &b, Method::POST, &search, Some(json!({"query": "充电"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.in_ws(&bob, &b, Method::GET, &format!("/v1/documents/{doc}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.in_ws(&alice, &a, Method::DELETE, &format!("{shares}/{b}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

/// Invitations by link: shown once, for one person (named by username or email, or whoever holds
/// the link), with the role they name; used, revoked, or meant for someone else, they admit nobody.
#[tokio::test]
async fn invitation_links_admit_one_person_with_their_role() {
    let app = spawn_app().await;
    let owner = app.register("inv-owner").await;
    let editor = app.register("inv-editor").await;
    let guest = app.register("inv-guest").await;
    let other = app.register("inv-other").await;
    let (_, team) = app.post(&owner, "/v1/workspaces", json!({"name": "邀请团队"})).await;
    let ws = team["id"].as_str().expect("team").to_string();
    let invitations = format!("/v1/workspaces/{ws}/invitations");
    let (status, _) = app
        .post(&owner, &format!("/v1/workspaces/{ws}/members"), json!({"username": "inv-editor", "role": "editor"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Owners and admins invite; an editor does not.
    let (status, v) = app.post(&editor, &invitations, json!({"role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (status, v) =
        app.post(&owner, &invitations, json!({"role": "viewer", "email": "a@b.c", "username": "x"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (status, named) = app.post(&owner, &invitations, json!({"role": "editor", "username": "inv-guest"})).await;
    assert_eq!(status, StatusCode::CREATED, "{named}");
    let token = named["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("wsi_") && named["link"].as_str().is_some_and(|l| l.ends_with(&token)), "{named}");

    // Listed without tokens.
    let (_, list) = app.get(&owner, &invitations).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(!list.to_string().contains(&token), "tokens are shown once");

    // Meant for inv-guest: anyone else is refused, alike with a made-up token.
    for (who, token) in [(&other, token.as_str()), (&other, "wsi_made-up"), (&guest, "not a token")] {
        let (status, v) = app.post(who, "/v1/workspaces/join", json!({"token": token})).await;
        assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");
    }
    let (status, joined) = app.post(&guest, "/v1/workspaces/join", json!({"token": token})).await;
    assert_eq!(
        (status, joined["id"].as_str(), joined["role"].as_str()),
        (StatusCode::OK, Some(ws.as_str()), Some("editor"))
    );
    let (status, v) = app.post(&guest, "/v1/workspaces/join", json!({"token": token})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "used once: {v}");
    let (_, list) = app.get(&owner, &invitations).await;
    assert!(list["data"][0]["used_at"].is_string(), "{list}");

    // By email; a member joining again changes nothing; a revoked link admits nobody.
    let (_, by_email) =
        app.post(&owner, &invitations, json!({"role": "viewer", "email": "INV-OTHER@example.com"})).await;
    let (_, again) = app.post(&owner, &invitations, json!({"role": "viewer"})).await;
    let (status, v) = app.post(&guest, "/v1/workspaces/join", json!({"token": again["token"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "already_member"));
    let (status, _) = app.delete(&owner, &format!("{invitations}/{}", again["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.post(&other, "/v1/workspaces/join", json!({"token": again["token"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, joined) = app.post(&other, "/v1/workspaces/join", json!({"token": by_email["token"]})).await;
    assert_eq!((status, joined["role"].as_str()), (StatusCode::OK, Some("viewer")), "{joined}");

    // An admin cannot invite an owner; the log has the invitations and the joins.
    let (status, _) = app
        .patch(&owner, &format!("/v1/workspaces/{ws}/members/{}", app.me_id(&editor).await), json!({"role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = app.post(&editor, &invitations, json!({"role": "owner"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_role"));
    let (_, log) = app.get(&owner, &format!("/v1/workspaces/{ws}/audit?action=member.")).await;
    let actions: Vec<&str> = log["data"].as_array().expect("log").iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["member.invited", "member.joined", "member.invitation_revoked"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    assert!(!log.to_string().contains(&token), "no token in the log");
    let (_, members) = app.get(&owner, &format!("/v1/workspaces/{ws}/members")).await;
    assert_eq!(members["data"].as_array().map(Vec::len), Some(4));

    // A person's own sign-in changes are theirs, whichever workspace the request names.
    let change = json!({"current_password": "correct horse battery", "new_password": "another horse battery"});
    let (status, _) = app.in_ws(&guest, &ws, Method::POST, "/v1/auth/password", Some(change)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, own) = app.get(&guest, "/v1/audit?action=auth.").await;
    assert!(own["data"].as_array().expect("own").iter().any(|e| e["action"] == "auth.password_changed"), "{own}");
    let (_, team_log) = app.get(&owner, &format!("/v1/workspaces/{ws}/audit?action=auth.")).await;
    assert_eq!(team_log["data"].as_array().map(Vec::len), Some(0), "{team_log}");
    app.shutdown().await;
}

/// The command line acts in a team with `--workspace` (or `LORE_WORKSPACE`).
#[tokio::test]
async fn the_command_line_works_in_a_team() {
    let app = spawn_app().await;
    let token = app.register("cli-team").await;
    let (_, team) = app.post(&token, "/v1/workspaces", json!({"name": "命令行团队"})).await;
    let ws = team["id"].as_str().expect("team").to_string();
    let lore = |args: Vec<String>, workspace_env: Option<String>| {
        let (base, token) = (app.base.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lore"));
            command.args(&args).env("LORE_SERVER", base).env("LORE_API_KEY", token).env_remove("LORE_WORKSPACE");
            if let Some(ws) = workspace_env {
                command.env("LORE_WORKSPACE", ws);
            }
            let out = command.output().expect("run lore");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (code, out, err) = lore(args(&["kb", "create", "团队命令行库", "--workspace", &ws]), None).await.expect("join");
    assert_eq!(code, Some(0), "{err}");
    let kb = out.trim().to_string();
    let (_, listed) = app.in_ws(&token, &ws, Method::GET, "/v1/knowledge-bases", None).await;
    assert_eq!(listed["data"][0]["id"].as_str(), Some(kb.as_str()), "made in the team");
    let (_, out, _) = lore(args(&["kb", "list"]), Some(ws.clone())).await.expect("join");
    assert!(out.contains(&kb), "{out}");
    let (_, out, _) = lore(args(&["kb", "list"]), None).await.expect("join");
    assert!(!out.contains(&kb), "not in the person's own workspace: {out}");
    app.shutdown().await;
}

/// A tenant cannot grow the server without bound through teams: it may own so many team
/// workspaces, and a workspace may hold so many open invitations.
#[tokio::test]
async fn teams_and_invitations_have_budgets() {
    let app = spawn_app().await;
    let mallory = app.register("mallory-teams").await;
    let mut first = String::new();
    for i in 0..lore_server::service::MAX_OWNED_TEAMS {
        let (status, team) = app.post(&mallory, "/v1/workspaces", json!({"name": format!("团队 {i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{team}");
        if first.is_empty() {
            first = team["id"].as_str().expect("id").to_string();
        }
    }
    let (status, v) = app.post(&mallory, "/v1/workspaces", json!({"name": "one too many"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "resource_limit_exceeded"), "{v}");

    let invitations = format!("/v1/workspaces/{first}/invitations");
    for _ in 0..lore_server::service::MAX_OPEN_INVITATIONS {
        let (status, v) = app.post(&mallory, &invitations, json!({"role": "viewer"})).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, v) = app.post(&mallory, &invitations, json!({"role": "viewer"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "resource_limit_exceeded"), "{v}");
    // Revoking one makes room again.
    let (_, list) = app.get(&mallory, &invitations).await;
    let id = list["data"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(app.delete(&mallory, &format!("{invitations}/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.post(&mallory, &invitations, json!({"role": "viewer"})).await.0, StatusCode::CREATED);
    app.shutdown().await;
}
