//! The storage conformance suite: behaviour every `Store` implementation must have, written
//! against the trait so that each backend runs the same checks.

use std::time::Duration;

use lore_core::agent::*;
use lore_core::error::Code;
use lore_core::model::*;
use lore_core::source::*;
use lore_core::store::{AccountStore, DocumentStore, RetentionStore, SearchStore};
use lore_core::store::{Store, Upload};
use lore_store::{PgStore, SqliteStore};
use serde_json::json;

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("lore.db")).await.expect("open");
    (store, dir)
}

async fn user(store: &dyn Store, name: &str) -> User {
    store
        .create_user(NewUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "x".into(),
            full_name: None,
            first_name: None,
            last_name: None,
        })
        .await
        .expect("user")
}

async fn kb(store: &dyn Store, owner: Id) -> KnowledgeBase {
    store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: owner,
            created_by: None,
            name: "kb".into(),
            description: None,
            icon_url: None,
            settings: KbSettings::default(),
        })
        .await
        .expect("kb")
}

async fn document(store: &dyn Store, owner: Id, kb: Id, hash: &str, size: i64) -> Document {
    match store
        .create_document(NewDocument {
            knowledge_base_id: kb,
            user_id: owner,
            uploaded_by: Some(owner),
            filename: format!("{hash}.md"),
            file_type: "markdown".into(),
            file_type_id: None,
            file_size: size,
            mime_type: "text/markdown".into(),
            file_hash: hash.into(),
            file_path: format!("blobs/{hash}"),
            metadata: json!({"lang": "zh"}),
            chunking_config: None,
            expires_at: None,
            data_source_id: None,
        })
        .await
        .expect("document")
    {
        Upload::Created(d) => d,
        Upload::Duplicate(d) => panic!("unexpected duplicate {}", d.id),
    }
}

fn processed(texts: &[(&str, &str)]) -> ProcessedDocument {
    ProcessedDocument {
        title: Some("标题".into()),
        raw_content: "raw".into(),
        processed_content: "processed".into(),
        source_metadata: json!({}),
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, (content, terms))| NewChunk {
                content: content.to_string(),
                content_hash: format!("h{i}"),
                chunk_index: i as i64,
                metadata: json!({}),
                fts_terms: terms.to_string(),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: None,
            })
            .collect(),
        embedding_model: None,
        log: vec![LogEntry::new("index", "done")],
    }
}

/// Claims the next job, which must belong to `doc`, and completes it.
async fn process(store: &dyn Store, doc: Id, texts: &[(&str, &str)]) {
    let job = store.claim_job("test", Duration::from_secs(60)).await.expect("claim").expect("a job");
    assert_eq!(job.document_id, Some(doc));
    store.complete_document(&job, doc, processed(texts)).await.expect("complete");
}

async fn kb_stats(store: &dyn Store, owner: Id, id: Id) -> (i64, i64, i64) {
    let kb = store.get_knowledge_base(owner, id).await.expect("get").expect("kb");
    (kb.document_count, kb.chunk_count, kb.total_size_bytes)
}

async fn search(store: &dyn Store, owner: Id, kb: Id, terms: &[&str], filters: SearchFilters) -> Vec<ChunkHit> {
    store
        .search_fulltext(&FulltextQuery {
            user_id: owner,
            knowledge_base_id: kb,
            terms: terms.iter().map(|t| t.to_string()).collect(),
            top_k: 10,
            filters,
        })
        .await
        .expect("search")
}

async fn statistics_are_kept_by_the_database(store: &dyn Store) {
    let owner = user(store, "stats").await;
    let kb = kb(store, owner.id).await;
    let a = document(store, owner.id, kb.id, "aaa", 100).await;
    let b = document(store, owner.id, kb.id, "bbb", 50).await;
    assert_eq!(kb_stats(store, owner.id, kb.id).await, (2, 0, 150));
    process(store, a.id, &[("一", "一"), ("二", "二")]).await;
    process(store, b.id, &[("三", "三")]).await;
    assert_eq!(kb_stats(store, owner.id, kb.id).await, (2, 3, 150));
    assert_eq!(store.get_document(owner.id, a.id).await.expect("get").expect("doc").chunk_count, 2);
    assert_eq!(store.get_user(owner.id).await.expect("get").expect("user").storage_used, 150);

    store.soft_delete_document(owner.id, a.id, lore_core::now()).await.expect("delete").expect("doc");
    assert_eq!(kb_stats(store, owner.id, kb.id).await, (1, 1, 50));
    assert_eq!(store.get_user(owner.id).await.expect("get").expect("user").storage_used, 150, "blob still stored");
    store.restore_document(owner.id, a.id).await.expect("restore").expect("doc");
    assert_eq!(kb_stats(store, owner.id, kb.id).await, (2, 3, 150));

    let paths = store.delete_knowledge_base(owner.id, kb.id).await.expect("delete").expect("kb existed");
    assert_eq!(paths.len(), 2);
    assert_eq!(store.get_user(owner.id).await.expect("get").expect("user").storage_used, 0);
    assert!(!store.blob_in_use("blobs/aaa").await.expect("in use"));
}

/// The installation's settings change only from the value a node read (the master key's check
/// value is written once, by the first node); nodes beat, show the jobs they hold, and leave.
async fn nodes_beat_hold_and_leave(store: &dyn Store) {
    assert_eq!(store.cluster_setting("master_key_check").await.expect("read"), None);
    assert!(store.swap_cluster_setting("master_key_check", None, "v1:aaa").await.expect("first"));
    assert!(!store.swap_cluster_setting("master_key_check", None, "v1:bbb").await.expect("second first"));
    assert!(!store.swap_cluster_setting("master_key_check", Some("v1:zzz"), "v1:bbb").await.expect("stale"));
    assert!(store.swap_cluster_setting("master_key_check", Some("v1:aaa"), "v1:bbb").await.expect("rotate"));
    assert_eq!(store.cluster_setting("master_key_check").await.expect("read").as_deref(), Some("v1:bbb"));

    let started = lore_core::now();
    let beat = |id: &str, workers: i64| NodeBeat {
        id: id.into(),
        version: "9.9.9".into(),
        address: "127.0.0.1:1".into(),
        schema_version: 5,
        workers,
        started_at: started,
    };
    store.heartbeat(&beat("node-aaaaaaaa", 2)).await.expect("beat");
    store.heartbeat(&beat("node-bbbbbbbb", 0)).await.expect("beat");
    store.heartbeat(&beat("node-aaaaaaaa", 2)).await.expect("beat again");
    let owner = user(store, "nodes").await;
    let k = kb(store, owner.id).await;
    let doc = document(store, owner.id, k.id, "held", 1).await;
    // A node passes over a job it could not do (a file only another node has); others take it.
    let passed = store.claim_job("node-bbbbbbbb/worker-0", Duration::from_secs(60)).await.expect("claim").expect("job");
    store.retry_later(&passed, "node-bbbbbbbb/worker-0", Duration::ZERO).await.expect("pass on");
    let skip = [passed.id];
    assert!(
        store
            .claim_job_except("node-bbbbbbbb/worker-0", Duration::from_secs(60), &skip)
            .await
            .expect("claim")
            .is_none()
    );
    let job = store.claim_job("node-aaaaaaaa/worker-1", Duration::from_secs(60)).await.expect("claim").expect("job");
    assert_eq!((job.id, job.attempts), (passed.id, 1), "passing on costs no attempt");
    let nodes = store.list_nodes(started - chrono::Duration::seconds(1)).await.expect("list");
    assert_eq!(nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["node-aaaaaaaa", "node-bbbbbbbb"]);
    assert_eq!(nodes[0].jobs.iter().map(|j| j.document_id).collect::<Vec<_>>(), [Some(doc.id)]);
    assert_eq!(nodes[0].jobs[0].worker, "node-aaaaaaaa/worker-1");
    assert_eq!((nodes[0].workers, nodes[1].workers), (2, 0));
    assert!(nodes[1].jobs.is_empty());
    // Silent since before `alive_since`: not listed.
    assert!(store.list_nodes(lore_core::now() + chrono::Duration::seconds(5)).await.expect("list").is_empty());
    store.leave("node-bbbbbbbb").await.expect("leave");
    let nodes = store.list_nodes(started - chrono::Duration::seconds(1)).await.expect("list");
    assert_eq!(nodes.len(), 1);
    store.complete_document(&job, doc.id, processed(&[("节点", "节点")])).await.expect("complete");
    store.leave("node-aaaaaaaa").await.expect("leave");
}

/// One owner's backlog doesn't hold back another owner's upload: owners take turns, and an owner
/// with jobs running waits behind owners with none.
async fn owners_take_turns_in_the_queue(store: &dyn Store) {
    let greedy = user(store, "greedy").await;
    let patient = user(store, "patient").await;
    let late = user(store, "late").await;
    let (g, p, l) = (kb(store, greedy.id).await, kb(store, patient.id).await, kb(store, late.id).await);
    let mut backlog = Vec::new();
    for i in 0..4 {
        backlog.push(document(store, greedy.id, g.id, &format!("turn-g{i}"), 1).await.id);
    }
    let p1 = document(store, patient.id, p.id, "turn-p1", 1).await.id;
    let p2 = document(store, patient.id, p.id, "turn-p2", 1).await.id;
    let l1 = document(store, late.id, l.id, "turn-l1", 1).await.id;

    let mut order = Vec::new();
    // Three workers claim while the first jobs still run: each owner gets one.
    let mut running = Vec::new();
    for worker in ["w1", "w2", "w3"] {
        let job = store.claim_job(worker, Duration::from_secs(60)).await.expect("claim").expect("job");
        order.push(job.document_id.expect("document job"));
        running.push(job);
    }
    // Then one worker at a time: the turns go round the owners still waiting.
    while let Some(job) = store.claim_job("w1", Duration::from_secs(60)).await.expect("claim") {
        order.push(job.document_id.expect("document job"));
        running.push(job);
        if order.len() > 7 {
            break;
        }
    }
    assert_eq!(order, vec![backlog[0], p1, l1, backlog[1], p2, backlog[2], backlog[3]]);
    for job in running {
        let doc = job.document_id.expect("document job");
        store.complete_document(&job, doc, processed(&[("轮流", "轮流")])).await.expect("complete");
    }
    assert_eq!(store.pending_jobs().await.expect("pending"), 0);
}

async fn the_queue_leases_retries_and_replaces(store: &dyn Store) {
    let owner = user(store, "queue").await;
    let kb = kb(store, owner.id).await;
    let first = document(store, owner.id, kb.id, "q1", 1).await;
    let second = document(store, owner.id, kb.id, "q2", 1).await;
    assert_eq!(store.pending_jobs().await.expect("pending"), 2);

    let job1 = store.claim_job("w1", Duration::from_secs(60)).await.expect("claim").expect("job");
    assert_eq!(job1.document_id, Some(first.id), "oldest first");
    assert_eq!(job1.attempts, 1);
    assert_eq!(store.document_for_job(first.id).await.expect("doc").expect("doc").status, DocStatus::Processing);
    let job2 = store.claim_job("w2", Duration::ZERO).await.expect("claim").expect("job");
    assert_eq!(job2.document_id, Some(second.id));
    // A lease that ran out makes the job claimable again; a live lease does not.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = store.claim_job("w3", Duration::from_secs(60)).await.expect("claim").expect("expired lease");
    assert_eq!((again.document_id, again.attempts), (Some(second.id), 2));
    assert!(store.claim_job("w4", Duration::from_secs(60)).await.expect("claim").is_none());
    // Only the holder renews a lease; the worker that lost it learns so.
    assert!(store.extend_lease(again.id, "w3", Duration::from_secs(60)).await.expect("renew"));
    assert!(!store.extend_lease(again.id, "w2", Duration::from_secs(60)).await.expect("renew"));
    // Each claim is in the document's log, with the worker that made it.
    let log = store.document_for_job(second.id).await.expect("doc").expect("doc").processing_log;
    let claims: Vec<&str> = log.iter().filter(|e| e.stage == "claim").map(|e| e.message.as_str()).collect();
    assert_eq!(claims, ["claimed by w2 (attempt 1)", "claimed by w3 (attempt 2)"]);
    // A job the machine failed (disk full, database down) goes back to the queue without counting
    // the attempt, and only its holder can send it back.
    store.retry_later(&again, "w2", Duration::ZERO).await.expect("not the holder");
    assert!(store.claim_job("w4", Duration::from_secs(60)).await.expect("claim").is_none());
    store.retry_later(&again, "w3", Duration::ZERO).await.expect("retry later");
    assert_eq!(store.document_for_job(second.id).await.expect("doc").expect("doc").status, DocStatus::Pending);
    let retried = store.claim_job("w3", Duration::from_secs(60)).await.expect("claim").expect("retried job");
    assert_eq!((retried.document_id, retried.attempts), (Some(second.id), 2));

    // Completing twice (a retried job) replaces chunks instead of duplicating them.
    store.complete_document(&job1, first.id, processed(&[("甲", "甲"), ("乙", "乙")])).await.expect("complete");
    store.complete_document(&job1, first.id, processed(&[("丙", "丙")])).await.expect("complete again");
    let chunks = store.list_chunks(owner.id, first.id).await.expect("chunks");
    assert_eq!(chunks.iter().map(|c| c.content.as_str()).collect::<Vec<_>>(), vec!["丙"]);
    assert!(search(store, owner.id, kb.id, &["甲"], SearchFilters::default()).await.is_empty());
    assert_eq!(kb_stats(store, owner.id, kb.id).await.1, 1);

    // After a crash every running job is queued again.
    assert_eq!(store.release_all_jobs().await.expect("release"), 1);
    assert_eq!(store.document_for_job(second.id).await.expect("doc").expect("doc").status, DocStatus::Pending);
    let job = store.claim_job("w5", Duration::from_secs(60)).await.expect("claim").expect("released job");
    store
        .fail_document(&job, second.id, "corrupt_file", "broken", vec![LogEntry::new("failed", "broken")])
        .await
        .expect("fail");
    let failed = store.get_document(owner.id, second.id).await.expect("get").expect("doc");
    assert_eq!((failed.status, failed.error_code.as_deref()), (DocStatus::Failed, Some("corrupt_file")));
    assert_eq!(failed.processing_log.last().map(|e| e.stage.as_str()), Some("failed"));
    assert_eq!(store.pending_jobs().await.expect("pending"), 0);
}

