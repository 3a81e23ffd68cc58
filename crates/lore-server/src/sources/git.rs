//! `git`: the files of a branch at its head, read with gix. A repository on the server (a path
//! under an allowed root, like `local_folder`) is read in place; a remote one (http or https) is
//! cloned bare for the sync and dropped after it. An item's version is its blob id, so a file
//! whose content did not change is not processed again, whatever else the commits did.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lore_core::error::{Code, Error};
use reqwest::Url;
use serde_json::Value;

use super::{Connector, Listed, Listing, MAX_ITEMS, Patterns, blocking, folder, net};
use crate::state::AppState;

enum Origin {
    Local(PathBuf),
    /// The repository's URL (never with credentials in it) and the sealed token, if any, that
    /// is put into the clone's URL for the clone only.
    Remote(Url, Option<String>),
}

pub struct Git {
    origin: Origin,
    branch: Option<String>,
    patterns: Patterns,
    max_bytes: u64,
    policy: net::Policy,
    staging: PathBuf,
    /// The repository the listing read, kept until the sync's fetches are done (a remote clone
    /// lives in a temporary folder that goes with it).
    opened: Mutex<Option<(PathBuf, Option<tempfile::TempDir>)>>,
}

/// Bytes under a folder (a clone in progress: files come and go; what cannot be read counts 0).
fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn git_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(Code::SourceUnreachable, format!("{what}: {e}"))
}

impl Git {
    pub fn open(state: &AppState, config: &Value, credentials: Option<&Value>) -> Result<Self, Error> {
        let bad = |m: &str| Error::new(Code::InvalidSourceConfig, m.to_string());
        let token = match credentials.and_then(|c| c.get("token")).filter(|t| !t.is_null()) {
            None => None,
            Some(t) => Some(
                t.as_str()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| bad("credentials.token must be the access token as a string"))?
                    .to_string(),
            ),
        };
        let url = config["url"]
            .as_str()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad("git needs config.url: an http(s) repository URL or a path on the server"))?;
        let origin = match Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                // A token in the URL would be stored and shown in plain text, to every key that
                // may read the source: it belongs in the sealed credentials.
                if !u.username().is_empty() || u.password().is_some() {
                    return Err(bad(
                        "config.url must not hold credentials; give the access token as credentials.token (sealed, never shown)",
                    ));
                }
                net::check_literal(&u, &state.config.outbound())?;
                Origin::Remote(u, token)
            }
            Ok(u) if u.scheme() == "file" => {
                let path = u.to_file_path().map_err(|_| bad("config.url: not a file path"))?;
                Origin::Local(folder::allowed_path(state, &path.to_string_lossy())?)
            }
            Ok(u) if u.scheme().len() > 1 => {
                return Err(bad("config.url: only http(s) repository URLs and server paths are supported"));
            }
            _ => Origin::Local(folder::allowed_path(state, url)?),
        };
        let branch = match config.get("branch").filter(|b| !b.is_null()) {
            None => None,
            Some(b) => Some(
                b.as_str()
                    .map(str::trim)
                    .filter(|b| !b.is_empty() && !b.contains(".."))
                    .ok_or_else(|| bad("config.branch must be a branch name"))?
                    .to_string(),
            ),
        };
        Ok(Self {
            origin,
            branch,
            patterns: Patterns::from_config(config)?,
            max_bytes: state.config.max_upload_bytes,
            policy: state.config.outbound(),
            staging: state.blobs.staging_dir().to_path_buf(),
            opened: Mutex::new(None),
        })
    }

    /// Refuses a remote whose host resolves to a private address (gix connects on its own, so
    /// this is checked before the clone).
    async fn check_remote(&self, url: &Url) -> Result<(), Error> {
        if self.policy.allow_private {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| git_error(host, e))?;
        for addr in addrs {
            if !self.policy.permits(addr.ip()) {
                return Err(net::refused(host));
            }
        }
        Ok(())
    }
}

/// The files at the head of `branch` (or of HEAD): (path, blob id), blobs only.
fn files_at_head(repo_path: &Path, branch: Option<&str>, patterns: &Patterns) -> Result<Vec<Listed>, Error> {
    let repo = gix::open(repo_path).map_err(|e| git_error("cannot open the repository", e))?;
    let commit = match branch {
        Some(b) => repo
            .find_reference(b)
            .map_err(|e| Error::new(Code::InvalidSourceConfig, format!("no branch {b:?}: {e}")))?
            .peel_to_commit()
            .map_err(|e| git_error(b, e))?,
        None => repo.head_commit().map_err(|e| git_error("HEAD", e))?,
    };
    let tree = commit.tree().map_err(|e| git_error("the commit's tree", e))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse().breadthfirst(&mut recorder).map_err(|e| git_error("walking the tree", e))?;
    let mut files = Vec::new();
    for entry in recorder.records {
        if !entry.mode.is_blob() {
            continue; // trees, symbolic links, submodules
        }
        let key = entry.filepath.to_string();
        if key.split('/').any(|part| part.starts_with('.')) || !patterns.wants(&key) {
            continue;
        }
        files.push(Listed::new(key, entry.oid.to_string()));
        if files.len() >= MAX_ITEMS {
            break;
        }
    }
    Ok(files)
}

