//! Lore's benchmarks and campaigns (`lore bench ...`): each runs real `lore` processes (the binary
//! that calls it) or the library crates directly, and prints its figures and the command that
//! produced them.

mod chat;
mod common;
mod crash;
mod faults;
mod fulltext;
mod hostile;
mod ingest;
mod load;
mod parse;
mod retrieval;
mod sync;
mod vectors;

use common::{BenchServer, Vocabulary, create_knowledge_base, percentile, proc_memory_kib, query, upload_text};
use ingest::{api, ingest};
use parse::{fuzz, parse_folder};
use retrieval::retrieval;

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingestion throughput and full-text search latency over HTTP.
    Ingest(IngestArgs),
    /// Full-text search latency of the embedded store alone (no HTTP), Chinese and English.
    Fulltext(crate::fulltext::FulltextArgs),
    /// What authentication, rate limiting and usage logging add to a request, under load.
    Api(ApiArgs),
    /// Fuzz the parsers with mutated sample files of every format for a time budget.
    Fuzz(FuzzArgs),
    /// Parse, chunk and segment every file of a folder (no embedding): MB/s and files/s per format.
    Parse(ParseArgs),
    /// Retrieval quality on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv):
    /// nDCG@10, recall@100 and latency, through the HTTP API.
    Retrieval(RetrievalArgs),
    /// The vector index alone: build time, recall@10 against exact search, latency, QPS, memory.
    Ann(crate::vectors::AnnArgs),
    /// Throughput of the built-in embedding model in tokens/s and chunks/s.
    Embed(crate::vectors::EmbedArgs),
    /// The time to first token Lore adds to a chat provider (retrieval and prompt), over many chunks.
    Chat(crate::chat::ChatArgs),
    /// A folder data source: full import vs an incremental sync after a few files changed.
    Sync(crate::sync::SyncArgs),
    /// A mixed load (search 70%, upload 20%, chat 10%) from many clients: requests/s, p50/p99 per
    /// operation, 5xx count, and the server's memory over time.
    Load(crate::load::LoadArgs),
    /// kill -9 during ingestion, many times: every accepted upload completes, counts match, no
    /// chunk is duplicated, search finds every document (embedded, or PostgreSQL with LORE_DATABASE_URL).
    Crash(crate::crash::CrashArgs),
    /// The machine fails under a running server while documents are in flight: its disk fills,
    /// its data directory turns read-only, its PostgreSQL goes away. Clear errors, readiness
    /// false, nothing acknowledged lost, recovery by itself. Needs root (it mounts a small tmpfs).
    Faults(crate::faults::FaultsArgs),
    /// A hostile tenant and an outside caller against a victim tenant: chunking configs at the
    /// edges, bombs and malformed files, every address field pointed at private addresses, every
    /// operation with the attacker's keys on the victim's objects. No 5xx, no leak, nothing
    /// reaches the recorder, memory bounded.
    Hostile(crate::hostile::HostileArgs),
}

#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// The dataset folder.
    #[arg(long)]
    dataset: PathBuf,
    /// Search modes to measure (those this build supports).
    #[arg(long, value_delimiter = ',', default_value = "fulltext,vector,hybrid")]
    modes: Vec<String>,
    /// At most this many queries (all by default).
    #[arg(long)]
    max_queries: Option<usize>,
    /// Keep the server's data here; a later run over the same directory and dataset skips ingestion.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The knowledge base's chunking configuration (JSON, as in its settings); the default
    /// chunking otherwise. BEIR documents are already passages, so
    /// '{"strategy_type":"fixed","config":{"chunk_size":512,"chunk_overlap":0,"size_unit":"tokens"}}'
    /// indexes each as one chunk up to the model's 512-token window, as published evaluations do.
    #[arg(long)]
    chunking: Option<String>,
    /// Measure each mode again with this rerank stage (JSON, as a search's `rerank`), e.g.
    /// '{"provider":"local","model":"bge-reranker-base","candidates":30}' for a cross-encoder in
    /// the model directory, or '{"provider":"tei","base_url":"http://127.0.0.1:8081"}'.
    #[arg(long)]
    rerank: Option<String>,
    /// Measure vector and hybrid search against each of these targets (`content`, `summary`,
    /// `both`); the knowledge base's default otherwise.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Measure hybrid search with each of these fusions (`rrf`, `weighted`); the knowledge
    /// base's default otherwise.
    #[arg(long, value_delimiter = ',')]
    fusions: Vec<String>,
    /// Index only the corpus's first N documents, and ask only the queries they answer: a quick
    /// run, for ingestion speed more than quality.
    #[arg(long)]
    max_docs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The folder to read (recursively).
    #[arg(long)]
    dir: PathBuf,
    /// First fill the folder with a generated mixed corpus of about this many MB
    /// (Markdown, HTML, text, CSV, JSON, DOCX, XLSX, PDF; Chinese and English).
    #[arg(long)]
    generate_mb: Option<u64>,
    /// Parse in a child process (`lore parse-worker`, reused from file to file) under the parser
    /// budgets, as `lore serve` does, instead of in this process.
    #[arg(long)]
    isolated: bool,
    /// Then read this many rendered pages (English and Chinese, clean and scan-like) by text
    /// recognition: pages/s and character accuracy, against Tesseract's own CLI on the same images.
    #[arg(long, default_value_t = 0)]
    ocr_pages: usize,
    /// Then read this many generated PDFs, each a table set in aligned columns (no ruling
    /// lines), and report cell accuracy, against pdfplumber's table extraction (PyPI) when
    /// `python3` has it.
    #[arg(long, default_value_t = 0)]
    table_pdfs: usize,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Random seed (runs with the same seed try the same inputs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write inputs that broke a parser.
    #[arg(long, default_value = "fuzz-findings")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Seconds of load per endpoint, split into alternating rounds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Number of Markdown documents to upload.
    #[arg(long, default_value_t = 10_000)]
    docs: usize,
    /// Approximate size of each document in bytes.
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Concurrent upload connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Search queries to time (after 100 warm-up queries).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Ingestion workers of the server (default: its own default, one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Data directory for the server (default: a fresh temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Api(args) => api(args).await,
        BenchCommand::Fuzz(args) => fuzz(args),
        BenchCommand::Parse(args) => parse_folder(args),
        BenchCommand::Retrieval(args) => retrieval(args).await,
        BenchCommand::Ann(args) => tokio::task::spawn_blocking(move || crate::vectors::ann(args)).await?,
        BenchCommand::Embed(args) => tokio::task::spawn_blocking(move || crate::vectors::embed(args)).await?,
        BenchCommand::Chat(args) => crate::chat::chat(args).await,
        BenchCommand::Sync(args) => crate::sync::sync(args).await,
        BenchCommand::Fulltext(args) => crate::fulltext::fulltext(args).await,
        BenchCommand::Load(args) => crate::load::load(args).await,
        BenchCommand::Crash(args) => crate::crash::crash(args).await,
        BenchCommand::Faults(args) => crate::faults::faults(args).await,
        BenchCommand::Hostile(args) => crate::hostile::hostile(args).await,
    }
}
