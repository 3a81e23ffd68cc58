//! The audit log's SQL, one text for both backends: SQLite reads PostgreSQL's `$n` parameters,
//! and the table has the same columns on both. Each backend binds the values in its own types.

use lore_core::error::Result;
use lore_core::model::*;

use crate::rows::RowExt;

pub(crate) const INSERT: &str = "INSERT INTO audit_log
    (id, at, actor_id, actor, owner_id, action, target_type, target_id, ip_address, request_id, details)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(crate) const PURGE: &str = "DELETE FROM audit_log WHERE at < $1";

const COLUMNS: &str =
    "id, at, actor_id, actor, owner_id, action, target_type, target_id, ip_address, request_id, details";

/// A value a listing filters by, in the order of its parameters.
pub(crate) enum Filter<'a> {
    Id(Id),
    Text(&'a str),
    Time(Timestamp),
}

/// The listing's statement for `query` and the values of its parameters, in order; the limit is
/// the last one.
pub(crate) fn list(query: &AuditQuery) -> (String, Vec<Filter<'_>>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let mut add = |condition: &str, value: Filter<'static>| {
        values.push(value);
        conditions.push(condition.replace('?', &format!("${}", values.len())));
    };
    if let Some(owner) = query.owner_id {
        add("owner_id = ?", Filter::Id(owner));
    }
    if let Some(actor) = query.actor_id {
        add("actor_id = ?", Filter::Id(actor));
    }
    if let Some(since) = query.since {
        add("at >= ?", Filter::Time(since));
    }
    if let Some(before) = query.before {
        add("at < ?", Filter::Time(before));
    }
    let mut values: Vec<Filter<'_>> = values;
    if let Some(prefix) = query.action_prefix.as_deref() {
        // `substr` rather than LIKE: an action name's `_` is no wildcard.
        values.push(Filter::Text(prefix));
        let n = values.len();
        conditions.push(format!("substr(action, 1, length(${n})) = ${n}"));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let sql = format!("SELECT {COLUMNS} FROM audit_log {filter} ORDER BY at DESC, id DESC LIMIT ${}", values.len() + 1);
    (sql, values)
}

pub(crate) fn entry_from(row: &impl RowExt) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.id("id")?,
        at: row.time("at")?,
        actor_id: row.opt_id("actor_id")?,
        actor: row.opt_text("actor")?,
        owner_id: row.opt_id("owner_id")?,
        action: row.text("action")?,
        target_type: row.opt_text("target_type")?,
        target_id: row.opt_text("target_id")?,
        ip_address: row.opt_text("ip_address")?,
        request_id: row.opt_text("request_id")?,
        details: row.json("details")?,
    })
}
