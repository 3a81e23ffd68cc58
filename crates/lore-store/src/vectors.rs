//! The embedded vector index: one HNSW graph (usearch; cosine, M = 16, ef_construction = 64) per
//! knowledge base, embedding model and field (content or summary), keyed by the chunk's `seq`.
//!
//! SQLite stays the source of truth. Triggers append every relevant change to `vector_changes`;
//! [`VectorIndexes::sync`] replays the log from the last applied entry, reading each chunk's
//! current state, so a replay is idempotent. [`VectorIndexes::save`] writes the graphs and then a
//! manifest naming the log position they cover; on open the graphs are loaded and the log since
//! then replayed, and if the files are missing or damaged the graphs are rebuilt from the chunks.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lore_core::error::{Error, Result};
use lore_core::model::Id;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Row};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 64;
/// Query embedding takes ~20 ms; a wider HNSW search (about 1 ms at a million vectors) buys recall cheaply.
pub const DEFAULT_EF_SEARCH: usize = 256;
/// Save the graphs after this many applied changes, or this long after the first unsaved one.
const SAVE_AFTER_CHANGES: u64 = 20_000;
const SAVE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Content,
    Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpaceKey {
    pub knowledge_base_id: Id,
    pub model: String,
    pub field: Field,
}

pub struct Space {
    index: Index,
    dimensions: usize,
    /// usearch serves as many concurrent searches and inserts as it has thread contexts, and
    /// fails the rest ("Reserve capacity ahead of searches!"): callers beyond that wait here.
    gate: Gate,
}

/// Thread contexts each graph keeps; concurrent operations beyond this wait their turn.
const GRAPH_THREADS: usize = 32;

/// A counting semaphore for blocking callers (graph operations run on the blocking pool).
struct Gate {
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Gate {
    fn new() -> Self {
        Gate { busy: std::sync::Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            while *busy >= GRAPH_THREADS {
                busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
            }
            *busy += 1;
        }
        let out = f();
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *busy -= 1;
        self.freed.notify_one();
        out
    }
}

impl Space {
    /// An empty graph with Lore's parameters (cosine, M = 16, ef_construction = 64).
    pub fn new(dimensions: usize, ef_search: usize) -> Result<Space> {
        let options = IndexOptions {
            dimensions,
            metric: MetricKind::Cos,
            quantization: ScalarKind::F32,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: ef_search,
            multi: false,
        };
        let index = Index::new(&options).map_err(index_err)?;
        index.reserve_capacity_and_threads(1024, GRAPH_THREADS).map_err(index_err)?;
        Ok(Space { index, dimensions, gate: Gate::new() })
    }

    /// Room for `n` vectors, so that concurrent inserts need no reallocation.
    pub fn reserve(&self, n: usize) -> Result<()> {
        self.index.reserve_capacity_and_threads(n, GRAPH_THREADS).map_err(index_err)
    }

    /// Inserts without the existence check or growth of `upsert`: for bulk loads after `reserve`.
    pub fn insert(&self, key: u64, vector: &[f32]) -> Result<()> {
        self.gate.run(|| self.index.add(key, vector)).map_err(index_err)
    }

    pub fn set_ef_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    /// Bytes the graph and its vectors occupy in memory.
    pub fn memory_usage(&self) -> usize {
        self.index.memory_usage()
    }

    pub fn upsert(&self, key: u64, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dimensions {
            return Ok(());
        }
        if self.index.contains(key) {
            self.index.remove(key).map_err(index_err)?;
        }
        if self.index.size() + 1 >= self.index.capacity() {
            self.reserve((self.index.capacity() * 2).max(1024))?;
        }
        self.gate.run(|| self.index.add(key, vector)).map_err(index_err)
    }

