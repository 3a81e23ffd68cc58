//! Rows to model values, shared by both backends. Each backend reads its own column types
//! through [`RowExt`]: SQLite keeps ids, times and JSON as text, PostgreSQL as uuid, timestamptz
//! and jsonb.

use chrono::{DateTime, Utc};
use lore_core::agent::{Agent, AgentUsage, ChatMessage, Citation, Conversation, ConversationMode};
use lore_core::error::{Code, Error, Result};
use lore_core::limits;
use lore_core::model::*;
use lore_core::source::{DataSource, Notification, SourceItem, SyncRun};
use lore_core::store::SessionRecord;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// A database error as the client should see it: the machine's conditions (disk full, read-only,
/// database unreachable) get their own codes, so that clients retry and workers keep the job;
/// anything else is internal.
pub(crate) fn db_err(err: sqlx::Error) -> Error {
    let unavailable = || Error::new(Code::DatabaseUnavailable, "the database is unavailable; try again shortly");
    let full = || Error::new(Code::StorageFull, "the database's storage is full; try again once space is freed");
    let busy = || Error::new(Code::DatabaseBusy, "the database is busy with a conflicting change; try again");
    let read_only =
        || Error::new(Code::StorageUnavailable, "the database's storage cannot be written or read; try again shortly");
    let classified = match &err {
        sqlx::Error::Io(io) => Some(Error::from_storage(io).unwrap_or_else(unavailable)),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => Some(unavailable()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.parse::<i32>() {
                // SQLite's primary result codes (extended codes keep them in the low byte).
                Ok(n) => match n & 0xff {
                    13 => Some(full()),               // SQLITE_FULL
                    5 | 6 => Some(busy()),            // SQLITE_BUSY, SQLITE_LOCKED
                    8 | 10 | 14 => Some(read_only()), // SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN
                    _ => None,
                },
                // PostgreSQL's SQLSTATEs.
                Err(_) => match code.as_ref() {
                    "53100" => Some(full()),                     // disk_full
                    "25006" => Some(read_only()),                // read_only_sql_transaction (a standby)
                    "40P01" | "40001" | "55P03" => Some(busy()), // deadlock, serialisation, lock timeout
                    "53300" | "57P01" | "57P02" | "57P03" => Some(unavailable()),
                    c if c.starts_with("08") => Some(unavailable()), // connection exceptions
                    _ => None,
                },
            }
        }
        _ => None,
    };
    match classified {
        Some(e) => e.with_cause(err),
        None => Error::internal(err),
    }
}

fn parse_ts(s: &str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::internal(format!("bad timestamp {s:?} in database: {e}")))
}

fn parse_id(s: &str, col: &str) -> Result<Id> {
    Uuid::parse_str(s).map_err(|e| Error::internal(format!("bad id {s:?} in {col}: {e}")))
}

/// Typed reads from a row, with database corruption reported as an internal error.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn float(&self, col: &str) -> Result<f64>;
    fn opt_float(&self, col: &str) -> Result<Option<f64>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn opt_id(&self, col: &str) -> Result<Option<Id>>;
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>>;
    fn opt_json_value(&self, col: &str) -> Result<Option<serde_json::Value>>;

    fn id(&self, col: &str) -> Result<Id> {
        self.opt_id(col)?.ok_or_else(|| Error::internal(format!("{col} is null")))
    }
    fn time(&self, col: &str) -> Result<Timestamp> {
        self.opt_time(col)?.ok_or_else(|| Error::internal(format!("{col} is null")))
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        Ok(serde_json::from_value(self.opt_json_value(col)?.unwrap_or(serde_json::Value::Null))?)
    }
    fn opt_json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        self.opt_json_value(col)?.map(|v| serde_json::from_value(v).map_err(Error::from)).transpose()
    }
}

