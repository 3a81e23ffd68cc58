//! Server settings from three layers, later ones winning: config file < environment < flags.
//! clap reads flags and `LORE_*` variables; the TOML file fills whatever both left open.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use lore_server::ServerConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `--registration`: who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Invite,
    Closed,
}

impl Registration {
    fn policy(self) -> lore_core::model::RegistrationPolicy {
        use lore_core::model::RegistrationPolicy as P;
        match self {
            Registration::Open => P::Open,
            Registration::Invite => P::Invite,
            Registration::Closed => P::Closed,
        }
    }
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below, by their long names with underscores (data_dir, listen, ...).
    #[arg(long, env = "LORE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where Lore keeps everything (database, blobs). Default: ./lore-data
    #[arg(long, env = "LORE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL (with pgvector) shared by any number of nodes, as `postgres://user:password@host/db`.
    /// Default: the embedded SQLite database in the data directory
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where uploaded files live: an S3-compatible bucket, as `s3://bucket/prefix` (credentials
    /// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or a directory every node mounts, as
    /// `file:///shared/path`. Default: in the database with --database-url, else under the data
    /// directory
    #[arg(long, env = "LORE_BLOB_URL")]
    pub blob_url: Option<String>,
    /// The bucket's endpoint when it is not AWS (MinIO, Ceph, R2 ...), e.g. http://minio:9000
    #[arg(long, env = "LORE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// The bucket's region. Default: us-east-1
    #[arg(long, env = "LORE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Address to listen on. Default: 127.0.0.1:8080
    #[arg(long, env = "LORE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Largest accepted upload in bytes. Default: 104857600 (100 MiB)
    #[arg(long, env = "LORE_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Free space to keep on the data directory's disk, in MiB: below it uploads are refused
    /// (507 storage_full) and readiness turns false, before the database runs out. Default: 256
    #[arg(long, env = "LORE_MIN_FREE_DISK_MB")]
    pub min_free_disk_mb: Option<u64>,
    /// Ingestion workers. Default: the number of CPU cores
    #[arg(long, env = "LORE_WORKERS")]
    pub workers: Option<usize>,
    /// Lifetime of login sessions in hours. Default: 720 (30 days)
    #[arg(long, env = "LORE_SESSION_TTL_HOURS")]
    pub session_ttl_hours: Option<u64>,
    /// Who may create an account: `open` (anyone), `invite` (whoever holds an unused invitation
    /// from an administrator, POST /v1/admin/invitations) or `closed` (nobody). Whatever the
    /// setting, the first account of an installation without any may register, and becomes its
    /// administrator. Default: invite
    #[arg(long, env = "LORE_REGISTRATION", value_enum)]
    pub registration: Option<Registration>,
    /// Registrations one client address may make per hour (an IPv6 address counts by its /64),
    /// counted before the password is hashed; beyond: 429 too_many_registrations. 0: no limit. Default: 10
    #[arg(long, env = "LORE_REGISTRATIONS_PER_HOUR")]
    pub registrations_per_hour: Option<u32>,
    /// Log format. Default: text
    #[arg(long, env = "LORE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Days a deleted document stays restorable before it is purged. Default: 30
    #[arg(long, env = "LORE_TRASH_RETENTION_DAYS")]
    pub trash_retention_days: Option<u64>,
    /// Days usage logs of successful requests are kept. Default: 30
    #[arg(long, env = "LORE_USAGE_RETENTION_DAYS")]
    pub usage_retention_days: Option<u64>,
    /// Days usage logs of failed requests are kept. Default: 90
    #[arg(long, env = "LORE_USAGE_ERROR_RETENTION_DAYS")]
    pub usage_error_retention_days: Option<u64>,
    /// Days audit log entries are kept. Default: 365
    #[arg(long, env = "LORE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Seconds between two runs of the retention purges. Default: 600
    #[arg(long, env = "LORE_MAINTENANCE_INTERVAL_SECS")]
    pub maintenance_interval_secs: Option<u64>,
    /// Embedding model of knowledge bases that name none: a local model (multilingual-e5-small,
    /// the default, or a model file's path), `openai/<model>`, `cohere/<model>`, or `none` for
    /// full-text search only
    #[arg(long, env = "LORE_EMBEDDING_MODEL")]
    pub embedding_model: Option<String>,
    /// Where local models are cached. Default: <data_dir>/models
    #[arg(long, env = "LORE_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// HNSW search breadth (ef_search) of the vector index: higher is more exact and slower. Default: 256
    #[arg(long, env = "LORE_EF_SEARCH")]
    pub ef_search: Option<usize>,
    /// A TOML file of chat-model prices (USD per million tokens) laid over the built-in table:
    /// `[models."gpt-4o-mini"]` with `input = "0.15"` and `output = "0.60"`
    #[arg(long, env = "LORE_PRICE_TABLE")]
    pub price_table: Option<PathBuf>,
    /// A folder under which `local_folder` and `git` data sources may read server-side paths
    /// (repeatable; the environment variable takes a comma-separated list). None: such paths are refused
    #[arg(long = "source-root", env = "LORE_SOURCE_ROOTS", value_delimiter = ',')]
    pub source_roots: Vec<PathBuf>,
    /// Let data sources and webhooks reach private, loopback and link-local addresses. Off: a user
    /// cannot make the server fetch internal endpoints
    #[arg(long, env = "LORE_ALLOW_PRIVATE_SOURCES")]
    pub allow_private_sources: bool,
    /// Non-public networks (CIDR blocks or addresses, comma-separated) that outbound requests —
    /// model providers, webhooks, data sources — may reach all the same, e.g. a model server on the
    /// LAN. None: only public addresses
    #[arg(long = "allow-outbound", env = "LORE_ALLOW_OUTBOUND", value_delimiter = ',')]
    pub allow_outbound: Vec<String>,
    /// Reverse proxies (CIDR blocks or addresses, comma-separated) whose Forwarded or
    /// X-Forwarded-For headers name the client: its address then counts for allowed IPs, login
    /// throttling and the usage log. None: the socket's peer is the client
    #[arg(long = "trusted-proxy", env = "LORE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<String>,
    /// Start on PostgreSQL even when the database role is SUPERUSER or BYPASSRLS, which skips the
    /// row-level security that separates tenants. Off: such a role is refused at start
    #[arg(long, env = "LORE_ALLOW_RLS_BYPASS")]
    pub allow_rls_bypass: bool,
    /// Chunks one document (or one chunking preview) may produce. Default: 50000
    #[arg(long, env = "LORE_MAX_CHUNKS_PER_DOCUMENT")]
    pub max_chunks_per_document: Option<usize>,
    /// How many chunks one character may appear in: bounds a chunking config's overlap or step
    /// against its size (a window of 1000 stepping by 100 repeats each character 10 times). Default: 10
    #[arg(long, env = "LORE_MAX_CHUNK_REPETITION")]
    pub max_chunk_repetition: Option<usize>,
    /// Knowledge bases one search over several (POST /v1/search) may span. Default: 50
    #[arg(long, env = "LORE_MAX_SEARCH_KNOWLEDGE_BASES")]
    pub max_search_knowledge_bases: Option<usize>,
    // Parser budgets: documents are parsed in child processes (`lore parse-worker`) held to these.
    /// Memory (address space) of each parser process, in MiB: a document that needs more fails
    /// alone with resource_limit_exceeded. Default: 2048
    #[arg(long, env = "LORE_PARSER_MEMORY_MB")]
    pub parser_memory_mb: Option<u64>,
    /// CPU seconds a parser process may spend on one document (it is also stopped after twice
    /// this plus 10 seconds of wall-clock time). Default: 120
    #[arg(long, env = "LORE_PARSER_CPU_SECONDS")]
    pub parser_cpu_seconds: Option<u64>,
    /// MiB one file may expand to while it is read (zip parts of Office files and EPUBs, PDF
    /// streams); beyond: expanded_size_exceeded. Default: 256
    #[arg(long, env = "LORE_MAX_EXPANDED_MB")]
    pub max_expanded_mb: Option<u64>,
    /// Cells one spreadsheet sheet may span (rows × columns from its first to its last cell);
    /// beyond: too_many_cells. Default: 2000000
    #[arg(long, env = "LORE_MAX_SHEET_CELLS")]
    pub max_sheet_cells: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    blob_url: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    listen: Option<SocketAddr>,
    max_upload_bytes: Option<u64>,
    min_free_disk_mb: Option<u64>,
    workers: Option<usize>,
    session_ttl_hours: Option<u64>,
    registration: Option<Registration>,
    registrations_per_hour: Option<u32>,
    log_format: Option<LogFormat>,
    trash_retention_days: Option<u64>,
    usage_retention_days: Option<u64>,
    usage_error_retention_days: Option<u64>,
    audit_retention_days: Option<u64>,
    maintenance_interval_secs: Option<u64>,
    embedding_model: Option<String>,
    model_dir: Option<PathBuf>,
    ef_search: Option<usize>,
    price_table: Option<PathBuf>,
    source_roots: Option<Vec<PathBuf>>,
    allow_private_sources: Option<bool>,
    allow_outbound: Option<Vec<String>>,
    trusted_proxy: Option<Vec<String>>,
    allow_rls_bypass: Option<bool>,
    max_chunks_per_document: Option<usize>,
    max_chunk_repetition: Option<usize>,
    max_search_knowledge_bases: Option<usize>,
    parser_memory_mb: Option<u64>,
    parser_cpu_seconds: Option<u64>,
    max_expanded_mb: Option<u64>,
    max_sheet_cells: Option<u64>,
}

pub fn resolve(args: ServeArgs) -> anyhow::Result<(ServerConfig, LogFormat)> {
    let file = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str::<FileConfig>(&text).with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("lore-data"));
    let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut config = ServerConfig::new(data_dir, listen);
    config.database_url = args.database_url.or(file.database_url);
    config.blob_url = args.blob_url.or(file.blob_url);
    if let Some(url) = &config.blob_url {
        anyhow::ensure!(
            url.starts_with("s3://") || url.starts_with("file:///"),
            "blob_url must be an s3://bucket/prefix or a file:///absolute/path URL"
        );
    }
    config.s3_endpoint = args.s3_endpoint.or(file.s3_endpoint);
    if let Some(region) = args.s3_region.or(file.s3_region) {
        config.s3_region = region;
    }
    // The AWS tools' own variables, so that a deployment's existing credentials work unchanged.
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if let (Some(access_key_id), Some(secret_access_key)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        config.s3_credentials = Some(lore_server::state::S3Credentials { access_key_id, secret_access_key });
    }
    if let Some(url) = &config.database_url {
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "database_url must be a postgres:// URL"
        );
    }
    if let Some(bytes) = args.max_upload_bytes.or(file.max_upload_bytes) {
        anyhow::ensure!(bytes > 0, "max_upload_bytes must be positive");
        config.max_upload_bytes = bytes;
    }
    if let Some(mb) = args.min_free_disk_mb.or(file.min_free_disk_mb) {
        config.min_free_disk = mb * 1024 * 1024;
    }
    if let Some(workers) = args.workers.or(file.workers) {
        config.workers = workers;
    }
    if let Some(hours) = args.session_ttl_hours.or(file.session_ttl_hours) {
        anyhow::ensure!(hours > 0, "session_ttl_hours must be positive");
        config.session_ttl = Duration::from_secs(hours * 3600);
    }
    if let Some(registration) = args.registration.or(file.registration) {
        config.registration = registration.policy();
    }
    if let Some(n) = args.registrations_per_hour.or(file.registrations_per_hour) {
        config.registrations_per_hour = n;
    }
    const DAY: u64 = 24 * 3600;
    if let Some(days) = args.trash_retention_days.or(file.trash_retention_days) {
        config.trash_retention = Duration::from_secs(days * DAY);
    }
    if let Some(days) = args.usage_retention_days.or(file.usage_retention_days) {
        config.usage_success_retention = Duration::from_secs(days * DAY);
    }
    if let Some(days) = args.usage_error_retention_days.or(file.usage_error_retention_days) {
        config.usage_error_retention = Duration::from_secs(days * DAY);
    }
    if let Some(days) = args.audit_retention_days.or(file.audit_retention_days) {
        anyhow::ensure!(days > 0, "audit_retention_days must be positive");
        config.audit_retention = Duration::from_secs(days.saturating_mul(DAY));
    }
    if let Some(secs) = args.maintenance_interval_secs.or(file.maintenance_interval_secs) {
        anyhow::ensure!(secs > 0, "maintenance_interval_secs must be positive");
        config.maintenance_interval = Duration::from_secs(secs);
    }
    if let Some(model) = args.embedding_model.or(file.embedding_model) {
        config.embedding_model = (!model.eq_ignore_ascii_case("none")).then_some(model);
    }
    if let Some(dir) = args.model_dir.or(file.model_dir) {
        config.model_dir = dir;
    }
    if let Some(ef) = args.ef_search.or(file.ef_search) {
        anyhow::ensure!((1..=10_000).contains(&ef), "ef_search must be between 1 and 10000");
        config.ef_search = ef;
    }
    if let Some(path) = args.price_table.or(file.price_table) {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read price table {}", path.display()))?;
        config.prices.merge_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    config.source_roots =
        if args.source_roots.is_empty() { file.source_roots.unwrap_or_default() } else { args.source_roots };
    config.allow_private_sources = args.allow_private_sources || file.allow_private_sources.unwrap_or(false);
    let outbound =
        if args.allow_outbound.is_empty() { file.allow_outbound.unwrap_or_default() } else { args.allow_outbound };
    config.allow_rls_bypass = args.allow_rls_bypass || file.allow_rls_bypass.unwrap_or(false);
    config.allow_outbound = lore_core::outbound::Policy::parse_allowed(&outbound.join(","))
        .map_err(|e| anyhow::anyhow!("allow_outbound: {e}"))?;
    let proxies =
        if args.trusted_proxy.is_empty() { file.trusted_proxy.unwrap_or_default() } else { args.trusted_proxy };
    config.trusted_proxies = lore_core::outbound::Policy::parse_allowed(&proxies.join(","))
        .map_err(|e| anyhow::anyhow!("trusted_proxy: {e}"))?;
    // Resource budgets: each refused with a 422 naming its flag (lore_core::budget).
    if let Some(n) = args.max_chunks_per_document.or(file.max_chunks_per_document) {
        anyhow::ensure!(n > 0, "max_chunks_per_document must be positive");
        config.budgets.max_chunks_per_document = n;
    }
    if let Some(n) = args.max_chunk_repetition.or(file.max_chunk_repetition) {
        anyhow::ensure!(n > 0, "max_chunk_repetition must be positive");
        config.budgets.max_chunk_repetition = n;
    }
    if let Some(n) = args.max_search_knowledge_bases.or(file.max_search_knowledge_bases) {
        anyhow::ensure!(n > 0, "max_search_knowledge_bases must be positive");
        config.budgets.max_search_knowledge_bases = n;
    }
    // Documents are parsed in children of this very binary (lore_ingest::isolate): on Linux by
    // /proc/self/exe, the running image even after an upgrade replaced the file on disk.
    let proc_exe = PathBuf::from("/proc/self/exe");
    config.parser_exe = Some(match proc_exe.exists() {
        true => proc_exe,
        false => std::env::current_exe().context("cannot find the lore binary to run parsers with")?,
    });
    if let Some(mb) = args.parser_memory_mb.or(file.parser_memory_mb) {
        // Below this the parser process cannot even start.
        anyhow::ensure!(mb >= 256, "parser_memory_mb must be at least 256");
        config.budgets.parser_memory_bytes = mb.saturating_mul(1024 * 1024);
    }
    if let Some(seconds) = args.parser_cpu_seconds.or(file.parser_cpu_seconds) {
        anyhow::ensure!(seconds > 0, "parser_cpu_seconds must be positive");
        config.budgets.parser_cpu_seconds = seconds;
    }
    if let Some(mb) = args.max_expanded_mb.or(file.max_expanded_mb) {
        anyhow::ensure!(mb > 0, "max_expanded_mb must be positive");
        config.budgets.max_expanded_bytes = mb.saturating_mul(1024 * 1024);
    }
    if let Some(cells) = args.max_sheet_cells.or(file.max_sheet_cells) {
        anyhow::ensure!(cells > 0, "max_sheet_cells must be positive");
        config.budgets.max_sheet_cells = cells;
    }
    let log_format = args.log_format.or(file.log_format).unwrap_or(LogFormat::Text);
    Ok((config, log_format))
}

