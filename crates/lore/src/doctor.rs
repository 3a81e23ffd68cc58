//! `lore doctor`: checks a data directory (and optionally a running server) and says what to fix.

use std::path::Path;

use lore_core::store::Store;

pub struct Check {
    ok: bool,
    /// Not a fault, but a capability this machine lacks (printed as `note`).
    note: bool,
    what: String,
}

fn check(ok: bool, what: impl Into<String>) -> Check {
    Check { ok, note: false, what: what.into() }
}

/// Text recognition: Tesseract with its languages, and poppler's `pdftoppm` for scanned PDF
/// pages. Without them Lore runs, and images and scans fail with `ocr_unavailable`.
fn text_recognition() -> Check {
    let pdftoppm = std::process::Command::new("pdftoppm")
        .arg("-v")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    match lore_ingest::ocr::engine() {
        Ok(engine) if pdftoppm => check(
            true,
            format!(
                "text recognition: {} reads {} (and pdftoppm renders scanned pages)",
                engine.version, engine.languages
            ),
        ),
        Ok(engine) => Check {
            ok: true,
            note: true,
            what: format!(
                "text recognition: {} reads images, but scanned PDF pages need poppler's pdftoppm (Debian: apt-get install poppler-utils)",
                engine.version
            ),
        },
        Err(e) => Check {
            ok: true,
            note: true,
            what: format!(
                "text recognition unavailable (images and scanned PDFs fail with ocr_unavailable): {}",
                e.message
            ),
        },
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether each configured provider answers at all (any HTTP status counts: the address is
/// right and the network lets Lore through; keys are not tried).
async fn providers(store: &dyn Store) -> Vec<Check> {
    let addresses = match store.provider_addresses().await {
        Ok(a) => a,
        Err(e) => return vec![check(false, format!("provider configuration cannot be read: {e}"))],
    };
    let http = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => return vec![check(false, format!("no HTTP client: {e}"))],
    };
    let mut seen = std::collections::HashSet::new();
    let mut checks = Vec::new();
    for (provider, base) in addresses {
        let url = match base {
            Some(url) => url,
            None if provider == "tei" => continue,
            None => lore_llm::default_base(&provider).to_string(),
        };
        if !seen.insert(url.clone()) {
            continue;
        }
        checks.push(match http.get(&url).send().await {
            Ok(r) => check(true, format!("provider {provider} at {url} answers (HTTP {})", r.status().as_u16())),
            Err(e) => check(
                false,
                format!(
                    "provider {provider} at {url} cannot be reached ({}); check the address in the user's or agent's configuration, and the network",
                    if e.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() }
                ),
            ),
        });
    }
    checks
}

pub async fn run(data_dir: &Path, database_url: Option<&str>, server: Option<&str>) -> anyhow::Result<bool> {
    let mut checks = Vec::new();
    if data_dir.is_dir() {
        let probe = data_dir.join(".lore-doctor");
        let writable = std::fs::write(&probe, b"ok").is_ok();
        let _ = std::fs::remove_file(&probe);
        checks.push(check(writable, format!("data directory {} is writable", data_dir.display())));
        let db = data_dir.join("lore.db");
        let open = || lore_server::open_store(data_dir, database_url, lore_store::vectors::DEFAULT_EF_SEARCH);
        if database_url.is_some() || db.exists() {
            match open().await {
                Ok(store) => {
                    let queued = store.pending_jobs().await.unwrap_or(-1);
                    checks
                        .push(check(true, format!("database opens and its schema is current ({queued} jobs queued)")));
                    store.close().await;
                }
                Err(e) => checks.push(check(
                    false,
                    format!(
                        "database {} cannot be opened: {e}",
                        if database_url.is_some() { "(PostgreSQL)".into() } else { db.display().to_string() }
                    ),
                )),
            }
        } else {
            checks.push(check(true, "no database yet: `lore serve` creates it"));
        }
        let key = data_dir.join(lore_server::secrets::KEY_FILE);
        if std::env::var(lore_server::secrets::KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
            checks.push(check(true, "master key comes from LORE_MASTER_KEY"));
        } else if key.exists() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&key).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
                checks.push(check(
                    mode & 0o077 == 0,
                    format!("master key {} is private (mode {mode:o}; fix with chmod 600)", key.display()),
                ));
            }
            let readable = std::fs::read_to_string(&key)
                .ok()
                .and_then(|t| lore_server::secrets::MasterKey::from_base64(&t).ok())
                .is_some();
            checks.push(check(readable, "master key is valid (back it up with the data)"));
        } else {
            checks.push(check(true, "no master key yet: `lore serve` creates one"));
        }
        // The default embedding model: cached and loadable, or how it will be fetched.
        let model_dir =
            std::env::var_os("LORE_MODEL_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| data_dir.join("models"));
        let store = lore_embed::ModelStore::new(&model_dir);
        if let Some(known) = lore_embed::provision::known(lore_embed::DEFAULT_MODEL) {
            match store.cached(known) {
                Some(path) => match lore_embed::load_encoder(&path, Some((known.query_prefix, known.passage_prefix))) {
                    Ok(e) => checks.push(check(
                        true,
                        format!(
                            "embedding model {} ({} dims) loads from {}",
                            known.name,
                            e.dimensions(),
                            path.display()
                        ),
                    )),
                    Err(e) => checks.push(check(
                        false,
                        format!(
                            "embedding model at {} is damaged ({e}); `lore model pull {}`",
                            path.display(),
                            known.name
                        ),
                    )),
                },
                None => checks.push(check(
                    true,
                    format!(
                        "embedding model {} not cached in {}: fetched on first use, or now with `lore model pull {}`",
                        known.name,
                        model_dir.display(),
                        known.name
                    ),
                )),
            }
        }
        if (database_url.is_some() || db.exists())
            && let Ok(store) = open().await
        {
            checks.extend(providers(store.as_ref()).await);
            store.close().await;
        }
        match free_bytes(data_dir) {
            Some(free) => checks.push(check(
                free > 1 << 30,
                format!(
                    "{:.1} GiB free on the data directory's disk (keep at least 1 GiB)",
                    free as f64 / (1u64 << 30) as f64
                ),
            )),
            None => checks.push(check(true, "free disk space unknown (no `df`)")),
        }
    } else {
        checks.push(check(
            false,
            format!("data directory {} does not exist (`lore serve --data-dir` creates it)", data_dir.display()),
        ));
    }
    checks.push(text_recognition());
    if let Some(base) = server {
        let url = format!("{}/readyz", base.trim_end_matches('/'));
        let ready = reqwest::Client::new().get(&url).send().await.map(|r| r.status().is_success()).unwrap_or(false);
        checks.push(check(ready, format!("server at {base} is ready")));
    }
    for c in &checks {
        println!(
            "{} {}",
            if !c.ok {
                "FIX "
            } else if c.note {
                "note"
            } else {
                "ok  "
            },
            c.what
        );
    }
    Ok(checks.iter().all(|c| c.ok))
}
