//! `lore bench ann` measures the vector index alone; `lore bench embed` the built-in encoder.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use lore_ingest::samples::Rng;
use rayon::prelude::*;

#[derive(Debug, Args)]
pub struct AnnArgs {
    /// Vectors in the index.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, alias = "dim", default_value_t = 384)]
    dims: usize,
    /// `clustered` (a mixture of Gaussian clusters, like real embeddings) or `uniform` (the worst case).
    #[arg(long, default_value = "clustered")]
    data: String,
    /// Clusters of the clustered generator.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Queries timed (and checked against exact search).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// ef_search values to measure.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256")]
    ef: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `embedded` (Lore's in-process HNSW), `postgres` (pgvector's HNSW), or `both`, on the same
    /// vectors and queries.
    #[arg(long, default_value = "embedded")]
    backend: String,
    /// The PostgreSQL database (with pgvector) for `--backend postgres`; the benchmark works in a
    /// schema of its own there and drops it at the end.
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut Rng) -> f32 {
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    lore_embed::normalize(&mut v);
    v
}

/// The generator: `clustered` draws `clusters` centres uniformly on the unit sphere and each
/// vector as a centre plus isotropic Gaussian noise of norm about 0.6 (so neighbours within a
/// cluster are close but not duplicates), L2-normalised; `uniform` draws directions uniformly.
fn generate(args: &AnnArgs, count: usize, stream: u64) -> Vec<Vec<f32>> {
    let d = args.dims;
    let mut rng = Rng(args.seed | 1);
    let centres: Vec<Vec<f32>> =
        (0..args.clusters.max(1)).map(|_| normalized((0..d).map(|_| gaussian(&mut rng)).collect())).collect();
    let noise = 0.6 / (d as f32).sqrt();
    (0..count)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng((args.seed ^ (stream << 40) ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            if args.data == "uniform" {
                normalized((0..d).map(|_| gaussian(&mut rng)).collect())
            } else {
                let c = &centres[rng.below(centres.len())];
                normalized(c.iter().map(|x| x + noise * gaussian(&mut rng)).collect())
            }
        })
        .collect()
}

pub fn ann(args: AnnArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.data == "clustered" || args.data == "uniform", "--data is clustered or uniform");
    let (embedded, postgres) = match args.backend.as_str() {
        "embedded" => (true, false),
        "postgres" => (false, true),
        "both" => (true, true),
        other => anyhow::bail!("--backend is embedded, postgres or both, not {other}"),
    };
    let database_url = match (postgres, &args.database_url) {
        (true, None) => anyhow::bail!("--backend postgres needs --database-url (or LORE_DATABASE_URL)"),
        (_, url) => url.clone(),
    };
    let t = Instant::now();
    let data = generate(&args, args.n, 1);
    let queries = generate(&args, args.queries, 2);
    println!("generated {} × {}-d {} vectors in {:.1} s", args.n, args.dims, args.data, t.elapsed().as_secs_f64());
    // Exact top-10 by brute force as one matrix product per block of the data.
    let t = Instant::now();
    let truth = exact_top10(&data, &queries, args.dims);
    println!("exact search for {} queries: {:.1} s", queries.len(), t.elapsed().as_secs_f64());
    if embedded {
        ann_embedded(&args, &data, &queries, &truth)?;
    }
    if let Some(url) = database_url.filter(|_| postgres) {
        tokio::runtime::Handle::current().block_on(ann_postgres(&args, &url, &data, &queries, &truth))?;
    }
    Ok(())
}

/// Prints one line of results for a search breadth.
fn report(backend: &str, ef: usize, latencies: &mut [f64], hits: usize, queries: usize, total: f64) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "{backend} ef_search {ef}: recall@10 {:.3}; latency p50 {:.3} ms, p99 {:.3} ms; {:.0} QPS (one client)",
        hits as f64 / (10 * queries) as f64,
        crate::percentile(latencies, 0.5),
        crate::percentile(latencies, 0.99),
        queries as f64 / total
    );
}

