//! Rounds on documents: chunking configurations, hostile files, the amplification probe, and the
//! victim's upload queued behind them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use super::*;
use crate::Vocabulary;

pub(crate) async fn chunking_round(
    ctx: &Ctx, b: &Attacker, text: &str, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng, round: usize,
) {
    let mut docs = Vec::new();
    for i in 0..6 {
        let config = chunking_config(rng);
        let shown = shorten(&config.to_string());
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.session };
        let body = if rng.below(3) == 0 {
            json!({"text": text, "chunking_config": config, "knowledge_base_id": b.kb_bound})
        } else {
            json!({"text": text, "chunking_config": config})
        };
        ctx.call(&format!("preview {shown}"), ctx.post("/v1/chunking/preview", token, body), Expect::Answer, true)
            .await;
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.session };
        ctx.call(
            &format!("PATCH settings {shown}"),
            ctx.patch(
                &format!("/v1/knowledge-bases/{}", b.kb_bound),
                token,
                json!({"settings": {"chunking_config": config}}),
            ),
            Expect::Answer,
            true,
        )
        .await;
        // A few KB, fewer where the sizes are tiny: the chunks (and their embeddings) a byte may
        // cost is the amplification probe's business, once a run, not every upload's.
        let smallest =
            config["config"].as_object().into_iter().flatten().filter_map(|(_, v)| v.as_u64()).filter(|n| *n > 0).min();
        let size = (smallest.unwrap_or(800).saturating_mul(100) as usize).clamp(600, 4_000 + rng.below(20_000));
        let small = mixed_text(en, zh, rng, size);
        if let Some((202, v)) = ctx
            .call(
                &format!("upload with chunking_config {shown}"),
                ctx.upload(
                    &b.kb_bound,
                    &b.upload_bound,
                    &format!("cfg-{round}-{i}.md"),
                    small.into_bytes(),
                    Some(config.to_string()),
                ),
                Expect::Answer,
                true,
            )
            .await
            && let Some(id) = v["id"].as_str()
        {
            docs.push((id.to_string(), shown));
        }
    }
    // The user's own defaults at the edges, then a preview that falls back on them.
    let defaults = json!({"default_chunk_size": edge(rng, 800), "default_chunk_overlap": edge(rng, 800)});
    let shown = shorten(&defaults.to_string());
    ctx.call(&format!("PUT defaults {shown}"), ctx.put("/v1/config", &b.session, defaults), Expect::Answer, true).await;
    ctx.call(
        &format!("preview with defaults {shown}"),
        ctx.post("/v1/chunking/preview", &b.session, json!({"text": text})),
        Expect::Answer,
        true,
    )
    .await;
    ctx.call(
        "PUT defaults back",
        ctx.put("/v1/config", &b.session, json!({"default_chunk_size": null, "default_chunk_overlap": null})),
        Expect::Success,
        true,
    )
    .await;
    ctx.call(
        "PATCH settings back",
        ctx.patch(
            &format!("/v1/knowledge-bases/{}", b.kb_bound),
            &b.session,
            json!({"settings": {"chunking_config": null}}),
        ),
        Expect::Answer,
        true,
    )
    .await;
    for (doc, shown) in docs {
        judge_document(ctx, &b.session, &doc, &format!("chunking {shown}"), "chunking-config upload").await;
    }
    if round == 1 {
        amplification_probe(ctx, b, en, zh, rng).await;
    }
}

/// The amplification probe's document, judged at the end of the run (the rounds go on meanwhile).
pub(crate) struct Probe {
    pub(crate) doc: String,
    pub(crate) what: String,
    pub(crate) chars: usize,
    pub(crate) since: Instant,
}

pub(crate) async fn judge_probe(ctx: &Ctx, b: &Attacker) {
    let Some(probe) = ctx.probe.lock().expect("probe").take() else { return };
    let done = judge_document_since(ctx, &b.session, &probe.doc, &probe.what, "amplification probe", probe.since).await;
    let chunks = done.as_ref().map(|d| d["chunk_count"].to_string()).unwrap_or_else(|| "?".into());
    let took = done
        .as_ref()
        .and_then(processing_seconds)
        .map(|s| format!("in {s:.0} s"))
        .unwrap_or_else(|| format!("not done in {} s", DOCUMENT_DEADLINE.as_secs()));
    ctx.tally.lock().expect("tally").amplification = format!("{} characters → {chunks} chunks {took}", probe.chars);
}

