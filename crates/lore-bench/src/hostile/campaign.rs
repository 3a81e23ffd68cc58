//! The campaign: two tenants and an outside caller against a live server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use super::*;
use crate::{BenchServer, Vocabulary};

/// The victim's objects.
pub(crate) struct Victim {
    pub(crate) token: String,
    pub(crate) user_id: String,
    pub(crate) kbs: Vec<String>,
    pub(crate) docs: Vec<String>,
    pub(crate) agent: String,
    pub(crate) conversation: String,
    pub(crate) source: String,
    pub(crate) key_id: String,
}

/// The attacker's session, keys and objects.
pub(crate) struct Attacker {
    pub(crate) session: String,
    /// (name, key): each scope unbound and bound to `kb_bound`, and every scope bound.
    pub(crate) keys: Vec<(String, String)>,
    pub(crate) upload_bound: String,
    pub(crate) upload_unbound: String,
    pub(crate) search_unbound: String,
    pub(crate) all_bound: String,
    pub(crate) kb_bound: String,
    pub(crate) kb_other: String,
    pub(crate) other_doc: String,
    pub(crate) other_agent: String,
    pub(crate) other_conversation: String,
    pub(crate) other_source: String,
    pub(crate) own_key_id: String,
}

pub async fn hostile(args: HostileArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut rng = Rng(seed | 1);
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "embedded" };

    let t0 = Instant::now();
    let bombs = Arc::new(tokio::task::spawn_blocking(Bombs::build).await?);
    eprintln!("hostile files built in {:.1} s", t0.elapsed().as_secs_f64());
    if let Some(dir) = &args.write_files {
        std::fs::create_dir_all(dir)?;
        for kind in FILE_KINDS {
            let (name, bytes) = bombs.file(kind, "replay", &mut rng);
            std::fs::write(dir.join(&name), &bytes)?;
            println!("{kind}: {} ({} bytes)", dir.join(&name).display(), bytes.len());
        }
        return Ok(());
    }

    let (recorder_port, recorded) = recorder().await?;
    let (provider_port, provided) = provider(recorder_port).await?;

    let data_dir = std::env::temp_dir().join(format!("lore-hostile-{}", std::process::id()));
    let _cleanup = RemoveDir(data_dir.clone());
    let source_root = data_dir.join("sources");
    for who in ["a", "b"] {
        std::fs::create_dir_all(source_root.join(who))?;
    }
    std::fs::write(source_root.join("a/notes.md"), "# 说明\n\n共享文件夹里的文件。Files in a shared folder.\n")?;
    std::fs::write(source_root.join("b/notes.md"), "# B\n\nB 的文件。B's file.\n")?;
    let mut env = Vec::new();
    if let Some(url) = &args.database_url {
        env.push(("LORE_DATABASE_URL", lore_store::postgres::create_scratch_schema(url).await?));
    }
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(CLIENT_TIMEOUT).build()?;
    // `launch` gives every campaign server `--registration open` and `--allow-outbound
    // 127.0.0.1/32` (the operator's own model server); 127.0.0.2, the recorder's, stays refused.
    let flags: Vec<String> = vec!["--source-root".into(), source_root.display().to_string()];
    let server = BenchServer::launch(&data_dir.join("data"), &flags, &env, &http).await?;
    let port: u16 = server.base.rsplit(':').next().and_then(|p| p.parse().ok()).context("port")?;
    let stop = Arc::new(AtomicBool::new(false));
    let (memory, watcher) = watch_memory(server.pid(), stop.clone());

    // The victim's secrets.
    let canary = format!("lorecanary{:016x}", rng.next_u64());
    let canary_zh = format!("金丝雀{}", &canary[10..]);
    let victim_key = format!("sk-victim-{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    let ctx = Arc::new(Ctx {
        http: http.clone(),
        base: server.base.clone(),
        secrets: vec![canary[10..].to_string(), victim_key["sk-victim-".len()..].to_string()],
        tally: Mutex::new(Tally::default()),
        probe: Mutex::new(None),
    });
    let victim = setup_victim(&ctx, &server.token, &canary, &canary_zh, &victim_key, &source_root).await?;
    let attacker = setup_attacker(&ctx, &mut rng, &source_root, provider_port).await?;
    let redirect = format!("http://127.0.0.1:{provider_port}/redirect");
    let triggers = setup_triggers(&ctx, &attacker, &redirect, port).await?;
    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let preview_text = mixed_text(&en, &zh, &mut rng, 200_000);
    let (openapi_status, openapi) = ctx
        .call("GET /openapi.json", http.get(ctx.url("/openapi.json")), Expect::Success, false)
        .await
        .context("openapi")?;
    anyhow::ensure!(openapi_status == 200, "no /openapi.json");
    eprintln!("setup done in {:.1} s; rounds for {} s (seed {seed})", t0.elapsed().as_secs_f64(), args.seconds);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut rounds = 0usize;
    let mut phases = 0usize;
    while rounds == 0 || Instant::now() < deadline {
        rounds += 1;
        let mut rng = Rng((seed ^ (rounds as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        let first = rounds == 1;
        let phase_list: [usize; 5] = [1, 2, 3, 4, 5];
        for phase in phase_list {
            if !first && Instant::now() >= deadline {
                break;
            }
            phases += 1;
            let t = Instant::now();
            match phase {
                1 => chunking_round(&ctx, &attacker, &preview_text, &en, &zh, &mut rng, rounds).await,
                2 => files_round(&ctx, &victim, &attacker, &bombs, &en, &zh, &mut rng, rounds, first).await,
                3 => {
                    outbound_round(&ctx, &attacker, &triggers, recorder_port, provider_port, port, rounds, &mut rng)
                        .await
                }
                4 => matrix_round(&ctx, &victim, &attacker, &openapi, &mut rng, first).await,
                _ => fan_out_round(&ctx, &victim, &attacker).await,
            }
            eprintln!("round {rounds} phase {phase}: {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    let attack_secs = started.elapsed().as_secs_f64();
    judge_probe(&ctx, &attacker).await;
    // Last, since a server that loops on itself is no use for anything after.
    if let Some(self_agent) = &triggers.self_agent {
        self_loop(&ctx, self_agent, server.pid()).await;
    }

    // Deliveries still under way (webhook retries, syncs) have a few seconds to go wrong.
    settle_syncs(&ctx, &attacker.session, &triggers.sources).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The end: the server answers, the victim's data is intact (so the leak check could see it).
    match http.get(ctx.url("/healthz")).timeout(CLIENT_TIMEOUT).send().await {
        Ok(r) if r.status().is_success() => {}
        other => ctx.finding(format!("the server no longer answers /healthz: {other:?}")),
    }
    if let Some((_, v)) = ctx
        .call(
            "victim reads its knowledge base",
            ctx.get(&format!("/v1/knowledge-bases/{}", victim.kbs[0]), &victim.token),
            Expect::Success,
            false,
        )
        .await
        && !v.to_string().contains(&canary)
    {
        ctx.finding("the victim's knowledge base lost its canary".into());
    }
    if let Some((_, v)) = ctx
        .call(
            "victim reads its documents",
            ctx.get(&format!("/v1/knowledge-bases/{}/documents", victim.kbs[0]), &victim.token),
            Expect::Success,
            false,
        )
        .await
        && v["data"].as_array().map(Vec::len).unwrap_or(0) != victim.docs.len()
    {
        ctx.finding(format!("the victim's documents changed: {}", shorten(&v.to_string())));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let hwm = vm_hwm_kib(server.pid()).unwrap_or(0);
    let (server_peak, with_children, child_peak, samples) = {
        let m = memory.lock().expect("memory");
        (m.server.max(hwm), m.with_children, m.child, m.samples)
    };
    if server_peak > args.max_rss_mb * 1024 {
        ctx.finding(format!(
            "the server's resident memory reached {} MiB (limit {} MiB)",
            server_peak / 1024,
            args.max_rss_mb
        ));
    }
    let reached = recorded.all();
    for r in reached.iter().take(5) {
        ctx.finding(format!("the recorder on 127.0.0.2 was reached: {}", shorten(r)));
    }
    for r in provided.all() {
        for secret in &ctx.secrets {
            if r.contains(secret.as_str()) {
                ctx.finding(format!("the victim's secret reached the provider on 127.0.0.1: {}", shorten(&r)));
            }
        }
    }
    drop(server);

    let tally = ctx.tally.lock().expect("tally");
    let refusals: Vec<String> = tally.refusals.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let files: Vec<String> = tally.files.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let loopback: Vec<String> = tally.allowed_loopback.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let findings: usize = tally.findings.len();
    eprintln!("hostile files: {}", files.join(", "));
    eprintln!("accepted because --allow-outbound 127.0.0.1/32: {}", loopback.join(", "));
    eprintln!("slowest answer: {:.0} ms ({})", tally.slowest_ms, tally.slowest);
    eprintln!("slowest document: {:.1} s ({})", tally.slowest_document.0, tally.slowest_document.1);
    println!(
        "hostile {:.0} s ({build} build, {backend}, seed {seed}): {rounds} rounds, {phases} phases, {} requests, 5xx {}, \
         gateway 502/504 {}; refusals: {}; files {}; recorder {} requests, provider {} requests; slowest answer {:.1} s, slowest document {:.0} s, victim's upload behind the attacker's {:.0} s; amplification probe: {}; \
         peak RSS server {:.0} MiB (limit {}), with parse workers {:.0} MiB, largest worker {:.0} MiB ({samples} samples); findings: {}",
        attack_secs,
        tally.requests,
        tally.server_errors,
        tally.gateway,
        refusals.join(", "),
        tally.files.values().sum::<u64>(),
        reached.len(),
        provided.all().len(),
        tally.slowest_ms / 1000.0,
        tally.slowest_document.0,
        tally.victim_wait,
        tally.amplification,
        server_peak as f64 / 1024.0,
        args.max_rss_mb,
        with_children as f64 / 1024.0,
        child_peak as f64 / 1024.0,
        if findings == 0 { "none".to_string() } else { findings.to_string() },
    );
    for (finding, n) in &tally.findings {
        println!("finding ({n}×): {finding}");
    }
    anyhow::ensure!(findings == 0, "{findings} finding(s)");
    Ok(())
}

/// Mixed Chinese and English paragraphs of about `bytes` bytes.
pub(crate) fn mixed_text(en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::from("# 混合文本 Mixed text\n\n");
    let mut i = 0;
    while out.len() < bytes {
        let chinese = i % 2 == 0;
        let vocab = if chinese { zh } else { en };
        for w in 0..30 + rng.below(40) {
            out.push_str(vocab.sample(rng));
            if chinese {
                if w % 8 == 7 {
                    out.push('，');
                }
            } else {
                out.push(' ');
            }
        }
        out.push_str(if chinese { "。\n\n" } else { ".\n\n" });
        if i % 7 == 6 {
            out.push_str(&format!("## {} {}\n\n", zh.sample(rng), en.sample(rng)));
        }
        i += 1;
    }
    out
}

pub(crate) async fn setup_victim(
    ctx: &Ctx, token: &str, canary: &str, canary_zh: &str, key: &str, source_root: &std::path::Path,
) -> anyhow::Result<Victim> {
    let me = ctx.must("victim /v1/me", ctx.get("/v1/me", token)).await?;
    let user_id = me["id"].as_str().or(me["user"]["id"].as_str()).unwrap_or_default().to_string();
    // A provider key for OpenAI's own address.
    ctx.must("victim saves its OpenAI key", ctx.put("/v1/config", token, json!({"openai_api_key": key}))).await?;
    let mut kbs = Vec::new();
    for name in [format!("{canary_zh} 知识库"), format!("{canary} knowledge")] {
        let kb = ctx
            .must(
                "victim creates a knowledge base",
                ctx.post(
                    "/v1/knowledge-bases",
                    token,
                    json!({"name": name, "description": format!("{canary} {canary_zh}")}),
                ),
            )
            .await?;
        kbs.push(id_of(&kb)?);
    }
    let texts = [
        (
            format!("{canary_zh}.md"),
            format!(
                "# {canary_zh} 机密\n\n这是受害者的机密文件，含有{canary_zh}。退款在七天内完成。\n\n## 细节\n\n{canary} 只属于受害者。"
            ),
        ),
        (
            format!("{canary}.txt"),
            format!(
                "{canary} confidential\n\nThe victim's secret document mentions {canary} and {canary_zh}. Refunds take seven days."
            ),
        ),
    ];
    let mut docs = Vec::new();
    for (name, text) in texts {
        let v = ctx.must("victim uploads", ctx.upload(&kbs[0], token, &name, text.into_bytes(), None)).await?;
        docs.push(id_of(&v)?);
    }
    for doc in &docs {
        match ctx.settle(token, doc).await {
            Some(v) if v["status"] == "completed" => {}
            other => anyhow::bail!("setup: the victim's document did not complete: {other:?}"),
        }
    }
    let agent = ctx
        .must(
            "victim creates an agent",
            ctx.post(
                "/v1/agents",
                token,
                json!({"name": format!("{canary} agent"), "description": canary_zh, "knowledge_base_ids": [kbs[0]]}),
            ),
        )
        .await?;
    let agent = id_of(&agent)?;
    let answer = ctx
        .must(
            "victim chats",
            ctx.post(
                &format!("/v1/agents/{agent}/chat"),
                token,
                json!({"message": format!("{canary_zh} 退款多久？ {canary}")}),
            ),
        )
        .await?;
    let conversation = answer["conversation_id"].as_str().context("no conversation")?.to_string();
    let source = ctx
        .must(
            "victim adds a data source",
            ctx.post(
                "/v1/data-sources",
                token,
                json!({"name": format!("{canary} source"), "knowledge_base_id": kbs[1], "source_type": "local_folder",
                       "config": {"path": source_root.join("a")}}),
            ),
        )
        .await?;
    let source = id_of(&source)?;
    let key = ctx
        .must(
            "victim makes a key",
            ctx.post("/v1/api-keys", token, json!({"name": format!("{canary} key"), "scopes": ["search", "read"]})),
        )
        .await?;
    let key_id = key["api_key"]["id"].as_str().context("key id")?.to_string();
    Ok(Victim { token: token.to_string(), user_id, kbs, docs, agent, conversation, source, key_id })
}

pub(crate) async fn setup_attacker(
    ctx: &Ctx, rng: &mut Rng, source_root: &std::path::Path, provider_port: u16,
) -> anyhow::Result<Attacker> {
    let name = format!("mallory{:08x}", rng.next_u64() as u32);
    let auth = ctx
        .must(
            "attacker registers",
            ctx.http.post(ctx.url("/v1/auth/register")).json(
                &json!({"username": name, "email": format!("{name}@example.com"), "password": "mallory-password"}),
            ),
        )
        .await?;
    let session = auth["token"].as_str().context("no token")?.to_string();
    let kb_bound = id_of(
        &ctx.must("attacker kb", ctx.post("/v1/knowledge-bases", &session, json!({"name": "mallory bound"}))).await?,
    )?;
    let kb_other = id_of(
        &ctx.must("attacker kb", ctx.post("/v1/knowledge-bases", &session, json!({"name": "mallory other"}))).await?,
    )?;
    let mut keys = Vec::new();
    for scope in ["search", "upload", "read", "delete"] {
        keys.push((format!("{scope} key"), api_key(ctx, &session, scope, json!([scope]), None).await?.0));
        keys.push((
            format!("{scope} key bound"),
            api_key(ctx, &session, scope, json!([scope]), Some(&kb_bound)).await?.0,
        ));
    }
    let all = json!(["search", "upload", "read", "delete"]);
    let (all_bound, _) = api_key(ctx, &session, "all bound", all.clone(), Some(&kb_bound)).await?;
    let (all_unbound, own_key_id) = api_key(ctx, &session, "all", all, None).await?;
    keys.push(("all-scope key bound".into(), all_bound.clone()));
    keys.push(("all-scope key".into(), all_unbound));
    let find = |label: &str| keys.iter().find(|(l, _)| l == label).map(|(_, k)| k.clone()).unwrap_or_default();
    let (upload_bound, upload_unbound, search_unbound) =
        (find("upload key bound"), find("upload key"), find("search key"));
    // Objects in the other knowledge base.
    let doc = ctx
        .must(
            "attacker uploads",
            ctx.upload(&kb_other, &session, "own.md", "# 自己的 own\n\n攻击者自己的文件。".as_bytes().to_vec(), None),
        )
        .await?;
    let other_doc = id_of(&doc)?;
    let agent = ctx
        .must(
            "attacker agent",
            ctx.post("/v1/agents", &session, json!({"name": "mallory other", "knowledge_base_ids": [kb_other]})),
        )
        .await?;
    let other_agent = id_of(&agent)?;
    ctx.settle(&session, &other_doc).await;
    let answer = ctx
        .must(
            "attacker chats",
            ctx.post(&format!("/v1/agents/{other_agent}/chat"), &session, json!({"message": "自己的？"})),
        )
        .await?;
    let other_conversation = answer["conversation_id"].as_str().context("conversation")?.to_string();
    let source = ctx
        .must(
            "attacker source",
            ctx.post("/v1/data-sources", &session, json!({"name": "mallory folder", "knowledge_base_id": kb_other, "source_type": "local_folder", "config": {"path": source_root.join("b")}})),
        )
        .await?;
    let other_source = id_of(&source)?;
    // The attacker's webhook: an allowed address that redirects to the recorder.
    ctx.must(
        "attacker webhook",
        ctx.put("/v1/config", &session, json!({"webhook_url": format!("http://127.0.0.1:{provider_port}/redirect/hook"), "error_notifications": true, "sync_notifications": true})),
    )
    .await?;
    Ok(Attacker {
        session,
        keys,
        upload_bound,
        upload_unbound,
        search_unbound,
        all_bound,
        kb_bound,
        kb_other,
        other_doc,
        other_agent,
        other_conversation,
        other_source,
        own_key_id,
    })
}

/// A new key of the session's user: the key and its id.
pub(crate) async fn api_key(
    ctx: &Ctx, session: &str, name: &str, scopes: Value, kb: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let v = ctx
        .must(
            "attacker key",
            ctx.post("/v1/api-keys", session, json!({"name": name, "scopes": scopes, "knowledge_base_id": kb})),
        )
        .await?;
    Ok((v["key"].as_str().context("key")?.to_string(), v["api_key"]["id"].as_str().unwrap_or_default().to_string()))
}

/// The agent that calls Lore itself, its name, and its owner's key and session.
pub(crate) struct SelfLoop {
    pub(crate) agent: String,
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) session: String,
}

/// What the attacker leaves standing to make the server call out: objects pointing at allowed
/// addresses that redirect to the recorder, and an agent that calls Lore itself.
pub(crate) struct Triggers {
    pub(crate) redirect_agent: Option<String>,
    pub(crate) self_agent: Option<SelfLoop>,
    pub(crate) redirect_kb: Option<String>,
    pub(crate) sources: Vec<String>,
}

pub(crate) async fn setup_triggers(
    ctx: &Ctx, b: &Attacker, redirect: &str, lore_port: u16,
) -> anyhow::Result<Triggers> {
    let s = &b.session;
    let created = |v: Option<(u16, Value)>| {
        v.filter(|(st, _)| (200..300).contains(st)).and_then(|(_, v)| v["id"].as_str().map(str::to_string))
    };
    let redirect_agent = created(
        ctx.call(
            "attacker agent via a redirect",
            ctx.post("/v1/agents", s, json!({"name": "via redirect", "model_provider": "openai", "model_name": "m", "knowledge_base_ids": [b.kb_bound],
                                             "model_parameters": {"base_url": format!("{redirect}/v1"), "api_key": "sk-mallory", "max_attempts": 1, "timeout_seconds": 10}})),
            Expect::Answer,
            true,
        )
        .await,
    );
    // An agent whose model is Lore's own OpenAI-compatible endpoint, naming itself as the model,
    // with a key of its owner: the operator allowed 127.0.0.1 for its model server. Its owner is a
    // second account of the attacker's with no knowledge base, so that no retrieval slows a hop.
    let loop_user = format!("mallory-loop{lore_port}");
    let loop_session = ctx
        .must(
            "attacker registers a second account",
            ctx.http.post(ctx.url("/v1/auth/register")).json(
                &json!({"username": loop_user, "email": format!("{loop_user}@example.com"), "password": "mallory-password"}),
            ),
        )
        .await?["token"]
        .as_str()
        .context("no token")?
        .to_string();
    let (loop_key, _) = api_key(ctx, &loop_session, "loop", json!(["search"]), None).await?;
    let self_agent = created(
        ctx.call(
            "attacker agent calling Lore itself",
            ctx.post("/v1/agents", &loop_session, json!({"name": "ouroboros", "model_provider": "openai", "model_name": "ouroboros",
                                             "model_parameters": {"base_url": format!("http://127.0.0.1:{lore_port}/v1"), "api_key": loop_key, "max_attempts": 1}})),
            Expect::Answer,
            true,
        )
        .await,
    )
    .map(|id| SelfLoop { agent: id, name: "ouroboros".into(), key: loop_key.clone(), session: loop_session.clone() });
    let redirect_kb = created(
        ctx.call(
            "attacker knowledge base embedding via a redirect",
            ctx.post("/v1/knowledge-bases", s, json!({"name": "embed via redirect", "settings": {"embedding_config": {"provider": "openai", "model": "m", "dimensions": 8, "base_url": format!("{redirect}/v1")}}})),
            Expect::Answer,
            true,
        )
        .await,
    );
    let mut sources = Vec::new();
    for (kind, config) in [
        ("web", json!({"url": format!("{redirect}/page.html"), "max_pages": 3})),
        ("git", json!({"url": format!("{redirect}/repo.git")})),
        ("s3", json!({"bucket": "bucket", "endpoint": redirect})),
    ] {
        if let Some(id) = created(
            ctx.call(
                &format!("attacker {kind} source via a redirect"),
                ctx.post("/v1/data-sources", s, json!({"name": format!("{kind} via redirect"), "knowledge_base_id": b.kb_other, "source_type": kind, "config": config})),
                Expect::Answer,
                true,
            )
            .await,
        ) {
            sources.push(id);
        }
    }
    Ok(Triggers { redirect_agent, self_agent, redirect_kb, sources })
}
