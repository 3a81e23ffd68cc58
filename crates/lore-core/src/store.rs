//! The storage trait. Every method that touches a tenant's data takes the owner's id and filters
//! by it: another user's object is simply not found.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// A session joined with its user, as authentication needs it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: Id,
    pub user: User,
    pub expires_at: Timestamp,
}

/// An API key joined with its owner, as authentication needs it.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key: ApiKey,
    pub user: User,
}

/// Outcome of registering an upload.
#[derive(Debug, Clone)]
pub enum Upload {
    /// A new document, queued for processing.
    Created(Document),
    /// The same content already lives in this knowledge base.
    Duplicate(Document),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;

    // ---- users and sessions
    /// Fails with `username_taken` / `email_taken` on conflicts.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// Looks a user up by username or email; returns the password hash beside it.
    async fn find_login(&self, username_or_email: &str) -> Result<Option<(User, String)>>;
    async fn get_user(&self, id: Id) -> Result<Option<User>>;
    async fn record_login(&self, user_id: Id, at: Timestamp) -> Result<()>;
    async fn create_session(
        &self,
        user_id: Id,
        token_hash: &str,
        expires_at: Timestamp,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Id>;
    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;
    async fn user_defaults(&self, user_id: Id) -> Result<UserDefaults>;

    // ---- API keys
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>>;
    /// Deactivates a key for good. `false` if the user has no such key.
    async fn revoke_api_key(&self, user_id: Id, key_id: Id, at: Timestamp) -> Result<bool>;
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;
    async fn record_api_key_use(&self, key_id: Id, at: Timestamp, ip: Option<&str>) -> Result<()>;

    // ---- knowledge bases
    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase>;
    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>>;
    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>>;
    async fn update_knowledge_base(&self, user_id: Id, id: Id, patch: KbPatch) -> Result<Option<KnowledgeBase>>;
    /// Deletes a knowledge base with its documents and chunks. Returns the blob keys its
    /// documents used, or `None` if there was no such knowledge base.
    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>>;

    // ---- documents
    /// Registers an upload: the existing live document if the same content is already in the
    /// knowledge base, else a new `pending` document with its processing job queued.
    async fn create_document(&self, doc: NewDocument) -> Result<Upload>;
    async fn list_documents(
        &self,
        user_id: Id,
        knowledge_base_id: Id,
        query: &DocumentListQuery,
    ) -> Result<Vec<Document>>;
    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;
    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>>;
    async fn list_chunks(&self, user_id: Id, document_id: Id) -> Result<Vec<Chunk>>;
    /// Soft-deletes a live document. `None` if there is no such document (or it is deleted).
    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>>;
    /// Restores a soft-deleted document; `duplicate_document` if its content was uploaded again since.
    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;
    /// Whether any document still refers to a blob.
    async fn blob_in_use(&self, file_path: &str) -> Result<bool>;

    // ---- ingestion queue
    /// Makes every job claimable again (start-up of a single embedded node: nothing is running).
    async fn release_all_jobs(&self) -> Result<u64>;
    /// Claims the oldest claimable job, marking its document `processing`.
    async fn claim_job(&self, worker: &str, lease: std::time::Duration) -> Result<Option<Job>>;
    /// Fetches a document for a worker (no owner filter: the job is the authority).
    async fn document_for_job(&self, id: Id) -> Result<Option<Document>>;
    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()>;
    /// Stores the result of processing, replacing any earlier chunks, and finishes the job.
    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()>;
    /// Marks the document failed with a person-readable reason, and finishes the job.
    async fn fail_document(
        &self,
        job: &Job,
        document_id: Id,
        code: &str,
        message: &str,
        log: Vec<LogEntry>,
    ) -> Result<()>;
    /// Counts jobs waiting or running (the queue depth).
    async fn pending_jobs(&self) -> Result<i64>;

    // ---- search
    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>>;
}