async fn tenants_are_isolated(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let kb = kb(store, alice.id).await;
    let doc = document(store, alice.id, kb.id, "secret", 10).await;
    process(store, doc.id, &[("机密", "机密")]).await;
    assert!(store.get_knowledge_base(bob.id, kb.id).await.expect("get").is_none());
    assert!(store.get_document(bob.id, doc.id).await.expect("get").is_none());
    assert!(store.list_chunks(bob.id, doc.id).await.expect("chunks").is_empty());
    assert!(store.list_knowledge_bases(bob.id).await.expect("list").is_empty());
    assert!(store.soft_delete_document(bob.id, doc.id, lore_core::now()).await.expect("delete").is_none());
    assert!(store.delete_knowledge_base(bob.id, kb.id).await.expect("delete").is_none());
    assert!(store.update_knowledge_base(bob.id, kb.id, KbPatch::default()).await.expect("update").is_none());
    assert!(search(store, bob.id, kb.id, &["机密"], SearchFilters::default()).await.is_empty());
    assert_eq!(search(store, alice.id, kb.id, &["机密"], SearchFilters::default()).await.len(), 1);
}

async fn fulltext_ranks_filters_and_hides_deleted(store: &dyn Store) {
    let owner = user(store, "searcher").await;
    let kb = kb(store, owner.id).await;
    let a = document(store, owner.id, kb.id, "fa", 1).await;
    let b = document(store, owner.id, kb.id, "fb", 1).await;
    process(store, a.id, &[("中文分词 中文分词", "中文 分词 中文 分词"), ("other", "other")]).await;
    process(store, b.id, &[("中文", "中文 搜索 引擎 很多 其他 词语")]).await;
    let hits = search(store, owner.id, kb.id, &["中文", "分词"], SearchFilters::default()).await;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].document_id, a.id, "more matching terms rank higher");
    assert!(hits[0].score >= hits[1].score);
    // Terms that look like FTS syntax are data, not operators.
    assert!(search(store, owner.id, kb.id, &["\"", "AND", "*", "NEAR("], SearchFilters::default()).await.is_empty());

    let only_b = SearchFilters { document_ids: Some(vec![b.id]), ..Default::default() };
    assert_eq!(search(store, owner.id, kb.id, &["中文"], only_b).await.len(), 1);
    let meta = SearchFilters {
        metadata: Some(json!({"lang": "zh"}).as_object().cloned().expect("map")),
        ..Default::default()
    };
    assert_eq!(search(store, owner.id, kb.id, &["中文"], meta).await.len(), 2);
    let meta = SearchFilters {
        metadata: Some(json!({"lang": "en"}).as_object().cloned().expect("map")),
        ..Default::default()
    };
    assert!(search(store, owner.id, kb.id, &["中文"], meta).await.is_empty());
    let types = SearchFilters { file_types: Some(vec!["pdf".into()]), ..Default::default() };
    assert!(search(store, owner.id, kb.id, &["中文"], types).await.is_empty());

    store.soft_delete_document(owner.id, a.id, lore_core::now()).await.expect("delete");
    let hits = search(store, owner.id, kb.id, &["中文", "分词"], SearchFilters::default()).await;
    assert_eq!(hits.iter().map(|h| h.document_id).collect::<Vec<_>>(), vec![b.id]);
}

async fn common_terms_do_not_drown_selective_ones(store: &dyn Store) {
    let owner = user(store, "pruner").await;
    let kb = kb(store, owner.id).await;
    let doc = document(store, owner.id, kb.id, "big", 1).await;
    let texts: Vec<(String, String)> = (0..1200)
        .map(|i| {
            if i == 600 {
                ("的 罕见词".to_string(), "的 罕见词".to_string())
            } else {
                ("的".into(), "的".into())
            }
        })
        .collect();
    let refs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    process(store, doc.id, &refs).await;
    let hits = search(store, owner.id, kb.id, &["的", "罕见词"], SearchFilters::default()).await;
    assert_eq!(hits.len(), 1, "the rare term decides");
    assert_eq!(hits[0].content, "的 罕见词");
    let hits = search(store, owner.id, kb.id, &["的"], SearchFilters::default()).await;
    assert_eq!(hits.len(), 10, "a query of only common terms still answers");
    assert!(search(store, owner.id, kb.id, &["不存在", "也没有"], SearchFilters::default()).await.is_empty());
}

/// A few chunks in English and Chinese, of several lengths, with the words the queries below ask for.
const SCORED_CHUNKS: &[(&str, &str)] = &[
    ("向量数据库 vector index", "向量 数据 数据库 向量数据库 vector index"),
    ("vector vector search", "vector vector search"),
    ("向量数据库的索引和检索", "向量 数据 数据库 向量数据库 的 索引 和 检索"),
    ("an index of words", "an index of word"),
    ("unrelated", "unrelated"),
];
const SCORED_QUERY: &[&str] = &["向量数据库", "vector", "index", "检索"];

/// Many chunks holding the same words (and others), to shift every statistic BM25 uses.
fn crowding_chunks(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let words = match i % 4 {
                0 => "vector index 向量数据库 vector".to_string(),
                1 => format!("向量数据库 检索 filler{i} filler{} more words here", i + 1),
                2 => "index".to_string(),
                _ => format!("vector other{i} 向量 数据库 检索 检索 index index"),
            };
            (words.clone(), words)
        })
        .collect()
}

async fn process_owned(store: &dyn Store, doc: Id, texts: &[(String, String)]) {
    let refs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    process(store, doc, &refs).await;
}

/// Each hit's content and the exact bits of its score, in content order.
async fn score_bits(store: &dyn Store, owner: Id, kb: Id) -> Vec<(String, u64)> {
    score_bits_in(store, owner, kb, SearchFilters::default()).await
}

async fn score_bits_in(store: &dyn Store, owner: Id, kb: Id, filters: SearchFilters) -> Vec<(String, u64)> {
    let mut scores: Vec<(String, u64)> = search(store, owner, kb, SCORED_QUERY, filters)
        .await
        .into_iter()
        .map(|h| (h.content, h.score.to_bits()))
        .collect();
    scores.sort();
    scores
}

/// Full-text scores come from the searched knowledge base's own statistics: another tenant
/// uploading the same words must not move them (a side channel otherwise: a score would tell
/// whether, and how often, someone else's documents hold a word).
async fn fulltext_scores_do_not_leak_between_tenants(store: &dyn Store) {
    let alice = user(store, "bm25-alice").await;
    let bob = user(store, "bm25-bob").await;
    let alice_kb = kb(store, alice.id).await;
    let doc = document(store, alice.id, alice_kb.id, "bm25-alice", 1).await;
    process(store, doc.id, SCORED_CHUNKS).await;
    let before = score_bits(store, alice.id, alice_kb.id).await;
    assert_eq!(before.len(), 4, "{before:?}");

    let bob_kb = kb(store, bob.id).await;
    for i in 0..3 {
        let doc = document(store, bob.id, bob_kb.id, &format!("bm25-bob-{i}"), 1).await;
        process_owned(store, doc.id, &crowding_chunks(150)).await;
    }
    assert_eq!(search(store, bob.id, bob_kb.id, SCORED_QUERY, SearchFilters::default()).await.len(), 10);
    assert_eq!(score_bits(store, alice.id, alice_kb.id).await, before, "bob's documents moved alice's scores");
    // Nor do bob's deletions.
    let gone = document(store, bob.id, bob_kb.id, "bm25-bob-gone", 1).await;
    process_owned(store, gone.id, &crowding_chunks(40)).await;
    store.soft_delete_document(bob.id, gone.id, lore_core::now()).await.expect("delete").expect("doc");
    assert_eq!(score_bits(store, alice.id, alice_kb.id).await, before);
}

/// Two knowledge bases of one user, searched separately, are each scored from their own
/// statistics: the same chunks score the same in both, and growing one leaves the other be.
async fn fulltext_scores_are_per_knowledge_base(store: &dyn Store) {
    let owner = user(store, "bm25-owner").await;
    let first = kb(store, owner.id).await;
    let second = kb(store, owner.id).await;
    let doc = document(store, owner.id, first.id, "bm25-first", 1).await;
    process(store, doc.id, SCORED_CHUNKS).await;
    let copy = document(store, owner.id, second.id, "bm25-second", 1).await;
    process(store, copy.id, SCORED_CHUNKS).await;
    let scores = score_bits(store, owner.id, first.id).await;
    assert_eq!(score_bits(store, owner.id, second.id).await, scores, "the same chunks, the same statistics");

    let more = document(store, owner.id, second.id, "bm25-more", 1).await;
    process_owned(store, more.id, &crowding_chunks(300)).await;
    assert_eq!(score_bits(store, owner.id, first.id).await, scores, "the other knowledge base moved the scores");
    let only_copy = SearchFilters { document_ids: Some(vec![copy.id]), ..Default::default() };
    let grown = score_bits_in(store, owner.id, second.id, only_copy).await;
    assert_eq!(grown.len(), scores.len(), "{grown:?}");
    assert_ne!(grown, scores, "the grown knowledge base is scored from its own, new statistics");
}

/// The score both stores give: BM25 (k1 1.2, b 0.75, Lucene's idf) over the knowledge base's
/// chunks, a chunk's length counted in distinct terms.
async fn fulltext_scores_are_bm25(store: &dyn Store) {
    let owner = user(store, "bm25-formula").await;
    let kb = kb(store, owner.id).await;
    let doc = document(store, owner.id, kb.id, "bm25-formula", 1).await;
    let chunks = [
        ("apple banana apple", "apple banana apple"),
        ("banana cherry", "banana cherry"),
        ("cherry date elder fig", "cherry date elder fig"),
        ("grape", "grape"),
    ];
    process(store, doc.id, &chunks).await;
    let (n, avgdl) = (4.0_f64, (2.0 + 2.0 + 4.0 + 1.0) / 4.0);
    let bm25 = |tf: f64, df: f64, dl: f64| {
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        idf * tf * 2.2 / (tf + 1.2 * (1.0 - 0.75 + 0.75 * dl / avgdl))
    };
    let hits = search(store, owner.id, kb.id, &["apple", "cherry"], SearchFilters::default()).await;
    let got: Vec<(&str, f64)> = hits.iter().map(|h| (h.content.as_str(), h.score)).collect();
    let expected = [
        ("apple banana apple", bm25(2.0, 1.0, 2.0)),
        ("banana cherry", bm25(1.0, 2.0, 2.0)),
        ("cherry date elder fig", bm25(1.0, 2.0, 4.0)),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((content, score), (want_content, want)) in got.iter().zip(expected) {
        assert_eq!(*content, want_content, "{got:?}");
        assert!((score - want).abs() <= 1e-9 * want, "{content}: {score} instead of {want}");
    }
}

async fn accounts_sessions_and_keys(store: &dyn Store) {
    let u = user(store, "Keeper").await;
    let dup = store
        .create_user(NewUser {
            username: "keeper".into(),
            email: "other@example.com".into(),
            password_hash: "x".into(),
            full_name: None,
            first_name: None,
            last_name: None,
        })
        .await
        .expect_err("usernames are unique regardless of case");
    assert_eq!(dup.code, lore_core::error::Code::UsernameTaken);
    let (found, hash) = store.find_login("KEEPER@example.com").await.expect("find").expect("by email");
    assert_eq!((found.id, hash.as_str()), (u.id, "x"));

    let expires = lore_core::now() + chrono::Duration::hours(1);
    store.create_session(u.id, "tokhash", expires, Some("127.0.0.1"), None).await.expect("session");
    let s = store.find_session("tokhash").await.expect("find").expect("session");
    assert_eq!((s.user.id, s.expires_at), (u.id, expires));
    store.delete_session("tokhash").await.expect("delete");
    assert!(store.find_session("tokhash").await.expect("find").is_none());

    let key = store
        .create_api_key(NewApiKey {
            created_by: None,
            user_id: u.id,
            knowledge_base_id: None,
            name: "k".into(),
            description: None,
            key_hash: "keyhash".into(),
            key_prefix: "lore_abcdefg".into(),
            key_suffix: "wxyz".into(),
            scopes: vec![Scope::Search, Scope::Read],
            rate_limit: Some(60),
            daily_quota: None,
            monthly_quota: None,
            expires_at: None,
            security: json!({}),
        })
        .await
        .expect("key");
    let rec = store.find_api_key("keyhash").await.expect("find").expect("key");
    assert_eq!((rec.key.id, rec.key.scopes.clone(), rec.user.id), (key.id, vec![Scope::Search, Scope::Read], u.id));
    let usage = store.count_api_key_request(key.id, lore_core::now(), Some("10.0.0.1")).await.expect("use");
    assert!(usage.allowed);
    // The owner edits what a live key may do; another user's edit and the key's hash change nothing.
    let expires = lore_core::now() + chrono::Duration::days(30);
    let edited = ApiKey {
        name: "检索密钥".into(),
        description: Some("narrowed".into()),
        scopes: vec![Scope::Search],
        rate_limit: Some(10),
        daily_quota: Some(1000),
        monthly_quota: None,
        expires_at: Some(expires),
        security: json!({"allowed_ips": ["198.51.100.0/24"]}),
        ..key.clone()
    };
    assert!(!store.update_api_key(&ApiKey { user_id: lore_core::new_id(), ..edited.clone() }).await.expect("update"));
    assert!(store.update_api_key(&edited).await.expect("update"));
    let rec = store.find_api_key("keyhash").await.expect("find").expect("key");
    assert_eq!((rec.key.name.as_str(), rec.key.scopes.clone()), ("检索密钥", vec![Scope::Search]));
    assert_eq!((rec.key.rate_limit, rec.key.daily_quota, rec.key.monthly_quota), (Some(10), Some(1000), None));
    assert_eq!(rec.key.expires_at.map(|t| t.timestamp_millis()), Some(expires.timestamp_millis()));
    assert_eq!(rec.key.security, json!({"allowed_ips": ["198.51.100.0/24"]}));
    assert_eq!(rec.key.last_used_ip.as_deref(), Some("10.0.0.1"), "usage is not an edit's to change");
    assert!(store.revoke_api_key(u.id, key.id, lore_core::now()).await.expect("revoke"));
    assert!(!store.update_api_key(&edited).await.expect("update"), "a revoked key stays as it was");
    let rec = store.find_api_key("keyhash").await.expect("find").expect("key");
    assert!(!rec.key.is_active && rec.key.revoked_at.is_some());
    assert_eq!(rec.key.last_used_ip.as_deref(), Some("10.0.0.1"));
    let other = user(store, "other").await;
    assert!(!store.revoke_api_key(other.id, key.id, lore_core::now()).await.expect("revoke"));
}

async fn limits_count_atomically_and_reset_by_window(store: &dyn Store) {
    let u = user(store, "counter").await;
    let key = store
        .create_api_key(NewApiKey {
            created_by: None,
            user_id: u.id,
            knowledge_base_id: None,
            name: "limited".into(),
            description: None,
            key_hash: "limited-hash".into(),
            key_prefix: "lore_limited".into(),
            key_suffix: "abcd".into(),
            scopes: vec![Scope::Read],
            rate_limit: Some(2),
            daily_quota: Some(3),
            monthly_quota: Some(4),
            expires_at: None,
            security: json!({}),
        })
        .await
        .expect("key");
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&chrono::Utc);
    let count = |t: &str| store.count_api_key_request(key.id, at(t), None);
    assert!(count("2026-01-31T23:58:01Z").await.expect("1").allowed);
    assert!(count("2026-01-31T23:58:30Z").await.expect("2").allowed);
    let refused = count("2026-01-31T23:58:59Z").await.expect("3");
    assert!(!refused.allowed);
    assert_eq!((refused.rate_count, refused.usage_today), (2, 2), "a refusal counts nothing");
    assert!(count("2026-01-31T23:59:00Z").await.expect("new minute").allowed);
    let daily = count("2026-01-31T23:59:10Z").await.expect("daily");
    assert!(!daily.allowed && daily.usage_today == 3);
    // A new day resets the daily counter, not the monthly one.
    let next_day = count("2026-02-01T00:00:05Z").await.expect("next day");
    assert!(next_day.allowed);
    assert_eq!((next_day.usage_today, next_day.usage_month), (1, 1), "a new month, too");
}