impl RowExt for SqliteRow {
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(db_err)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(db_err)
    }
    fn float(&self, col: &str) -> Result<f64> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_float(&self, col: &str) -> Result<Option<f64>> {
        self.try_get(col).map_err(db_err)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.int(col)? != 0)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Id>> {
        self.opt_text(col)?.map(|s| parse_id(&s, col)).transpose()
    }
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>> {
        self.opt_text(col)?.map(|s| parse_ts(&s)).transpose()
    }
    fn opt_json_value(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.opt_text(col)?.map(|s| serde_json::from_str(&s).map_err(Error::from)).transpose()
    }
}

impl RowExt for PgRow {
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(db_err)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.opt_int(col)?.ok_or_else(|| Error::internal(format!("{col} is null")))
    }
    /// Lore's own columns are bigint; integer expressions (counts of a CASE, a literal) may be int.
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        match self.try_get::<Option<i64>, _>(col) {
            Ok(v) => Ok(v),
            Err(_) => self.try_get::<Option<i32>, _>(col).map(|v| v.map(i64::from)).map_err(db_err),
        }
    }
    fn float(&self, col: &str) -> Result<f64> {
        self.opt_float(col)?.ok_or_else(|| Error::internal(format!("{col} is null")))
    }
    fn opt_float(&self, col: &str) -> Result<Option<f64>> {
        match self.try_get::<Option<f64>, _>(col) {
            Ok(v) => Ok(v),
            Err(_) => self.try_get::<Option<f32>, _>(col).map(|v| v.map(f64::from)).map_err(db_err),
        }
    }
    fn flag(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Id>> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>> {
        self.try_get(col).map_err(db_err)
    }
    fn opt_json_value(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.try_get(col).map_err(db_err)
    }
}

/// A usage counter, or zero when it belongs to an earlier window than `current`.
fn counter_of(row: &impl RowExt, window_col: &str, count_col: &str, current: &str) -> Result<i64> {
    Ok(if row.opt_text(window_col)?.as_deref() == Some(current) { row.int(count_col)? } else { 0 })
}

pub(crate) const USER_COLS: &str = "u.id, u.username, u.email, u.full_name, u.first_name, u.last_name, u.avatar_url, \
    u.settings, u.is_active, u.is_staff, u.is_superuser, u.created_at, u.updated_at, u.last_login_at, \
    u.storage_used, u.api_calls_count";

pub(crate) fn user_from(row: &impl RowExt) -> Result<User> {
    Ok(User {
        id: row.id("id")?,
        username: row.text("username")?,
        email: row.text("email")?,
        full_name: row.opt_text("full_name")?,
        first_name: row.opt_text("first_name")?,
        last_name: row.opt_text("last_name")?,
        avatar_url: row.opt_text("avatar_url")?,
        settings: row.json("settings")?,
        is_active: row.flag("is_active")?,
        is_staff: row.flag("is_staff")?,
        is_superuser: row.flag("is_superuser")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        last_login_at: row.opt_time("last_login_at")?,
        storage_used: row.int("storage_used")?,
        api_calls_count: row.int("api_calls_count")?,
    })
}

pub(crate) const INVITATION_COLS: &str = "id, email, created_by, created_at, expires_at, used_at, used_by";

pub(crate) fn invitation_from(row: &impl RowExt) -> Result<Invitation> {
    Ok(Invitation {
        id: row.id("id")?,
        email: row.opt_text("email")?,
        created_by: row.opt_id("created_by")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        used_by: row.opt_id("used_by")?,
    })
}

pub(crate) const KEY_COLS: &str = "k.id AS key_id, k.user_id AS key_user_id, k.knowledge_base_id, k.name, k.description, \
    k.key_prefix, k.key_suffix, k.scopes, k.rate_limit, k.daily_quota, k.monthly_quota, k.usage_day, k.usage_month, \
    k.usage_count_today, k.usage_count_month, k.is_active AS key_is_active, k.expires_at, k.revoked_at, k.last_used_at, \
    k.last_used_ip, k.security, k.created_at AS key_created_at, k.updated_at AS key_updated_at, k.created_by AS key_created_by";

