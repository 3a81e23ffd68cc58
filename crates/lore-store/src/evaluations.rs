//! Evaluation runs' SQL, one text for both backends (SQLite reads `$n` parameters too).

use lore_core::error::Result;
use lore_core::model::*;

use crate::rows::RowExt;

pub(crate) const INSERT: &str = "INSERT INTO evaluations
    (id, user_id, knowledge_base_id, name, status, request, results, error_message, created_at, completed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub(crate) const FINISH: &str =
    "UPDATE evaluations SET status = $1, results = $2, error_message = $3, completed_at = $4 WHERE id = $5";

const COLUMNS: &str =
    "id, user_id, knowledge_base_id, name, status, request, results, error_message, created_at, completed_at";

pub(crate) fn get() -> String {
    format!("SELECT {COLUMNS} FROM evaluations WHERE id = $1 AND user_id = $2")
}

pub(crate) fn list() -> String {
    format!(
        "SELECT {COLUMNS} FROM evaluations WHERE knowledge_base_id = $1 AND user_id = $2
         ORDER BY created_at DESC, id DESC LIMIT 200"
    )
}

pub(crate) fn evaluation_from(row: &impl RowExt) -> Result<Evaluation> {
    Ok(Evaluation {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        knowledge_base_id: row.id("knowledge_base_id")?,
        name: row.text("name")?,
        status: row.text("status")?,
        request: row.json("request")?,
        results: row.json("results")?,
        error_message: row.opt_text("error_message")?,
        created_at: row.time("created_at")?,
        completed_at: row.opt_time("completed_at")?,
    })
}