    /// The `count` nearest keys with cosine similarity, best first; `allow` filters during traversal.
    pub fn search(&self, query: &[f32], count: usize, allow: Option<&HashSet<u64>>) -> Result<Vec<(u64, f64)>> {
        if query.len() != self.dimensions || self.index.size() == 0 {
            return Ok(Vec::new());
        }
        let matches = self
            .gate
            .run(|| match allow {
                Some(allowed) => self.index.filtered_search(query, count, |key| allowed.contains(&key)),
                None => self.index.search(query, count),
            })
            .map_err(index_err)?;
        Ok(matches.keys.into_iter().zip(matches.distances).map(|(k, d)| (k, 1.0 - f64::from(d))).collect())
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn index_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector index: {e}"))
}

#[derive(Serialize, Deserialize, Default)]
struct Manifest {
    /// The last `vector_changes.seq` the saved graphs reflect.
    applied: i64,
    spaces: Vec<SavedSpace>,
}

#[derive(Serialize, Deserialize)]
struct SavedSpace {
    key: SpaceKey,
    file: String,
    dimensions: usize,
}

struct Progress {
    applied: i64,
    unsaved: u64,
    first_unsaved: Option<Instant>,
}

pub struct VectorIndexes {
    /// Where graphs are saved; `None` keeps them in memory only (rebuilt from SQLite on open).
    dir: Option<PathBuf>,
    reader: SqlitePool,
    writer: SqlitePool,
    ef_search: usize,
    spaces: RwLock<HashMap<SpaceKey, Arc<Space>>>,
    progress: tokio::sync::Mutex<Progress>,
}

/// A chunk's current state, as a replay needs it.
struct ChunkState {
    seq: i64,
    knowledge_base_id: Id,
    model: Option<String>,
    content: Option<Vec<u8>>,
    summary: Option<Vec<u8>>,
    live: bool,
}

pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl VectorIndexes {
    /// Loads the saved graphs and catches up with the change log, or rebuilds from the chunks.
    pub async fn open(
        dir: Option<PathBuf>, ef_search: usize, reader: SqlitePool, writer: SqlitePool,
    ) -> Result<VectorIndexes> {
        let indexes = VectorIndexes {
            dir,
            reader,
            writer,
            ef_search,
            spaces: RwLock::new(HashMap::new()),
            progress: tokio::sync::Mutex::new(Progress { applied: 0, unsaved: 0, first_unsaved: None }),
        };
        let loaded = match &indexes.dir {
            Some(dir) => indexes.load(dir).await,
            None => None,
        };
        match loaded {
            Some(applied) => indexes.progress.lock().await.applied = applied,
            None => indexes.rebuild().await?,
        }
        indexes.sync().await?;
        Ok(indexes)
    }

    async fn load(&self, dir: &Path) -> Option<i64> {
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).ok()?).ok()?;
        let ef = self.ef_search;
        let dir = dir.to_path_buf();
        let spaces = tokio::task::spawn_blocking(move || -> Option<HashMap<SpaceKey, Arc<Space>>> {
            let mut spaces = HashMap::new();
            for saved in manifest.spaces {
                let space = Space::new(saved.dimensions, ef).ok()?;
                let path = dir.join(&saved.file);
                space.index.load(path.to_str()?).ok()?;
                // Loading sizes the graph to what it holds, with the default thread contexts.
                space.reserve(space.index.capacity().max(1024)).ok()?;
                space.index.change_expansion_search(ef);
                spaces.insert(saved.key, Arc::new(space));
            }
            Some(spaces)
        })
        .await
        .ok()??;
        match self.spaces.write() {
            Ok(mut s) => *s = spaces,
            Err(_) => return None,
        }
        Some(manifest.applied)
    }