pub(crate) fn key_from(row: &impl RowExt) -> Result<ApiKey> {
    let now = lore_core::now();
    Ok(ApiKey {
        id: row.id("key_id")?,
        user_id: row.id("key_user_id")?,
        created_by: row.opt_id("key_created_by")?,
        knowledge_base_id: row.opt_id("knowledge_base_id")?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        key_prefix: row.text("key_prefix")?,
        key_suffix: row.text("key_suffix")?,
        scopes: row.json("scopes")?,
        rate_limit: row.opt_int("rate_limit")?,
        daily_quota: row.opt_int("daily_quota")?,
        monthly_quota: row.opt_int("monthly_quota")?,
        // A counter of an earlier day or month is stale: it counts as zero until the next request resets it.
        usage_count_today: counter_of(row, "usage_day", "usage_count_today", &limits::day_key(now))?,
        usage_count_month: counter_of(row, "usage_month", "usage_count_month", &limits::month_key(now))?,
        is_active: row.flag("key_is_active")?,
        expires_at: row.opt_time("expires_at")?,
        revoked_at: row.opt_time("revoked_at")?,
        last_used_at: row.opt_time("last_used_at")?,
        last_used_ip: row.opt_text("last_used_ip")?,
        security: row.json("security")?,
        created_at: row.time("key_created_at")?,
        updated_at: row.time("key_updated_at")?,
    })
}

pub(crate) const KB_COLS: &str = "id, user_id, name, description, icon_url, status, settings, document_count, \
    total_size_bytes, chunk_count, embedding_space, last_updated_at, created_at, updated_at, created_by";

