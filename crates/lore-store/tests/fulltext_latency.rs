//! Full-text search latency of the embedded store, without HTTP: a knowledge base of a few
//! thousand chunks (half Chinese, half English, Zipf vocabularies as `lore bench ingest` makes
//! them) beside another tenant's, queried with one to three content words. Ignored by default:
//!
//!     cargo test -p lore-store --test fulltext_latency -- --ignored --nocapture
//!
//! (add `--config 'profile.dev.package.lore-store.opt-level=3'` for optimised store code).

use std::time::{Duration, Instant};

use lore_core::model::*;
use lore_core::store::Upload;
use lore_core::store::{AccountStore, DocumentStore, KnowledgeBaseStore, QueueStore, SearchStore};
use lore_store::SqliteStore;
use serde_json::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Words with Zipf's law (exponent 1).
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(words: Vec<String>) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|c| *c < target).min(self.words.len() - 1);
        &self.words[i]
    }
}

fn vocabularies() -> (Vocabulary, Vocabulary) {
    const N: usize = 20_000;
    let syllables: Vec<String> = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w"]
        .iter()
        .flat_map(|o| ["a", "e", "i", "o", "u", "ai", "ou", "ea"].iter().map(move |v| format!("{o}{v}")))
        .collect();
    let k = syllables.len();
    let en = (0..N)
        .map(|i| format!("{}{}{}", syllables[i % k], syllables[(i / k) % k], syllables[(i / k / k) % k]))
        .collect();
    let ch = |i: usize| char::from_u32(0x4E00 + (i % 1500) as u32).unwrap_or('中');
    let zh = (0..N).map(|i| format!("{}{}", ch(i), ch(i / 1500 + i * 7 + 1))).collect();
    (Vocabulary::new(en), Vocabulary::new(zh))
}

/// Chunks of 60 to 200 terms, in one language per document.
fn chunks(rng: &mut Rng, vocab: &Vocabulary, n: usize) -> Vec<NewChunk> {
    (0..n)
        .map(|i| {
            let len = 60 + (rng.next() % 140) as usize;
            let terms: Vec<&str> = (0..len).map(|_| vocab.sample(rng)).collect();
            NewChunk {
                content: terms.join(" "),
                content_hash: format!("h{i}"),
                chunk_index: i as i64,
                metadata: json!({}),
                fts_terms: terms.join(" "),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: None,
            }
        })
        .collect()
}

async fn fill(store: &SqliteStore, owner: Id, kb: Id, docs: usize, per_doc: usize, rng: &mut Rng) {
    let (en, zh) = vocabularies();
    for d in 0..docs {
        let upload = store
            .create_document(NewDocument {
                knowledge_base_id: kb,
                user_id: owner,
                uploaded_by: Some(owner),
                filename: format!("doc-{d}.md"),
                file_type: "markdown".into(),
                file_type_id: None,
                file_size: 1,
                mime_type: "text/markdown".into(),
                file_hash: format!("{kb}-{d}"),
                file_path: format!("blobs/{kb}-{d}"),
                metadata: json!({}),
                chunking_config: None,
                expires_at: None,
                data_source_id: None,
            })
            .await
            .expect("document");
        let Upload::Created(doc) = upload else { panic!("duplicate") };
        let job = store.claim_job("bench", Duration::from_secs(60)).await.expect("claim").expect("job");
        let processed = ProcessedDocument {
            title: None,
            raw_content: String::new(),
            processed_content: String::new(),
            source_metadata: json!({}),
            chunks: chunks(rng, if d % 2 == 0 { &zh } else { &en }, per_doc),
            embedding_model: None,
            log: Vec::new(),
        };
        store.complete_document(&job, doc.id, processed).await.expect("complete");
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn sqlite_fulltext_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("lore.db")).await.expect("open");
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let mut kbs = Vec::new();
    for name in ["measured", "neighbour"] {
        let owner = store
            .create_user(NewUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                password_hash: "x".into(),
                full_name: None,
                first_name: None,
                last_name: None,
            })
            .await
            .expect("user");
        let kb = store
            .create_knowledge_base(NewKnowledgeBase {
                user_id: owner.id,
                name: name.into(),
                description: None,
                icon_url: None,
                settings: KbSettings::default(),
            })
            .await
            .expect("kb");
        kbs.push((owner.id, kb.id));
    }
    let started = Instant::now();
    fill(&store, kbs[0].0, kbs[0].1, 100, 40, &mut rng).await;
    fill(&store, kbs[1].0, kbs[1].1, 100, 40, &mut rng).await;
    eprintln!("filled 2 x 4,000 chunks in {:.1} s", started.elapsed().as_secs_f64());

    let (en, zh) = vocabularies();
    let queries: Vec<Vec<String>> = (0..1100)
        .map(|_| {
            let vocab = if rng.next().is_multiple_of(2) { &zh } else { &en };
            let n = 1 + (rng.next() % 3) as usize;
            (0..n).map(|_| vocab.words[50 + (rng.next() % 4950) as usize].clone()).collect()
        })
        .collect();
    let (owner, kb) = kbs[0];
    let mut ms = Vec::new();
    let mut hits = 0;
    for (i, terms) in queries.iter().enumerate() {
        let t = Instant::now();
        let found = store
            .search_fulltext(&FulltextQuery {
                user_id: owner,
                knowledge_base_id: kb,
                terms: terms.clone(),
                top_k: 10,
                filters: SearchFilters::default(),
            })
            .await
            .expect("search");
        if i >= 100 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            hits += found.len();
        }
    }
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    eprintln!(
        "fulltext, top_k 10, {} queries of 1-3 content words over 4,000 chunks (8,000 in the index): \
         p50 {:.3} ms, p99 {:.3} ms, mean {mean:.3} ms, {:.1} hits per query",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        hits as f64 / ms.len() as f64
    );
    // A query of only common words scores most of the knowledge base.
    let common: Vec<String> = vec![zh.words[0].clone(), zh.words[1].clone()];
    let mut ms = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        store
            .search_fulltext(&FulltextQuery {
                user_id: owner,
                knowledge_base_id: kb,
                terms: common.clone(),
                top_k: 10,
                filters: SearchFilters::default(),
            })
            .await
            .expect("search");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    eprintln!(
        "the two commonest Chinese words: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99)
    );
}
