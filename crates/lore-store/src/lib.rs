//! Storage backends for Lore: SQLite (embedded default), PostgreSQL with pgvector (many nodes),
//! and the filesystem blob store.

mod audit;
pub mod backup;
mod evaluations;
mod fetch;
pub mod fs_blobs;
pub mod postgres;
mod rows;
pub mod schema;
mod sql;
pub mod sqlite;
pub mod transfer;
pub mod vectors;
mod workspaces;

pub use fs_blobs::FsBlobStore;
pub use postgres::PgStore;
pub use postgres::blobs::PgBlobStore;
pub use sqlite::SqliteStore;