#[async_trait]
impl Connector for Git {
    async fn list(&self) -> Result<Listing, Error> {
        let (path, clone) = match &self.origin {
            Origin::Local(path) => (path.clone(), None),
            Origin::Remote(url, token) => {
                self.check_remote(url).await?;
                let into = tempfile::Builder::new()
                    .prefix("git-")
                    .tempdir_in(&self.staging)
                    .map_err(|e| Error::internal(format!("clone folder: {e}")))?;
                let (shown, dir, token) = (url.to_string(), into.path().to_path_buf(), token.clone());
                let mut with_token = url.clone();
                if let Some(token) = &token {
                    // The form GitHub, GitLab and Gitea all accept for a token over https.
                    let _ = with_token.set_username("x-access-token");
                    let _ = with_token.set_password(Some(token));
                }
                blocking(move || {
                    lore_core::tls::ensure_provider();
                    // A clone larger than the budget is interrupted while it downloads: a watcher
                    // measures the clone's folder and raises the flag gix checks.
                    let interrupt = Arc::new(AtomicBool::new(false));
                    let (done, over) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
                    let max = lore_core::budget::budgets().max_expanded_bytes;
                    let watcher = {
                        let (interrupt, done, over, dir) = (interrupt.clone(), done.clone(), over.clone(), dir.clone());
                        std::thread::spawn(move || {
                            while !done.load(Ordering::Relaxed) {
                                if folder_size(&dir) > max {
                                    over.store(true, Ordering::Relaxed);
                                    interrupt.store(true, Ordering::Relaxed);
                                    return;
                                }
                                std::thread::sleep(std::time::Duration::from_millis(200));
                            }
                        })
                    };
                    // Errors name the URL without the token, and never repeat the token.
                    let failed = |e: &dyn std::fmt::Display| {
                        let text = e.to_string();
                        let text = match &token {
                            Some(t) => text.replace(t.as_str(), "***"),
                            None => text,
                        };
                        git_error(&shown, text)
                    };
                    let cloned = gix::prepare_clone_bare(with_token.as_str(), &dir).map_err(|e| failed(&e)).and_then(
                        |mut clone| {
                            clone.fetch_only(gix::progress::Discard, &interrupt).map(|_| ()).map_err(|e| failed(&e))
                        },
                    );
                    done.store(true, Ordering::Relaxed);
                    let _ = watcher.join();
                    if over.load(Ordering::Relaxed) || folder_size(&dir) > max {
                        return Err(lore_core::budget::exceeded(
                            Code::ExpandedSizeExceeded,
                            format!("the repository {shown} is larger than {} MiB", max >> 20),
                            "max-expanded-mb",
                        ));
                    }
                    cloned
                })
                .await?;
                (into.path().to_path_buf(), Some(into))
            }
        };
        let (repo, branch, patterns) = (path.clone(), self.branch.clone(), self.patterns.clone());
        let items = blocking(move || files_at_head(&repo, branch.as_deref(), &patterns)).await?;
        *self.opened.lock().map_err(|_| Error::internal("git state poisoned"))? = Some((path, clone));
        Ok(Listing { items, failed: Vec::new() })
    }

    async fn fetch(&self, item: &Listed, dest: &Path) -> Result<(), Error> {
        let repo_path = self
            .opened
            .lock()
            .map_err(|_| Error::internal("git state poisoned"))?
            .as_ref()
            .map(|(p, _)| p.clone())
            .ok_or_else(|| Error::internal("the repository was not listed"))?;
        let (oid, dest, key, max) = (item.version.clone(), dest.to_path_buf(), item.key.clone(), self.max_bytes);
        blocking(move || {
            let repo = gix::open(&repo_path).map_err(|e| git_error("cannot open the repository", e))?;
            let id = gix::ObjectId::from_hex(oid.as_bytes()).map_err(|e| git_error(&key, e))?;
            let blob = repo.find_blob(id).map_err(|e| git_error(&key, e))?;
            if blob.data.len() as u64 > max {
                return Err(Error::new(
                    Code::PayloadTooLarge,
                    format!("{key} is larger than the server's upload limit ({max} bytes)"),
                ));
            }
            std::fs::write(&dest, &blob.data).map_err(|e| Error::internal(format!("staging {key}: {e}")))
        })
        .await
    }
}
