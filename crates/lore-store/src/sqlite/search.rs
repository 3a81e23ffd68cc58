//! Full-text search on SQLite. FTS5 finds the chunks of the knowledge base that hold a query
//! term; BM25 is computed here, from that knowledge base's own statistics, with PostgreSQL's
//! formula (postgres/search.rs), so that both stores rank alike. FTS5's own bm25() is not used:
//! it counts every tenant's chunks in the shared index, so a score would move when someone else
//! uploaded a word, telling whether (and how often) their documents hold it.
//!
//! For a chunk d of knowledge base K and query terms t:
//!
//!   score(d) = Σ_t idf(t) · tf(t,d)·(k1 + 1) / (tf(t,d) + k1·(1 − b + b·len(d)/avglen))
//!   idf(t)   = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//!
//! with k1 = 1.2, b = 0.75; N = K's chunks in the full-text index; df(t) = those holding t;
//! len(d) = d's distinct terms (PostgreSQL's length(tsvector)); avglen = their mean over K's
//! indexed chunks. N and the lengths' sum are counters of the knowledge base, kept by triggers
//! (migration 6), so the statistics cost one row. Chunks of a document in the trash stay in the
//! index, and in N and df alike, until it is purged. (PostgreSQL takes N from the knowledge
//! base's chunk count, which leaves the trash out and counts parent chunks, and avglen from a
//! sample of 2,000 chunks: for a knowledge base of at most 2,000 chunks, none of them parents or
//! in the trash, both stores give the same scores, as the conformance suite checks.)

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use lore_core::error::{Error, Result};
use lore_core::model::*;
use lore_core::store::SearchStore;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, json_text, kb_token};
use crate::fetch::Fetch;
use crate::rows::*;
use crate::vectors::{self, Field, SpaceKey};

/// BM25's usual parameters, as on PostgreSQL.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A term found in more than this share of a knowledge base's chunks is "common" (的, the, 是 ...).
const COMMON_TERM_SHARE: f64 = 0.2;
/// Below this many chunks, frequencies say little and every query is cheap anyway.
const MIN_CHUNKS_FOR_PRUNING: i64 = 200;
/// Longer queries keep their rarest terms.
const MAX_QUERY_TERMS: usize = 32;

/// An FTS5 query matching any of the terms, each quoted so that no term is read as syntax.
fn fts_match(terms: &[String]) -> String {
    terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR ")
}

/// A chunk's length for BM25: how many distinct terms its segmented text holds (what
/// PostgreSQL's length() of the chunk's tsvector counts). Stored with each indexed chunk.
/// (Lore joins a chunk's terms with spaces; no term holds whitespace of any kind.)
pub(super) fn term_count(terms: &str) -> i64 {
    terms.split_ascii_whitespace().collect::<HashSet<&str>>().len() as i64
}

