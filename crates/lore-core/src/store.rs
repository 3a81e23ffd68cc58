//! The storage trait. Every method that touches a tenant's data takes the owner's id and filters
//! by it: another user's object is simply not found.

use async_trait::async_trait;

use crate::agent::{Agent, AgentUsage, ChatMessage, Conversation};
use crate::error::Result;
use crate::model::*;
use crate::source::{DataSource, Notification, SourceItem, SyncRun};

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
pub trait Store: AgentStore + SourceStore + Send + Sync + 'static {
    /// Whether several Lore nodes may share this store. A store used by one node alone lets
    /// that node keep request counters in memory.
    fn shared_by_nodes(&self) -> bool {
        false
    }

    /// Flushes what the store keeps in memory and closes its connections (at shutdown).
    async fn close(&self) {}

    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;

    /// Every chat and embedding provider configured anywhere (users' configurations, agents,
    /// knowledge bases), as (provider, base URL, or `None` for the provider's default address),
    /// without duplicates: what `lore doctor` checks it can reach.
    async fn provider_addresses(&self) -> Result<Vec<(String, Option<String>)>>;

    // ---- users and sessions
    /// Fails with `username_taken` / `email_taken` on conflicts.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// Creates an account under a registration policy, atomically (one transaction, serialised
    /// with every other registration): on an installation without accounts the new one becomes
    /// the superuser, so of concurrent first registrations exactly one does, and the others are
    /// judged by the policy. Otherwise `open` admits anyone; `closed` refuses with
    /// `registration_closed`; `invite` needs the hash of an invitation that is unused, unexpired
    /// at `now` and, if it names an email, names this one — it is consumed in the same
    /// transaction (one account per invitation), or `invitation_invalid` (or `registration_closed`
    /// without one). Conflicts fail with `username_taken` / `email_taken` and consume nothing.
    async fn register_user(&self, user: NewUser, admission: Admission) -> Result<User>;
    /// An invitation by its token's hash, whatever its state (callers check use and expiry).
    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;
    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation>;
    /// Every invitation, newest first.
    async fn list_invitations(&self) -> Result<Vec<Invitation>>;
    /// Revokes (deletes) an invitation; `false` if there is no such invitation.
    async fn delete_invitation(&self, id: Id) -> Result<bool>;
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
    /// Revokes every session of a user except the one with `keep` (its token hash).
    async fn revoke_sessions(&self, user_id: Id, keep: Option<&str>) -> Result<u64>;
    async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()>;
    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>>;
    /// Activates or deactivates an account; `None` if there is no such user.
    async fn set_user_active(&self, user_id: Id, active: bool) -> Result<Option<User>>;
    /// Makes a user a superuser (the first account, or an operator's choice).
    async fn set_superuser(&self, user_id: Id, superuser: bool) -> Result<()>;
    async fn count_users(&self) -> Result<i64>;

    // ---- the user's configuration (secret fields are ciphertext)
    async fn get_user_config(&self, user_id: Id) -> Result<Option<UserConfig>>;
    async fn put_user_config(&self, user_id: Id, config: &UserConfig) -> Result<UserConfig>;
    /// Rewrites every encrypted value (provider keys, webhook secrets, data-source credentials)
    /// through `f`, in one transaction: how the master key is rotated. Returns how many changed.
    async fn reencrypt_secrets(&self, f: &(dyn for<'s> Fn(&'s str) -> Result<String> + Send + Sync)) -> Result<u64>;

    // ---- API keys
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>>;
    /// Deactivates a key for good. `false` if the user has no such key.
    async fn revoke_api_key(&self, user_id: Id, key_id: Id, at: Timestamp) -> Result<bool>;
    /// Saves what an owner may change of a live key (name, description, scopes, limits, expiry,
    /// security); its id and `user_id` pick it. `false` if the user has no such key, or it is revoked.
    async fn update_api_key(&self, key: &ApiKey) -> Result<bool>;
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;
    /// Counts one request against the key's per-minute rate limit and daily/monthly quotas, in
    /// one atomic step: either every counter moves (and `last_used_at`/`last_used_ip` with them)
    /// or, when a limit is reached, none does.
    async fn count_api_key_request(&self, key_id: Id, now: Timestamp, ip: Option<&str>) -> Result<KeyUsage>;
    /// Saves counters a node kept in memory (see `count_api_key_request` for the shared way).
    async fn save_key_counters(&self, counters: &[KeyCounters]) -> Result<()>;
    async fn insert_usage_logs(&self, logs: &[UsageLog]) -> Result<()>;
    async fn list_usage_logs(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<UsageLog>>;
    async fn daily_usage(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<DailyUsage>>;

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
    async fn get_chunk(&self, user_id: Id, chunk_id: Id) -> Result<Option<Chunk>>;
    /// Applies a hand-made edit: new text re-indexes the chunk (full text and vectors), a disabled
    /// chunk leaves both indexes and an enabled one returns. A chunk with children (a hierarchical
    /// parent) is never matched itself. `None` if the user has no such chunk.
    async fn update_chunk(&self, user_id: Id, chunk_id: Id, edit: ChunkEdit) -> Result<Option<Chunk>>;
    /// Adds a chunk by hand after the document's last, indexed like a processed one (the
    /// embedding, if any, in `embedding_model`); the statistics count it. `None` if the user
    /// has no such completed document.
    async fn add_chunk(
        &self,
        user_id: Id,
        document_id: Id,
        chunk: NewChunk,
        embedding_model: Option<String>,
        at: Timestamp,
    ) -> Result<Option<Chunk>>;
    /// Soft-deletes a live document. `None` if there is no such document (or it is deleted).
    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>>;
    /// Restores a soft-deleted document; `duplicate_document` if its content was uploaded again since.
    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;
    /// Whether any document still refers to a blob.
    async fn blob_in_use(&self, file_path: &str) -> Result<bool>;

    // ---- file-type registry
    /// Adds the types that are missing (by name); existing entries, and an administrator's
    /// changes to them, are kept.
    async fn ensure_file_types(&self, defaults: &[NewFileType]) -> Result<()>;
    async fn list_file_types(&self) -> Result<Vec<FileType>>;
    /// Fails with `conflict` if the name is taken.
    async fn create_file_type(&self, file_type: NewFileType) -> Result<FileType>;
    async fn update_file_type(&self, id: i64, patch: FileTypePatch) -> Result<Option<FileType>>;

    // ---- the installation (the nodes sharing one database)
    /// A setting of the installation as a whole (e.g. `master_key_check`).
    async fn cluster_setting(&self, name: &str) -> Result<Option<String>>;
    /// Sets `name` to `value` if it is still `expected` (`None`: not set); `false` if another
    /// node changed it first.
    async fn swap_cluster_setting(&self, name: &str, expected: Option<&str>, value: &str) -> Result<bool>;
    /// Records that `node` is alive now (the first beat adds it).
    async fn heartbeat(&self, node: &NodeBeat) -> Result<()>;
    /// A node that stops cleanly leaves the list at once.
    async fn leave(&self, node_id: &str) -> Result<()>;
    /// The nodes whose last heartbeat is at or after `alive_since`, oldest first, with the jobs
    /// and syncs each holds a live lease on. Nodes silent for a day are forgotten.
    async fn list_nodes(&self, alive_since: Timestamp) -> Result<Vec<Node>>;

    // ---- ingestion queue
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
        &self,
        job: &Job,
        document_id: Id,
        code: &str,
        message: &str,
        log: Vec<LogEntry>,
    ) -> Result<()>;
    // ---- retention
    /// Soft-deletes documents whose `expires_at` has passed.
    async fn expire_documents(&self, now: Timestamp) -> Result<u64>;
    /// Hard-deletes documents soft-deleted before `before`, with their chunks. Returns the blob
    /// keys they used (the caller deletes those no other document shares).
    async fn purge_deleted_documents(&self, before: Timestamp) -> Result<Vec<String>>;
    /// Deletes conversations older than their owner's `conversation_retention_days`.
    async fn purge_conversations(&self, now: Timestamp) -> Result<u64>;
    /// Deletes usage logs of successful requests before `success_before`, of errors before `error_before`.
    async fn purge_usage_logs(&self, success_before: Timestamp, error_before: Timestamp) -> Result<u64>;

    /// Live documents by status, over all tenants (for metrics).
    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>>;
    /// Counts jobs waiting or running (the queue depth).
    async fn pending_jobs(&self) -> Result<i64>;

    // ---- re-embedding
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

    // ---- search
    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>>;
    /// Nearest chunks by cosine similarity in one embedding space, best first. Filters are applied
    /// inside the search, so a selective filter still yields `top_k` matches when that many exist.
    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>>;
    /// Embeddings already computed in `embedding_model` for this user's chunks with these content
    /// hashes (the embedding cache: re-uploads and re-chunking do not pay twice). Only the user's
    /// own chunks answer: no tenant can learn what another embedded, nor poison their vectors.
    async fn cached_embeddings(
        &self,
        user_id: Id,
        embedding_model: &str,
        content_hashes: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<f32>>>;
}

/// Agents, their conversations and their usage. Part of every [`Store`].
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Inserts with its links; fails with `agent_name_taken` when the owner has one of that name.
    /// The links must name the owner's own knowledge bases and data sources (the caller checks).
    async fn insert_agent(&self, agent: &Agent) -> Result<()>;
    /// Replaces every field and link; false when the owner has no such agent.
    async fn update_agent(&self, agent: &Agent) -> Result<bool>;
    async fn list_agents(&self, user_id: Id) -> Result<Vec<Agent>>;
    async fn get_agent(&self, user_id: Id, id: Id) -> Result<Option<Agent>>;
    async fn delete_agent(&self, user_id: Id, id: Id) -> Result<bool>;
    /// The first of these data sources that is not the owner's, or file types that do not exist,
    /// described for an error message; `None` when all are fine.
    async fn missing_agent_links(
        &self,
        user_id: Id,
        data_source_ids: &[Id],
        file_type_ids: &[i64],
    ) -> Result<Option<String>>;

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()>;
    async fn get_conversation(&self, user_id: Id, id: Id) -> Result<Option<Conversation>>;
    /// Most recently active first.
    async fn list_conversations(&self, user_id: Id, agent_id: Option<Id>) -> Result<Vec<Conversation>>;
    async fn delete_conversation(&self, user_id: Id, id: Id) -> Result<bool>;
    /// Oldest first, with citations (file name and snippet filled in); only those created at or
    /// after `since` when given.
    async fn list_messages(
        &self,
        user_id: Id,
        conversation_id: Id,
        since: Option<Timestamp>,
    ) -> Result<Vec<ChatMessage>>;
    /// Appends messages and their citations in one transaction and marks the conversation active.
    async fn append_messages(&self, user_id: Id, conversation_id: Id, messages: &[ChatMessage]) -> Result<()>;

    /// Records a call as it starts (so that concurrent calls on any node count it at once).
    async fn insert_agent_call(&self, usage: &AgentUsage) -> Result<()>;
    /// Calls of an agent since a moment: how many, and when the oldest of them started.
    async fn agent_calls_since(&self, agent_id: Id, since: Timestamp) -> Result<(i64, Option<Timestamp>)>;
    /// Writes a call's outcome: tokens, cost, time, status.
    async fn update_agent_call(&self, usage: &AgentUsage) -> Result<()>;
    async fn delete_agent_call(&self, id: Id) -> Result<()>;
    /// The owner's calls in `[from, to)`, optionally of one agent, oldest first.
    async fn list_agent_calls(
        &self,
        user_id: Id,
        from: Timestamp,
        to: Timestamp,
        agent_id: Option<Id>,
    ) -> Result<Vec<AgentUsage>>;
}

