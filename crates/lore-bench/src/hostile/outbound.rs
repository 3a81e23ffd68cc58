//! The outbound round: every URL-taking field pointed at loopback, link-local and the recorder; the
//! agent that calls Lore itself; syncs settled.

use std::time::{Duration, Instant};

use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use super::*;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn outbound_round(
    ctx: &Ctx, b: &Attacker, triggers: &Triggers, recorder_port: u16, provider_port: u16, lore_port: u16, round: usize,
    rng: &mut Rng,
) {
    let s = &b.session;
    let r = recorder_port;
    // Addresses the policy must refuse outright.
    let refused: Vec<String> = vec![
        format!("http://127.0.0.2:{r}/v1"),
        format!("http://2130706434:{r}/v1"),
        format!("http://0x7f000002:{r}/v1"),
        format!("http://127.2:{r}/v1"),
        format!("http://[::ffff:127.0.0.2]:{r}/v1"),
        "http://169.254.169.254/latest/meta-data/".into(),
        format!("http://[::1]:{lore_port}/"),
        format!("http://0.0.0.0:{lore_port}/"),
        format!("http://0.0.0.0:{r}/"),
        "http://10.0.0.1/v1".into(),
        "http://100.64.0.1/v1".into(),
        format!("gopher://127.0.0.2:{r}/_x"),
        "file:///etc/passwd".into(),
    ];
    // Allowed (127.0.0.1/32 is the operator's model server): Lore itself and a redirect.
    let allowed: Vec<(String, &str)> = vec![
        (format!("http://127.0.0.1:{lore_port}/v1"), "Lore's own port"),
        (format!("http://127.0.0.1:{provider_port}/redirect/v1"), "a redirect to the recorder"),
    ];
    let fields = ["openai_base_url", "anthropic_base_url", "cohere_base_url", "webhook_url"];
    // A random part each round (all of it in the first): the refusals are cheap, the point is coverage.
    let all_targets: Vec<(String, Option<&str>)> =
        refused.iter().map(|u| (u.clone(), None)).chain(allowed.iter().map(|(u, w)| (u.clone(), Some(*w)))).collect();
    let targets: Vec<&(String, Option<&str>)> =
        all_targets.iter().filter(|_| round == 1 || rng.below(2) == 0).collect();
    let mut n = 0;
    for (url, allowed_as) in targets {
        let expect = if allowed_as.is_some() { Expect::Answer } else { Expect::Only(&[400, 422]) };
        let note = |ctx: &Ctx, what: &str, status: u16| {
            if let Some(why) = allowed_as
                && (200..300).contains(&status)
            {
                *ctx.tally.lock().expect("tally").allowed_loopback.entry(format!("{what} → {why}")).or_default() += 1;
            }
        };
        for field in fields {
            if let Some((status, _)) = ctx
                .call(
                    &format!("PUT /v1/config {field}={url}"),
                    ctx.put("/v1/config", s, json!({ field: url })),
                    expect,
                    true,
                )
                .await
            {
                note(ctx, field, status);
            }
        }
        n += 1;
        let agent = json!({"name": format!("probe {round} {n}"), "model_provider": "openai", "model_name": "m", "model_parameters": {"base_url": url}});
        if let Some((status, v)) =
            ctx.call(&format!("POST /v1/agents base_url={url}"), ctx.post("/v1/agents", s, agent), expect, true).await
        {
            note(ctx, "agent base_url", status);
            if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                ctx.call(
                    "DELETE probe agent",
                    ctx.http.delete(ctx.url(&format!("/v1/agents/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
        let settings =
            json!({"embedding_config": {"provider": "openai", "model": "m", "dimensions": 8, "base_url": url}});
        if let Some((status, v)) = ctx
            .call(
                &format!("POST /v1/knowledge-bases embedding base_url={url}"),
                ctx.post("/v1/knowledge-bases", s, json!({"name": format!("probe {round} {n}"), "settings": settings})),
                expect,
                true,
            )
            .await
        {
            note(ctx, "knowledge base embedding base_url", status);
            if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                ctx.call(
                    "DELETE probe kb",
                    ctx.http.delete(ctx.url(&format!("/v1/knowledge-bases/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
        // A key may never change where embeddings go, whatever the address (sent before the
        // session's change below: sending the current config unchanged is allowed).
        for (label, key) in [("bound upload key", &b.upload_bound), ("upload key", &b.upload_unbound)] {
            ctx.call(
                &format!("{label} PATCH embedding base_url={url}"),
                ctx.patch(&format!("/v1/knowledge-bases/{}", b.kb_bound), key, json!({"settings": settings})),
                Expect::Only(&[403, 422]),
                true,
            )
            .await;
        }
        if let Some((status, _)) = ctx
            .call(
                &format!("PATCH kb embedding base_url={url}"),
                ctx.patch(&format!("/v1/knowledge-bases/{}", b.kb_other), s, json!({"settings": settings})),
                expect,
                true,
            )
            .await
        {
            note(ctx, "PATCH knowledge base embedding base_url", status);
        }
        // A key may never change where embeddings go, whatever the address.

        for (kind, config) in [
            ("web", json!({"url": url})),
            ("s3", json!({"bucket": "b", "endpoint": url})),
            ("git", json!({"url": format!("{url}/repo.git")})),
        ] {
            let body = json!({"name": format!("probe {kind} {round} {n}"), "knowledge_base_id": b.kb_other, "source_type": kind, "config": config});
            if let Some((status, v)) = ctx
                .call(
                    &format!("POST /v1/data-sources {kind} {url}"),
                    ctx.post("/v1/data-sources", s, body),
                    expect,
                    true,
                )
                .await
            {
                note(ctx, &format!("{kind} data source"), status);
                if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                    ctx.call(
                        "DELETE probe source",
                        ctx.http.delete(ctx.url(&format!("/v1/data-sources/{id}"))).bearer_auth(s),
                        Expect::Success,
                        true,
                    )
                    .await;
                }
            }
        }
    }
    // Providers on their default local addresses (llamacpp: 127.0.0.1:8080, allowed here).
    for provider in ["llamacpp", "ollama", "vllm"] {
        let agent = json!({"name": format!("{provider} {round}"), "model_provider": provider, "model_name": "m"});
        if let Some((status, v)) = ctx
            .call(
                &format!("POST /v1/agents {provider} without base_url"),
                ctx.post("/v1/agents", s, agent),
                Expect::Answer,
                true,
            )
            .await
            && (200..300).contains(&status)
        {
            *ctx.tally
                .lock()
                .expect("tally")
                .allowed_loopback
                .entry(format!("{provider} agent → its default 127.0.0.1 address"))
                .or_default() += 1;
            if let Some(id) = v["id"].as_str() {
                ctx.call(
                    "DELETE local agent",
                    ctx.http.delete(ctx.url(&format!("/v1/agents/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
    }
    // The attacker's own config back: its webhook on the redirect, no base URLs.
    ctx.call(
        "PUT config back",
        ctx.put(
            "/v1/config",
            s,
            json!({"openai_base_url": null, "anthropic_base_url": null, "cohere_base_url": null,
                   "webhook_url": format!("http://127.0.0.1:{provider_port}/redirect/hook")}),
        ),
        Expect::Success,
        true,
    )
    .await;

    // Now make the server call out.
    if let Some(agent) = &triggers.redirect_agent {
        ctx.call(
            "chat with the agent behind a redirect",
            ctx.post(&format!("/v1/agents/{agent}/chat"), s, json!({"message": "hello 你好"})),
            Expect::Upstream,
            true,
        )
        .await;
    }
    if let Some(kb) = &triggers.redirect_kb
        && let Some((202, v)) = ctx
            .call(
                "upload into the knowledge base embedding via a redirect",
                ctx.upload(
                    kb,
                    s,
                    &format!("redirect-{round}.md"),
                    format!("# 重定向 {round}\n\nEmbeddings go through a redirect.").into_bytes(),
                    None,
                ),
                Expect::Answer,
                true,
            )
            .await
        && let Some(id) = v["id"].as_str()
    {
        judge_document(ctx, s, id, "upload embedding via a redirect", "embedding via a redirect").await;
    }
    for source in &triggers.sources {
        ctx.call(
            "sync a source behind a redirect",
            ctx.post(&format!("/v1/data-sources/{source}/sync"), s, json!({})),
            Expect::Answer,
            true,
        )
        .await;
    }
    settle_syncs(ctx, s, &triggers.sources).await;
}

/// The agent whose model is Lore's own `/v1/chat/completions`, naming itself: one chat must end
/// (an answer or a refusal) within a few seconds, and nothing may go on once its caller has left.
pub(crate) async fn self_loop(ctx: &Ctx, l: &SelfLoop, pid: u32) {
    let (agent, name) = (&l.agent, &l.name);
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let rss = || vm_rss_kib(pid).unwrap_or(0) / 1024;
    let (fds_before, rss_before) = (fds(), rss());
    let t = Instant::now();
    let request = ctx
        .post(
            "/v1/chat/completions",
            &l.key,
            json!({"model": name, "messages": [{"role": "user", "content": "who are you 你是谁"}]}),
        )
        .timeout(Duration::from_secs(10));
    let answer = request.send().await;
    let secs = t.elapsed().as_secs_f64();
    let outcome = match answer {
        Ok(r) => format!("{} after {secs:.1} s", r.status()),
        Err(e) if e.is_timeout() => format!("no answer within {secs:.0} s"),
        Err(e) => format!("{e}"),
    };
    let (fds_left, rss_left) = (fds(), rss());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (fds_after, rss_after) = (fds(), rss());
    eprintln!(
        "agent calling Lore itself ({agent}): {outcome}; open files {fds_before} → {fds_left} when the caller left → {fds_after} 5 s later; RSS {rss_before} → {rss_left} → {rss_after} MiB"
    );
    let grew = fds_after > fds_left + 50 || rss_after > rss_left + 64;
    if !outcome.contains(" after ") || grew {
        ctx.finding(format!(
            "an agent whose model is Lore's own /v1/chat/completions (allowed by --allow-outbound 127.0.0.1/32) calls \
             itself without end: {outcome}; open files {fds_before} → {fds_left} → {fds_after} and RSS {rss_before} → \
             {rss_left} → {rss_after} MiB over the 5 s after its caller left"
        ));
    } else {
        ctx.call(
            "a chat after the loop",
            ctx.post(&format!("/v1/agents/{agent}/chat"), &l.session, json!({"message": "again"})),
            Expect::Upstream,
            true,
        )
        .await;
    }
}

/// Waits (a while) for the sources' syncs to end, and tallies how they ended.
pub(crate) async fn settle_syncs(ctx: &Ctx, token: &str, sources: &[String]) {
    for source in sources {
        let started = Instant::now();
        loop {
            let v = ctx.http.get(ctx.url(&format!("/v1/data-sources/{source}/syncs"))).bearer_auth(token).send().await;
            let Ok(v) = v else { break };
            let v: Value = v.json().await.unwrap_or_default();
            let last = v["data"].as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
            let status = last["status"].as_str().unwrap_or_default();
            if status != "running" || started.elapsed() > Duration::from_secs(60) {
                if status == "running" {
                    ctx.finding(format!(
                        "a sync of a source behind a redirect still runs after 60 s: {}",
                        shorten(&last.to_string())
                    ));
                } else if !status.is_empty() {
                    *ctx.tally
                        .lock()
                        .expect("tally")
                        .files
                        .entry(format!("sync behind a redirect: {status}"))
                        .or_default() += 1;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
