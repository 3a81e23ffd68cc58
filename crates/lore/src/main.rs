//! `lore`: the server, and the tools around it.

mod client;
mod config;
mod doctor;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "lore", version, about = "Self-hosted knowledge bases with search, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on the embedded default (SQLite and blobs under one data directory).
    Serve(Box<config::ServeArgs>),
    /// Measure Lore: each benchmark prints its figures and the command that produced them.
    Bench {
        #[command(subcommand)]
        what: lore_bench::BenchCommand,
    },
    /// Upload files and folders into a knowledge base, with progress, and wait for processing.
    Import {
        #[command(flatten)]
        connection: client::Connection,
        #[command(flatten)]
        args: client::ImportArgs,
    },
    /// Search a knowledge base.
    Search {
        #[command(flatten)]
        connection: client::Connection,
        #[command(flatten)]
        args: client::SearchArgs,
    },
    /// Knowledge bases on a server.
    Kb {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: client::KbCommand,
    },
    /// Documents on a server.
    Doc {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: client::DocCommand,
    },
    /// API keys on a server.
    Key {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: client::KeyCommand,
    },
    /// A Model Context Protocol server on stdio, for agent hosts; it talks to a Lore server.
    Mcp {
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Check a data directory (and a running server) and say what to fix.
    Doctor {
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
        /// The PostgreSQL database of the installation, if it uses one.
        #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Also check that a server answers.
        #[arg(long)]
        server: Option<String>,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Local embedding models: fetch one into the cache ahead of its first use.
    Model {
        #[command(subcommand)]
        what: ModelCommand,
    },
    /// Copy an embedded installation (SQLite) into PostgreSQL: users, keys, knowledge bases,
    /// documents, chunks and their embeddings (nothing is re-embedded). Run it again to resume
    /// an interrupted copy; it ends by verifying counts and checksums. Stop the server first.
    Migrate {
        /// The embedded installation's data directory.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The PostgreSQL database (with pgvector): postgres://user:password@host/db
        #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
        to: String,
    },
    /// Write a consistent snapshot of an installation while it serves (the database, every
    /// uploaded file, a manifest of SHA-256 checksums) to one archive, or check an archive.
    Backup {
        /// The archive to write.
        #[arg(long, required_unless_present = "verify", conflicts_with = "verify")]
        to: Option<std::path::PathBuf>,
        /// Check an archive (every checksum, every row count) without restoring it.
        #[arg(long)]
        verify: Option<std::path::PathBuf>,
        /// The installation's data directory. Default: ./lore-data
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
        /// The installation's PostgreSQL database, when it runs on one (as its nodes are started).
        #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Where its uploaded files live, when not in the default place (as `serve --blob-url`;
        /// S3 credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
        #[arg(long, env = "LORE_BLOB_URL")]
        blob_url: Option<String>,
        /// The bucket's endpoint when it is not AWS.
        #[arg(long, env = "LORE_S3_ENDPOINT")]
        s3_endpoint: Option<String>,
        /// Include the master key, sealed under the passphrase in LORE_BACKUP_PASSPHRASE (without
        /// it, secrets restored elsewhere open only with the installation's own key).
        #[arg(long)]
        include_master_key: bool,
    },
    /// Restore an archive of `lore backup` into an empty data directory, or into an empty
    /// PostgreSQL database with --database-url.
    Restore {
        /// The archive.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The data directory to restore into (must hold no database). Default: ./lore-data
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
        /// Restore into this PostgreSQL database (must be empty) instead.
        #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Manage the master key that seals secrets at rest.
    Keys {
        #[command(subcommand)]
        what: KeysCommand,
    },
    /// Internal: the parser process `lore serve` starts (lore_ingest::isolate). Reads files on
    /// stdin, answers text on stdout, under the memory and CPU limits it is given.
    #[command(name = "parse-worker", hide = true)]
    ParseWorker {
        /// The budgets (lore_core::budget::Budgets) as JSON.
        #[arg(long)]
        budgets: String,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Provisions a model into the cache, fetching it again if present: a known one (e.g.
    /// multilingual-e5-small), or any BERT/XLM-R model of the hub by its repository (BAAI/bge-m3).
    Pull {
        name: String,
        /// The model cache. Default: $LORE_MODEL_DIR, else <data_dir>/models
        #[arg(long, env = "LORE_MODEL_DIR")]
        model_dir: Option<std::path::PathBuf>,
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
    },
    /// Lists the models Lore knows and whether each is in the cache.
    List {
        #[arg(long, env = "LORE_MODEL_DIR")]
        model_dir: Option<std::path::PathBuf>,
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-encrypts every stored secret under a new master key. Stop the server first.
    RotateMaster {
        /// The data directory of the server. Default: ./lore-data
        #[arg(long, env = "LORE_DATA_DIR", default_value = "lore-data")]
        data_dir: std::path::PathBuf,
        /// The PostgreSQL database of the installation, if it uses one.
        #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any runtime starts threads or reserves memory: the child limits its own address space.
    if let Command::ParseWorker { budgets } = &cli.command {
        return parse_worker(budgets);
    }
    lore_core::tls::ensure_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let done = |r: anyhow::Result<()>| r.map(|()| client::Outcome::Ok);
        match cli.command {
            Command::Serve(args) => done(serve(*args).await),
            Command::Bench { what } => done(lore_bench::run(what).await),
            Command::Keys { what: KeysCommand::RotateMaster { data_dir, database_url } } => {
                done(rotate_master(&data_dir, database_url.as_deref()).await)
            }
            Command::Model { what } => done(model(what).await),
            Command::Import { connection, args } => client::import(&connection, args).await,
            Command::Search { connection, args } => client::search(&connection, args).await,
            Command::Kb { connection, command } => client::kb(&connection, command).await,
            Command::Doc { connection, command } => client::doc(&connection, command).await,
            Command::Key { connection, command } => client::key(&connection, command).await,
            Command::Mcp { connection } => client::mcp_stdio(&connection).await,
            Command::Migrate { from, to } => done(migrate(&from, &to).await),
            Command::Backup { to, verify, data_dir, database_url, blob_url, s3_endpoint, include_master_key } => {
                let installation = config::ServeArgs {
                    data_dir: Some(data_dir),
                    database_url,
                    blob_url,
                    s3_endpoint,
                    ..Default::default()
                };
                done(backup(to.as_deref(), verify.as_deref(), installation, include_master_key).await)
            }
            Command::Restore { from, data_dir, database_url } => {
                done(restore(&from, &data_dir, database_url.as_deref()).await)
            }
            Command::Doctor { data_dir, database_url, server } => {
                doctor::run(&data_dir, database_url.as_deref(), server.as_deref())
                    .await
                    .map(|healthy| if healthy { client::Outcome::Ok } else { client::Outcome::PartialFailure })
            }
            Command::ParseWorker { .. } => unreachable!("handled before the runtime starts"),
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "lore", &mut std::io::stdout());
                Ok(client::Outcome::Ok)
            }
        }
    });
    match result {
        Ok(client::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(client::Outcome::PartialFailure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_worker(budgets: &str) -> ExitCode {
    let budgets = match serde_json::from_str(budgets) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: invalid --budgets: {e}");
            return ExitCode::FAILURE;
        }
    };
    match lore_ingest::isolate::serve_child(budgets) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: parser process: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn model(what: ModelCommand) -> anyhow::Result<()> {
    let store = |model_dir: Option<std::path::PathBuf>, data_dir: std::path::PathBuf| {
        lore_embed::ModelStore::new(model_dir.unwrap_or_else(|| data_dir.join("models")))
    };
    match what {
        ModelCommand::Pull { name, model_dir, data_dir } => {
            let store = store(model_dir, data_dir);
            let started = std::time::Instant::now();
            let Some(known) = lore_embed::provision::known(&name) else {
                // Any BERT or XLM-RoBERTa model on the hub (or the mirror LORE_HF_ENDPOINT names),
                // by its repository: `lore model pull BAAI/bge-m3`.
                if store.repo_path(&name).is_none() {
                    anyhow::bail!(
                        "unknown model '{name}'; known: {}, or a hub repository such as BAAI/bge-m3",
                        lore_embed::provision::KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
                    );
                }
                let repo = name.clone();
                let path = tokio::task::spawn_blocking(move || store.pull_repo(&repo)).await??;
                let encoder = lore_embed::load_encoder(&path, None)?;
                println!(
                    "{name} ({} dimensions) ready at {} in {:.1} s; name it as a knowledge base's local model: \
                     {{\"provider\": \"local\", \"model\": \"{name}\"}}",
                    encoder.dimensions(),
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            };
            let path = tokio::task::spawn_blocking(move || store.pull(known)).await??;
            // Loading it proves the file is whole.
            let encoder = lore_embed::load_encoder(&path, Some((known.query_prefix, known.passage_prefix)))?;
            println!(
                "{} ({} dimensions) ready at {} in {:.1} s",
                known.name,
                encoder.dimensions(),
                path.display(),
                started.elapsed().as_secs_f64()
            );
        }
        ModelCommand::List { model_dir, data_dir } => {
            let store = store(model_dir, data_dir);
            for m in lore_embed::provision::KNOWN {
                let state = match store.cached(m) {
                    Some(path) => format!("cached at {}", path.display()),
                    None => "not cached".into(),
                };
                println!("{}\t{} dims\t{state}", m.name, m.dimensions);
            }
        }
    }
    Ok(())
}

async fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    let (config, log_format) = config::resolve(args)?;
    config::init_logging(log_format);
    let database = if config.database_url.is_some() { "postgres" } else { "sqlite" };
    tracing::info!(data_dir = %config.data_dir.display(), database, listen = %config.listen, workers = config.workers, "starting lore");
    let server = lore_server::start(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests and jobs in flight");
        let _ = stop.send(true);
    });
    server.wait().await;
    Ok(())
}

async fn migrate(from: &std::path::Path, to: &str) -> anyhow::Result<()> {
    let progress = |table: &str, rows: i64| println!("copied {table}: {rows} rows");
    let report =
        lore_store::transfer::sqlite_to_postgres(from, to, &progress).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{} rows inserted by this run; row counts match in all {} tables", report.inserted, report.tables.len());
    for (what, sum) in &report.checksums {
        println!("checksum of {what} matches: {sum}");
    }
    // The uploaded files go into the database, where every node reads them.
    let pg = lore_store::PgStore::open(to).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let staging = std::env::temp_dir().join(format!("lore-migrate-{}", std::process::id()));
    let blobs = lore_store::PgBlobStore::open(&pg, &staging).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (files, bytes) = blobs.import_dir(&from.join("blobs")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = std::fs::remove_dir_all(&staging);
    println!("copied {files} uploaded files ({bytes} bytes) into the database");
    // The embedded node's key becomes the installation's (its check value was copied above, or
    // is written now).
    let key = lore_server::secrets::MasterKey::load_or_create(from).map_err(|e| anyhow::anyhow!("{e}"))?;
    key.verify_for(&pg, from).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    lore_core::store::Store::close(&pg).await;
    println!(
        "done. Start every node with --database-url and {}=$(cat {}) (the same key on every node)",
        lore_server::secrets::KEY_ENV,
        from.join(lore_server::secrets::KEY_FILE).display()
    );
    Ok(())
}

const PASSPHRASE_ENV: &str = "LORE_BACKUP_PASSPHRASE";

fn passphrase() -> anyhow::Result<String> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if p.chars().count() >= 12 => Ok(p),
        Ok(_) => anyhow::bail!("{PASSPHRASE_ENV} must have at least 12 characters"),
        Err(_) => anyhow::bail!("set {PASSPHRASE_ENV} to the passphrase that seals the master key"),
    }
}

async fn backup(
    to: Option<&std::path::Path>, verify: Option<&std::path::Path>, installation: config::ServeArgs,
    include_master_key: bool,
) -> anyhow::Result<()> {
    let fail = |e: lore_core::error::Error| anyhow::anyhow!("{e}");
    if let Some(file) = verify {
        let manifest = lore_store::backup::verify(file).await.map_err(fail)?;
        let rows: i64 = manifest.tables.values().sum();
        println!(
            "{}: intact. {} backup of Lore {} taken {}: {rows} rows in {} tables, {} uploaded files, every SHA-256 matches",
            file.display(),
            manifest.source,
            manifest.lore_version,
            manifest.created_at,
            manifest.tables.len(),
            manifest.blobs().count()
        );
        return Ok(());
    }
    let to = to.ok_or_else(|| anyhow::anyhow!("name the archive with --to"))?;
    let (config, _) = config::resolve(installation)?;
    let data_dir = config.data_dir.as_path();
    let pg = match &config.database_url {
        Some(url) => Some(lore_store::PgStore::open(url).await.map_err(fail)?),
        None => None,
    };
    let blobs = lore_server::blobs::open(&config, pg.as_ref()).map_err(fail)?;
    let mut extra = Vec::new();
    if include_master_key {
        let key = lore_server::secrets::MasterKey::load_or_create(data_dir).map_err(fail)?;
        // On PostgreSQL the key must be the cluster's, or the archive would seal a useless one.
        if let Some(pg) = &pg {
            key.verify_for(pg, data_dir).await.map_err(fail)?;
        }
        extra.push((
            lore_store::backup::SEALED_KEY,
            lore_server::secrets::seal_with_passphrase(&key, &passphrase()?).map_err(fail)?,
        ));
    }
    let started = std::time::Instant::now();
    let manifest = match &pg {
        Some(pg) => lore_store::backup::backup_postgres(pg, blobs.as_ref(), to, &extra).await,
        None => lore_store::backup::backup_embedded(data_dir, blobs.as_ref(), to, &extra).await,
    };
    if let Some(pg) = pg {
        lore_core::store::Store::close(&pg).await;
    }
    let manifest = manifest.map_err(fail)?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({bytes} bytes) in {:.1} s: {} rows in {} tables, {} uploaded files{}",
        to.display(),
        started.elapsed().as_secs_f64(),
        manifest.tables.values().sum::<i64>(),
        manifest.tables.len(),
        manifest.blobs().count(),
        if include_master_key {
            ", the master key sealed under the passphrase"
        } else {
            "; the master key is not in it"
        }
    );
    Ok(())
}

async fn restore(from: &std::path::Path, data_dir: &std::path::Path, database_url: Option<&str>) -> anyhow::Result<()> {
    use lore_server::secrets::{KEY_ENV, KEY_FILE};
    let fail = |e: lore_core::error::Error| anyhow::anyhow!("{e}");
    let (manifest, sealed) = lore_store::backup::restore(from, data_dir, database_url).await.map_err(fail)?;
    let target = match database_url {
        Some(_) => "the PostgreSQL database".to_string(),
        None => data_dir.display().to_string(),
    };
    println!(
        "restored {} rows in {} tables and {} uploaded files into {target}; every checksum matched",
        manifest.tables.values().sum::<i64>(),
        manifest.tables.len(),
        manifest.blobs().count()
    );
    match sealed {
        Some(sealed) => {
            let key = lore_server::secrets::open_with_passphrase(&sealed, &passphrase()?).map_err(fail)?;
            let path = data_dir.join(KEY_FILE);
            anyhow::ensure!(!path.exists(), "{} exists already; the archive's key was not written", path.display());
            key.write(&path).map_err(fail)?;
            println!("the master key is in {} (every node: {KEY_ENV}=$(cat {}))", path.display(), path.display());
        }
        None => println!(
            "the archive holds no master key: start with the installation's key ({KEY_ENV}, or its master.key in {}) \
             so that its provider keys and credentials open",
            data_dir.display()
        ),
    }
    Ok(())
}

/// New key first (to a side file), then every secret re-sealed in one transaction, then the new
/// key takes the old one's place. A crash in between leaves both files, and says so.
async fn rotate_master(data_dir: &std::path::Path, database_url: Option<&str>) -> anyhow::Result<()> {
    use lore_server::secrets::{CHECK_SETTING, KEY_ENV, KEY_FILE, MasterKey};
    let db = data_dir.join("lore.db");
    anyhow::ensure!(database_url.is_some() || db.exists(), "no Lore database at {}", db.display());
    let old = MasterKey::load_or_create(data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let new = MasterKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let from_env = std::env::var(KEY_ENV).is_ok_and(|v| !v.trim().is_empty());
    let staged = data_dir.join(format!("{KEY_FILE}.new"));
    new.write(&staged).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = lore_server::open_store(data_dir, database_url, lore_store::vectors::DEFAULT_EF_SEARCH)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The key being replaced must be the installation's: with another, no secret would open.
    old.verify_for(store.as_ref(), data_dir).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let changed = store
        .reencrypt_secrets(&|sealed: &str| new.seal(&old.open(sealed)?))
        .await
        .map_err(|e| anyhow::anyhow!("{e}; nothing was changed, {} can be deleted", staged.display()))?;
    // Every node checks its key against this at start: from now on, the new key's.
    let swapped = store
        .swap_cluster_setting(CHECK_SETTING, Some(&old.check_value()), &new.check_value())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(swapped, "another process changed the master key's check value during the rotation");
    store.close().await;
    if from_env {
        println!("re-encrypted {changed} secrets; set {KEY_ENV} to the new key stored in {}", staged.display());
    } else {
        std::fs::rename(&staged, data_dir.join(KEY_FILE))?;
        println!("re-encrypted {changed} secrets under a new master key ({})", data_dir.join(KEY_FILE).display());
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
