//! The ingestion queue: jobs claimed under leases, processing results, re-embedding.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Makes every job claimable again (start-up of a single embedded node: nothing is running).
    async fn release_all_jobs(&self) -> Result<u64>;

    /// Claims the next job, marking its document `processing`. Owners take turns, so one tenant's
    /// thousand uploads don't hold back another's one: the next job is the oldest of those whose
    /// turn (its place among its owner's claimable jobs, plus the jobs the owner has running) is
    /// lowest.
    async fn claim_job(&self, worker: &str, lease: std::time::Duration) -> Result<Option<Job>> {
        self.claim_job_except(worker, lease, &[]).await
    }

    /// Like `claim_job`, passing over the jobs in `skip` (those this node could not do, e.g. a
    /// file it cannot read, which another node may).
    async fn claim_job_except(&self, worker: &str, lease: std::time::Duration, skip: &[Id]) -> Result<Option<Job>>;

    /// Extends the lease of a job the worker still holds; `false` when it lost it (the lease ran
    /// out and another worker took the job).
    async fn extend_lease(&self, job_id: Id, worker: &str, lease: std::time::Duration) -> Result<bool>;

    /// Puts a job the worker holds back in the queue, claimable after `delay`, without counting the
    /// attempt: the machine failed (disk full, database down), not the document.
    async fn retry_later(&self, job: &Job, worker: &str, delay: std::time::Duration) -> Result<()>;

    /// Fetches a document for a worker (no owner filter: the job is the authority).
    async fn document_for_job(&self, id: Id) -> Result<Option<Document>>;

    /// A knowledge base by id alone: for jobs, which run on behalf of its owner.
    async fn knowledge_base_for_job(&self, id: Id) -> Result<Option<KnowledgeBase>>;

    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()>;

    /// Stores the result of processing, replacing any earlier chunks, and finishes the job.
    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()>;

    /// Marks the document failed with a person-readable reason, and finishes the job.
    async fn fail_document(
        &self, job: &Job, document_id: Id, code: &str, message: &str, log: Vec<LogEntry>,
    ) -> Result<()>;

    /// Live documents by status, over all tenants (for metrics).
    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>>;

    /// Counts jobs waiting or running (the queue depth).
    async fn pending_jobs(&self) -> Result<i64>;

    /// Queues re-embedding of a knowledge base (at most one such job is waiting at a time).
    async fn queue_reembedding(&self, knowledge_base_id: Id) -> Result<()>;

    /// Searchable chunks of the knowledge base neither in `space` nor waiting in it, up to `limit`.
    async fn chunks_to_reembed(&self, knowledge_base_id: Id, space: &str, limit: i64) -> Result<Vec<ChunkToEmbed>>;

    async fn save_reembedded(&self, knowledge_base_id: Id, space: &str, rows: &[Reembedded]) -> Result<()>;

    /// In one transaction: every waiting embedding in `space` replaces its chunk's, the knowledge
    /// base switches to `space`, and the job is done. Returns the chunks switched.
    async fn finish_reembedding(&self, job: &Job, knowledge_base_id: Id, space: &str) -> Result<u64>;

    /// Drops a job that cannot succeed.
    async fn drop_job(&self, job: &Job) -> Result<()>;
}
