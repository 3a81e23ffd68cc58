//! Domain entities as every layer sees them. They serialise to the JSON of the HTTP contract;
//! secrets (password and key hashes) are not part of them at all.

use chrono::{DateTime, Utc};
use uuid::Uuid;

mod accounts;
mod audit;
mod documents;
mod evaluations;
mod keys;
mod knowledge_bases;
mod queue;
mod search;
mod workspaces;

pub use accounts::*;
pub use audit::*;
pub use documents::*;
pub use evaluations::*;
pub use keys::*;
pub use knowledge_bases::*;
pub use queue::*;
pub use search::*;
pub use workspaces::*;

pub type Id = Uuid;

pub type Timestamp = DateTime<Utc>;