/// pgvector: the same vectors COPY'd into a table, the HNSW index Lore creates (cosine, m = 16,
/// ef_construction = 64, built with the server's parallel workers), queried one by one.
async fn ann_postgres(
    args: &AnnArgs, url: &str, data: &[Vec<f32>], queries: &[Vec<f32>], truth: &[Vec<u64>],
) -> anyhow::Result<()> {
    use sqlx::{AssertSqlSafe, Connection};
    let scratch = lore_store::postgres::create_scratch_schema(url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = sqlx::PgConnection::connect(&scratch).await?;
    let d = args.dims;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE bench_vectors (id bigint PRIMARY KEY, embedding vector({d}));
         SET maintenance_work_mem = '4GB'; SET max_parallel_maintenance_workers = {}",
        rayon::current_num_threads().saturating_sub(1)
    )))
    .execute(&mut conn)
    .await?;
    let t = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_vectors (id, embedding) FROM STDIN").await?;
    for block in data.chunks(10_000).enumerate() {
        let (b, vectors) = block;
        let mut text = String::with_capacity(vectors.len() * d * 10);
        for (i, v) in vectors.iter().enumerate() {
            text.push_str(&format!("{}\t{}\n", b * 10_000 + i, lore_store::postgres::vector_text(v)));
        }
        copy.send(text.into_bytes()).await?;
    }
    copy.finish().await?;
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    sqlx::raw_sql(
        "CREATE INDEX ON bench_vectors USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
    )
    .execute(&mut conn)
    .await?;
    let build = t.elapsed().as_secs_f64();
    let size: i64 = sqlx::query_scalar(
        "SELECT pg_relation_size(indexrelid) FROM pg_index WHERE indrelid = 'bench_vectors'::regclass AND NOT indisprimary",
    )
    .fetch_one(&mut conn)
    .await?;
    println!(
        "postgres build: {build:.1} s ({:.0} vectors/s, {} parallel workers) after {load:.1} s of COPY; index {:.0} bytes per vector",
        args.n as f64 / build,
        rayon::current_num_threads().saturating_sub(1),
        size as f64 / args.n as f64
    );
    for &ef in &args.ef {
        sqlx::raw_sql(AssertSqlSafe(format!("SET hnsw.ef_search = {}", ef.min(1000)))).execute(&mut conn).await?;
        let mut latencies = Vec::with_capacity(queries.len());
        let mut hits = 0usize;
        let t = Instant::now();
        for (q, truth) in queries.iter().zip(truth) {
            let started = Instant::now();
            let found: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM bench_vectors ORDER BY embedding <=> $1::vector LIMIT 10")
                    .bind(lore_store::postgres::vector_text(q))
                    .fetch_all(&mut conn)
                    .await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            hits += found.iter().filter(|k| truth.contains(&(**k as u64))).count();
        }
        report("postgres", ef, &mut latencies, hits, queries.len(), t.elapsed().as_secs_f64());
    }
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&mut conn).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await?;
    Ok(())
}

fn ann_embedded(args: &AnnArgs, data: &[Vec<f32>], queries: &[Vec<f32>], truth: &[Vec<u64>]) -> anyhow::Result<()> {
    let space = lore_store::vectors::Space::new(args.dims, args.ef[0]).map_err(|e| anyhow::anyhow!("{e}"))?;
    space.reserve(args.n).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    data.par_iter().enumerate().try_for_each(|(i, v)| space.insert(i as u64, v)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let build = t.elapsed().as_secs_f64();
    println!(
        "embedded build: {:.1} s ({:.0} vectors/s, {} threads); {:.0} bytes per vector in memory",
        build,
        args.n as f64 / build,
        rayon::current_num_threads(),
        space.memory_usage() as f64 / args.n as f64
    );

    for &ef in &args.ef {
        space.set_ef_search(ef);
        let mut latencies = Vec::with_capacity(queries.len());
        let mut hits = 0usize;
        let t = Instant::now();
        for (q, truth) in queries.iter().zip(truth) {
            let started = Instant::now();
            let found = space.search(q, 10, None).map_err(|e| anyhow::anyhow!("{e}"))?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            hits += found.iter().filter(|(k, _)| truth.contains(k)).count();
        }
        report("embedded", ef, &mut latencies, hits, queries.len(), t.elapsed().as_secs_f64());
    }
    Ok(())
}

fn exact_top10(data: &[Vec<f32>], queries: &[Vec<f32>], d: usize) -> Vec<Vec<u64>> {
    let q_flat: Vec<f32> = queries.iter().flatten().copied().collect();
    let nq = queries.len();
    const BLOCK: usize = 16_384;
    let mut best: Vec<Vec<(f32, u64)>> = vec![Vec::with_capacity(11); nq];
    for (b, block) in data.chunks(BLOCK).enumerate() {
        let flat: Vec<f32> = block.iter().flatten().copied().collect();
        let n = block.len();
        let mut scores = vec![0f32; nq * n];
        // scores[q, i] = Σ_k query[q, k] · data[i, k]
        lore_embed::kernel::strided_gemm(nq, d, n, 1.0, &q_flat, (d, 1), &flat, (1, d), 0.0, &mut scores, (n, 1));
        best.par_iter_mut().enumerate().for_each(|(q, top)| {
            for (i, &s) in scores[q * n..(q + 1) * n].iter().enumerate() {
                if top.len() < 10 || s > top[top.len() - 1].0 {
                    top.push((s, (b * BLOCK + i) as u64));
                    top.sort_by(|a, b| b.0.total_cmp(&a.0));
                    top.truncate(10);
                }
            }
        });
    }
    best.into_iter().map(|top| top.into_iter().map(|(_, k)| k).collect()).collect()
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A file with one passage per line (e.g. written by --write-passages of a dataset).
    #[arg(long)]
    passages: Option<std::path::PathBuf>,
    /// A BEIR dataset folder: its corpus's first `--count` documents, cut to `--chars` characters.
    #[arg(long)]
    dataset: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 400)]
    count: usize,
    #[arg(long, default_value_t = 800)]
    chars: usize,
    /// Texts per call, as the ingestion worker sends them.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Also write the passages used, one per line, for a peer engine to embed the same texts.
    #[arg(long)]
    write_passages: Option<std::path::PathBuf>,
    /// The model cache. Default: $LORE_MODEL_DIR, else ./lore-data/models
    #[arg(long, env = "LORE_MODEL_DIR", default_value = "lore-data/models")]
    model_dir: std::path::PathBuf,
}

