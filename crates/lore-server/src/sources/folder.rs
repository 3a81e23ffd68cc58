//! `local_folder`: a server-side folder under one of the roots the operator allows
//! (`--source-root`), walked recursively; an item's version is its mtime and size.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lore_core::error::{Code, Error};
use serde_json::Value;

use super::{Connector, Listed, Listing, MAX_ITEMS, Patterns, blocking};
use crate::state::AppState;

pub struct Folder {
    root: PathBuf,
    patterns: Patterns,
}

impl Folder {
    pub fn open(state: &AppState, config: &Value) -> Result<Self, Error> {
        let path = config["path"]
            .as_str()
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| Error::new(Code::InvalidSourceConfig, "local_folder needs config.path"))?;
        Ok(Self { root: allowed_path(state, path)?, patterns: Patterns::from_config(config)? })
    }
}

/// `path`, resolved, if it lies under a root the operator allows (`--source-root`).
pub fn allowed_path(state: &AppState, path: &str) -> Result<PathBuf, Error> {
    if state.config.source_roots.is_empty() {
        return Err(Error::new(
            Code::InvalidSourceConfig,
            "this server allows no server-side paths as sources; its operator can allow some with --source-root DIR",
        ));
    }
    let resolved = std::fs::canonicalize(path)
        .map_err(|e| Error::new(Code::InvalidSourceConfig, format!("cannot open {path}: {e}")))?;
    let allowed = state
        .config
        .source_roots
        .iter()
        .filter_map(|root| std::fs::canonicalize(root).ok())
        .any(|root| resolved.starts_with(root));
    if !allowed || !resolved.is_dir() {
        return Err(Error::new(
            Code::InvalidSourceConfig,
            format!("{path} is not a folder under the roots this server allows (--source-root)"),
        ));
    }
    Ok(resolved)
}

fn walk(folder: &Path, patterns: &Patterns) -> Vec<Listed> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            // Symbolic links are not followed: a link must not lead out of the allowed root.
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            let Ok(relative) = path.strip_prefix(folder) else { continue };
            let key = relative.to_string_lossy().replace('\\', "/");
            if key.split('/').any(|part| part.starts_with('.')) {
                continue; // hidden files and folders (.git, .DS_Store ...)
            }
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !kind.is_file() || !patterns.wants(&key) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            found.push(Listed::new(key, format!("{mtime}-{}", meta.len())));
            if found.len() >= MAX_ITEMS {
                return found;
            }
        }
    }
    found
}

#[async_trait]
impl Connector for Folder {
    async fn list(&self) -> Result<Listing, Error> {
        let (root, patterns) = (self.root.clone(), self.patterns.clone());
        Ok(Listing { items: blocking(move || Ok(walk(&root, &patterns))).await?, failed: Vec::new() })
    }

    async fn fetch(&self, item: &Listed, dest: &Path) -> Result<(), Error> {
        // The key came from the walk: relative, no `..`, under the root.
        let (path, dest, key) = (self.root.join(&item.key), dest.to_path_buf(), item.key.clone());
        blocking(move || {
            std::fs::copy(&path, &dest)
                .map(drop)
                .map_err(|e| Error::new(Code::CorruptFile, format!("cannot read {key}: {e}")))
        })
        .await
    }
}
