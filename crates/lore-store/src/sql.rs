//! SQL that both backends run as it is. (SQLite reads `$1` placeholders by number too.) What
//! differs between them stays in `sqlite/` and `postgres/`, so that diffing the two shows it.

/// At start-up on a store no other node uses: the jobs a crashed run left running are queued again.
pub(crate) const REQUEUE_RUNNING_JOBS: &str =
    "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL WHERE status = 'running'";

/// ... and their documents wait for them again.
pub(crate) const REOPEN_QUEUED_DOCUMENTS: &str = "UPDATE documents SET status = 'pending', progress = 0
     WHERE status = 'processing' AND id IN (SELECT document_id FROM jobs)";