/// Structured logs to stderr; the level comes from `LORE_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LORE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The configuration reference (Markdown) and an example file (TOML), both generated from
/// [`ServeArgs`] itself: every flag, its environment variable, its file key, its meaning and
/// default. `docs/configuration.md` and `lore.example.toml` hold them; a test keeps them current.
#[cfg(test)]
fn reference() -> (String, String) {
    use clap::CommandFactory;
    #[derive(clap::Parser)]
    struct Probe {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let command = Probe::command();
    let mut markdown = String::from(
        "# Configuration of `lore serve`\n\n\
         Generated from the code (`crates/lore/src/config.rs`); a test fails when it is out of date.\n\
         Later layers win: the file named by `--config` < environment variables < flags.\n\n\
         | flag | environment | file key | meaning |\n| --- | --- | --- | --- |\n",
    );
    let mut toml = String::from(
        "# An example configuration for `lore serve --config lore.example.toml`, generated from the code.\n\
         # Every key is optional; environment variables and flags override the file.\n",
    );
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str();
        let (Some(long), false) = (arg.get_long(), key == "config") else { continue };
        let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        markdown.push_str(&format!("| `--{long}` | `{env}` | `{key}` | {} |\n", help.replace('|', "\\|")));
        toml.push('\n');
        let mut line = String::from("#");
        for word in help.split(' ') {
            if line.len() + word.len() > 99 {
                toml.push_str(&line);
                toml.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        toml.push_str(&line);
        toml.push_str(&format!("\n# {key} = {}\n", example_value(key, &help)));
    }
    (markdown, toml)
}

#[cfg(test)]
/// A value to show for a key: its default when the help states a literal one, else a sample.
fn example_value(key: &str, help: &str) -> String {
    let stated = help.split_once("Default: ").map(|(_, d)| d.trim());
    let token = stated.map(|d| d.split(' ').next().unwrap_or_default());
    match (stated, token) {
        (_, Some(t)) if t.parse::<u64>().is_ok() => t.to_string(),
        // A path, an address, or a one-word value; not a description or a <placeholder>.
        (Some(d), Some(t)) if !t.contains('<') && (t.contains(['.', '/', ':']) || d == t) => format!("{t:?}"),
        _ => match key {
            "model_dir" => r#""/var/lib/lore/models""#.into(),
            "source_roots" => r#"["/srv/shared-docs"]"#.into(),
            "allow_private_sources" => "false".into(),
            "allow_outbound" => r#"["10.0.0.0/8", "192.168.1.20"]"#.into(),
            "trusted_proxy" => r#"["10.0.0.5", "172.16.0.0/12"]"#.into(),
            "allow_rls_bypass" => "false".into(),
            "database_url" => r#""postgres://lore:secret@db.internal/lore""#.into(),
            "blob_url" => r#""s3://lore-uploads/prod""#.into(),
            "s3_endpoint" => r#""http://minio.internal:9000""#.into(),
            "workers" => "4".into(),
            "embedding_model" => r#""multilingual-e5-small""#.into(),
            "price_table" => r#""/etc/lore/prices.toml""#.into(),
            _ => r#""...""#.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LORE_BLESS=1 cargo test -p lore reference` rewrites the files.
    #[test]
    fn the_configuration_reference_and_example_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (markdown, toml) = reference();
        let files = [(root.join("docs/configuration.md"), markdown), (root.join("lore.example.toml"), toml.clone())];
        for (path, generated) in &files {
            if std::env::var_os("LORE_BLESS").is_some() {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, generated).expect("write");
            }
            let on_disk = std::fs::read_to_string(path).unwrap_or_default();
            assert!(
                &on_disk == generated,
                "{} is out of date: run LORE_BLESS=1 cargo test -p lore reference",
                path.display()
            );
        }
        // Every key of the example, uncommented, is one the file accepts.
        let uncommented: String = toml
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split(' ').nth(1) == Some("="))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(uncommented.lines().count() >= 15, "{uncommented}");
        let parsed: Result<FileConfig, _> = toml::from_str(&uncommented);
        assert!(parsed.is_ok(), "{uncommented}\n{parsed:?}");
    }

    fn args(config: Option<PathBuf>, listen: Option<&str>) -> ServeArgs {
        ServeArgs {
            config,
            data_dir: None,
            database_url: None,
            blob_url: None,
            s3_endpoint: None,
            s3_region: None,
            listen: listen.map(|l| l.parse().expect("addr")),
            max_upload_bytes: None,
            min_free_disk_mb: None,
            workers: None,
            session_ttl_hours: None,
            registration: None,
            registrations_per_hour: None,
            log_format: None,
            trash_retention_days: None,
            usage_retention_days: None,
            usage_error_retention_days: None,
            audit_retention_days: None,
            maintenance_interval_secs: None,
            embedding_model: None,
            model_dir: None,
            ef_search: None,
            price_table: None,
            source_roots: Vec::new(),
            allow_private_sources: false,
            allow_outbound: Vec::new(),
            trusted_proxy: Vec::new(),
            allow_rls_bypass: false,
            max_chunks_per_document: None,
            max_chunk_repetition: None,
            max_search_knowledge_bases: None,
            parser_memory_mb: None,
            parser_cpu_seconds: None,
            max_expanded_mb: None,
            max_sheet_cells: None,
        }
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let (config, format) = resolve(args(None, None)).expect("defaults");
        assert_eq!(config.data_dir, PathBuf::from("lore-data"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_upload_bytes, 100 * 1024 * 1024);
        assert_eq!(format, LogFormat::Text);

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lore.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/lore\"\nlisten = \"0.0.0.0:9000\"\nworkers = 3\nlog_format = \"json\"\n",
        )
        .expect("write");
        let (config, format) = resolve(args(Some(file.clone()), None)).expect("file");
        assert_eq!(config.data_dir, PathBuf::from("/srv/lore"));
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.workers, 3);
        assert_eq!(format, LogFormat::Json);

        let (config, _) = resolve(args(Some(file), Some("127.0.0.1:7000"))).expect("flags win");
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.data_dir, PathBuf::from("/srv/lore"));
    }

    #[test]
    fn registration_is_by_invitation_unless_configured() {
        let (config, _) = resolve(args(None, None)).expect("defaults");
        assert_eq!(config.registration, lore_core::model::RegistrationPolicy::Invite);
        assert_eq!(config.registrations_per_hour, 10);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lore.toml");
        std::fs::write(&file, "registration = \"closed\"\nregistrations_per_hour = 0\n").expect("write");
        let (config, _) = resolve(args(Some(file.clone()), None)).expect("file");
        assert_eq!(
            (config.registration, config.registrations_per_hour),
            (lore_core::model::RegistrationPolicy::Closed, 0)
        );
        let mut flags = args(Some(file.clone()), None);
        flags.registration = Some(Registration::Open);
        let (config, _) = resolve(flags).expect("flags win");
        assert_eq!(config.registration, lore_core::model::RegistrationPolicy::Open);
        std::fs::write(&file, "registration = \"maybe\"\n").expect("write");
        assert!(resolve(args(Some(file), None)).is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lore.toml");
        std::fs::write(&file, "listen_addr = \"x\"\n").expect("write");
        assert!(resolve(args(Some(file), None)).is_err());
    }

    #[test]
    fn documents_are_parsed_in_child_processes_under_the_parser_budgets() {
        let (config, _) = resolve(args(None, None)).expect("defaults");
        assert!(config.parser_exe.is_some());
        assert_eq!(config.budgets, lore_core::budget::Budgets::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("lore.toml");
        std::fs::write(&file, "parser_memory_mb = 512\nmax_sheet_cells = 1000\n").expect("write");
        let mut flags = args(Some(file), None);
        flags.parser_cpu_seconds = Some(30);
        flags.max_expanded_mb = Some(64);
        let (config, _) = resolve(flags).expect("budgets");
        let b = &config.budgets;
        assert_eq!((b.parser_memory_bytes, b.parser_cpu_seconds), (512 << 20, 30));
        assert_eq!((b.max_expanded_bytes, b.max_sheet_cells), (64 << 20, 1000));
        let mut too_small = args(None, None);
        too_small.parser_memory_mb = Some(16);
        assert!(resolve(too_small).is_err());
    }
}