/// Data sources and their sync runs. Part of every [`Store`].
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// Fails with `data_source_name_taken` when the owner has one of that name. `credentials`
    /// are already sealed.
    async fn insert_data_source(&self, source: &DataSource, credentials: Option<&str>) -> Result<()>;
    /// Replaces the editable fields; `credentials`: `None` keeps them, `Some(None)` clears them.
    async fn update_data_source(&self, source: &DataSource, credentials: Option<Option<&str>>) -> Result<bool>;
    async fn list_data_sources(&self, user_id: Id) -> Result<Vec<DataSource>>;
    async fn get_data_source(&self, user_id: Id, id: Id) -> Result<Option<DataSource>>;
    /// The sealed credentials, for the connector.
    async fn data_source_credentials(&self, user_id: Id, id: Id) -> Result<Option<String>>;
    async fn delete_data_source(&self, user_id: Id, id: Id) -> Result<bool>;
    /// The source's live documents with their item keys and versions.
    async fn source_items(&self, data_source_id: Id) -> Result<Vec<SourceItem>>;
    /// Records a new version of an item whose content did not change.
    async fn touch_source_item(&self, document_id: Id, version: &str) -> Result<()>;
    /// Starts a sync if no other holds the source's lease (another node, or a run still going):
    /// takes the lease until `lease_until`, marks the source `syncing`, records the run.
    async fn claim_sync(&self, run: &SyncRun, owner: &str, lease_until: Timestamp) -> Result<bool>;
    /// Records the run's outcome, sets the source's status, `last_sync` and `last_error`, and
    /// releases the lease.
    async fn finish_sync(&self, run: &SyncRun, last_error: Option<&str>) -> Result<()>;
    /// Most recent first.
    async fn list_syncs(&self, user_id: Id, data_source_id: Id, limit: i64) -> Result<Vec<SyncRun>>;
    /// Sources with `auto_sync` whose last sync is `sync_frequency` minutes old (or that never
    /// synced) and that no one holds: `(owner, source)`.
    async fn due_data_sources(&self, now: Timestamp) -> Result<Vec<(Id, Id)>>;

    async fn insert_notification(&self, notification: &Notification) -> Result<()>;
    /// Most recent first.
    async fn list_notifications(&self, user_id: Id, limit: i64) -> Result<Vec<Notification>>;
    /// Replaces a notification's `data` (the webhook delivery log grows in it).
    async fn set_notification_data(&self, id: Id, data: &serde_json::Value) -> Result<()>;
}
