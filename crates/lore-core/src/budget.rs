//! Resource budgets, declared once: how much work one request or one file may cause. Each is a
//! `lore serve` flag (docs/configuration.md); exceeding one is refused with a 422 whose code
//! names the limit, before the work is done where the work can be predicted.
//!
//! The server installs its budgets once at start ([`install`]); everything else reads
//! [`budgets`]. A process that installs none (a library user, a test) gets the defaults.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Code, Error};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budgets {
    /// Chunks one document (or one preview) may produce.
    pub max_chunks_per_document: usize,
    /// How many times over a chunking config may repeat its text: a sliding window of 1,000
    /// with a step of 100 repeats every character 10 times. Bounds step and overlap against size.
    pub max_chunk_repetition: usize,
    /// Bytes a parser may expand a file to (zip entries, PDF streams, spreadsheets, ...).
    pub max_expanded_bytes: u64,
    /// Cells one spreadsheet sheet may span (rows × columns of its used range).
    pub max_sheet_cells: u64,
    /// Knowledge bases one multi-knowledge-base search may name.
    pub max_search_knowledge_bases: usize,
    /// Address space of an isolated parser process, in bytes.
    pub parser_memory_bytes: u64,
    /// CPU seconds an isolated parser may spend on one document.
    pub parser_cpu_seconds: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            max_chunks_per_document: 50_000,
            max_chunk_repetition: 10,
            max_expanded_bytes: 256 * 1024 * 1024,
            max_sheet_cells: 2_000_000,
            max_search_knowledge_bases: 50,
            parser_memory_bytes: 2 * 1024 * 1024 * 1024,
            parser_cpu_seconds: 120,
        }
    }
}

static BUDGETS: OnceLock<Budgets> = OnceLock::new();

/// Sets the process's budgets; the first call wins (a second server in one process shares them).
pub fn install(budgets: Budgets) {
    let _ = BUDGETS.set(budgets);
}

pub fn budgets() -> &'static Budgets {
    BUDGETS.get_or_init(Budgets::default)
}

/// The refusal for a limit, naming the flag that raises it.
pub fn exceeded(code: Code, what: impl std::fmt::Display, flag: &str) -> Error {
    Error::new(code, format!("{what} (the server's limit; an operator can raise it with --{flag})"))
}