async fn retention_purges(store: &dyn Store) {
    let owner = user(store, "retained").await;
    let kb = kb(store, owner.id).await;
    let past = lore_core::now() - chrono::Duration::days(1);
    let doc = match store
        .create_document(NewDocument {
            knowledge_base_id: kb.id,
            user_id: owner.id,
            uploaded_by: None,
            filename: "old.txt".into(),
            file_type: "text".into(),
            file_type_id: None,
            file_size: 5,
            mime_type: "text/plain".into(),
            file_hash: "expiring".into(),
            file_path: "blobs/expiring".into(),
            metadata: json!({}),
            chunking_config: None,
            expires_at: Some(past),
            data_source_id: None,
        })
        .await
        .expect("doc")
    {
        Upload::Created(d) => d,
        Upload::Duplicate(_) => panic!("duplicate"),
    };
    process(store, doc.id, &[("过期", "过期")]).await;
    assert_eq!(store.expire_documents(lore_core::now()).await.expect("expire"), 1);
    let expired = store.get_document(owner.id, doc.id).await.expect("get").expect("doc");
    assert!(expired.soft_deleted_at.is_some());
    assert!(store.purge_deleted_documents(past).await.expect("purge").is_empty(), "still in its grace period");
    let paths = store.purge_deleted_documents(lore_core::now() + chrono::Duration::seconds(1)).await.expect("purge");
    assert!(paths.contains(&"blobs/expiring".to_string()), "{paths:?}");
    assert!(store.get_document(owner.id, doc.id).await.expect("get").is_none());
    assert_eq!(kb_stats(store, owner.id, kb.id).await, (0, 0, 0));

    let now = lore_core::now();
    let log = |status: i64, age_days: i64| UsageLog {
        id: lore_core::new_id(),
        api_key_id: None,
        user_id: owner.id,
        endpoint: "/v1/me".into(),
        method: "GET".into(),
        request_body: None,
        status_code: status,
        response_time_ms: 1,
        error_message: None,
        ip_address: None,
        user_agent: None,
        created_at: now - chrono::Duration::days(age_days),
    };
    // A row for a user who no longer exists is skipped; the rest of the batch lands.
    let orphan = UsageLog { user_id: lore_core::new_id(), ..log(200, 1) };
    store.insert_usage_logs(&[log(200, 40), log(200, 1), orphan, log(500, 40), log(500, 100)]).await.expect("insert");
    let purged = store
        .purge_usage_logs(now - chrono::Duration::days(30), now - chrono::Duration::days(90))
        .await
        .expect("purge");
    assert_eq!(purged, 2, "an old success and a very old error");
    let q = UsageQuery { limit: 10, ..Default::default() };
    assert_eq!(store.list_usage_logs(owner.id, &q).await.expect("list").len(), 2);
    assert_eq!(store.get_user(owner.id).await.expect("get").expect("user").api_calls_count, 4);
}

async fn user_config_round_trips(store: &dyn Store) {
    let u = user(store, "configurable").await;
    assert!(store.get_user_config(u.id).await.expect("get").is_none());
    let mut c = UserConfig::initial();
    c.default_chunk_size = Some(500);
    c.openai_api_key = Some("v1:sealed".into());
    let stored = store.put_user_config(u.id, &c).await.expect("put");
    assert_eq!((stored.default_chunk_size, stored.openai_api_key.as_deref()), (Some(500), Some("v1:sealed")));
    assert_eq!(store.user_defaults(u.id).await.expect("defaults").default_chunk_size, Some(500));
    c.default_chunk_size = None;
    store.put_user_config(u.id, &c).await.expect("update");
    assert_eq!(store.user_defaults(u.id).await.expect("defaults").default_chunk_size, None);
    let n = store.reencrypt_secrets(&|s: &str| Ok(format!("{s}+"))).await.expect("reencrypt");
    assert!(n >= 1);
    let again = store.get_user_config(u.id).await.expect("get").expect("config");
    assert_eq!(again.openai_api_key.as_deref(), Some("v1:sealed+"));
}

/// Unit vectors on the axes of a 4-d space, plus a little of the next axis.
fn axis(i: usize) -> Vec<f32> {
    let mut v = [0.0f32; 4];
    v[i % 4] = 1.0;
    v[(i + 1) % 4] = 0.1;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Completes the next job of `doc` with chunks embedded as given.
async fn process_embedded(store: &dyn Store, doc: Id, texts: &[(&str, Vec<f32>)]) {
    let job = store.claim_job("test", Duration::from_secs(60)).await.expect("claim").expect("a job");
    let mut result = processed(&texts.iter().map(|(t, _)| (*t, *t)).collect::<Vec<_>>());
    for (chunk, (_, v)) in result.chunks.iter_mut().zip(texts) {
        chunk.content_hash = format!("{doc}-{}", chunk.chunk_index);
        chunk.embedding = Some(v.clone());
        chunk.summary_embedding = Some(v.iter().rev().copied().collect());
    }
    result.embedding_model = Some("test/axes".into());
    store.complete_document(&job, doc, result).await.expect("complete");
}

fn vector_query(owner: Id, kbs: Vec<Id>, v: Vec<f32>, top_k: u32) -> VectorQuery {
    VectorQuery {
        user_id: owner,
        knowledge_base_ids: kbs,
        embedding_model: "test/axes".into(),
        vector: v,
        top_k,
        filters: SearchFilters::default(),
        target: SearchTarget::Content,
        min_score: None,
    }
}

async fn vectors_rank_filter_and_follow_deletes(store: &dyn Store) {
    let owner = user(store, "vectors").await;
    let stranger = user(store, "vector-stranger").await;
    let k = kb(store, owner.id).await;
    let d1 = document(store, owner.id, k.id, "v1", 10).await;
    process_embedded(store, d1.id, &[("north", axis(0)), ("east", axis(1))]).await;
    let d2 = document(store, owner.id, k.id, "v2", 10).await;
    process_embedded(store, d2.id, &[("south", axis(2)), ("west", axis(3))]).await;

    let hits = store.search_vector(&vector_query(owner.id, vec![k.id], axis(2), 4)).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.content.as_str()).collect::<Vec<_>>()[0], "south");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "cosine of a vector with itself: {}", hits[0].score);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Another owner sees nothing, even naming the knowledge base.
    assert!(store.search_vector(&vector_query(stranger.id, vec![k.id], axis(2), 4)).await.expect("s").is_empty());
    // Another embedding space holds nothing.
    let mut other = vector_query(owner.id, vec![k.id], axis(2), 4);
    other.embedding_model = "test/other".into();
    assert!(store.search_vector(&other).await.expect("s").is_empty());
    // Filters apply inside the search: the far document is still found.
    let mut filtered = vector_query(owner.id, vec![k.id], axis(2), 1);
    filtered.filters.document_ids = Some(vec![d1.id]);
    let hits = store.search_vector(&filtered).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].document_id, d1.id);
    // A threshold drops weak matches; the summary space is searched on request.
    let mut strict = vector_query(owner.id, vec![k.id], axis(2), 4);
    strict.min_score = Some(0.99);
    assert_eq!(store.search_vector(&strict).await.expect("s").len(), 1);
    let mut summary = vector_query(owner.id, vec![k.id], axis(2).into_iter().rev().collect(), 1);
    summary.target = SearchTarget::Summary;
    assert_eq!(store.search_vector(&summary).await.expect("s")[0].content, "south");

    // Soft delete hides, restore shows, reprocessing replaces.
    store.soft_delete_document(owner.id, d2.id, lore_core::now()).await.expect("delete");
    let hits = store.search_vector(&vector_query(owner.id, vec![k.id], axis(2), 4)).await.expect("s");
    assert!(hits.iter().all(|h| h.document_id == d1.id), "deleted chunks are gone");
    assert_eq!(hits.len(), 2, "and the top-k is still filled from what is left");
    store.restore_document(owner.id, d2.id).await.expect("restore");
    let hits = store.search_vector(&vector_query(owner.id, vec![k.id], axis(2), 1)).await.expect("s");
    assert_eq!(hits[0].content, "south");

    // The embedding cache answers by content hash within one space, for the owner's chunks only.
    let cached = store
        .cached_embeddings(owner.id, "test/axes", &[format!("{}-0", d2.id), "unknown".into()])
        .await
        .expect("cache");
    assert_eq!(cached.len(), 1);
    assert!((cached[&format!("{}-0", d2.id)][2] - axis(2)[2]).abs() < 1e-6);
    assert!(store.cached_embeddings(owner.id, "test/other", &[format!("{}-0", d2.id)]).await.expect("c").is_empty());
    let stranger = lore_core::new_id();
    assert!(
        store.cached_embeddings(stranger, "test/axes", &[format!("{}-0", d2.id)]).await.expect("c").is_empty(),
        "another tenant never sees this owner's embeddings"
    );
}