/// Counts the lengths of chunks indexed before lengths were stored (migration 6), once.
pub(super) async fn backfill_lengths(writer: &SqlitePool) -> Result<()> {
    loop {
        let rows = sqlx::query(
            "SELECT b.seq, f.terms FROM fts_length_backfill b LEFT JOIN chunk_fts f ON f.rowid = b.seq
             ORDER BY b.seq LIMIT 1000",
        )
        .all(writer)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = writer.begin().await.map_err(db_err)?;
        for row in &rows {
            let seq = row.int("seq")?;
            if let Some(terms) = row.opt_text("terms")? {
                sqlx::query("UPDATE document_chunks SET fts_length = ? WHERE seq = ?")
                    .bind(term_count(&terms))
                    .bind(seq)
                    .run(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM fts_length_backfill WHERE seq = ?").bind(seq).run(&mut *tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        tracing::info!(chunks = rows.len(), "counted the lengths of chunks indexed before they were stored");
    }
}

/// What BM25 needs of the knowledge base, and the query's terms worth ranking by.
struct Statistics {
    /// N: the knowledge base's chunks in the full-text index.
    chunks: i64,
    avg_len: f64,
    terms: Vec<String>,
}

/// How often each term occurs in a chunk's segmented text, as a whole term, into `tf`.
fn term_frequencies(text: &str, terms: &[String], tf: &mut [u32]) {
    tf.fill(0);
    for word in text.split_ascii_whitespace() {
        if let Some(i) = terms.iter().position(|t| t == word) {
            tf[i] += 1;
        }
    }
}

/// One term's part of a chunk's score; `norm` is k1·(1 − b + b·len/avglen) for the chunk.
fn term_score(idf: f64, tf: u32, norm: f64) -> f64 {
    let tf = f64::from(tf);
    idf * (tf * (K1 + 1.0)) / (tf + norm)
}

/// The matches (seq, length, text) scored, best first, ties in index order. Every indexed chunk
/// of the knowledge base holding a term is among them, so each term's df is counted here, with
/// the same notion of "holds" as its tf. A match that holds none of the terms scores 0 and is
/// left out (FTS5's phrase matching is looser than a term's equality: "3.14" against "3 14").
fn rank(stats: &Statistics, matches: &[(i64, i64, &str)]) -> Vec<(f64, i64)> {
    let k = stats.terms.len().max(1);
    let mut tfs = vec![0u32; matches.len() * k];
    for ((_, _, text), tf) in matches.iter().zip(tfs.chunks_mut(k)) {
        term_frequencies(text, &stats.terms, tf);
    }
    let n = stats.chunks.max(1) as f64;
    let idf: Vec<f64> = (0..stats.terms.len())
        .map(|i| {
            let df = tfs.iter().skip(i).step_by(k).filter(|tf| **tf > 0).count() as f64;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        })
        .collect();
    let mut ranked: Vec<(f64, i64)> = matches
        .iter()
        .zip(tfs.chunks(k))
        .filter_map(|((seq, len, _), tf)| {
            let norm = K1 * (1.0 - B + B * *len as f64 / stats.avg_len);
            let score: f64 =
                tf.iter().zip(&idf).filter(|(tf, _)| **tf > 0).map(|(tf, idf)| term_score(*idf, *tf, norm)).sum();
            (score > 0.0).then_some((score, *seq))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
}

/// The matches as one string, `seq,length,bytes,text` after one another: a single value crosses
/// from SQLite rather than a row per match. Each length comes from the small index beside the
/// chunks (their rows, embeddings and all, are not read).
const MATCHES: &str =
    "SELECT group_concat(f.rowid || ',' || c.fts_length || ',' || octet_length(f.terms) || ',' || f.terms, '')
    FROM chunk_fts f CROSS JOIN document_chunks c INDEXED BY idx_chunks_fts_length ON c.seq = f.rowid
    WHERE f.chunk_fts MATCH ? AND c.fts_length IS NOT NULL";

fn split_matches(mut all: &str) -> Result<Vec<(i64, i64, &str)>> {
    let malformed = || Error::internal("malformed list of full-text matches");
    let mut out = Vec::new();
    while !all.is_empty() {
        let mut number = || -> Result<i64> {
            let (n, rest) = all.split_once(',').ok_or_else(malformed)?;
            all = rest;
            n.parse().map_err(|_| malformed())
        };
        let (seq, len, bytes) = (number()?, number()?, number()?);
        let text = usize::try_from(bytes).ok().and_then(|b| all.get(..b)).ok_or_else(malformed)?;
        out.push((seq, len, text));
        all = &all[text.len()..];
    }
    Ok(out)
}

const HIT_COLS: &str = "c.seq, c.id, c.document_id, c.knowledge_base_id, c.content, c.chunk_index, c.metadata, \
    d.filename, d.title, 0.0 AS score, p.id AS parent_id, p.content AS parent_content";

/// Filtered vector queries whose filter admits at most this many chunks are answered exactly,
/// by comparing against each admitted embedding, instead of walking the graph.
const EXACT_SEARCH_MAX: i64 = 20_000;

impl SqliteStore {
    pub(super) async fn fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        let filters = &query.filters;
        if query.terms.is_empty()
            || query.top_k == 0
            || filters.document_ids.as_ref().is_some_and(Vec::is_empty)
            || filters.file_types.as_ref().is_some_and(Vec::is_empty)
        {
            return Ok(Vec::new());
        }
        // One read transaction, so that the statistics and the matches are of one snapshot.
        let mut tx = self.reader.begin().await.map_err(db_err)?;
        let Some(stats) = statistics(&mut tx, query).await? else { return Ok(Vec::new()) };

        // Every chunk of the knowledge base holding a term, scored; then the best are looked up,
        // filtered, in growing windows until top_k pass (only their rows are read in full).
        let expression =
            format!("kb : {} AND terms : ({})", kb_token(query.knowledge_base_id), fts_match(&stats.terms));
        let all: Option<String> = sqlx::query_scalar(MATCHES).bind(&expression).one(&mut *tx).await?;
        let ranked = rank(&stats, &split_matches(all.as_deref().unwrap_or_default())?);

        let (conditions, params) = filter_conditions(filters)?;
        let sql = format!(
            "SELECT {HIT_COLS} FROM json_each(?) s
             CROSS JOIN document_chunks c ON c.seq = s.value
             CROSS JOIN documents d ON d.id = c.document_id
             LEFT JOIN document_chunks p ON p.id = c.parent_chunk_id
             WHERE c.knowledge_base_id = ? AND c.user_id = ? AND d.soft_deleted_at IS NULL
               AND d.status = 'completed'{conditions}"
        );
        let top_k = query.top_k as usize;
        let mut hits: Vec<ChunkHit> = Vec::with_capacity(top_k);
        let (mut start, mut window) = (0, top_k * 4 + 32);
        while hits.len() < top_k && start < ranked.len() {
            let slice = &ranked[start..(start + window).min(ranked.len())];
            let seqs: Vec<i64> = slice.iter().map(|(_, seq)| *seq).collect();
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(serde_json::to_string(&seqs)?)
                .bind(query.knowledge_base_id.to_string())
                .bind(query.user_id.to_string());
            for p in &params {
                q = q.bind(p.clone());
            }
            let rows = q.all(&mut *tx).await?;
            let mut found: HashMap<i64, ChunkHit> = HashMap::with_capacity(rows.len());
            for row in &rows {
                found.insert(row.int("seq")?, hit_from(row)?);
            }
            for (score, seq) in slice {
                if let Some(hit) = found.remove(seq) {
                    hits.push(ChunkHit { score: *score, ..hit });
                }
            }
            start += slice.len();
            window *= 8;
        }
        tx.commit().await.map_err(db_err)?;
        hits.truncate(top_k);
        Ok(hits)
    }
}

/// The knowledge base's statistics and the query's terms worth ranking by, in one statement;
/// None when the knowledge base is not the user's or no term can match.
///
/// As on PostgreSQL, when a query has rarer terms its common ones are dropped: BM25 gives them
/// almost no weight, yet every chunk holding one would have to be scored (the idea of Lucene's
/// common-terms query). A query of only common terms keeps them all. To decide, each term's
/// chunks are counted inside the index, stopping just past "common"; only in a knowledge base
/// big enough to prune (or for a query too long to keep whole) are they counted at all.
async fn statistics(conn: &mut SqliteConnection, query: &FulltextQuery) -> Result<Option<Statistics>> {
    let mut seen = HashSet::new();
    let terms: Vec<&String> = query.terms.iter().filter(|t| seen.insert(t.as_str())).collect();
    let kb = kb_token(query.knowledge_base_id);
    let counts: Vec<String> = (0..terms.len())
        .map(|i| {
            format!(
                "(SELECT COUNT(*) FROM (SELECT 1 FROM chunk_fts WHERE chunk_fts MATCH ?{} LIMIT (SELECT cap FROM k)))",
                i + 7
            )
        })
        .collect();
    let sql = format!(
        "WITH k AS (SELECT fts_chunks, fts_length_sum,
             CASE WHEN ?3 AND fts_chunks >= ?4 THEN CAST(fts_chunks * ?5 AS INTEGER) + 1 ELSE ?6 END AS cap
             FROM knowledge_bases WHERE id = ?1 AND user_id = ?2)
         SELECT fts_chunks, fts_length_sum, cap, {} FROM k",
        counts.join(", ")
    );
    let many = terms.len() > MAX_QUERY_TERMS;
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(query.knowledge_base_id.to_string())
        .bind(query.user_id.to_string())
        .bind(terms.len() > 1)
        .bind(MIN_CHUNKS_FOR_PRUNING)
        .bind(COMMON_TERM_SHARE)
        // Not pruning: a long query's terms are counted in full, a short one's not at all.
        .bind(if many { -1_i64 } else { 0 });
    for term in &terms {
        q = q.bind(format!("kb : {kb} AND terms : {}", fts_match(std::slice::from_ref(*term))));
    }
    let Some(row) = q.optional(&mut *conn).await? else { return Ok(None) };
    let (chunks, length_sum, cap) = (row.int("fts_chunks")?, row.int("fts_length_sum")?, row.int("cap")?);
    let mut with_df = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        let df: i64 = row.try_get(i + 3).map_err(db_err)?;
        if df > 0 || cap == 0 {
            with_df.push(((*term).clone(), df));
        }
    }
    let prune = terms.len() > 1 && chunks >= MIN_CHUNKS_FOR_PRUNING;
    if prune && with_df.iter().any(|(_, df)| *df < cap) {
        with_df.retain(|(_, df)| *df < cap);
    }
    if with_df.len() > MAX_QUERY_TERMS {
        with_df.sort_by_key(|(_, df)| *df);
        with_df.truncate(MAX_QUERY_TERMS);
    }
    if with_df.is_empty() {
        return Ok(None);
    }
    let avg_len = if chunks > 0 { length_sum as f64 / chunks as f64 } else { 1.0 };
    Ok(Some(Statistics { chunks, avg_len: avg_len.max(1.0), terms: with_df.into_iter().map(|(t, _)| t).collect() }))
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vector_search(query).await
    }

    async fn cached_embeddings(
        &self, user_id: Id, model: &str, hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        self.embeddings_by_hash(user_id, model, hashes).await
    }

    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        self.fulltext(query).await
    }
}

