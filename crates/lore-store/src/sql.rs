//! SQL that both backends run as it is. (SQLite reads `$1` placeholders by number too.) What
//! differs between them stays in `sqlite/` and `postgres/`, so that diffing the two shows it.

use lore_core::model::{NewUser, UserConfig};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// Every column that holds ciphertext, by table (what rotating the master key re-seals).
pub(crate) const SECRET_COLUMNS: &[(&str, &[&str])] = &[
    ("knowledge_base_configs", &["openai_api_key", "anthropic_api_key", "cohere_api_key", "webhook_secret"]),
    ("data_sources", &["credentials"]),
];

/// At start-up on a store no other node uses: the jobs a crashed run left running are queued again.
pub(crate) const REQUEUE_RUNNING_JOBS: &str =
    "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL WHERE status = 'running'";

/// ... and their documents wait for them again.
pub(crate) const REOPEN_QUEUED_DOCUMENTS: &str = "UPDATE documents SET status = 'pending', progress = 0
     WHERE status = 'processing' AND id IN (SELECT document_id FROM jobs)";

/// A new account: $1 its id, $2 to $7 its fields ([`bind_new_user`]), $8 the time.
pub(crate) const CREATE_USER: &str = "INSERT INTO users (id, username, email, hashed_password, full_name,
       first_name, last_name, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

/// A registration, as [`CREATE_USER`]: the first account of the installation is its administrator.
pub(crate) const REGISTER_USER: &str = "INSERT INTO users (id, username, email, hashed_password, full_name,
       first_name, last_name, is_superuser, is_staff, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, NOT EXISTS (SELECT 1 FROM users), NOT EXISTS (SELECT 1 FROM users), $8, $8)
     RETURNING is_superuser";

/// A user's configuration, inserted or replaced: $1 a new id, $2 the user, $3 to $19 the fields
/// ([`bind_config`]), $20 the time.
pub(crate) const PUT_USER_CONFIG: &str = "INSERT INTO knowledge_base_configs (id, user_id,
       default_embedding_model, default_chunk_size, default_chunk_overlap, document_retention_days,
       conversation_retention_days, default_similarity_threshold, max_search_results, sync_notifications,
       error_notifications, openai_api_key, anthropic_api_key, cohere_api_key, openai_base_url, anthropic_base_url,
       cohere_base_url, webhook_url, webhook_secret, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20)
     ON CONFLICT (user_id) DO UPDATE SET
       default_embedding_model = $3, default_chunk_size = $4, default_chunk_overlap = $5,
       document_retention_days = $6, conversation_retention_days = $7, default_similarity_threshold = $8,
       max_search_results = $9, sync_notifications = $10, error_notifications = $11, openai_api_key = $12,
       anthropic_api_key = $13, cohere_api_key = $14, openai_base_url = $15, anthropic_base_url = $16,
       cohere_base_url = $17, webhook_url = $18, webhook_secret = $19, updated_at = $20";

/// Binds a configuration's seventeen fields, in [`PUT_USER_CONFIG`]'s order.
pub(crate) fn bind_config<'q, DB: Database>(
    query: Query<'q, DB, DB::Arguments>, c: &'q UserConfig,
) -> Query<'q, DB, DB::Arguments>
where
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Option<f64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(&c.default_embedding_model)
        .bind(c.default_chunk_size)
        .bind(c.default_chunk_overlap)
        .bind(c.document_retention_days)
        .bind(c.conversation_retention_days)
        .bind(c.default_similarity_threshold)
        .bind(c.max_search_results)
        .bind(c.sync_notifications)
        .bind(c.error_notifications)
        .bind(&c.openai_api_key)
        .bind(&c.anthropic_api_key)
        .bind(&c.cohere_api_key)
        .bind(&c.openai_base_url)
        .bind(&c.anthropic_base_url)
        .bind(&c.cohere_base_url)
        .bind(&c.webhook_url)
        .bind(&c.webhook_secret)
}

/// Binds a new account's six fields, after its id.
pub(crate) fn bind_new_user<'q, DB: Database>(
    query: Query<'q, DB, DB::Arguments>, user: &'q NewUser,
) -> Query<'q, DB, DB::Arguments>
where
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.first_name)
        .bind(&user.last_name)
}