/// Chunks curated by hand: an edit re-indexes the chunk (its new words and vector found, its old
/// ones not), a disabled chunk is found by nothing until enabled again, an added chunk is counted
/// and found; another owner can do none of it. Statistics stay right throughout.
async fn chunks_are_curated_by_hand(store: &dyn Store) {
    let owner = user(store, "curator").await;
    let stranger = user(store, "curator-stranger").await;
    let k = kb(store, owner.id).await;
    let d = document(store, owner.id, k.id, "curated", 10).await;
    process_embedded(store, d.id, &[("退款 三十天 refund", axis(0)), ("shipping 配送 two days", axis(1))]).await;
    let chunks = store.list_chunks(owner.id, d.id).await.expect("chunks");
    assert!(chunks.iter().all(|c| c.enabled && c.edited_at.is_none()));
    let (refund, shipping) = (chunks[0].id, chunks[1].id);
    let words = |terms: &'static [&'static str]| async move {
        search(store, owner.id, k.id, terms, SearchFilters::default())
            .await
            .into_iter()
            .map(|h| h.chunk_id)
            .collect::<Vec<_>>()
    };
    let nearest = |v: Vec<f32>| async move {
        store
            .search_vector(&vector_query(owner.id, vec![k.id], v, 1))
            .await
            .expect("search")
            .first()
            .map(|h| h.chunk_id)
    };
    let chunks_before = store.get_knowledge_base(owner.id, k.id).await.expect("kb").expect("kb").chunk_count;

    // New text: found by its new words and vector, not its old ones.
    let at = lore_core::now();
    let edit = ChunkEdit {
        text: Some(ChunkText {
            content: "退货 七天 returns".into(),
            content_hash: "edited-hash".into(),
            embedding: Some(axis(2)),
            summary_embedding: Some(axis(2)),
            embedding_model: Some("test/axes".into()),
        }),
        metadata: Some(json!({"reviewed": true})),
        enabled: None,
        fts_terms: "退货 七天 returns".into(),
        at,
    };
    assert!(store.update_chunk(stranger.id, refund, edit.clone()).await.expect("update").is_none());
    let edited = store.update_chunk(owner.id, refund, edit).await.expect("update").expect("the owner's chunk");
    assert_eq!((edited.content.as_str(), edited.metadata.clone()), ("退货 七天 returns", json!({"reviewed": true})));
    assert!(edited.enabled && edited.edited_at.is_some());
    assert_eq!(words(&["退货"]).await, [refund]);
    assert!(words(&["退款"]).await.is_empty(), "the old words are gone");
    assert_eq!(nearest(axis(2)).await, Some(refund));
    assert_eq!(nearest(axis(0)).await, Some(shipping), "the old vector is gone");

    // Disabled: found by nothing; enabled again: back in both indexes.
    let toggle = |enabled: bool, terms: &str| ChunkEdit {
        text: None,
        metadata: None,
        enabled: Some(enabled),
        fts_terms: terms.to_string(),
        at: lore_core::now(),
    };
    let off =
        store.update_chunk(owner.id, shipping, toggle(false, "shipping 配送 two days")).await.expect("u").expect("c");
    assert!(!off.enabled);
    assert!(words(&["shipping"]).await.is_empty() && words(&["配送"]).await.is_empty());
    let found = store.search_vector(&vector_query(owner.id, vec![k.id], axis(1), 5)).await.expect("search");
    assert!(found.iter().all(|h| h.chunk_id != shipping), "a disabled chunk is not found by its vector");
    assert_eq!(store.list_chunks(owner.id, d.id).await.expect("chunks").len(), 2, "but it is kept");
    store.update_chunk(owner.id, shipping, toggle(true, "shipping 配送 two days")).await.expect("u").expect("c");
    assert_eq!(words(&["配送"]).await, [shipping]);
    assert_eq!(nearest(axis(1)).await, Some(shipping));

    // Added by hand: counted, found, after the last chunk.
    let added = store
        .add_chunk(
            owner.id,
            d.id,
            NewChunk {
                content: "常见问题：发票 invoice".into(),
                content_hash: "added-hash".into(),
                chunk_index: 0,
                metadata: json!({"source": "hand"}),
                fts_terms: "常见 问题 发票 invoice".into(),
                parent_index: None,
                searchable: true,
                embedding: Some(axis(3)),
                summary_embedding: Some(axis(3)),
                embed_text: None,
            },
            Some("test/axes".into()),
            lore_core::now(),
        )
        .await
        .expect("add")
        .expect("the owner's document");
    assert_eq!((added.chunk_index, added.edited_at.is_some()), (2, true));
    assert_eq!(words(&["发票"]).await, [added.id]);
    assert_eq!(nearest(axis(3)).await, Some(added.id));
    let kb_now = store.get_knowledge_base(owner.id, k.id).await.expect("kb").expect("kb");
    assert_eq!(kb_now.chunk_count, chunks_before + 1);
    assert_eq!(store.get_document(owner.id, d.id).await.expect("doc").expect("doc").chunk_count, 3);
    let stranger_add = store
        .add_chunk(
            stranger.id,
            d.id,
            NewChunk {
                content: "x".into(),
                content_hash: "x".into(),
                chunk_index: 0,
                metadata: json!({}),
                fts_terms: "x".into(),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: None,
            },
            None,
            lore_core::now(),
        )
        .await
        .expect("add");
    assert!(stranger_add.is_none());
    assert_eq!(store.get_chunk(owner.id, added.id).await.expect("get").map(|c| c.content), Some(added.content));
    assert!(store.get_chunk(stranger.id, added.id).await.expect("get").is_none());
}

async fn reembedding_switches_in_one_step(store: &dyn Store) {
    let owner = user(store, "reembed").await;
    let k = kb(store, owner.id).await;
    let d = document(store, owner.id, k.id, "r1", 10).await;
    process_embedded(store, d.id, &[("one", axis(0)), ("two", axis(1))]).await;
    let k = store.get_knowledge_base(owner.id, k.id).await.expect("get").expect("kb");
    assert_eq!(k.embedding_space.as_deref(), Some("test/axes"), "the first embeddings set the space");

    store.queue_reembedding(k.id).await.expect("queue");
    store.queue_reembedding(k.id).await.expect("queue twice");
    let job = store.claim_job("test", Duration::from_secs(60)).await.expect("claim").expect("a job");
    assert_eq!((job.kind.as_str(), job.knowledge_base_id), ("reembed", Some(k.id)));
    assert!(store.claim_job("test", Duration::from_secs(60)).await.expect("claim").is_none(), "queued once");

    let todo = store.chunks_to_reembed(k.id, "test/new", 1).await.expect("todo");
    assert_eq!(todo.len(), 1);
    assert_eq!(todo[0].title.as_deref(), Some("标题"));
    let flipped = |v: Vec<f32>| v.into_iter().rev().collect::<Vec<f32>>();
    store
        .save_reembedded(
            k.id,
            "test/new",
            &[Reembedded { seq: todo[0].seq, embedding: flipped(axis(0)), summary_embedding: None }],
        )
        .await
        .expect("save");
    let rest = store.chunks_to_reembed(k.id, "test/new", 10).await.expect("rest");
    assert_eq!(rest.len(), 1, "what is waiting is not asked for again");
    store
        .save_reembedded(
            k.id,
            "test/new",
            &[Reembedded { seq: rest[0].seq, embedding: flipped(axis(1)), summary_embedding: None }],
        )
        .await
        .expect("save");
    // Until the switch, search in the old space still finds everything.
    assert_eq!(store.search_vector(&vector_query(owner.id, vec![k.id], axis(0), 5)).await.expect("s").len(), 2);
    assert_eq!(store.finish_reembedding(&job, k.id, "test/new").await.expect("finish"), 2);
    let k = store.get_knowledge_base(owner.id, k.id).await.expect("get").expect("kb");
    assert_eq!(k.embedding_space.as_deref(), Some("test/new"));
    assert!(store.search_vector(&vector_query(owner.id, vec![k.id], axis(0), 5)).await.expect("s").is_empty());
    let mut new = vector_query(owner.id, vec![k.id], flipped(axis(1)), 1);
    new.embedding_model = "test/new".into();
    assert_eq!(store.search_vector(&new).await.expect("s")[0].content, "two");
    assert!(store.claim_job("test", Duration::from_secs(60)).await.expect("claim").is_none(), "the job is done");
}

fn new_conversation(owner: Id, agent: Id, title: &str) -> Conversation {
    let now = lore_core::now();
    Conversation {
        id: lore_core::new_id(),
        user_id: owner,
        agent_id: agent,
        title: Some(title.into()),
        context: json!({}),
        created_at: now,
        updated_at: now,
    }
}

fn new_agent(owner: Id, name: &str, kbs: Vec<Id>) -> Agent {
    let now = lore_core::now();
    Agent {
        id: lore_core::new_id(),
        user_id: owner,
        created_by: Some(owner),
        name: name.into(),
        description: Some("答疑助手".into()),
        agent_type: "qa".into(),
        model_provider: "openai".into(),
        model_name: Some("gpt-4o-mini".into()),
        model_parameters: json!({"temperature": 0.2}),
        conversation_mode: ConversationMode::MultiTurn,
        context_window: Some(8000),
        memory_retention_days: Some(7),
        system_prompt: Some("只根据资料回答".into()),
        user_prompt_template: Some("{context}\n{question}".into()),
        max_documents: 4,
        similarity_threshold: Some(0.3),
        rate_limit_per_hour: Some(10),
        rate_limit_per_day: None,
        domain_keywords: vec!["发票".into(), "invoice".into()],
        expertise_areas: vec!["财务".into()],
        is_active: true,
        knowledge_base_ids: kbs,
        data_source_ids: Vec::new(),
        file_type_ids: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

async fn agents_conversations_and_usage(store: &dyn Store) {
    let alice = user(store, "agent-alice").await;
    let bob = user(store, "agent-bob").await;
    let kb1 = kb(store, alice.id).await;
    let mut agent = new_agent(alice.id, "财务助手", vec![kb1.id]);
    store.insert_agent(&agent).await.expect("insert");
    let same_name = new_agent(alice.id, "财务助手", vec![]);
    assert_eq!(store.insert_agent(&same_name).await.expect_err("taken").code, Code::AgentNameTaken);
    store.insert_agent(&new_agent(bob.id, "财务助手", vec![])).await.expect("another owner may use the name");

    let read = store.get_agent(alice.id, agent.id).await.expect("get").expect("found");
    assert_eq!(read.knowledge_base_ids, vec![kb1.id]);
    assert_eq!(read.domain_keywords, vec!["发票", "invoice"]);
    assert_eq!(read.similarity_threshold, Some(0.3));
    assert!(store.get_agent(bob.id, agent.id).await.expect("get").is_none(), "another owner's agent is not found");

    agent.name = "Finance".into();
    agent.conversation_mode = ConversationMode::SingleTurn;
    agent.knowledge_base_ids = Vec::new();
    assert!(store.update_agent(&agent).await.expect("update"));
    let mut foreign = agent.clone();
    foreign.user_id = bob.id;
    assert!(!store.update_agent(&foreign).await.expect("update"), "no update through another owner");
    let read = store.get_agent(alice.id, agent.id).await.expect("get").expect("found");
    assert_eq!((read.name.as_str(), read.conversation_mode), ("Finance", ConversationMode::SingleTurn));
    assert!(read.knowledge_base_ids.is_empty());
    assert_eq!(store.list_agents(alice.id).await.expect("list").len(), 1);

    // A conversation with a cited answer.
    let doc = document(store, alice.id, kb1.id, "agentdoc", 10).await;
    process(store, doc.id, &[("发票需要在三十天内报销。", "发票 报销")]).await;
    let chunk = store.list_chunks(alice.id, doc.id).await.expect("chunks").remove(0);
    let conversation = new_conversation(alice.id, agent.id, "报销");
    store.create_conversation(&conversation).await.expect("conversation");
    let message = |role: &str, content: &str, citations: Vec<Citation>| ChatMessage {
        id: lore_core::new_id(),
        conversation_id: conversation.id,
        role: role.into(),
        content: content.into(),
        metadata: json!({}),
        citations,
        created_at: lore_core::now(),
    };
    let cite = Citation {
        index: 1,
        document_id: doc.id,
        chunk_id: Some(chunk.id),
        score: Some(0.9),
        filename: None,
        snippet: None,
        location: None,
    };
    let exchange = [message("user", "多久报销?", vec![]), message("assistant", "三十天内 [1]。", vec![cite])];
    assert_eq!(
        store.append_messages(bob.id, conversation.id, &exchange).await.expect_err("not bob's").code,
        Code::NotFound
    );
    store.append_messages(alice.id, conversation.id, &exchange).await.expect("append");
    let messages = store.list_messages(alice.id, conversation.id, None).await.expect("messages");
    assert_eq!(messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["user", "assistant"]);
    let cited = &messages[1].citations[0];
    assert_eq!((cited.index, cited.chunk_id, cited.filename.as_deref()), (1, Some(chunk.id), Some("agentdoc.md")));
    assert!(cited.snippet.as_deref().is_some_and(|s| s.contains("三十天")));
    assert!(store.list_messages(bob.id, conversation.id, None).await.expect("messages").is_empty());
    let later = lore_core::now() + chrono::Duration::seconds(5);
    assert!(store.list_messages(alice.id, conversation.id, Some(later)).await.expect("since").is_empty());
    assert!(store.get_conversation(bob.id, conversation.id).await.expect("get").is_none());
    assert_eq!(store.list_conversations(alice.id, Some(agent.id)).await.expect("list").len(), 1);

    // Usage rows count for rate limits at once, and are listed by range.
    let call = |n: i64| AgentUsage {
        id: lore_core::new_id(),
        user_id: alice.id,
        agent_id: agent.id,
        conversation_id: Some(conversation.id),
        model_provider: Some("openai".into()),
        model_name: Some("gpt-4o-mini".into()),
        prompt_tokens: n,
        completion_tokens: 1,
        tokens_used: n + 1,
        cost: "0.000001".into(),
        response_time: 0.5,
        request_data: json!({"status": "ok"}),
        created_at: lore_core::now(),
    };
    let hour_ago = lore_core::now() - chrono::Duration::hours(1);
    let first = call(10);
    store.insert_agent_call(&first).await.expect("call");
    store.insert_agent_call(&call(20)).await.expect("call");
    let (count, oldest) = store.agent_calls_since(agent.id, hour_ago).await.expect("count");
    assert_eq!((count, oldest), (2, Some(first.created_at)));
    let mut finished = first.clone();
    finished.prompt_tokens = 99;
    finished.request_data = json!({"status": "failed", "error": "timeout"});
    store.update_agent_call(&finished).await.expect("update");
    let rows = store
        .list_agent_calls(alice.id, hour_ago, lore_core::now() + chrono::Duration::seconds(1), None)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].prompt_tokens, rows[0].request_data["status"].as_str()), (99, Some("failed")));
    assert!(store.list_agent_calls(bob.id, hour_ago, lore_core::now(), None).await.expect("rows").is_empty());
    store.delete_agent_call(first.id).await.expect("delete");
    assert_eq!(store.agent_calls_since(agent.id, hour_ago).await.expect("count").0, 1);

    // Deleting the agent takes its conversations with it; another owner cannot.
    assert!(!store.delete_agent(bob.id, agent.id).await.expect("delete"));
    assert!(store.delete_agent(alice.id, agent.id).await.expect("delete"));
    assert!(store.get_conversation(alice.id, conversation.id).await.expect("get").is_none());
}

