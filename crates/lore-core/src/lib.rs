//! Lore's domain: the types every layer shares, the one error table, configuration inheritance,
//! and the traits that storage and blob backends implement. Nothing here does I/O, except the outbound
//! policy's name resolution (outbound.rs), which every HTTP client is built with.

pub mod agent;
pub mod blob;
pub mod budget;
pub mod chunking;
pub mod error;
pub mod fusion;
pub mod limits;
pub mod model;
pub mod outbound;
pub mod search;
pub mod source;
pub mod store;
pub mod tls;
pub mod tokens;

pub use error::{Error, ErrorKind, Result};

/// Current time in UTC, truncated to milliseconds: the precision every backend stores.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(3)
}

/// A new time-ordered id (UUIDv7): indexes stay append-mostly.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