impl SqliteStore {
    async fn vector_search(&self, q: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vectors.sync().await?;
        let top_k = q.top_k as usize;
        if top_k == 0 || q.knowledge_base_ids.is_empty() || q.vector.is_empty() {
            return Ok(Vec::new());
        }
        let fields: &[Field] = match q.target {
            SearchTarget::Content => &[Field::Content],
            SearchTarget::Summary => &[Field::Summary],
            SearchTarget::Both => &[Field::Content, Field::Summary],
        };
        let (conditions, params) = filter_conditions(&q.filters)?;
        // A little more than asked: a chunk whose document is being reprocessed is dropped below.
        // (The graphs were brought up to date above, so deleted documents are already gone.)
        // Hydration below looks chunks up by seq first (CROSS JOIN fixes that order): left to
        // itself the planner walks the owner's chunks and took seconds for a few hundred hits.
        let want = top_k + 10;
        let mut best: HashMap<i64, f64> = HashMap::new();
        let mut consider = |seq: i64, score: f64| {
            let entry = best.entry(seq).or_insert(f64::NEG_INFINITY);
            *entry = entry.max(score);
        };
        for kb in &q.knowledge_base_ids {
            let admitted = format!(
                "FROM document_chunks c JOIN documents d ON d.id = c.document_id
                 WHERE c.knowledge_base_id = ? AND c.user_id = ? AND c.embedding_model = ?
                   AND c.content_embedding IS NOT NULL AND c.enabled = 1 AND d.soft_deleted_at IS NULL
                   AND d.status = 'completed'{conditions}"
            );
            let bind = |sql: String| {
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(kb.to_string())
                    .bind(q.user_id.to_string())
                    .bind(q.embedding_model.clone());
                for p in &params {
                    query = query.bind(p.clone());
                }
                query
            };
            let mut allowed = None;
            if !conditions.is_empty() {
                let count: i64 =
                    bind(format!("SELECT COUNT(*) {admitted}")).one(&self.reader).await?.try_get(0).map_err(db_err)?;
                if count == 0 {
                    continue;
                }
                if count <= EXACT_SEARCH_MAX {
                    let rows = bind(format!("SELECT c.seq, c.content_embedding, c.summary_embedding {admitted}"))
                        .all(&self.reader)
                        .await?;
                    for row in rows {
                        let seq: i64 = row.try_get("seq").map_err(db_err)?;
                        for field in fields {
                            let column =
                                if *field == Field::Content { "content_embedding" } else { "summary_embedding" };
                            let blob: Option<Vec<u8>> = row.try_get(column).map_err(db_err)?;
                            if let Some(blob) = blob {
                                consider(seq, cosine(&q.vector, &vectors::from_blob(&blob)));
                            }
                        }
                    }
                    continue;
                }
                let rows = bind(format!("SELECT c.seq {admitted}")).all(&self.reader).await?;
                let set: HashSet<u64> = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0).map(|s| s as u64))
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?;
                allowed = Some(set);
            }
            for field in fields {
                let key = SpaceKey { knowledge_base_id: *kb, model: q.embedding_model.clone(), field: *field };
                if let Some(space) = self.vectors.space(&key) {
                    let vector = q.vector.clone();
                    let allowed = allowed.clone();
                    let found = tokio::task::spawn_blocking(move || space.search(&vector, want, allowed.as_ref()))
                        .await
                        .map_err(Error::internal)??;
                    for (seq, score) in found {
                        consider(seq as i64, score);
                    }
                }
            }
        }
        let mut ranked: Vec<(i64, f64)> = best.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(want);
        if let Some(min) = q.min_score {
            ranked.retain(|(_, score)| *score >= min);
        }
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT c.seq, c.id, c.document_id, c.knowledge_base_id, c.content, c.chunk_index, c.metadata, d.filename,
                    d.title, 0.0 AS score, p.id AS parent_id, p.content AS parent_content
             FROM document_chunks c
             CROSS JOIN documents d ON d.id = c.document_id
             LEFT JOIN document_chunks p ON p.id = c.parent_chunk_id
             WHERE c.seq IN ({}) AND c.user_id = ? AND c.enabled = 1 AND d.soft_deleted_at IS NULL
               AND d.status = 'completed'",
            ranked.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>().join(",")
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(q.user_id.to_string()).all(&self.reader).await?;
        let mut by_seq: HashMap<i64, ChunkHit> = HashMap::with_capacity(rows.len());
        for row in &rows {
            by_seq.insert(row.try_get("seq").map_err(db_err)?, hit_from(row)?);
        }
        Ok(ranked
            .into_iter()
            .filter_map(|(seq, score)| by_seq.remove(&seq).map(|hit| ChunkHit { score, ..hit }))
            .take(top_k)
            .collect())
    }

    async fn embeddings_by_hash(
        &self, user_id: Id, model: &str, hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut found = HashMap::new();
        for batch in hashes.chunks(500) {
            let sql = format!(
                "SELECT content_hash, content_embedding FROM document_chunks
                 WHERE embedding_model = ? AND user_id = ? AND content_embedding IS NOT NULL AND content_hash IN ({})
                 GROUP BY content_hash",
                vec!["?"; batch.len()].join(",")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(model.to_string()).bind(user_id.to_string());
            for h in batch {
                query = query.bind(h.clone());
            }
            for row in query.all(&self.reader).await? {
                let blob: Vec<u8> = row.try_get("content_embedding").map_err(db_err)?;
                found.insert(row.try_get("content_hash").map_err(db_err)?, vectors::from_blob(&blob));
            }
        }
        Ok(found)
    }
}