async fn data_sources_sync_runs_and_leases(store: &dyn Store) {
    let alice = user(store, "source-alice").await;
    let bob = user(store, "source-bob").await;
    let kb1 = kb(store, alice.id).await;
    let now = lore_core::now();
    let mut source = DataSource {
        id: lore_core::new_id(),
        user_id: alice.id,
        created_by: Some(alice.id),
        knowledge_base_id: kb1.id,
        name: "手册".into(),
        source_type: "local_folder".into(),
        status: "active".into(),
        config: json!({"path": "/srv/docs"}),
        has_credentials: true,
        auto_sync: true,
        sync_frequency: Some(30),
        last_sync: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_data_source(&source, Some("sealed")).await.expect("insert");
    let twin = DataSource { id: lore_core::new_id(), ..source.clone() };
    assert_eq!(store.insert_data_source(&twin, None).await.expect_err("taken").code, Code::DataSourceNameTaken);
    let foreign = DataSource { id: lore_core::new_id(), user_id: bob.id, name: "x".into(), ..source.clone() };
    store.insert_data_source(&foreign, None).await.expect("no row for another owner's knowledge base");
    assert!(store.get_data_source(bob.id, foreign.id).await.expect("get").is_none());
    assert!(store.get_data_source(bob.id, source.id).await.expect("get").is_none());
    let read = store.get_data_source(alice.id, source.id).await.expect("get").expect("found");
    assert!(read.has_credentials && read.sync_frequency == Some(30));
    assert_eq!(store.data_source_credentials(alice.id, source.id).await.expect("c").as_deref(), Some("sealed"));

    // Due until synced; one lease at a time.
    assert!(store.due_data_sources(now).await.expect("due").contains(&(alice.id, source.id)));
    let run = |at| SyncRun {
        id: lore_core::new_id(),
        data_source_id: source.id,
        status: "running".into(),
        started_at: at,
        finished_at: None,
        added: 0,
        updated: 0,
        removed: 0,
        failed: 0,
        errors: json!([]),
    };
    let mut first = run(now);
    assert!(store.claim_sync(&first, "node-a", now + chrono::Duration::minutes(15)).await.expect("claim"));
    assert!(!store.claim_sync(&run(now), "node-b", now + chrono::Duration::minutes(15)).await.expect("claim"));
    assert_eq!(store.get_data_source(alice.id, source.id).await.expect("get").expect("found").status, "syncing");
    assert!(store.due_data_sources(now).await.expect("due").is_empty(), "a held source is not due");
    first.status = "completed".into();
    first.added = 2;
    first.finished_at = Some(now);
    store.finish_sync(&first, None).await.expect("finish");
    let read = store.get_data_source(alice.id, source.id).await.expect("get").expect("found");
    assert_eq!((read.status.as_str(), read.last_sync), ("active", Some(now)));
    assert!(store.due_data_sources(now).await.expect("due").is_empty(), "synced just now");
    assert!(
        store
            .due_data_sources(now + chrono::Duration::minutes(31))
            .await
            .expect("due")
            .contains(&(alice.id, source.id))
    );
    // A deactivated account's sources stop syncing; reactivated, they are due again.
    store.set_user_active(alice.id, false).await.expect("deactivate");
    assert!(store.due_data_sources(now + chrono::Duration::minutes(31)).await.expect("due").is_empty());
    store.set_user_active(alice.id, true).await.expect("reactivate");
    assert!(!store.due_data_sources(now + chrono::Duration::minutes(31)).await.expect("due").is_empty());
    let runs = store.list_syncs(alice.id, source.id, 10).await.expect("runs");
    assert_eq!((runs.len(), runs[0].added), (1, 2));
    assert!(store.list_syncs(bob.id, source.id, 10).await.expect("runs").is_empty());

    // A failed run marks the source; a later lease after expiry works.
    let mut second = run(now + chrono::Duration::minutes(1));
    assert!(store.claim_sync(&second, "node-b", now + chrono::Duration::minutes(16)).await.expect("claim"));
    second.status = "failed".into();
    second.finished_at = Some(now + chrono::Duration::minutes(2));
    store.finish_sync(&second, Some("folder gone")).await.expect("finish");
    let read = store.get_data_source(alice.id, source.id).await.expect("get").expect("found");
    assert_eq!((read.status.as_str(), read.last_error.as_deref()), ("error", Some("folder gone")));

    source.name = "handbook".into();
    source.auto_sync = false;
    assert!(store.update_data_source(&source, Some(None)).await.expect("update"));
    let read = store.get_data_source(alice.id, source.id).await.expect("get").expect("found");
    assert!(!read.has_credentials && read.name == "handbook");
    assert!(!store.update_data_source(&DataSource { user_id: bob.id, ..source.clone() }, None).await.expect("update"));
    assert!(!store.delete_data_source(bob.id, source.id).await.expect("delete"));
    assert!(store.delete_data_source(alice.id, source.id).await.expect("delete"));
}

/// The file-type registry, document listings and contents, progress, and what the queue tells
/// the workers and the metrics.
async fn file_types_documents_and_the_queue_at_work(store: &dyn Store) {
    let markdown = NewFileType {
        name: "markdown".into(),
        category: "text".into(),
        mime_types: vec!["text/markdown".into()],
        extensions: vec!["md".into()],
        parsers: vec!["markdown".into()],
        embedding_models: Vec::new(),
        is_active: true,
    };
    store.ensure_file_types(std::slice::from_ref(&markdown)).await.expect("ensure");
    store.ensure_file_types(std::slice::from_ref(&markdown)).await.expect("ensure again: no duplicate");
    let created = store
        .create_file_type(NewFileType { name: "公文".into(), extensions: vec!["gw".into()], ..markdown.clone() })
        .await
        .expect("create");
    let types = store.list_file_types().await.expect("list");
    assert_eq!(types.iter().filter(|t| t.name == "markdown").count(), 1, "{types:?}");
    assert!(types.iter().any(|t| t.id == created.id && t.name == "公文"));
    let patch = FileTypePatch { is_active: Some(false), category: Some("政务".into()), ..Default::default() };
    let updated = store.update_file_type(created.id, patch).await.expect("update").expect("found");
    assert!(!updated.is_active && updated.category == "政务");
    assert!(store.update_file_type(-1, FileTypePatch::default()).await.expect("update").is_none());

    let owner = user(store, "lister").await;
    let other = user(store, "stranger").await;
    let base = kb(store, owner.id).await;
    let first = document(store, owner.id, base.id, "list-1", 10).await;
    let second = document(store, owner.id, base.id, "list-2", 20).await;
    let all = DocumentListQuery { limit: 10, ..Default::default() };
    assert_eq!(store.list_documents(owner.id, base.id, &all).await.expect("list").len(), 2);
    assert!(store.list_documents(other.id, base.id, &all).await.expect("list").is_empty());
    let page = DocumentListQuery { limit: 1, offset: 1, ..Default::default() };
    assert_eq!(store.list_documents(owner.id, base.id, &page).await.expect("page").len(), 1);
    let pending = store.document_status_counts().await.expect("counts");
    assert!(pending.contains(&(DocStatus::Pending, 2)), "{pending:?}");
    assert_eq!(store.pending_jobs().await.expect("pending"), 2);

    let job = store.claim_job("worker", Duration::from_secs(60)).await.expect("claim").expect("job");
    let doc = job.document_id.expect("a document job");
    let for_job = store.knowledge_base_for_job(base.id).await.expect("kb").expect("found without an owner");
    assert_eq!(for_job.id, base.id);
    store.set_progress(doc, 150, Some(LogEntry::new("parse", "读了一半"))).await.expect("progress");
    let read = store.get_document(owner.id, doc).await.expect("get").expect("doc");
    assert_eq!(read.progress, 100, "progress is held to 0..100");
    store.complete_document(&job, doc, processed(&[("正文", "正文")])).await.expect("complete");
    let content = store.document_content(owner.id, doc).await.expect("content").expect("found");
    assert_eq!(content.processed_content.as_deref(), Some("processed"));
    assert!(store.document_content(other.id, doc).await.expect("content").is_none());
    let completed = DocumentListQuery { status: Some(DocStatus::Completed), limit: 10, ..Default::default() };
    let done = store.list_documents(owner.id, base.id, &completed).await.expect("list");
    assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), [doc]);

    // A job that cannot succeed is dropped: the queue forgets it.
    let job = store.claim_job("worker", Duration::from_secs(60)).await.expect("claim").expect("job");
    assert!([first.id, second.id].contains(&job.document_id.expect("document")));
    store.drop_job(&job).await.expect("drop");
    assert_eq!(store.pending_jobs().await.expect("pending"), 0);
    assert!(store.claim_job("worker", Duration::from_secs(60)).await.expect("claim").is_none());
}

/// The account operations the sign-in and administration paths use, the keys' counters as a
/// node flushes them, daily usage, and what the store says about itself.
async fn accounts_keys_usage_and_housekeeping(store: &dyn Store) {
    store.ping().await.expect("ping");
    let _ = store.shared_by_nodes();
    let u = user(store, "housekeeper").await;
    let at = lore_core::now();
    store.record_login(u.id, at).await.expect("login");
    let read = store.get_user(u.id).await.expect("get").expect("user");
    assert_eq!(read.last_login_at.map(|t| t.timestamp_millis()), Some(at.timestamp_millis()));
    store.set_password(u.id, "new-hash").await.expect("password");
    assert_eq!(store.find_login("housekeeper").await.expect("find").expect("user").1, "new-hash");
    store.set_superuser(u.id, true).await.expect("superuser");
    assert!(store.get_user(u.id).await.expect("get").expect("user").is_superuser);

    // Sessions: all but the one kept are revoked; expired ones are purged.
    let later = lore_core::now() + chrono::Duration::hours(1);
    for token in ["keep", "drop-1", "drop-2"] {
        store.create_session(u.id, token, later, None, None).await.expect("session");
    }
    assert_eq!(store.revoke_sessions(u.id, Some("keep")).await.expect("revoke"), 2);
    assert!(store.find_session("keep").await.expect("find").is_some());
    store.create_session(u.id, "old", lore_core::now() - chrono::Duration::hours(1), None, None).await.expect("old");
    assert_eq!(store.purge_expired_sessions(lore_core::now()).await.expect("purge"), 1);
    assert!(store.find_session("old").await.expect("find").is_none());

    let key = store
        .create_api_key(NewApiKey {
            created_by: None,
            user_id: u.id,
            knowledge_base_id: None,
            name: "计数".into(),
            description: None,
            key_hash: "counted".into(),
            key_prefix: "lore_counted".into(),
            key_suffix: "abcd".into(),
            scopes: vec![Scope::Search],
            rate_limit: None,
            daily_quota: None,
            monthly_quota: None,
            expires_at: None,
            security: json!({}),
        })
        .await
        .expect("key");
    assert_eq!(store.list_api_keys(u.id).await.expect("keys").iter().map(|k| k.id).collect::<Vec<_>>(), [key.id]);
    assert!(store.list_api_keys(user(store, "nobody").await.id).await.expect("keys").is_empty());
    let now = lore_core::now();
    let day = now.format("%Y-%m-%d").to_string();
    store
        .save_key_counters(&[KeyCounters {
            key_id: key.id,
            rate_window: now.format("%Y-%m-%dT%H:%M").to_string(),
            rate_count: 3,
            usage_day: day.clone(),
            usage_today: 7,
            usage_month: now.format("%Y-%m").to_string(),
            usage_month_count: 9,
            last_used_at: Some(now),
            last_used_ip: Some("203.0.113.9".into()),
            dirty: true,
        }])
        .await
        .expect("flush");
    let rec = store.find_api_key("counted").await.expect("find").expect("key");
    assert_eq!((rec.key.usage_count_today, rec.key.usage_count_month), (7, 9));
    assert_eq!(rec.key.last_used_ip.as_deref(), Some("203.0.113.9"));

    let log = |status: i64, ms: i64| UsageLog {
        id: lore_core::new_id(),
        api_key_id: Some(key.id),
        user_id: u.id,
        endpoint: "/v1/search".into(),
        method: "POST".into(),
        request_body: None,
        status_code: status,
        response_time_ms: ms,
        error_message: None,
        ip_address: None,
        user_agent: None,
        created_at: now,
    };
    store.insert_usage_logs(&[log(200, 10), log(200, 30), log(500, 20)]).await.expect("logs");
    let daily = store.daily_usage(u.id, &UsageQuery { limit: 30, ..Default::default() }).await.expect("daily");
    assert_eq!(daily.len(), 1, "{daily:?}");
    assert_eq!((daily[0].day.as_str(), daily[0].requests, daily[0].errors), (day.as_str(), 3, 1));
    assert!((daily[0].avg_response_ms - 20.0).abs() < 1e-9, "{daily:?}");

    // Providers configured anywhere are listed once, for `lore doctor`.
    let mut config = UserConfig::initial();
    config.openai_base_url = Some("http://127.0.0.1:9/v1".into());
    store.put_user_config(u.id, &config).await.expect("config");
    let providers = store.provider_addresses().await.expect("providers");
    assert!(providers.contains(&("openai".into(), Some("http://127.0.0.1:9/v1".into()))), "{providers:?}");
}