/// Once a run: the most chunks a small upload may cost within the budgets (a sliding window of
/// 10 characters moved by 1 repeats each character 10 times, the most allowed, and gives a chunk
/// per character, each embedded). It must be done within the document deadline.
pub(crate) async fn amplification_probe(ctx: &Ctx, b: &Attacker, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) {
    let text = mixed_text(en, zh, rng, 16_000);
    let chars = text.chars().count();
    let config = json!({"strategy_type": "sliding_window", "config": {"window_size": 10, "step": 1}});
    let since = Instant::now();
    let what = format!("a {} KB upload chunked by {config}", text.len() / 1000);
    let Some((202, v)) = ctx
        .call(
            &what,
            ctx.upload(&b.kb_bound, &b.upload_bound, "amplification.md", text.into_bytes(), Some(config.to_string())),
            Expect::Answer,
            true,
        )
        .await
    else {
        ctx.tally.lock().expect("tally").amplification = format!("{what}: refused");
        return;
    };
    let Some(id) = v["id"].as_str() else { return };
    *ctx.probe.lock().expect("probe") = Some(Probe { doc: id.to_string(), what, chars, since });
}

/// A document must end completed, or failed with a code.
pub(crate) async fn judge_document(ctx: &Ctx, token: &str, doc: &str, what: &str, kind: &str) -> Option<Value> {
    judge_document_since(ctx, token, doc, what, kind, Instant::now()).await
}

