//! Search on PostgreSQL: BM25 over the GIN-indexed tsvector, and cosine similarity over pgvector's
//! HNSW indexes with iterative scans, so that a selective filter still fills the top k.

use std::collections::HashMap;

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::SearchStore;
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{PgQuery, PgStore, index_type, parse_vector, vector_text};
use crate::fetch::Fetch;
use crate::rows::*;

/// BM25's usual parameters, as SQLite's FTS5 uses them.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A term found in more than this share of a knowledge base's chunks is "common" (的, the, 是 ...).
const COMMON_TERM_SHARE: f64 = 0.2;
/// Below this many chunks, frequencies say little and every query is cheap anyway.
const MIN_CHUNKS_FOR_PRUNING: i64 = 200;
/// Longer queries keep their rarest terms.
const MAX_QUERY_TERMS: usize = 32;
/// Chunks sampled to estimate the average chunk length.
const LENGTH_SAMPLE: i64 = 2000;

enum Param {
    Ids(Vec<Id>),
    Texts(Vec<String>),
    Text(String),
    Json(serde_json::Value),
}

fn bind_all<'q>(mut q: PgQuery<'q>, params: &[Param]) -> PgQuery<'q> {
    for p in params {
        q = match p {
            Param::Ids(v) => q.bind(v.clone()),
            Param::Texts(v) => q.bind(v.clone()),
            Param::Text(v) => q.bind(v.clone()),
            Param::Json(v) => q.bind(Json(v.clone())),
        };
    }
    q
}

/// SQL conditions (each starting with ` AND`) on chunk `c` and document `d`, numbered from `$first`.
fn filter_conditions(filters: &SearchFilters, first: usize) -> (String, Vec<Param>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    let next = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        first + params.len() - 1
    };
    if let Some(ids) = &filters.document_ids {
        let n = next(&mut params, Param::Ids(ids.clone()));
        sql.push_str(&format!(" AND c.document_id = ANY(${n})"));
    }
    if let Some(types) = &filters.file_types {
        let n = next(&mut params, Param::Texts(types.clone()));
        sql.push_str(&format!(" AND d.file_type = ANY(${n})"));
    }
    if let Some(ids) = &filters.data_source_ids {
        let n = next(&mut params, Param::Ids(ids.clone()));
        sql.push_str(&format!(" AND d.data_source_id = ANY(${n})"));
    }
    for (k, v) in filters.metadata.iter().flatten() {
        let key = next(&mut params, Param::Text(k.clone()));
        let value = next(&mut params, Param::Json(v.clone()));
        // A missing key equals JSON null, as on SQLite.
        sql.push_str(&format!(" AND COALESCE(d.metadata -> ${key}, 'null'::jsonb) = ${value}"));
    }
    (sql, params)
}

/// A tsquery matching any of the lexemes, each quoted so that none is read as syntax.
fn any_of(lexemes: &[String]) -> String {
    lexemes.iter().map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''"))).collect::<Vec<_>>().join(" | ")
}

const HIT_COLS: &str = "c.seq, c.id, c.document_id, c.knowledge_base_id, c.content, c.chunk_index, c.metadata, \
    d.filename, d.title, p.id AS parent_id, p.content AS parent_content";