/// The built-in model, from `model_dir` (fetched there on first use).
pub(crate) fn default_encoder(model_dir: &std::path::Path) -> anyhow::Result<std::sync::Arc<lore_embed::Encoder>> {
    let known = lore_embed::provision::known(lore_embed::DEFAULT_MODEL).context("default model")?;
    let path = lore_embed::ModelStore::new(model_dir).ensure(known)?;
    Ok(lore_embed::load_encoder(&path, Some((known.query_prefix, known.passage_prefix)))?)
}

/// Embeds `passages` with `encoder` in batches of `batch`, after a warm-up: the seconds
/// it took and the tokens it read.
pub(crate) fn encode_passages(encoder: &lore_embed::Encoder, passages: &[String], batch: usize) -> (f64, usize) {
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let tokens: usize = refs.iter().map(|t| encoder.count_tokens(t, lore_embed::InputKind::Passage)).sum();
    encoder.embed(&refs[..refs.len().min(4)], lore_embed::InputKind::Passage);
    let t = Instant::now();
    for batch in refs.chunks(batch.max(1)) {
        encoder.embed(batch, lore_embed::InputKind::Passage);
    }
    (t.elapsed().as_secs_f64(), tokens)
}

pub fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let passages: Vec<String> = match (&args.passages, &args.dataset) {
        (Some(file), _) => {
            std::fs::read_to_string(file)?.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
        }
        (None, Some(dir)) => std::fs::read_to_string(dir.join("corpus.jsonl"))
            .with_context(|| format!("corpus.jsonl in {}", dir.display()))?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .take(args.count)
            .map(|d| {
                let text = format!("{} {}", d["title"].as_str().unwrap_or(""), d["text"].as_str().unwrap_or(""));
                text.replace('\n', " ").chars().take(args.chars).collect()
            })
            .collect(),
        (None, None) => anyhow::bail!("give --passages FILE or --dataset DIR"),
    };
    if let Some(out) = &args.write_passages {
        std::fs::write(out, passages.join("\n") + "\n")?;
    }
    let encoder = default_encoder(&args.model_dir)?;
    let (secs, tokens) = encode_passages(&encoder, &passages, args.batch);
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    println!(
        "local multilingual-e5-small: {} passages, {} tokens in {:.2} s: {:.0} tokens/s, {:.1} chunks/s ({} threads, batch {})",
        refs.len(),
        tokens,
        secs,
        tokens as f64 / secs,
        refs.len() as f64 / secs,
        rayon::current_num_threads(),
        args.batch
    );
    let mut latencies = Vec::new();
    for q in refs.iter().take(50) {
        let query: String = q.chars().take(60).collect();
        let t = Instant::now();
        encoder.embed(&[query.as_str()], lore_embed::InputKind::Query);
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "query embedding (60 characters): p50 {:.1} ms, p99 {:.1} ms",
        crate::percentile(&latencies, 0.5),
        crate::percentile(&latencies, 0.99)
    );
    Ok(())
}
