//! Storage backends for Lore: SQLite (embedded default) and the filesystem blob store.

pub mod blob;
pub mod migrate;
pub mod sqlite;
pub mod vectors;

pub use blob::FsBlobStore;
pub use sqlite::SqliteStore;