    /// Rebuilds every graph from the chunks, as of one consistent snapshot.
    async fn rebuild(&self) -> Result<()> {
        let mut progress = self.progress.lock().await;
        let mut tx = self.reader.begin().await.map_err(Error::internal)?;
        let applied: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM vector_changes")
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::internal)?;
        let mut spaces: HashMap<SpaceKey, Arc<Space>> = HashMap::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT c.seq, c.knowledge_base_id, c.embedding_model, c.content_embedding, c.summary_embedding,
                        d.soft_deleted_at IS NULL AND c.enabled = 1 AS live
                 FROM document_chunks c JOIN documents d ON d.id = c.document_id
                 WHERE c.seq > ? AND c.content_embedding IS NOT NULL ORDER BY c.seq LIMIT 5000",
            )
            .bind(after)
            .fetch_all(&mut *tx)
            .await
            .map_err(Error::internal)?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("seq").map_err(Error::internal)?;
            let states = rows.iter().map(state_from).collect::<Result<Vec<_>>>()?;
            self.apply_states(&mut spaces, states)?;
        }
        tx.commit().await.map_err(Error::internal)?;
        *self.spaces.write().map_err(|_| Error::internal("vector index lock poisoned"))? = spaces;
        progress.applied = applied;
        progress.unsaved = 1;
        progress.first_unsaved = Some(Instant::now() - SAVE_AFTER);
        Ok(())
    }

    fn apply_states(&self, spaces: &mut HashMap<SpaceKey, Arc<Space>>, states: Vec<ChunkState>) -> Result<()> {
        for state in states {
            let key = state.seq as u64;
            let fields = [(Field::Content, &state.content), (Field::Summary, &state.summary)];
            // Whatever the chunk was in before (another model, a deleted document) is forgotten first.
            for (k, space) in spaces.iter() {
                if k.knowledge_base_id == state.knowledge_base_id && space.index.contains(key) {
                    space.index.remove(key).map_err(index_err)?;
                }
            }
            let (true, Some(model)) = (state.live, &state.model) else { continue };
            for (field, blob) in fields {
                let Some(blob) = blob else { continue };
                let vector = from_blob(blob);
                if vector.is_empty() {
                    continue;
                }
                let space_key = SpaceKey { knowledge_base_id: state.knowledge_base_id, model: model.clone(), field };
                let space = match spaces.get(&space_key) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(Space::new(vector.len(), self.ef_search)?);
                        spaces.insert(space_key, s.clone());
                        s
                    }
                };
                space.upsert(key, &vector)?;
            }
        }
        Ok(())
    }

    /// Applies every change logged since the last call. Cheap when there is none.
    pub async fn sync(&self) -> Result<()> {
        let pool = &self.reader;
        let mut progress = self.progress.lock().await;
        loop {
            let changes: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT seq, chunk_seq, knowledge_base_id FROM vector_changes WHERE seq > ? ORDER BY seq LIMIT 2000",
            )
            .bind(progress.applied)
            .fetch_all(pool)
            .await
            .map_err(Error::internal)?;
            let Some(last) = changes.last().map(|(seq, _, _)| *seq) else { break };
            let mut chunk_seqs: Vec<i64> = changes.iter().map(|(_, c, _)| *c).collect();
            chunk_seqs.sort_unstable();
            chunk_seqs.dedup();
            let sql = format!(
                "SELECT c.seq, c.knowledge_base_id, c.embedding_model, c.content_embedding, c.summary_embedding,
                        d.soft_deleted_at IS NULL AND c.enabled = 1 AS live
                 FROM document_chunks c JOIN documents d ON d.id = c.document_id WHERE c.seq IN ({})",
                chunk_seqs.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            );
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await.map_err(Error::internal)?;
            let mut states = rows.iter().map(state_from).collect::<Result<Vec<_>>>()?;
            let present: HashSet<i64> = states.iter().map(|s| s.seq).collect();
            // Chunks gone from the table are removed from whichever graph holds them.
            let kb_of: HashMap<i64, &str> = changes.iter().map(|(_, c, kb)| (*c, kb.as_str())).collect();
            for seq in chunk_seqs.iter().filter(|s| !present.contains(s)) {
                if let Some(kb) = kb_of.get(seq).and_then(|k| k.parse().ok()) {
                    states.push(ChunkState {
                        seq: *seq,
                        knowledge_base_id: kb,
                        model: None,
                        content: None,
                        summary: None,
                        live: false,
                    });
                }
            }
            {
                let mut spaces = self.spaces.write().map_err(|_| Error::internal("vector index lock poisoned"))?;
                self.apply_states(&mut spaces, states)?;
                spaces.retain(|_, s| !s.is_empty());
            }
            if progress.first_unsaved.is_none() {
                progress.first_unsaved = Some(Instant::now());
            }
            progress.unsaved += changes.len() as u64;
            progress.applied = last;
        }
        let due =
            progress.unsaved >= SAVE_AFTER_CHANGES || progress.first_unsaved.is_some_and(|t| t.elapsed() >= SAVE_AFTER);
        if due && self.dir.is_some() {
            drop(progress);
            self.save().await?;
        }
        Ok(())
    }

    /// Writes every graph, then the manifest naming the log position they cover, then prunes the
    /// log up to it. Each file is written aside and renamed, so a crash leaves the old or the new.
    pub async fn save(&self) -> Result<()> {
        let Some(dir) = self.dir.clone() else { return Ok(()) };
        let mut progress = self.progress.lock().await;
        let spaces: Vec<(SpaceKey, Arc<Space>)> = self
            .spaces
            .read()
            .map_err(|_| Error::internal("vector index lock poisoned"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let applied = progress.applied;
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(&dir).map_err(Error::internal)?;
            let mut manifest = Manifest { applied, spaces: Vec::new() };
            for (key, space) in &spaces {
                let file = format!(
                    "{}-{}-{}.usearch",
                    key.knowledge_base_id.simple(),
                    slug(&key.model),
                    if key.field == Field::Content { "content" } else { "summary" }
                );
                let tmp = dir.join(format!("{file}.tmp"));
                let tmp_str = tmp.to_str().ok_or_else(|| Error::internal("non-UTF-8 data directory"))?;
                space.index.save(tmp_str).map_err(index_err)?;
                std::fs::rename(&tmp, dir.join(&file)).map_err(Error::internal)?;
                manifest.spaces.push(SavedSpace { key: key.clone(), file, dimensions: space.dimensions });
            }
            let tmp = dir.join("manifest.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&manifest).map_err(Error::internal)?).map_err(Error::internal)?;
            std::fs::rename(&tmp, dir.join("manifest.json")).map_err(Error::internal)?;
            // Graphs of knowledge bases that no longer have any are removed.
            let keep: HashSet<String> = manifest.spaces.iter().map(|s| s.file.clone()).collect();
            for entry in std::fs::read_dir(&dir).map_err(Error::internal)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".usearch") && !keep.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            Ok(())
        })
        .await
        .map_err(Error::internal)??;
        sqlx::query("DELETE FROM vector_changes WHERE seq <= ?")
            .bind(applied)
            .execute(&self.writer)
            .await
            .map_err(Error::internal)?;
        progress.unsaved = 0;
        progress.first_unsaved = None;
        Ok(())
    }

    pub fn space(&self, key: &SpaceKey) -> Option<Arc<Space>> {
        self.spaces.read().ok()?.get(key).cloned()
    }
}

