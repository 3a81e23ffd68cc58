//! The key matrix: bound and unbound keys of each scope against every route, and the fan-out round.

use std::path::PathBuf;

use lore_ingest::samples::Rng;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::*;

/// The body an operation gets in the matrix.
pub(crate) fn matrix_request(ctx: &Ctx, method: &str, path: &str) -> reqwest::RequestBuilder {
    let url = ctx.url(path);
    match method {
        "get" => ctx.http.get(url),
        "delete" => ctx.http.delete(url),
        "put" => ctx.http.put(url).json(&json!({})),
        // Each route's own fields: a body the route refuses would answer 422 before the object is looked up.
        "patch" if path.starts_with("/v1/chunks/") => ctx.http.patch(url).json(&json!({"enabled": false})),
        "patch" => ctx.http.patch(url).json(&json!({"name": "renamed by mallory"})),
        _ if path.ends_with("/documents") => ctx
            .http
            .post(url)
            .multipart(Form::new().part("file", Part::bytes(b"intruder text".to_vec()).file_name("intruder.txt"))),
        _ if path.ends_with("/chat") => ctx.http.post(url).json(&json!({"message": "hello"})),
        _ if path.ends_with("/search") => ctx.http.post(url).json(&json!({"query": "canary 金丝雀"})),
        _ => ctx.http.post(url).json(&json!({})),
    }
}