/// Notifications and their delivery log, data sources listed, the items a sync compares, a
/// conversation deleted, and the links an agent may name.
async fn notifications_items_and_links(store: &dyn Store) {
    let alice = user(store, "notified").await;
    let bob = user(store, "unnotified").await;
    let notification = Notification {
        id: lore_core::new_id(),
        user_id: alice.id,
        kind: "sync_failed".into(),
        title: "同步失败".into(),
        body: Some("folder gone".into()),
        data: json!({"data_source_id": null}),
        read_at: None,
        created_at: lore_core::now(),
    };
    store.insert_notification(&notification).await.expect("notify");
    store
        .set_notification_data(notification.id, &json!({"delivery": [{"attempt": 1, "status": 200}]}))
        .await
        .expect("data");
    let listed = store.list_notifications(alice.id, 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].title.as_str(), listed[0].data["delivery"][0]["status"].as_i64()), ("同步失败", Some(200)));
    assert!(store.list_notifications(bob.id, 10).await.expect("list").is_empty());

    let base = kb(store, alice.id).await;
    let now = lore_core::now();
    let source = DataSource {
        id: lore_core::new_id(),
        user_id: alice.id,
        created_by: None,
        knowledge_base_id: base.id,
        name: "folder".into(),
        source_type: "local_folder".into(),
        status: "active".into(),
        config: json!({"path": "/srv/docs"}),
        has_credentials: false,
        auto_sync: false,
        sync_frequency: None,
        last_sync: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_data_source(&source, None).await.expect("source");
    assert_eq!(
        store.list_data_sources(alice.id).await.expect("list").iter().map(|s| s.id).collect::<Vec<_>>(),
        [source.id]
    );
    assert!(store.list_data_sources(bob.id).await.expect("list").is_empty());
    let item = match store
        .create_document(NewDocument {
            knowledge_base_id: base.id,
            user_id: alice.id,
            uploaded_by: None,
            filename: "说明.md".into(),
            file_type: "markdown".into(),
            file_type_id: None,
            file_size: 5,
            mime_type: "text/markdown".into(),
            file_hash: "item-hash".into(),
            file_path: "blobs/item".into(),
            metadata: json!({"source_path": "docs/说明.md", "source_version": "v1"}),
            chunking_config: None,
            expires_at: None,
            data_source_id: Some(source.id),
        })
        .await
        .expect("item")
    {
        Upload::Created(d) => d,
        Upload::Duplicate(d) => panic!("duplicate {}", d.id),
    };
    let items = store.source_items(source.id).await.expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].document_id, items[0].key.as_str(), items[0].version.as_str()),
        (item.id, "docs/说明.md", "v1")
    );
    store.touch_source_item(item.id, "v2").await.expect("touch");
    assert_eq!(store.source_items(source.id).await.expect("items")[0].version, "v2");

    assert_eq!(store.missing_agent_links(alice.id, &[source.id], &[]).await.expect("links"), None);
    let missing = store.missing_agent_links(bob.id, &[source.id], &[]).await.expect("links");
    assert!(missing.is_some_and(|m| m.contains(&source.id.to_string())), "another owner's source is missing");
    assert!(store.missing_agent_links(alice.id, &[], &[-1]).await.expect("links").is_some());

    let agent = new_agent(alice.id, "清理", vec![base.id]);
    store.insert_agent(&agent).await.expect("agent");
    let conversation = new_conversation(alice.id, agent.id, "待删");
    store.create_conversation(&conversation).await.expect("conversation");
    assert!(!store.delete_conversation(bob.id, conversation.id).await.expect("delete"));
    assert!(store.delete_conversation(alice.id, conversation.id).await.expect("delete"));
    assert!(store.get_conversation(alice.id, conversation.id).await.expect("get").is_none());
}

/// A knowledge base deleted while a worker stores one of its documents: the delete succeeds, the
/// worker either finishes first or gets a retryable error, and nothing of the document remains.
/// (On PostgreSQL the two once took their locks in opposite orders and deadlocked: a 500.)
async fn deleting_a_knowledge_base_while_a_worker_completes_it(store: &dyn Store) {
    let owner = user(store, "racer").await;
    let texts = vec![("中文分块 racing chunk", "中文 分块 racing chunk"); 40];
    for round in 0..8 {
        let base = kb(store, owner.id).await;
        let doc = document(store, owner.id, base.id, &format!("race-{round}"), 10).await;
        let job = loop {
            let job = store.claim_job("racer", Duration::from_secs(60)).await.expect("claim").expect("a job");
            if job.document_id == Some(doc.id) {
                break job;
            }
        };
        let (completed, deleted) = tokio::join!(
            store.complete_document(&job, doc.id, processed(&texts)),
            store.delete_knowledge_base(owner.id, base.id)
        );
        assert!(matches!(deleted, Ok(Some(_))), "round {round}: {deleted:?}");
        if let Err(e) = completed {
            assert!(e.is_transient(), "round {round}: {e}");
        }
        assert!(store.get_knowledge_base(owner.id, base.id).await.expect("get").is_none());
        assert!(store.get_document(owner.id, doc.id).await.expect("get").is_none());
    }
    assert_eq!(store.get_user(owner.id).await.expect("user").expect("exists").storage_used, 0);
}

/// A fresh schema on the test PostgreSQL (`scripts/pg-up` provisions it and `scripts/test` sets
/// the URL). Without one the PostgreSQL tests say so and pass, unless LORE_REQUIRE_POSTGRES is
/// set, as the project's test command sets it.
/// The audit log: entries round-trip whole (Chinese included), list newest first by owner,
/// actor, action prefix and time, page by `before`, and the retention purges the old ones.
async fn audit_entries_are_appended_listed_and_purged(store: &dyn Store) {
    use chrono::Timelike;
    let alice = user(store, "audit-alice").await;
    let bob = user(store, "audit-bob").await;
    let base = (lore_core::now() - chrono::Duration::days(3)).with_nanosecond(0).expect("time");
    let entry = |owner: Option<Id>, action: &str, at: Timestamp| AuditEntry {
        id: lore_core::new_id(),
        at,
        actor_id: owner,
        actor: Some(if owner.is_some() { "audit-alice via lore_ab12…" } else { "ghost" }.into()),
        owner_id: owner,
        action: action.into(),
        target_type: Some("api_key".into()),
        target_id: Some("k-1".into()),
        ip_address: Some("203.0.113.9".into()),
        request_id: Some("req-1".into()),
        details: json!({"fields": ["rate_limit"], "说明": "限额收紧"}),
    };
    let minutes = chrono::Duration::minutes;
    let signed_in = entry(Some(alice.id), "auth.sign_in", base);
    let revoked = entry(Some(alice.id), "api_key.revoked", base + minutes(1));
    let bobs = entry(Some(bob.id), "auth.sign_in", base + minutes(2));
    let ghost = entry(None, "auth.sign_in_failed", base + minutes(3));
    let old = entry(Some(alice.id), "auth.sign_in", base - chrono::Duration::days(400));
    for e in [&signed_in, &revoked, &bobs, &ghost, &old] {
        store.append_audit(e).await.expect("append");
    }
    let list =
        |query: AuditQuery| async move { store.list_audit(&AuditQuery { limit: 50, ..query }).await.expect("list") };
    let alices = list(AuditQuery { owner_id: Some(alice.id), ..Default::default() }).await;
    assert_eq!(alices, vec![revoked.clone(), signed_in.clone(), old.clone()], "whole, newest first");
    let sign_ins =
        list(AuditQuery { owner_id: Some(alice.id), action_prefix: Some("auth.".into()), ..Default::default() }).await;
    assert_eq!(sign_ins.iter().map(|e| e.id).collect::<Vec<_>>(), [signed_in.id, old.id]);
    let first =
        store.list_audit(&AuditQuery { owner_id: Some(alice.id), limit: 1, ..Default::default() }).await.expect("page");
    assert_eq!(first, vec![revoked.clone()]);
    let next = list(AuditQuery { owner_id: Some(alice.id), before: Some(first[0].at), ..Default::default() }).await;
    assert_eq!(next.first(), Some(&signed_in));
    assert_eq!(list(AuditQuery { owner_id: Some(bob.id), ..Default::default() }).await, vec![bobs.clone()]);
    let recent = list(AuditQuery { since: Some(base), ..Default::default() }).await;
    assert_eq!(recent.iter().map(|e| e.id).collect::<Vec<_>>(), [ghost.id, bobs.id, revoked.id, signed_in.id]);
    let by_alice = list(AuditQuery { actor_id: Some(alice.id), since: Some(base), ..Default::default() }).await;
    assert_eq!(by_alice.len(), 2);
    assert!(
        list(AuditQuery { action_prefix: Some("auth_".into()), ..Default::default() }).await.is_empty(),
        "no wildcards"
    );

    assert_eq!(store.purge_audit(base - chrono::Duration::days(365)).await.expect("purge"), 1);
    assert_eq!(list(AuditQuery { owner_id: Some(alice.id), ..Default::default() }).await.len(), 2);
}

/// Evaluation runs: inserted running, finished with results, read back whole by their owner
/// only, newest first, and gone with their knowledge base.
async fn evaluations_run_finish_and_go_with_their_knowledge_base(store: &dyn Store) {
    use chrono::Timelike;
    let owner = user(store, "evaluator").await;
    let other = user(store, "evaluator-2").await;
    let base = kb(store, owner.id).await;
    let at = lore_core::now().with_nanosecond(0).expect("time");
    let mut run = Evaluation {
        id: lore_core::new_id(),
        user_id: owner.id,
        knowledge_base_id: base.id,
        name: "基线 baseline".into(),
        status: "running".into(),
        request: json!({"questions": [{"question": "退款要多久？"}]}),
        results: json!({}),
        error_message: None,
        created_at: at,
        completed_at: None,
    };
    store.insert_evaluation(&run).await.expect("insert");
    let later = Evaluation { id: lore_core::new_id(), created_at: at + chrono::Duration::seconds(1), ..run.clone() };
    store.insert_evaluation(&later).await.expect("insert");
    run.status = "completed".into();
    run.results = json!({"configurations": [{"label": "hybrid", "hit_at_k": 1.0, "mrr": 0.5}]});
    run.completed_at = Some(at + chrono::Duration::seconds(2));
    store.finish_evaluation(&run).await.expect("finish");
    assert_eq!(store.get_evaluation(owner.id, run.id).await.expect("get"), Some(run.clone()));
    assert_eq!(store.get_evaluation(other.id, run.id).await.expect("get"), None, "another owner's is not found");
    let listed = store.list_evaluations(owner.id, base.id).await.expect("list");
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), [later.id, run.id]);
    assert!(store.list_evaluations(other.id, base.id).await.expect("list").is_empty());
    store.delete_knowledge_base(owner.id, base.id).await.expect("delete");
    assert_eq!(store.get_evaluation(owner.id, run.id).await.expect("get"), None);
}

async fn workspaces_members_and_roles(store: &dyn Store) {
    let alice = user(store, "ws-alice").await;
    let bob = user(store, "ws-bob").await;
    let carol = user(store, "ws-carol").await;
    let ws = store.create_workspace(alice.id, "团队 Team", lore_core::now()).await.expect("create");
    assert_eq!((ws.role, ws.personal), (Role::Owner, false));
    let mine = store.workspaces_of(alice.id).await.expect("of");
    let seen: Vec<(Id, &str, bool, Role)> = mine.iter().map(|w| (w.id, w.name.as_str(), w.personal, w.role)).collect();
    assert_eq!(seen, [(alice.id, "ws-alice", true, Role::Owner), (ws.id, "团队 Team", false, Role::Owner)]);
    assert_eq!(store.workspaces_of(bob.id).await.expect("of").len(), 1, "bob's own only");
    assert!(store.membership(ws.id, bob.id).await.expect("m").is_none());
    assert!(store.membership(alice.id, bob.id).await.expect("m").is_none(), "another's personal workspace");
    let own = store.membership(alice.id, alice.id).await.expect("m").expect("own");
    assert_eq!((own.personal, own.role), (true, Role::Owner));

    store.add_member(ws.id, bob.id, Role::Editor, lore_core::now()).await.expect("add");
    let again = store.add_member(ws.id, bob.id, Role::Viewer, lore_core::now()).await.expect_err("twice");
    assert_eq!(again.code, Code::AlreadyMember);
    assert_eq!(store.membership(ws.id, bob.id).await.expect("m").map(|w| w.role), Some(Role::Editor));
    let members: Vec<(Id, Role)> =
        store.members(ws.id).await.expect("members").iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(members, [(alice.id, Role::Owner), (bob.id, Role::Editor)]);
    let personal: Vec<(Id, Role)> =
        store.members(alice.id).await.expect("members").iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(personal, [(alice.id, Role::Owner)]);

    // A workspace keeps an owner.
    assert_eq!(store.set_member_role(ws.id, alice.id, Role::Admin).await.expect("role"), MemberChange::LastOwner);
    assert_eq!(store.set_member_role(ws.id, carol.id, Role::Viewer).await.expect("role"), MemberChange::NotMember);
    assert_eq!(store.set_member_role(ws.id, bob.id, Role::Owner).await.expect("role"), MemberChange::Done);
    assert_eq!(store.set_member_role(ws.id, alice.id, Role::Admin).await.expect("role"), MemberChange::Done);
    assert_eq!(store.remove_member(ws.id, bob.id).await.expect("remove"), MemberChange::LastOwner);
    assert_eq!(store.remove_member(ws.id, alice.id).await.expect("remove"), MemberChange::Done);
    assert_eq!(store.remove_member(ws.id, alice.id).await.expect("remove"), MemberChange::NotMember);
    assert!(store.membership(ws.id, alice.id).await.expect("m").is_none());

    // The team owns what is made in it, as an account does; nobody signs in as it.
    let shared = store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: ws.id,
            created_by: Some(bob.id),
            name: "共享".into(),
            description: None,
            icon_url: None,
            settings: KbSettings::default(),
        })
        .await
        .expect("kb");
    assert_eq!((shared.workspace_id, shared.created_by), (ws.id, Some(bob.id)));
    // Shared read-only into carol's own workspace (twice: still one share).
    for _ in 0..2 {
        store.share_knowledge_base(shared.id, carol.id, bob.id, lore_core::now()).await.expect("share");
    }
    let shares = store.shares_of(shared.id).await.expect("shares");
    let seen: Vec<(Id, &str, Option<Id>)> =
        shares.iter().map(|s| (s.workspace_id, s.workspace_name.as_str(), s.created_by)).collect();
    assert_eq!(seen, [(carol.id, "ws-carol", Some(bob.id))]);
    let into: Vec<Id> = store.shared_with(carol.id).await.expect("shared").iter().map(|k| k.id).collect();
    assert_eq!(into, [shared.id]);
    assert!(store.shared_with(bob.id).await.expect("shared").is_empty());
    assert!(store.get_knowledge_base(carol.id, shared.id).await.expect("get").is_none(), "shared, not owned");
    assert!(store.unshare_knowledge_base(shared.id, carol.id).await.expect("unshare"));
    assert!(!store.unshare_knowledge_base(shared.id, carol.id).await.expect("unshare"));
    assert!(store.shared_with(carol.id).await.expect("shared").is_empty());
    store.share_knowledge_base(shared.id, carol.id, bob.id, lore_core::now()).await.expect("share again");
    assert_eq!(store.list_knowledge_bases(ws.id).await.expect("list").len(), 1);
    assert!(store.get_knowledge_base(bob.id, shared.id).await.expect("get").is_none(), "not in bob's own");
    let team_name = format!("workspace-{}", ws.id.simple());
    assert!(store.find_login(&team_name).await.expect("login").is_none());
    assert_eq!(store.count_users().await.expect("count"), 3);
    assert!(store.list_users(100, 0).await.expect("users").iter().all(|u| u.id != ws.id));
    assert!(store.set_user_active(ws.id, false).await.expect("deactivate").is_none(), "a team is no account to lock");

    // Invitations: one use each, none after expiry, none for a member (and then not used up).
    let now = lore_core::now();
    let invite = |hash: &str, expires_at: Timestamp| NewWorkspaceInvitation {
        workspace_id: ws.id,
        token_hash: hash.into(),
        email: None,
        username: Some("ws-carol".into()),
        role: Role::Viewer,
        created_by: bob.id,
        created_at: now,
        expires_at,
    };
    let expired =
        store.create_workspace_invitation(invite("h-expired", now - chrono::Duration::hours(1))).await.expect("i");
    assert!(!store.accept_workspace_invitation(&expired, carol.id, now).await.expect("accept"));
    let live = store.create_workspace_invitation(invite("h-live", now + chrono::Duration::hours(1))).await.expect("i");
    assert_eq!((live.username.as_deref(), live.role, live.used_at), (Some("ws-carol"), Role::Viewer, None));
    let found = store.find_workspace_invitation("h-live").await.expect("find").expect("found");
    assert_eq!(found.id, live.id);
    assert!(store.find_workspace_invitation("h-none").await.expect("find").is_none());
    let member = store.accept_workspace_invitation(&live, bob.id, now).await.expect_err("bob is a member");
    assert_eq!(member.code, Code::AlreadyMember);
    assert!(store.accept_workspace_invitation(&live, carol.id, now).await.expect("accept"));
    assert!(!store.accept_workspace_invitation(&live, carol.id, now).await.expect("accept"), "once");
    assert_eq!(store.membership(ws.id, carol.id).await.expect("m").map(|w| w.role), Some(Role::Viewer));
    let listed = store.workspace_invitations(ws.id).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().find(|i| i.id == live.id).and_then(|i| i.used_by), Some(carol.id));
    assert!(store.delete_workspace_invitation(ws.id, expired.id).await.expect("revoke"));
    assert!(!store.delete_workspace_invitation(alice.id, live.id).await.expect("revoke"), "another workspace's");
    assert_eq!(store.remove_member(ws.id, carol.id).await.expect("remove"), MemberChange::Done);

    assert!(store.rename_workspace(ws.id, "新名字").await.expect("rename"));
    assert!(!store.rename_workspace(alice.id, "not a team").await.expect("rename"));
    assert_eq!(store.membership(ws.id, bob.id).await.expect("m").map(|w| w.name), Some("新名字".to_string()));
    assert!(!store.delete_workspace(alice.id).await.expect("delete"), "a person is no team");
    assert!(store.delete_workspace(ws.id).await.expect("delete"));
    assert!(store.membership(ws.id, bob.id).await.expect("m").is_none());
    assert!(store.list_knowledge_bases(ws.id).await.expect("list").is_empty());
    assert!(store.shared_with(carol.id).await.expect("shared").is_empty(), "shares go with the knowledge base");
    assert!(store.get_user(alice.id).await.expect("alice").is_some());
}

