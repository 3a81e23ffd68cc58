//! `lore bench hostile`: a hostile-tenant campaign against one `lore serve` child process (the
//! embedded store, or PostgreSQL in a fresh scratch schema). A victim tenant keeps a provider key
//! and documents, agents, conversations and a data source marked with unique canary strings; an
//! attacker tenant (a session and API keys of every scope, bound and unbound) and an outside caller
//! (no token, garbage tokens) then play rounds of randomised attacks until the time is up:
//!
//! 1. chunking configurations at the edges (0, 1, size-1, size, the maximum, huge, negative,
//!    strings; every strategy) for a preview of ~200 KB of Chinese and English text, for a
//!    knowledge base's settings and for an upload;
//! 2. bombs and malformed files: a sparse workbook, zip-bomb DOCX and EPUB (sometimes with lying
//!    sizes), a PDF with a huge Flate stream, an email with a huge base64 body, deep nesting;
//! 3. every address a user can name pointed at a recording listener on 127.0.0.2 (outside the
//!    policy), at the metadata service, at [::1], at 0.0.0.0, through a redirect from an allowed
//!    address, and at Lore itself; then what would call out (uploads, chats, syncs, webhooks);
//! 4. the key matrix: every operation of /openapi.json with a path parameter, called with each of
//!    the attacker's keys and its session on the victim's objects, and with the attacker's bound
//!    key on its own other knowledge base; every operation by the outside caller;
//! 5. a search over more knowledge bases than allowed.
//!
//! Every answer must be 2xx or 4xx with a code, never 5xx, never a timeout; no answer to the
//! attacker or the outside caller may hold a byte of the victim's canary or key; the recorder
//! must receive nothing; the server's resident memory must stay under `--max-rss-mb`, and it must
//! still answer at the end. Prints one summary line; exits non-zero with the findings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

mod campaign;
mod chunking;
mod documents;
mod files;
mod listeners;
mod matrix;
mod memory;
mod outbound;
mod tallies;

pub use campaign::*;
pub(crate) use chunking::*;
pub(crate) use documents::*;
pub(crate) use files::*;
pub(crate) use listeners::*;
pub(crate) use matrix::*;
pub(crate) use memory::*;
pub(crate) use outbound::*;
pub(crate) use tallies::*;

#[derive(Debug, Args)]
pub struct HostileArgs {
    /// Seconds of attack rounds (the setup and the final checks come on top; a round under way
    /// is finished).
    #[arg(long, default_value_t = 120)]
    pub(crate) seconds: u64,
    /// Run on PostgreSQL (a fresh schema is made there) instead of the embedded store.
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The server's resident memory (MiB) must stay under this at every sample.
    #[arg(long, default_value_t = 2048)]
    pub(crate) max_rss_mb: u64,
    /// Random seed (default: from the clock); printed in the summary, a run repeats with it.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Only write one hostile file of each kind into this folder and exit (to replay a finding,
    /// e.g. with `lore bench parse --isolated --dir FOLDER`).
    #[arg(long)]
    pub(crate) write_files: Option<PathBuf>,
}

/// No answer within this is a finding.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A document must be completed or failed within this (an upload of a few KB that keeps the
/// server busy for minutes is a finding, whatever it ends with).
pub(crate) const DOCUMENT_DEADLINE: Duration = Duration::from_secs(120);
/// A document must leave the queue within this (its owner's own backlog included).
pub(crate) const QUEUE_DEADLINE: Duration = Duration::from_secs(900);
/// What a zip or PDF bomb expands to: past the default budget of 256 MiB.
pub(crate) const BOMB_BYTES: usize = 280 << 20;