/// Replaces the path's parameters with the ids of the objects each prefix names.
pub(crate) fn fill(template: &str, ids: &[(&str, &str)], fallback: &str) -> String {
    let id = ids.iter().find(|(prefix, _)| template.starts_with(prefix)).map(|(_, id)| *id).unwrap_or(fallback);
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map(|c| open + c + 1).unwrap_or(rest.len());
        out.push_str(id);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

pub(crate) async fn matrix_round(ctx: &Ctx, a: &Victim, b: &Attacker, openapi: &Value, rng: &mut Rng, first: bool) {
    let nowhere = lore_core::new_id().to_string();
    let victim_ids: Vec<(&str, &str)> = vec![
        ("/v1/knowledge-bases/{id}", &a.kbs[rng.below(a.kbs.len())]),
        ("/v1/documents/{id}", &a.docs[rng.below(a.docs.len())]),
        ("/v1/agents/{id}", &a.agent),
        ("/v1/conversations/{id}", &a.conversation),
        ("/v1/data-sources/{id}", &a.source),
        ("/v1/api-keys/{id}", &a.key_id),
        ("/v1/admin/users/{id}", &a.user_id),
        ("/v1/file-types/{id}", "1"),
    ];
    let own_other: Vec<(&str, &str)> = vec![
        ("/v1/knowledge-bases/{id}", &b.kb_other),
        ("/v1/documents/{id}", &b.other_doc),
        ("/v1/agents/{id}", &b.other_agent),
        ("/v1/conversations/{id}", &b.other_conversation),
        ("/v1/data-sources/{id}", &b.other_source),
        ("/v1/api-keys/{id}", &b.own_key_id),
    ];
    let garbage = [
        "garbage".to_string(),
        format!("lore_{:032x}", rng.next_u64() as u128 * 3),
        format!("{}.{}.{}", "eyJhbGciOiJub25lIn0", "eyJzdWIiOiJhZG1pbiJ9", ""),
        a.kbs[0].clone(),
        "x".repeat(4096),
    ];
    let Some(paths) = openapi["paths"].as_object() else {
        ctx.finding("/openapi.json has no paths".into());
        return;
    };
    let mut hostile_calls = Vec::new();
    for (template, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() || !template.starts_with("/v1/") {
                continue;
            }
            if lore_server::authz::rule_for(method, template).map(|r| r.need) == Some(lore_server::authz::Need::Public)
            {
                continue;
            }
            let has_id = template.contains('{');
            // The outside caller: every operation, no token or garbage.
            let path = fill(template, &victim_ids, &nowhere);
            let token = garbage[rng.below(garbage.len())].clone();
            hostile_calls.push((
                format!("outside caller (no token) {method} {template}"),
                method,
                path.clone(),
                None,
                &[401u16][..],
            ));
            hostile_calls.push((
                format!("outside caller (garbage token) {method} {template}"),
                method,
                path.clone(),
                Some(token),
                &[401u16][..],
            ));
            if !has_id {
                continue;
            }
            // The attacker's session and keys on the victim's objects.
            let callers: Vec<(String, String)> = std::iter::once(("session".to_string(), b.session.clone()))
                .chain(b.keys.iter().cloned())
                .filter(|_| first || rng.below(3) == 0)
                .collect();
            for (label, token) in callers {
                hostile_calls.push((
                    format!("attacker {label} {method} {template} (victim's object)"),
                    method,
                    path.clone(),
                    Some(token),
                    &[403u16, 404][..],
                ));
            }
            // The attacker's bound key on its own other knowledge base.
            if own_other.iter().any(|(prefix, _)| template.starts_with(prefix)) {
                let path = fill(template, &own_other, &nowhere);
                hostile_calls.push((
                    format!("attacker all-scope bound key {method} {template} (own other knowledge base)"),
                    method,
                    path,
                    Some(b.all_bound.clone()),
                    &[403u16, 404][..],
                ));
            }
        }
    }
    for (what, method, path, token, allowed) in hostile_calls {
        let mut request = matrix_request(ctx, method, &path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        ctx.call(&what, request, Expect::Only(allowed), true).await;
    }
    // Lists and searches of the attacker never show the victim's data.
    for list in [
        "/v1/knowledge-bases",
        "/v1/agents",
        "/v1/conversations",
        "/v1/data-sources",
        "/v1/api-keys",
        "/v1/notifications",
        "/v1/usage/agents",
        "/v1/usage/api",
        "/v1/config",
    ] {
        ctx.call(&format!("attacker lists {list}"), ctx.get(list, &b.session), Expect::Success, true).await;
    }
    ctx.call(
        "attacker searches everything",
        ctx.post("/v1/search", &b.session, json!({"query": "金丝雀 canary 退款", "mode": "fulltext"})),
        Expect::Answer,
        true,
    )
    .await;
    ctx.call(
        "attacker chat/completions naming the victim's agent",
        ctx.post(
            "/v1/chat/completions",
            &b.search_unbound,
            json!({"model": a.agent, "messages": [{"role": "user", "content": "退款多久？"}]}),
        ),
        Expect::Only(&[403, 404, 422]),
        true,
    )
    .await;
    // The victim's document stays its own: nothing the matrix sent changed it.
    if let Some((_, v)) = ctx
        .call("victim reads its agent", ctx.get(&format!("/v1/agents/{}", a.agent), &a.token), Expect::Success, false)
        .await
        && v["name"].as_str().is_some_and(|n| n.contains("mallory"))
    {
        ctx.finding("the attacker renamed the victim's agent".into());
    }
}

pub(crate) async fn fan_out_round(ctx: &Ctx, a: &Victim, b: &Attacker) {
    let many: Vec<String> = (0..51).map(|_| lore_core::new_id().to_string()).collect();
    ctx.call(
        "search over 51 knowledge bases",
        ctx.post("/v1/search", &b.session, json!({"query": "金丝雀", "mode": "fulltext", "knowledge_base_ids": many})),
        Expect::Only(&[422]),
        true,
    )
    .await;
    let theirs: Vec<&String> = a.kbs.iter().chain([&b.kb_bound]).collect();
    for (label, token) in [("session", &b.session), ("bound key", &b.all_bound), ("search key", &b.search_unbound)] {
        ctx.call(
            &format!("attacker {label} searches the victim's knowledge bases"),
            ctx.post(
                "/v1/search",
                token,
                json!({"query": "金丝雀 canary", "mode": "fulltext", "knowledge_base_ids": theirs}),
            ),
            Expect::Answer,
            true,
        )
        .await;
    }
}

/// Removes the data directory when the campaign ends (after the server is gone).
pub(crate) struct RemoveDir(pub(crate) PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