async fn postgres() -> Option<PgStore> {
    // The PostgreSQL half fails without a database rather than passing empty; skipping it is
    // said out loud (LORE_SKIP_POSTGRES=1).
    let Ok(url) = std::env::var("LORE_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("LORE_SKIP_POSTGRES").is_ok_and(|v| v == "1"),
            "LORE_TEST_DATABASE_URL is not set: run scripts/pg-up (or set LORE_SKIP_POSTGRES=1 to skip PostgreSQL)"
        );
        eprintln!("skipped: LORE_SKIP_POSTGRES=1");
        return None;
    };
    let url = lore_store::postgres::create_scratch_schema(&url).await.expect("scratch schema");
    Some(PgStore::open(&url).await.expect("open postgres"))
}

/// Uploaded files in the database: content-addressed, in parts, whole or by range, once per
/// content, and copied in from a directory blob store without copying twice.
#[tokio::test]
async fn postgres_keeps_blobs_in_parts() {
    use lore_core::blob::BlobStore;
    let Some(store) = postgres().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = lore_store::PgBlobStore::open(&store, &dir.path().join("staging")).expect("blobs");
    let part = lore_store::postgres::blobs::PART;
    let bytes: Vec<u8> = (0..part * 2 + 12_345).map(|i| (i * 7 % 251) as u8).collect();
    let staged = dir.path().join("staging/upload");
    std::fs::write(&staged, &bytes).expect("stage");
    blobs.put_file("ab/cd/abcd", &staged).await.expect("put");
    assert!(!staged.exists(), "the staged file is moved in");
    assert_eq!(blobs.size("ab/cd/abcd").await.expect("size"), Some(bytes.len() as u64));
    assert_eq!(blobs.get("ab/cd/abcd").await.expect("get"), bytes);
    for (offset, len) in [(0, 10), (part as u64 - 3, 10), (part as u64 * 2, 20_000), (5, part * 2 + 100)] {
        let got = blobs.read_range("ab/cd/abcd", offset, len).await.expect("range");
        let from = offset as usize;
        assert_eq!(got, bytes[from..(from + len).min(bytes.len())], "{offset}+{len}");
    }
    // The same content again: kept once.
    std::fs::write(&staged, &bytes).expect("stage");
    blobs.put_file("ab/cd/abcd", &staged).await.expect("put again");
    assert_eq!(blobs.keys().await.expect("keys"), ["ab/cd/abcd"]);
    let missing = blobs.get("00/00/none").await.expect_err("missing");
    assert_eq!(missing.code, Code::NotFound);
    assert_eq!(blobs.size("00/00/none").await.expect("size"), None);
    blobs.check().await.expect("check");

    // A directory store's files come in once; the empty file too.
    let local = dir.path().join("blobs");
    std::fs::create_dir_all(local.join("ef/01")).expect("dirs");
    std::fs::create_dir_all(local.join("staging")).expect("staging");
    std::fs::write(local.join("ef/01/ef01"), "中文 and English").expect("file");
    std::fs::write(local.join("ef/01/ef02"), "").expect("empty");
    std::fs::write(local.join("staging/half"), "never accepted").expect("staged");
    assert_eq!(blobs.import_dir(&local).await.expect("import"), (2, "中文 and English".len() as u64));
    assert_eq!(blobs.import_dir(&local).await.expect("again"), (0, 0));
    assert_eq!(blobs.get("ef/01/ef01").await.expect("get"), "中文 and English".as_bytes());
    assert_eq!(blobs.get("ef/01/ef02").await.expect("get empty"), b"");
    blobs.delete("ab/cd/abcd").await.expect("delete");
    assert_eq!(blobs.size("ab/cd/abcd").await.expect("size"), None);
}

/// Every scenario runs on each backend as its own test, on a fresh store, so that one failure
/// hides no other: `sqlite_conformance::<scenario>` and `postgres_conformance::<scenario>`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite_conformance {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let (store, _dir) = super::sqlite().await;
                    super::$scenario(&store).await;
                }
            )*
        }
        mod postgres_conformance {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(store) = super::postgres().await else { return };
                    super::$scenario(&store).await;
                }
            )*
        }
    };
}

conformance! {
    statistics_are_kept_by_the_database,
    the_queue_leases_retries_and_replaces,
    owners_take_turns_in_the_queue,
    nodes_beat_hold_and_leave,
    tenants_are_isolated,
    fulltext_ranks_filters_and_hides_deleted,
    accounts_sessions_and_keys,
    common_terms_do_not_drown_selective_ones,
    fulltext_scores_do_not_leak_between_tenants,
    fulltext_scores_are_per_knowledge_base,
    fulltext_scores_are_bm25,
    limits_count_atomically_and_reset_by_window,
    retention_purges,
    user_config_round_trips,
    vectors_rank_filter_and_follow_deletes,
    chunks_are_curated_by_hand,
    reembedding_switches_in_one_step,
    agents_conversations_and_usage,
    data_sources_sync_runs_and_leases,
    deleting_a_knowledge_base_while_a_worker_completes_it,
    file_types_documents_and_the_queue_at_work,
    accounts_keys_usage_and_housekeeping,
    notifications_items_and_links,
    audit_entries_are_appended_listed_and_purged,
    evaluations_run_finish_and_go_with_their_knowledge_base,
    workspaces_members_and_roles,
}

fn registrant(name: &str, email: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: email.into(),
        password_hash: "x".into(),
        full_name: None,
        first_name: None,
        last_name: None,
    }
}

fn admission(policy: RegistrationPolicy, invitation_hash: Option<&str>) -> Admission {
    Admission { policy, invitation_hash: invitation_hash.map(str::to_string), now: lore_core::now() }
}

/// Registers `n` accounts at once (names `{prefix}{i}`), each with the same admission.
async fn register_at_once(
    store: &std::sync::Arc<dyn Store>, prefix: &str, n: usize, policy: RegistrationPolicy,
    invitation_hash: Option<&str>,
) -> Vec<lore_core::error::Result<User>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            let user = registrant(&format!("{prefix}{i}"), &format!("{prefix}{i}@example.com"));
            let admission = admission(policy, invitation_hash);
            tokio::spawn(async move { store.register_user(user, admission).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// Of concurrent first registrations on an empty store exactly one becomes the administrator;
/// under `invite` the others are refused, under `open` they become ordinary accounts.
async fn first_registrations_make_one_administrator(store: std::sync::Arc<dyn Store>, policy: RegistrationPolicy) {
    let results = register_at_once(&store, "first", 8, policy, None).await;
    let admitted: Vec<&User> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let superusers = admitted.iter().filter(|u| u.is_superuser && u.is_staff).count();
    assert_eq!(superusers, 1, "{results:?}");
    match policy {
        RegistrationPolicy::Open => assert_eq!(admitted.len(), 8, "{results:?}"),
        _ => {
            assert_eq!(admitted.len(), 1, "{results:?}");
            for refused in results.iter().filter_map(|r| r.as_ref().err()) {
                assert_eq!(refused.code, Code::RegistrationClosed, "{refused:?}");
            }
        }
    }
    assert_eq!(store.count_users().await.expect("count"), admitted.len() as i64);
    let listed = store.list_users(100, 0).await.expect("users");
    assert_eq!(listed.iter().filter(|u| u.is_superuser).count(), 1);
}

/// After the first account: `closed` admits nobody, `open` anybody, `invite` the holder of a
/// valid invitation, once; a refused or conflicting registration leaves nothing behind.
async fn invitations_admit_one_account_each(store: std::sync::Arc<dyn Store>) {
    let admin = store
        .register_user(registrant("管理员", "admin@例子.cn"), admission(RegistrationPolicy::Closed, None))
        .await
        .expect("the first account, even when closed");
    assert!(admin.is_superuser);
    let refused = store
        .register_user(registrant("lilei", "lilei@example.com"), admission(RegistrationPolicy::Closed, None))
        .await
        .expect_err("closed");
    assert_eq!(refused.code, Code::RegistrationClosed);
    let refused = store
        .register_user(registrant("lilei", "lilei@example.com"), admission(RegistrationPolicy::Invite, None))
        .await
        .expect_err("no invitation");
    assert_eq!(refused.code, Code::RegistrationClosed);
    let refused = store
        .register_user(registrant("lilei", "lilei@example.com"), admission(RegistrationPolicy::Invite, Some("nope")))
        .await
        .expect_err("unknown invitation");
    assert_eq!(refused.code, Code::InvitationInvalid);
    assert_eq!(store.count_users().await.expect("count"), 1, "refusals create nothing");
    let open = store
        .register_user(registrant("hanmeimei", "hmm@example.com"), admission(RegistrationPolicy::Open, None))
        .await
        .expect("open");
    assert!(!open.is_superuser && !open.is_staff);

    let week = lore_core::now() + chrono::Duration::days(7);
    let invited = |name: &str, email: &str| {
        store.register_user(registrant(name, email), admission(RegistrationPolicy::Invite, Some("hash-lilei")))
    };
    let invite = |hash: &str, email: Option<&str>, expires_at| NewInvitation {
        token_hash: hash.into(),
        email: email.map(str::to_string),
        created_by: Some(admin.id),
        expires_at,
    };
    // One invitation, eight registrants at once: one account.
    let shared = store.create_invitation(invite("hash-shared", None, week)).await.expect("invitation");
    assert_eq!((shared.created_by, shared.used_at), (Some(admin.id), None));
    let results = register_at_once(&store, "invitee", 8, RegistrationPolicy::Invite, Some("hash-shared")).await;
    let admitted: Vec<&User> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(admitted.len(), 1, "{results:?}");
    assert!(!admitted[0].is_superuser);
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code, Code::InvitationInvalid, "{refused:?}");
    }
    let used = store.find_invitation("hash-shared").await.expect("find").expect("invitation");
    assert_eq!(used.used_by, Some(admitted[0].id));
    assert!(used.used_at.is_some());

    // A conflicting name consumes nothing; an expired invitation and another address's are refused.
    store.create_invitation(invite("hash-lilei", Some("LiLei@Example.com"), week)).await.expect("invitation");
    let taken = invited("HanMeiMei", "lilei@example.com").await.expect_err("taken");
    assert_eq!(taken.code, Code::UsernameTaken);
    let other = invited("李雷", "someone@example.com").await.expect_err("another address");
    assert_eq!(other.code, Code::InvitationInvalid);
    let lilei = invited("李雷", "lilei@example.com").await.expect("the invited address, in any case");
    assert_eq!(lilei.username, "李雷");
    let past = lore_core::now() - chrono::Duration::seconds(1);
    store.create_invitation(invite("hash-old", None, past)).await.expect("invitation");
    let expired = store
        .register_user(registrant("late", "late@example.com"), admission(RegistrationPolicy::Invite, Some("hash-old")))
        .await
        .expect_err("expired");
    assert_eq!(expired.code, Code::InvitationInvalid);

    let listed = store.list_invitations().await.expect("list");
    assert_eq!(listed.len(), 3);
    let old = listed.iter().find(|i| i.expires_at < lore_core::now()).expect("the expired one");
    assert!(store.delete_invitation(old.id).await.expect("delete"));
    assert!(!store.delete_invitation(old.id).await.expect("delete again"));
    assert!(store.find_invitation("hash-old").await.expect("find").is_none());
    assert_eq!(store.list_invitations().await.expect("list").len(), 2);
}