impl PgStore {
    pub(super) async fn fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        if query.terms.is_empty() || query.top_k == 0 {
            return Ok(Vec::new());
        }
        // The knowledge base's size and its chunks' average length (from a sample), for BM25.
        let stats = sqlx::query(
            "SELECT chunk_count, (SELECT COALESCE(AVG(length(fts)), 1)::float8 FROM
                 (SELECT fts FROM document_chunks WHERE knowledge_base_id = $1 AND fts IS NOT NULL LIMIT $3) s) AS avg_len
             FROM knowledge_bases WHERE id = $1 AND user_id = $2",
        )
        .bind(query.knowledge_base_id)
        .bind(query.user_id)
        .bind(LENGTH_SAMPLE)
        .optional(&self.pool).await?;
        let Some(stats) = stats else { return Ok(Vec::new()) };
        let (kb_chunks, avg_len) = (stats.int("chunk_count")?, stats.float("avg_len")?);
        let terms = self.selective_terms(query.knowledge_base_id, kb_chunks, &query.terms).await?;
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let n = kb_chunks.max(1) as f64;
        // N never below a term's df (trashed chunks still count in df until purged): idf stays
        // positive, so a match never scores below no match.
        let idf: Vec<f64> = terms
            .iter()
            .map(|(_, df)| {
                let df = *df as f64;
                (1.0 + (n.max(df) - df + 0.5) / (df + 0.5)).ln()
            })
            .collect();
        let lexemes: Vec<String> = terms.into_iter().map(|(t, _)| t).collect();
        let (conditions, params) = filter_conditions(&query.filters, 8);
        let sql = format!(
            "WITH matched AS (
                SELECT c.seq, c.fts FROM document_chunks c JOIN documents d ON d.id = c.document_id
                WHERE c.fts @@ $1::tsquery AND c.knowledge_base_id = $2 AND c.user_id = $3
                  AND d.soft_deleted_at IS NULL AND d.status = 'completed'{conditions}),
             scored AS (
                SELECT m.seq, SUM(($5::float8[])[array_position($4::text[], t.lexeme)]
                    * (cardinality(t.positions) * ({K1} + 1))
                    / (cardinality(t.positions) + {K1} * (1 - {B} + {B} * length(m.fts) / $6))) AS score
                FROM matched m
                -- Only the query's lexemes, with their positions: marked by setweight and kept by
                -- ts_filter (binary searches in the sorted tsvector) rather than every lexeme.
                CROSS JOIN LATERAL unnest(ts_filter(setweight(m.fts, 'A', $4::text[]), '{{a}}')) t
                GROUP BY m.seq ORDER BY score DESC, m.seq LIMIT $7)
             SELECT {HIT_COLS}, s.score::float8 AS score
             FROM scored s JOIN document_chunks c ON c.seq = s.seq JOIN documents d ON d.id = c.document_id
             LEFT JOIN document_chunks p ON p.id = c.parent_chunk_id
             ORDER BY s.score DESC, s.seq"
        );
        let q = sqlx::query(AssertSqlSafe(sql))
            .bind(any_of(&lexemes))
            .bind(query.knowledge_base_id)
            .bind(query.user_id)
            .bind(lexemes)
            .bind(idf)
            .bind(avg_len.max(1.0))
            .bind(i64::from(query.top_k));
        let rows = self.tenant_all(query.user_id, bind_all(q, &params)).await?;
        rows.iter().map(hit_from).collect()
    }

    /// The query's lexemes worth ranking by, with their document frequency in the knowledge
    /// base. As on SQLite: when a query has rarer terms, its common ones are dropped (BM25 gives
    /// them almost no weight, yet every chunk holding one would have to be scored).
    async fn selective_terms(
        &self, knowledge_base_id: Id, kb_chunks: i64, terms: &[String],
    ) -> Result<Vec<(String, i64)>> {
        let limit = (kb_chunks as f64 * COMMON_TERM_SHARE) as i64;
        let prune = kb_chunks >= MIN_CHUNKS_FOR_PRUNING && terms.len() > 1;
        // One statement: the database's own parser normalises the query exactly as it did the
        // chunks, and each lexeme's chunks are counted, stopping just past "common" (a common
        // term's exact count is only needed when every term is common).
        let frequencies = |cap: i64| {
            sqlx::query(
                r#"SELECT l.lexeme, (SELECT COUNT(*) FROM (SELECT 1 FROM document_chunks c
                     WHERE c.knowledge_base_id = $1
                       AND c.fts @@ ('''' || replace(replace(l.lexeme, E'\\', E'\\\\'), '''', '''''') || '''')::tsquery
                     LIMIT $3) s) AS df
                   FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('simple', $2))) l"#,
            )
            .bind(knowledge_base_id)
            .bind(terms.join(" "))
            .bind(cap)
            .fetch_all(&self.pool)
        };
        let counted = |rows: Vec<sqlx::postgres::PgRow>| -> Result<Vec<(String, i64)>> {
            rows.iter().map(|r| Ok((r.text("lexeme")?, r.int("df")?))).collect()
        };
        let mut with_df = counted(frequencies(if prune { limit + 1 } else { i64::MAX }).await.map_err(db_err)?)?;
        with_df.retain(|(_, df)| *df > 0);
        if prune {
            if with_df.iter().any(|(_, df)| *df <= limit) {
                with_df.retain(|(_, df)| *df <= limit);
            } else {
                with_df = counted(frequencies(i64::MAX).await.map_err(db_err)?)?;
                with_df.retain(|(_, df)| *df > 0);
            }
        }
        with_df.sort_by_key(|(_, df)| *df);
        with_df.truncate(MAX_QUERY_TERMS);
        Ok(with_df)
    }

    pub(super) async fn vector(&self, q: &VectorQuery) -> Result<Vec<ChunkHit>> {
        let top_k = i64::from(q.top_k);
        if top_k == 0 || q.knowledge_base_ids.is_empty() || q.vector.is_empty() {
            return Ok(Vec::new());
        }
        let dims = q.vector.len() as i32;
        let fields: &[&str] = match q.target {
            SearchTarget::Content => &["content"],
            SearchTarget::Summary => &["summary"],
            SearchTarget::Both => &["content", "summary"],
        };
        let (conditions, params) = filter_conditions(&q.filters, 6);
        let mut best: HashMap<i64, ChunkHit> = HashMap::new();
        for field in fields {
            // The cast names the dimension's partial HNSW index; beyond 4,000 dimensions the
            // search is exact.
            let distance = match index_type(dims) {
                Some(kind) => format!("c.{field}_embedding::{kind}({dims}) <=> $1::{kind}({dims})"),
                None => format!("c.{field}_embedding <=> $1::vector"),
            };
            let sql = format!(
                "SELECT {HIT_COLS}, (1 - ({distance}))::float8 AS score
                 FROM document_chunks c JOIN documents d ON d.id = c.document_id
                 LEFT JOIN document_chunks p ON p.id = c.parent_chunk_id
                 WHERE c.embedding_dims = {dims} AND c.knowledge_base_id = ANY($2) AND c.user_id = $3
                   AND c.embedding_model = $4 AND c.{field}_embedding IS NOT NULL
                   AND d.soft_deleted_at IS NULL AND d.status = 'completed'{conditions}
                 ORDER BY {distance} LIMIT $5"
            );
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            super::set_tenant(&mut tx, q.user_id).await?;
            // Iterative scans keep walking the graph while filters reject candidates, instead of
            // returning fewer than k.
            sqlx::raw_sql(AssertSqlSafe(format!(
                "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = relaxed_order",
                self.ef_search.clamp(top_k as usize, 1000)
            )))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let query = sqlx::query(AssertSqlSafe(sql))
                .bind(vector_text(&q.vector))
                .bind(&q.knowledge_base_ids)
                .bind(q.user_id)
                .bind(&q.embedding_model)
                .bind(top_k);
            let rows = bind_all(query, &params).all(&mut *tx).await?;
            tx.commit().await.map_err(db_err)?;
            for row in &rows {
                let seq = row.int("seq")?;
                let hit = hit_from(row)?;
                if best.get(&seq).is_none_or(|b| b.score < hit.score) {
                    best.insert(seq, hit);
                }
            }
        }
        let mut ranked: Vec<(i64, ChunkHit)> = best.into_iter().collect();
        ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        Ok(ranked
            .into_iter()
            .map(|(_, hit)| hit)
            .filter(|hit| q.min_score.is_none_or(|min| hit.score >= min))
            .take(top_k as usize)
            .collect())
    }
}

#[async_trait]
impl SearchStore for PgStore {
    async fn cached_embeddings(
        &self, user_id: Id, model: &str, hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (content_hash) content_hash, content_embedding::text AS embedding
             FROM document_chunks
             WHERE embedding_model = $1 AND user_id = $3 AND content_embedding IS NOT NULL AND content_hash = ANY($2)",
        )
        .bind(model)
        .bind(hashes)
        .bind(user_id)
        .all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.text("content_hash")?, parse_vector(&r.text("embedding")?)?))).collect()
    }

    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        self.fulltext(query).await
    }

    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vector(query).await
    }
}