pub(super) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::NEG_INFINITY;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    f64::from(dot / (na.sqrt() * nb.sqrt()).max(1e-12))
}

/// SQL conditions (each starting with ` AND`) on chunk `c` and document `d` for the filters, and
/// their parameters in order.
pub(super) fn filter_conditions(filters: &SearchFilters) -> Result<(String, Vec<String>)> {
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Some(ids) = &filters.document_ids {
        sql.push_str(&format!(" AND c.document_id IN ({})", vec!["?"; ids.len().max(1)].join(", ")));
        params.extend(ids.iter().map(Id::to_string));
        if ids.is_empty() {
            params.push(String::new());
        }
    }
    if let Some(types) = &filters.file_types {
        sql.push_str(&format!(" AND d.file_type IN ({})", vec!["?"; types.len().max(1)].join(", ")));
        params.extend(types.iter().cloned());
        if types.is_empty() {
            params.push(String::new());
        }
    }
    if let Some(ids) = &filters.data_source_ids {
        sql.push_str(&format!(" AND d.data_source_id IN ({})", vec!["?"; ids.len().max(1)].join(", ")));
        params.extend(ids.iter().map(Id::to_string));
        if ids.is_empty() {
            params.push(String::new());
        }
    }
    for (k, v) in filters.metadata.iter().flatten() {
        sql.push_str(" AND json_extract(d.metadata, ?) IS json_extract(?, '$')");
        params.push(format!("$.\"{}\"", k.replace('"', "")));
        params.push(json_text(v)?);
    }
    Ok((sql, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_split_by_their_lengths() {
        let list = "12,3,9,a,b 中 c7,0,0,3,2,3,x y";
        assert_eq!(split_matches(list).expect("split"), vec![(12, 3, "a,b 中 c"), (7, 0, ""), (3, 2, "x y")]);
        assert!(split_matches("12,1,40,short").is_err());
    }

    #[test]
    fn lengths_count_distinct_terms() {
        assert_eq!(term_count("apple banana apple"), 2);
        assert_eq!(term_count(""), 0);
        assert_eq!(term_count("向量 数据库 向量  vector"), 3);
    }

    #[test]
    fn scores_follow_bm25() {
        // Four chunks in the index, apple and fig in two each ("figs" is another term).
        let stats = Statistics { chunks: 4, avg_len: 2.0, terms: vec!["apple".into(), "fig".into()] };
        let matches = [(1, 2, "apple banana apple"), (2, 3, "fig apple  date\nfig"), (3, 1, "fig"), (4, 1, "figs")];
        let idf = |df: f64| (1.0 + (4.0 - df + 0.5) / (df + 0.5)).ln();
        let norm = |len: f64| K1 * (1.0 - B + B * len / 2.0);
        let score = |tf: f64, df: f64, len: f64| idf(df) * (tf * (K1 + 1.0)) / (tf + norm(len));
        let ranked = rank(&stats, &matches);
        let want =
            [(score(2.0, 2.0, 2.0), 1), (score(1.0, 2.0, 3.0) + score(2.0, 2.0, 3.0), 2), (score(1.0, 2.0, 1.0), 3)];
        let mut want = want.to_vec();
        want.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(ranked, want, "a chunk holding no term as a whole is left out");
    }

    #[test]
    fn frequencies_count_whole_terms() {
        let terms: Vec<String> = ["aa", "向量", "数据库", "x", "", "aa aaa"].iter().map(|t| t.to_string()).collect();
        let mut tf = vec![9; terms.len()];
        term_frequencies("aa aaa 向量 向量数据库  a\taa\nxaa aa", &terms, &mut tf);
        assert_eq!(tf, [3, 1, 0, 0, 0, 0]);
    }
}