fn state_from(r: &sqlx::sqlite::SqliteRow) -> Result<ChunkState> {
    let kb: String = r.try_get("knowledge_base_id").map_err(Error::internal)?;
    Ok(ChunkState {
        seq: r.try_get("seq").map_err(Error::internal)?,
        knowledge_base_id: kb.parse().map_err(Error::internal)?,
        model: r.try_get("embedding_model").map_err(Error::internal)?,
        content: r.try_get("content_embedding").map_err(Error::internal)?,
        summary: r.try_get("summary_embedding").map_err(Error::internal)?,
        live: r.try_get("live").map_err(Error::internal)?,
    })
}

fn slug(model: &str) -> String {
    model.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;

    /// A distinct pseudo-random vector per key.
    fn vector(key: u64) -> Vec<f32> {
        let mut state = key.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        (0..8)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 1000) as f32 / 1000.0 - 0.5
            })
            .collect()
    }

    /// Many more concurrent searches than the machine has cores (the blocking pool runs hundreds
    /// of threads) all succeed: usearch alone fails those beyond its thread contexts.
    #[test]
    fn many_concurrent_searches_all_succeed() {
        let space = Arc::new(Space::new(8, 64).expect("space"));
        for key in 0..500 {
            space.upsert(key, &vector(key)).expect("insert");
        }
        let threads: Vec<_> = (0..96u64)
            .map(|t| {
                let space = space.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let found = space.search(&vector(t * 20 + i), 5, None).expect("search");
                        assert_eq!(found.len(), 5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no search failed");
        }
    }
}