/// Workers on many nodes claiming at the same moment take each job exactly once. (On PostgreSQL a
/// job another node had just claimed was once claimed again: the claimable test read a snapshot
/// older than the row lock.)
async fn concurrent_claimers_take_each_job_once(store: std::sync::Arc<dyn Store>) {
    let owner = user(store.as_ref(), "claimers").await;
    let base = kb(store.as_ref(), owner.id).await;
    let mut documents = Vec::new();
    for i in 0..48 {
        documents.push(document(store.as_ref(), owner.id, base.id, &format!("claim-{i}"), 1).await.id);
    }
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                while let Some(job) =
                    store.claim_job(&format!("node-{w}/worker-0"), Duration::from_secs(60)).await.expect("claim")
                {
                    claimed.push(job.document_id.expect("document job"));
                }
                claimed
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.expect("worker"));
    }
    claimed.sort();
    documents.sort();
    assert_eq!(claimed, documents, "each job claimed once");
    for doc in documents {
        let log = store.get_document(owner.id, doc).await.expect("get").expect("document").processing_log;
        assert_eq!(log.iter().filter(|e| e.stage == "claim").count(), 1, "{log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claims_are_exclusive() {
    let (store, _dir) = sqlite().await;
    concurrent_claimers_take_each_job_once(std::sync::Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_are_exclusive() {
    let Some(store) = postgres().await else { return };
    concurrent_claimers_take_each_job_once(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_registration_is_atomic() {
    for policy in [RegistrationPolicy::Invite, RegistrationPolicy::Open] {
        let (store, _dir) = sqlite().await;
        first_registrations_make_one_administrator(std::sync::Arc::new(store), policy).await;
    }
    let (store, _dir) = sqlite().await;
    invitations_admit_one_account_each(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_registration_is_atomic() {
    for policy in [RegistrationPolicy::Invite, RegistrationPolicy::Open] {
        let Some(store) = postgres().await else { return };
        first_registrations_make_one_administrator(std::sync::Arc::new(store), policy).await;
    }
    let Some(store) = postgres().await else { return };
    invitations_admit_one_account_each(std::sync::Arc::new(store)).await;
}

/// Row-level security is a second wall: in a transaction that names a tenant, a query with no
/// owner filter at all still sees only that tenant's rows.
#[tokio::test]
async fn postgres_row_level_security_hides_other_tenants() {
    let Some(store) = postgres().await else { return };
    let pool = store.pool();
    let bypass: bool = sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        .fetch_one(pool)
        .await
        .expect("role");
    assert!(!bypass, "the test role must not bypass row-level security (scripts/pg-up makes it so)");
    let alice = user(&store, "rls-alice").await;
    let bob = user(&store, "rls-bob").await;
    let alice_kb = kb(&store, alice.id).await;
    let bob_kb = kb(&store, bob.id).await;
    let alice_doc = document(&store, alice.id, alice_kb.id, "a1", 10).await;
    process(&store, alice_doc.id, &[("退款 政策", "退款 政策")]).await;
    let bob_doc = document(&store, bob.id, bob_kb.id, "b1", 10).await;
    process(&store, bob_doc.id, &[("shipping rules", "shipping rules")]).await;

    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
    let mut tx = pool.begin().await.expect("begin");
    // As the store's tenant transactions do: name the tenant, and turn the system bypass off.
    sqlx::query("SELECT set_config('lore.tenant', $1, true), set_config('lore.system', 'off', true)")
        .bind(bob.id.to_string())
        .execute(&mut *tx)
        .await
        .expect("tenant");
    for (table, expected) in
        [("users", 1), ("knowledge_bases", 1), ("documents", 1), ("document_chunks", 1), ("sessions", 0)]
    {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(table))).fetch_one(&mut *tx).await.expect("count");
        assert_eq!(n, expected, "{table} as bob");
    }
    let stolen: Option<String> = sqlx::query_scalar("SELECT filename FROM documents WHERE id = $1")
        .bind(alice_doc.id)
        .fetch_optional(&mut *tx)
        .await
        .expect("select");
    assert_eq!(stolen, None, "alice's document by id, unfiltered, as bob");
    tx.commit().await.expect("commit");
    // Work for no one in particular (workers, authentication) sees every tenant.
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents").fetch_one(pool).await.expect("count");
    assert_eq!(all, 2);
    // Fail closed: a connection as Lore's role that names neither a tenant nor the system bypass
    // (psql, a report, a query that forgot) sees no tenant's rows.
    {
        use sqlx::Connection;
        let mut raw = sqlx::PgConnection::connect_with(&pool.connect_options()).await.expect("raw connection");
        for table in ["users", "knowledge_bases", "documents", "document_chunks"] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(count(table))).fetch_one(&mut raw).await.expect("count");
            assert_eq!(n, 0, "{table} without a tenant");
        }
        raw.close().await.expect("close");
    }
    assert!(!lore_store::postgres::role_bypasses_row_security(pool).await.expect("role"));
    // And the store's own tenant reads run behind the wall and still find their rows.
    assert!(store.get_document(bob.id, bob_doc.id).await.expect("get").is_some());
    assert!(store.get_document(bob.id, alice_doc.id).await.expect("get").is_none());
    let hits = search(&store, bob.id, bob_kb.id, &["shipping"], SearchFilters::default()).await;
    assert_eq!(hits.len(), 1);
}

/// Conversations have no API before the agents issue; they are written here directly.
#[tokio::test]
async fn sqlite_conversations_are_purged_after_their_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lore.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let keeper = user(&store, "keeper").await;
    let forgetful = user(&store, "forgetful").await;
    let mut config = UserConfig::initial();
    config.conversation_retention_days = Some(7);
    store.put_user_config(forgetful.id, &config).await.expect("config");
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
    let old = (lore_core::now() - chrono::Duration::days(10)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let new = lore_core::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    for (owner, age, id) in [(&keeper, &old, "c1"), (&forgetful, &old, "c2"), (&forgetful, &new, "c3")] {
        let agent = format!("agent-{id}");
        sqlx::query("INSERT INTO ai_agents (id, user_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&agent)
            .bind(owner.id.to_string())
            .bind(&agent)
            .bind(age)
            .bind(age)
            .execute(&raw)
            .await
            .expect("agent");
        sqlx::query("INSERT INTO conversations (id, user_id, agent_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(owner.id.to_string())
            .bind(&agent)
            .bind(age)
            .bind(age)
            .execute(&raw)
            .await
            .expect("conversation");
    }
    assert_eq!(store.purge_conversations(lore_core::now()).await.expect("purge"), 1);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT id FROM conversations ORDER BY id").fetch_all(&raw).await.expect("left");
    assert_eq!(left, vec!["c1", "c3"], "no retention set keeps everything; a recent one stays");
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent_and_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lore.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let u = user(&store, "persist").await;
    store.close().await;
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert!(store.get_user(u.id).await.expect("get").is_some());
}

/// A node refuses a database a newer Lore migrated past what it can read, and serves one whose
/// newer migrations only add.
#[tokio::test]
async fn sqlite_nodes_refuse_schemas_they_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lore.db");
    SqliteStore::open(&path).await.expect("open").close().await;
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
    let ours = lore_store::schema::versions().0;
    sqlx::query(
        "INSERT INTO lore_migrations (version, description, checksum, applied_at, readable_by) VALUES (?, 'adds', 'x', '', ?)",
    )
    .bind(ours + 1)
    .bind(ours)
    .execute(&raw)
    .await
    .expect("newer, readable");
    SqliteStore::open(&path).await.expect("a newer schema that only adds").close().await;
    sqlx::query(
        "INSERT INTO lore_migrations (version, description, checksum, applied_at, readable_by) VALUES (?, 'breaks', 'x', '', ?)",
    )
    .bind(ours + 2)
    .bind(ours + 2)
    .execute(&raw)
    .await
    .expect("newer, unreadable");
    let refused = SqliteStore::open(&path).await.err().expect("refused");
    assert!(refused.message.contains(&format!("schema version {}", ours + 2)), "{}", refused.message);
    assert!(refused.message.contains("upgrade this node"), "{}", refused.message);
}

/// A database whose chunks were indexed before their lengths were stored (migration 6) has them
/// counted when the store opens: the full-text scores are those of chunks indexed since.
#[tokio::test]
async fn sqlite_chunks_indexed_before_lengths_were_stored_are_counted_on_opening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lore.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let owner = user(&store, "upgrader").await;
    let k = kb(&store, owner.id).await;
    let doc = document(&store, owner.id, k.id, "upgrade", 1).await;
    process(&store, doc.id, SCORED_CHUNKS).await;
    let scores = score_bits(&store, owner.id, k.id).await;
    store.close().await;

    // As migration 6 leaves an older database: no lengths, empty counters, every chunk listed.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
    sqlx::raw_sql(
        "UPDATE document_chunks SET fts_length = NULL;
         INSERT INTO fts_length_backfill (seq) SELECT rowid FROM chunk_fts;",
    )
    .execute(&raw)
    .await
    .expect("downgrade");
    let counters: (i64, i64) = sqlx::query_as("SELECT fts_chunks, fts_length_sum FROM knowledge_bases WHERE id = ?")
        .bind(k.id.to_string())
        .fetch_one(&raw)
        .await
        .expect("counters");
    assert_eq!(counters, (0, 0));
    raw.close().await;

    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(score_bits(&store, owner.id, k.id).await, scores);
}

/// The vector index is derived: a store dropped without closing (as by kill -9) reopens with every
/// embedded chunk searchable, whether the graphs were saved or not, and a damaged graph file is
/// rebuilt from the chunks.
#[tokio::test]
async fn sqlite_vector_index_recovers_from_crashes_and_damaged_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lore.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let owner = user(&store, "crash").await;
    let k = kb(&store, owner.id).await;
    let d1 = document(&store, owner.id, k.id, "c1", 10).await;
    process_embedded(&store, d1.id, &[("a", axis(0)), ("b", axis(1))]).await;
    store.close().await; // saves the graphs
    let store = SqliteStore::open(&path).await.expect("reopen");
    let d2 = document(&store, owner.id, k.id, "c2", 10).await;
    process_embedded(&store, d2.id, &[("c", axis(2)), ("d", axis(3))]).await;
    store.soft_delete_document(owner.id, d1.id, lore_core::now()).await.expect("delete");
    drop(store); // no save: only the change log knows about c, d and the deletion

    let store = SqliteStore::open(&path).await.expect("reopen after crash");
    let hits = store.search_vector(&vector_query(owner.id, vec![k.id], axis(2), 4)).await.expect("s");
    let mut contents: Vec<&str> = hits.iter().map(|h| h.content.as_str()).collect();
    contents.sort_unstable();
    assert_eq!(contents, vec!["c", "d"]);
    store.close().await;

    for entry in std::fs::read_dir(dir.path().join("lore.vectors")).expect("dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "usearch") {
            std::fs::write(entry.path(), b"garbage").expect("damage");
        }
    }
    let store = SqliteStore::open(&path).await.expect("reopen with a damaged graph");
    let hits = store.search_vector(&vector_query(owner.id, vec![k.id], axis(3), 1)).await.expect("s");
    assert_eq!(hits[0].content, "d");
}

/// `lore backup` on PostgreSQL: the snapshot, read back as an embedded store, has the same
/// documents, statistics and full-text scores (Chinese and English), over more rows than one batch.
#[tokio::test]
async fn a_postgres_snapshot_reads_back_as_an_embedded_store() {
    let Some(pg) = postgres().await else { return };
    let owner = user(&pg, "snapshot").await;
    let base = kb(&pg, owner.id).await;
    let chunks: Vec<(String, String)> = (0..2100)
        .map(|i| {
            let text = format!("退款 refund 第{i}条 policy{} 中文 分块", i % 7);
            let terms = format!("退款 refund 第{i}条 policy{} 中文 分块", i % 7);
            (text, terms)
        })
        .collect();
    let doc = document(&pg, owner.id, base.id, "snapshot", 4096).await;
    process_owned(&pg, doc.id, &chunks).await;
    let other = document(&pg, owner.id, base.id, "snapshot-2", 10).await;
    process(&pg, other.id, &[("退款 退款 refund", "退款 退款 refund")]).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lore.db");
    lore_store::transfer::postgres_to_sqlite(&pg, &db).await.expect("snapshot");
    let copy = SqliteStore::open(&db).await.expect("open the snapshot");
    assert_eq!(kb_stats(&copy, owner.id, base.id).await, kb_stats(&pg, owner.id, base.id).await);
    assert_eq!(kb_stats(&copy, owner.id, base.id).await, (2, 2101, 4106));
    let read = copy.get_user(owner.id).await.expect("user").expect("exists");
    assert_eq!(read.storage_used, 4106);
    for terms in [&["退款", "refund"][..], &["policy3"], &["第2099条"]] {
        let theirs = search(&pg, owner.id, base.id, terms, SearchFilters::default()).await;
        let ours = search(&copy, owner.id, base.id, terms, SearchFilters::default()).await;
        assert!(!ours.is_empty(), "{terms:?}");
        let ids = |hits: &[ChunkHit]| hits.iter().map(|h| (h.chunk_id, h.content.clone())).collect::<Vec<_>>();
        assert_eq!(ids(&ours), ids(&theirs), "{terms:?}");
        // PostgreSQL takes a large knowledge base's average chunk length from a sample, the
        // embedded store keeps it exact: scores agree to within that estimate.
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a.score - b.score).abs() <= 1e-3 * b.score.abs(), "{terms:?}: {} vs {}", a.score, b.score);
        }
    }
    copy.close().await;
}