pub(crate) fn kb_from(row: &impl RowExt) -> Result<KnowledgeBase> {
    let status = match row.text("status")?.as_str() {
        "archived" => KbStatus::Archived,
        _ => KbStatus::Active,
    };
    Ok(KnowledgeBase {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        workspace_id: row.id("user_id")?,
        created_by: row.opt_id("created_by")?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        icon_url: row.opt_text("icon_url")?,
        status,
        settings: row.json("settings")?,
        document_count: row.int("document_count")?,
        total_size_bytes: row.int("total_size_bytes")?,
        chunk_count: row.int("chunk_count")?,
        embedding_space: row.opt_text("embedding_space")?,
        last_updated_at: row.opt_time("last_updated_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) const DOC_COLS: &str = "id, knowledge_base_id, user_id, uploaded_by, data_source_id, file_type_id, title, \
    filename, file_type, file_path, file_size, mime_type, file_hash, status, progress, error_code, error_message, \
    processing_log, metadata, source_metadata, chunking_config, chunk_count, processed_at, expires_at, \
    soft_deleted_at, created_at, updated_at";

pub(crate) fn doc_from(row: &impl RowExt) -> Result<Document> {
    let status_text = row.text("status")?;
    let status = DocStatus::parse(&status_text)
        .ok_or_else(|| Error::internal(format!("bad document status {status_text:?}")))?;
    Ok(Document {
        id: row.id("id")?,
        knowledge_base_id: row.id("knowledge_base_id")?,
        user_id: row.id("user_id")?,
        uploaded_by: row.opt_id("uploaded_by")?,
        data_source_id: row.opt_id("data_source_id")?,
        file_type_id: row.opt_int("file_type_id")?,
        title: row.opt_text("title")?,
        filename: row.text("filename")?,
        file_type: row.text("file_type")?,
        file_path: row.text("file_path")?,
        file_size: row.int("file_size")?,
        mime_type: row.text("mime_type")?,
        file_hash: row.text("file_hash")?,
        status,
        progress: row.int("progress")?,
        error_code: row.opt_text("error_code")?,
        error_message: row.opt_text("error_message")?,
        processing_log: row.json("processing_log")?,
        metadata: row.json("metadata")?,
        source_metadata: row.json("source_metadata")?,
        chunking_config: row.opt_json("chunking_config")?,
        chunk_count: row.int("chunk_count")?,
        processed_at: row.opt_time("processed_at")?,
        expires_at: row.opt_time("expires_at")?,
        soft_deleted_at: row.opt_time("soft_deleted_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn chunk_from(row: &impl RowExt) -> Result<Chunk> {
    Ok(Chunk {
        id: row.id("id")?,
        document_id: row.id("document_id")?,
        knowledge_base_id: row.id("knowledge_base_id")?,
        content: row.text("content")?,
        content_hash: row.text("content_hash")?,
        chunk_index: row.int("chunk_index")?,
        metadata: row.json("metadata")?,
        parent_chunk_id: row.opt_id("parent_chunk_id")?,
        embedding_model: row.opt_text("embedding_model")?,
        enabled: row.flag("enabled")?,
        edited_at: row.opt_time("edited_at")?,
        created_at: row.time("created_at")?,
    })
}

/// The columns [`chunk_from`] reads, of `document_chunks`.
pub(crate) const CHUNK_COLS: &str = "id, document_id, knowledge_base_id, content, content_hash, chunk_index, metadata, \
    parent_chunk_id, embedding_model, enabled, edited_at, created_at";

pub(crate) const CONFIG_COLS: &str = "default_embedding_model, default_chunk_size, default_chunk_overlap, document_retention_days, \
    conversation_retention_days, default_similarity_threshold, max_search_results, sync_notifications, \
    error_notifications, openai_api_key, anthropic_api_key, cohere_api_key, openai_base_url, anthropic_base_url, \
    cohere_base_url, webhook_url, webhook_secret, updated_at";

pub(crate) fn config_from(row: &impl RowExt) -> Result<UserConfig> {
    Ok(UserConfig {
        default_embedding_model: row.opt_text("default_embedding_model")?,
        default_chunk_size: row.opt_int("default_chunk_size")?,
        default_chunk_overlap: row.opt_int("default_chunk_overlap")?,
        document_retention_days: row.opt_int("document_retention_days")?,
        conversation_retention_days: row.opt_int("conversation_retention_days")?,
        default_similarity_threshold: row.opt_float("default_similarity_threshold")?,
        max_search_results: row.opt_int("max_search_results")?,
        sync_notifications: row.flag("sync_notifications")?,
        error_notifications: row.flag("error_notifications")?,
        openai_api_key: row.opt_text("openai_api_key")?,
        anthropic_api_key: row.opt_text("anthropic_api_key")?,
        cohere_api_key: row.opt_text("cohere_api_key")?,
        openai_base_url: row.opt_text("openai_base_url")?,
        anthropic_base_url: row.opt_text("anthropic_base_url")?,
        cohere_base_url: row.opt_text("cohere_base_url")?,
        webhook_url: row.opt_text("webhook_url")?,
        webhook_secret: row.opt_text("webhook_secret")?,
        updated_at: row.opt_time("updated_at")?,
    })
}

pub(crate) const FILE_TYPE_COLS: &str =
    "id, name, category, mime_types, extensions, parsers, embedding_models, is_active, created_at, updated_at";

pub(crate) fn file_type_from(row: &impl RowExt) -> Result<FileType> {
    Ok(FileType {
        id: row.int("id")?,
        name: row.text("name")?,
        category: row.text("category")?,
        mime_types: row.json("mime_types")?,
        extensions: row.json("extensions")?,
        parsers: row.json("parsers")?,
        embedding_models: row.json("embedding_models")?,
        is_active: row.flag("is_active")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn hit_from(r: &impl RowExt) -> Result<ChunkHit> {
    Ok(ChunkHit {
        chunk_id: r.id("id")?,
        document_id: r.id("document_id")?,
        knowledge_base_id: r.id("knowledge_base_id")?,
        filename: r.text("filename")?,
        title: r.opt_text("title")?,
        content: r.text("content")?,
        score: r.float("score")?,
        chunk_index: r.int("chunk_index")?,
        metadata: r.json("metadata")?,
        parent: match r.opt_id("parent_id")? {
            Some(chunk_id) => Some(ParentChunk { chunk_id, content: r.text("parent_content")? }),
            None => None,
        },
    })
}

pub(crate) const AGENT_COLS: &str = "id, user_id, name, description, agent_type, model_provider, model_name, model_parameters, \
    conversation_mode, context_window, memory_retention_days, system_prompt, user_prompt_template, max_documents, \
    similarity_threshold, rate_limit_per_hour, rate_limit_per_day, domain_keywords, expertise_areas, is_active, \
    created_at, updated_at, created_by";

pub(crate) fn agent_from(row: &impl RowExt) -> Result<Agent> {
    Ok(Agent {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        created_by: row.opt_id("created_by")?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        agent_type: row.text("agent_type")?,
        model_provider: row.text("model_provider")?,
        model_name: row.opt_text("model_name")?,
        model_parameters: row.json("model_parameters")?,
        conversation_mode: match row.text("conversation_mode")?.as_str() {
            "single_turn" => ConversationMode::SingleTurn,
            _ => ConversationMode::MultiTurn,
        },
        context_window: row.opt_int("context_window")?,
        memory_retention_days: row.opt_int("memory_retention_days")?,
        system_prompt: row.opt_text("system_prompt")?,
        user_prompt_template: row.opt_text("user_prompt_template")?,
        max_documents: row.int("max_documents")?,
        similarity_threshold: row.opt_float("similarity_threshold")?,
        rate_limit_per_hour: row.opt_int("rate_limit_per_hour")?,
        rate_limit_per_day: row.opt_int("rate_limit_per_day")?,
        domain_keywords: row.json("domain_keywords")?,
        expertise_areas: row.json("expertise_areas")?,
        is_active: row.flag("is_active")?,
        knowledge_base_ids: Vec::new(),
        data_source_ids: Vec::new(),
        file_type_ids: Vec::new(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn conversation_from(row: &impl RowExt) -> Result<Conversation> {
    Ok(Conversation {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        agent_id: row.id("agent_id")?,
        title: row.opt_text("title")?,
        context: row.json("context")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) const USAGE_COLS: &str = "id, user_id, agent_id, conversation_id, model_provider, model_name, prompt_tokens, \
    completion_tokens, tokens_used, cost, response_time, request_data, created_at";

pub(crate) fn usage_from(row: &impl RowExt) -> Result<AgentUsage> {
    Ok(AgentUsage {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        agent_id: row.id("agent_id")?,
        conversation_id: row.opt_id("conversation_id")?,
        model_provider: row.opt_text("model_provider")?,
        model_name: row.opt_text("model_name")?,
        prompt_tokens: row.int("prompt_tokens")?,
        completion_tokens: row.int("completion_tokens")?,
        tokens_used: row.int("tokens_used")?,
        cost: row.text("cost")?,
        response_time: row.float("response_time")?,
        request_data: row.json("request_data")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) const SOURCE_COLS: &str = "id, user_id, knowledge_base_id, name, source_type, status, config, \
    credentials IS NOT NULL AS has_credentials, auto_sync, sync_frequency, last_sync, last_error, created_at, updated_at, created_by";

pub(crate) fn source_from(row: &impl RowExt) -> Result<DataSource> {
    Ok(DataSource {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        created_by: row.opt_id("created_by")?,
        knowledge_base_id: row.id("knowledge_base_id")?,
        name: row.text("name")?,
        source_type: row.text("source_type")?,
        status: row.text("status")?,
        config: row.json("config")?,
        has_credentials: row.flag("has_credentials")?,
        auto_sync: row.flag("auto_sync")?,
        sync_frequency: row.opt_int("sync_frequency")?,
        last_sync: row.opt_time("last_sync")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn run_from(row: &impl RowExt) -> Result<SyncRun> {
    Ok(SyncRun {
        id: row.id("id")?,
        data_source_id: row.id("data_source_id")?,
        status: row.text("status")?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        added: row.int("added")?,
        updated: row.int("updated")?,
        removed: row.int("removed")?,
        failed: row.int("failed")?,
        errors: row.json("errors")?,
    })
}

pub(crate) fn usage_log_from(row: &impl RowExt) -> Result<UsageLog> {
    Ok(UsageLog {
        id: row.id("id")?,
        api_key_id: row.opt_id("api_key_id")?,
        user_id: row.id("user_id")?,
        endpoint: row.text("endpoint")?,
        method: row.text("method")?,
        request_body: row.opt_json("request_body")?,
        status_code: row.int("status_code")?,
        response_time_ms: row.int("response_time_ms")?,
        error_message: row.opt_text("error_message")?,
        ip_address: row.opt_text("ip_address")?,
        user_agent: row.opt_text("user_agent")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn daily_usage_from(row: &impl RowExt) -> Result<DailyUsage> {
    Ok(DailyUsage {
        day: row.text("day")?,
        requests: row.int("requests")?,
        errors: row.int("errors")?,
        avg_response_ms: row.float("avg_ms")?,
    })
}

pub(crate) fn chunk_to_embed_from(row: &impl RowExt) -> Result<ChunkToEmbed> {
    Ok(ChunkToEmbed {
        seq: row.int("seq")?,
        content: row.text("content")?,
        content_hash: row.text("content_hash")?,
        title: row.opt_text("title")?,
        metadata: row.json("metadata")?,
    })
}

pub(crate) fn source_item_from(row: &impl RowExt) -> Result<SourceItem> {
    Ok(SourceItem {
        document_id: row.id("id")?,
        key: row.text("item_key")?,
        version: row.opt_text("version")?.unwrap_or_default(),
        file_hash: row.text("file_hash")?,
    })
}

pub(crate) fn notification_from(row: &impl RowExt) -> Result<Notification> {
    Ok(Notification {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        kind: row.text("kind")?,
        title: row.text("title")?,
        body: row.opt_text("body")?,
        data: row.json("data")?,
        read_at: row.opt_time("read_at")?,
        created_at: row.time("created_at")?,
    })
}

/// Hands each node the jobs and syncs its workers hold (a worker is `<node>/worker-<i>`, a sync
/// lease's owner the node itself).
pub(crate) fn attach_holdings(nodes: &mut [Node], jobs: Vec<HeldJob>, syncs: Vec<(Id, String)>) {
    let node_of = |holder: &str| holder.split('/').next().unwrap_or(holder).to_string();
    for job in jobs {
        if let Some(node) = nodes.iter_mut().find(|n| n.id == node_of(&job.worker)) {
            node.jobs.push(job);
        }
    }
    for (source, owner) in syncs {
        if let Some(node) = nodes.iter_mut().find(|n| n.id == node_of(&owner)) {
            node.syncs.push(source);
        }
    }
}

/// Nodes silent this long are forgotten (listing drops them after a minute already).
pub(crate) const FORGET_NODES_AFTER: chrono::Duration = chrono::Duration::days(1);

/// An agent's link tables, each with the column that names what the agent is linked to.
pub(crate) const AGENT_LINKS: [(&str, &str); 3] = [
    ("ai_agent_knowledge_bases", "knowledge_base_id"),
    ("ai_agent_data_sources", "datasource_id"),
    ("ai_agent_file_types", "filetype_id"),
];

/// Adds one link table's rows (`aiagent_id`, `target`) to the agents they belong to.
pub(crate) fn attach_agent_links(agents: &mut [Agent], column: &str, rows: &[impl RowExt]) -> Result<()> {
    let position: std::collections::HashMap<Id, usize> = agents.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    for row in rows {
        let Some(&i) = position.get(&row.id("aiagent_id")?) else { continue };
        match column {
            "knowledge_base_id" => agents[i].knowledge_base_ids.push(row.id("target")?),
            "datasource_id" => agents[i].data_source_ids.push(row.id("target")?),
            _ => agents[i].file_type_ids.push(row.int("target")?),
        }
    }
    Ok(())
}

/// A claimed job, from `RETURNING id, kind, document_id, knowledge_base_id, attempts`.
pub(crate) fn job_from(row: &impl RowExt) -> Result<Job> {
    Ok(Job {
        id: row.id("id")?,
        kind: row.text("kind")?,
        document_id: row.opt_id("document_id")?,
        knowledge_base_id: row.opt_id("knowledge_base_id")?,
        attempts: row.int("attempts")?,
    })
}

pub(crate) fn node_from(row: &impl RowExt) -> Result<Node> {
    Ok(Node {
        id: row.text("id")?,
        version: row.text("version")?,
        address: row.text("address")?,
        schema_version: row.int("schema_version")?,
        workers: row.int("workers")?,
        started_at: row.time("started_at")?,
        heartbeat_at: row.time("heartbeat_at")?,
        jobs: Vec::new(),
        syncs: Vec::new(),
    })
}

/// A running job under its lease, from `jobs`.
pub(crate) fn held_job_from(row: &impl RowExt) -> Result<HeldJob> {
    Ok(HeldJob {
        id: row.id("id")?,
        kind: row.text("kind")?,
        document_id: row.opt_id("document_id")?,
        knowledge_base_id: row.opt_id("knowledge_base_id")?,
        worker: row.opt_text("locked_by")?.unwrap_or_default(),
        lease_until: row.time("locked_until")?,
    })
}

/// A session joined with its user (`session_id`, `session_expires_at` and the user's columns).
pub(crate) fn session_from(row: &impl RowExt) -> Result<SessionRecord> {
    Ok(SessionRecord {
        session_id: row.id("session_id")?,
        user: user_from(row)?,
        expires_at: row.time("session_expires_at")?,
    })
}

/// A key's counters after a request was counted.
pub(crate) fn key_usage_from(row: &impl RowExt) -> Result<KeyUsage> {
    Ok(KeyUsage {
        allowed: row.flag("allowed")?,
        rate_limit: row.opt_int("rate_limit")?,
        rate_count: row.int("rate_count")?,
        daily_quota: row.opt_int("daily_quota")?,
        usage_today: row.int("usage_count_today")?,
        monthly_quota: row.opt_int("monthly_quota")?,
        usage_month: row.int("usage_count_month")?,
    })
}

/// A message's citation, joined with its document's name and the chunk's opening and metadata.
pub(crate) fn citation_from(row: &impl RowExt) -> Result<Citation> {
    Ok(Citation {
        index: row.opt_int("citation_index")?.unwrap_or(0),
        document_id: row.id("document_id")?,
        chunk_id: row.opt_id("chunk_id")?,
        score: row.opt_float("score")?,
        filename: row.opt_text("filename")?,
        snippet: row.opt_text("snippet")?,
        location: row.opt_json_value("chunk_metadata")?.as_ref().and_then(lore_core::agent::chunk_location),
    })
}

/// A conversation's message, its citations read separately.
pub(crate) fn message_from(row: &impl RowExt) -> Result<ChatMessage> {
    Ok(ChatMessage {
        id: row.id("id")?,
        conversation_id: row.id("conversation_id")?,
        role: row.text("role")?,
        content: row.text("content")?,
        metadata: row.json("metadata")?,
        citations: Vec::new(),
        created_at: row.time("created_at")?,
    })
}

/// What an agent is linked to through one of [`AGENT_LINKS`]' columns, as a JSON array.
pub(crate) fn agent_link_targets(agent: &Agent, column: &str) -> serde_json::Value {
    match column {
        "knowledge_base_id" => agent.knowledge_base_ids.iter().map(|id| id.to_string()).collect(),
        "datasource_id" => agent.data_source_ids.iter().map(|id| id.to_string()).collect(),
        _ => agent.file_type_ids.iter().copied().collect(),
    }
}