pub(crate) async fn judge_document_since(
    ctx: &Ctx, token: &str, doc: &str, what: &str, kind: &str, since: Instant,
) -> Option<Value> {
    let outcome = ctx.settle_since(token, doc, since).await;
    let label = match &outcome {
        Some(v) if v["status"] == "completed" => "completed".to_string(),
        Some(v) if v["status"] == "failed" => match v["error_code"].as_str() {
            Some(code) if !code.is_empty() => format!("failed {code}"),
            _ => {
                ctx.finding(format!("{what}: failed without an error code: {}", shorten(&v.to_string())));
                "failed without a code".to_string()
            }
        },
        _ => {
            let now = ctx.http.get(ctx.url(&format!("/v1/documents/{doc}"))).bearer_auth(token).send().await;
            let view = match now {
                Ok(r) => r.json::<Value>().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            let last = view["processing_log"].as_array().and_then(|l| l.last()).cloned().unwrap_or_default();
            ctx.finding(format!(
                "{what}: not completed or failed within {} s of processing ({} s in the queue) (status {}, progress {}, last step: {} {})",
                DOCUMENT_DEADLINE.as_secs(),
                QUEUE_DEADLINE.as_secs(),
                view["status"],
                view["progress"],
                last["stage"],
                last["message"]
            ));
            "stuck".to_string()
        }
    };
    let took = outcome.as_ref().and_then(processing_seconds);
    if let Some(secs) = took {
        eprintln!("{kind}: {label} in {secs:.1} s ({what})");
    }
    let mut tally = ctx.tally.lock().expect("tally");
    *tally.files.entry(format!("{kind}: {label}")).or_default() += 1;
    if let Some(secs) = took
        && secs > tally.slowest_document.0
    {
        tally.slowest_document = (secs, format!("{kind} ({label})"));
    }
    drop(tally);
    outcome
}

/// The victim's small upload, made while the attacker's files are queued, must be done within
/// `DOCUMENT_DEADLINE` of its upload: its wait in the queue counts.
pub(crate) async fn victim_upload_behind(
    ctx: &Ctx, victim: &Victim, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng, round: usize,
) {
    let text = format!("# 受害者 victim {round}\n\n{}", mixed_text(en, zh, rng, 2_000));
    let since = Instant::now();
    let Some((202, v)) = ctx
        .call(
            "victim uploads behind the attacker's files",
            ctx.upload(&victim.kbs[1], &victim.token, &format!("behind-{round}.md"), text.into_bytes(), None),
            Expect::Success,
            false,
        )
        .await
    else {
        return;
    };
    let Some(id) = v["id"].as_str() else { return };
    let mut last = Value::Null;
    while since.elapsed() < DOCUMENT_DEADLINE {
        if let Some((_, v)) = ctx
            .call(
                "victim polls its upload",
                ctx.get(&format!("/v1/documents/{id}"), &victim.token),
                Expect::Success,
                false,
            )
            .await
        {
            if v["status"] == "completed" {
                let mut tally = ctx.tally.lock().expect("tally");
                tally.victim_wait = tally.victim_wait.max(since.elapsed().as_secs_f64());
                return;
            }
            if v["status"] == "failed" {
                ctx.finding(format!(
                    "the victim's upload behind the attacker's files failed: {}",
                    shorten(&v.to_string())
                ));
                return;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.finding(format!(
        "the victim's upload waited more than {} s behind the attacker's files (status {}, progress {})",
        DOCUMENT_DEADLINE.as_secs(),
        last["status"],
        last["progress"]
    ));
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn files_round(
    ctx: &Ctx, victim: &Victim, b: &Attacker, bombs: &Arc<Bombs>, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng,
    round: usize, first: bool,
) {
    let kinds: Vec<&str> = if first {
        FILE_KINDS.to_vec()
    } else {
        let mut picked: Vec<&str> = (0..3).map(|_| FILE_KINDS[rng.below(FILE_KINDS.len())]).collect();
        // The 64 MB email is the slow one to send: now and then.
        if !round.is_multiple_of(4) {
            picked.retain(|k| *k != "eml-base64-bomb");
        }
        picked
    };
    let mut uploaded = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let tag = format!("r{round}i{i}x{:08x}", rng.next_u64() as u32);
        let (name, bytes) = {
            let (bombs, kind, tag) = (bombs.clone(), kind.to_string(), tag.clone());
            let mut local = Rng(rng.next_u64() | 1);
            tokio::task::spawn_blocking(move || bombs.file(&kind, &tag, &mut local)).await.expect("build a file")
        };
        let size = bytes.len();
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.upload_unbound };
        match ctx
            .call(
                &format!("upload {kind} ({size} bytes)"),
                ctx.upload(&b.kb_bound, token, &name, bytes, None),
                Expect::Answer,
                true,
            )
            .await
        {
            Some((202, v)) => {
                if let Some(id) = v["id"].as_str() {
                    uploaded.push((id.to_string(), kind.to_string()));
                }
            }
            Some((status, v)) => {
                let code = v["error"]["code"].as_str().unwrap_or("none").to_string();
                *ctx.tally
                    .lock()
                    .expect("tally")
                    .files
                    .entry(format!("{kind}: refused {status} {code}"))
                    .or_default() += 1;
            }
            None => {}
        }
    }
    // The victim uploads behind the attacker's files: owners take turns in the queue, so it is
    // done within the document deadline counted from its upload, whatever the attacker queued.
    victim_upload_behind(ctx, victim, en, zh, rng, round).await;
    for (doc, kind) in &uploaded {
        judge_document(ctx, &b.session, doc, &format!("hostile file {kind}"), kind).await;
    }
    // A normal upload right after completes.
    let text = format!("# 正常 normal {round}\n\n{}", mixed_text(en, zh, rng, 3_000));
    if let Some((202, v)) = ctx
        .call(
            "normal upload after the files",
            ctx.upload(&b.kb_bound, &b.upload_bound, &format!("normal-{round}.md"), text.into_bytes(), None),
            Expect::Success,
            true,
        )
        .await
        && let Some(id) = v["id"].as_str()
        && let Some(done) = judge_document(ctx, &b.session, id, "normal upload after the files", "normal").await
        && done["status"] != "completed"
    {
        ctx.finding(format!(
            "a normal upload after the hostile files did not complete: {}",
            shorten(&done.to_string())
        ));
    }
}
