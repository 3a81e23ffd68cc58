//! The one error table: every error a client can see has a stable snake_case code, a type and
//! exactly one HTTP status, all decided here. Internal details are kept for the log, never sent.

use std::fmt;

/// The error `type` of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Auth,
    Permission,
    NotFound,
    Conflict,
    RateLimited,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal",
        }
    }
}

macro_rules! codes {
    ($($variant:ident => ($code:literal, $kind:ident, $status:literal),)*) => {
        /// Stable error codes. Adding one means adding a row here; there is no catch-all.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code,)* } }
            pub fn kind(self) -> ErrorKind { match self { $(Code::$variant => ErrorKind::$kind,)* } }
            pub fn status(self) -> u16 { match self { $(Code::$variant => $status,)* } }
        }
    };
}

codes! {
    // Request shape
    MalformedJson => ("malformed_json", InvalidRequest, 400),
    InvalidBody => ("invalid_body", InvalidRequest, 422),
    UnsupportedMediaType => ("unsupported_media_type", InvalidRequest, 415),
    NotAcceptable => ("not_acceptable", InvalidRequest, 406),
    InvalidMultipart => ("invalid_multipart", InvalidRequest, 400),
    MissingFile => ("missing_file", InvalidRequest, 400),
    EmptyFile => ("empty_file", InvalidRequest, 400),
    PayloadTooLarge => ("payload_too_large", InvalidRequest, 413),
    ValidationFailed => ("validation_failed", InvalidRequest, 422),
    InvalidChunkingConfig => ("invalid_chunking_config", InvalidRequest, 422),
    DescriptionNotUnderstood => ("description_not_understood", InvalidRequest, 422),
    InvalidQuery => ("invalid_query", InvalidRequest, 422),
    InvalidScope => ("invalid_scope", InvalidRequest, 422),
    EmbeddingNotConfigured => ("embedding_not_configured", InvalidRequest, 400),
    // Authentication
    MissingToken => ("missing_token", Auth, 401),
    InvalidToken => ("invalid_token", Auth, 401),
    SessionExpired => ("session_expired", Auth, 401),
    InvalidApiKey => ("invalid_api_key", Auth, 401),
    ApiKeyExpired => ("api_key_expired", Auth, 401),
    ApiKeyRevoked => ("api_key_revoked", Auth, 401),
    InvalidCredentials => ("invalid_credentials", Auth, 401),
    UserInactive => ("user_inactive", Auth, 401),
    // Permission
    InsufficientScope => ("insufficient_scope", Permission, 403),
    SessionRequired => ("session_required", Permission, 403),
    KnowledgeBaseNotAllowed => ("knowledge_base_not_allowed", Permission, 403),
    // The caller's role in the workspace does not include the action.
    InsufficientRole => ("insufficient_role", Permission, 403),
    // An API key acts in its own workspace only.
    WorkspaceMismatch => ("workspace_mismatch", Permission, 403),
    // Not found
    NotFound => ("not_found", NotFound, 404),
    RouteNotFound => ("route_not_found", NotFound, 404),
    MethodNotAllowed => ("method_not_allowed", InvalidRequest, 405),
    // Conflict
    UsernameTaken => ("username_taken", Conflict, 409),
    EmailTaken => ("email_taken", Conflict, 409),
    DuplicateDocument => ("duplicate_document", Conflict, 409),
    KnowledgeBaseArchived => ("knowledge_base_archived", Conflict, 409),
    NotDeleted => ("not_deleted", Conflict, 409),
    FileTypeExists => ("file_type_exists", Conflict, 409),
    AgentNameTaken => ("agent_name_taken", Conflict, 409),
    DataSourceNameTaken => ("data_source_name_taken", Conflict, 409),
    SyncInProgress => ("sync_in_progress", Conflict, 409),
    AgentInactive => ("agent_inactive", Conflict, 409),
    AlreadyMember => ("already_member", Conflict, 409),
    LastOwner => ("last_owner", Conflict, 409),
    PersonalWorkspace => ("personal_workspace", Conflict, 409),
    WorkspaceNotEmpty => ("workspace_not_empty", Conflict, 409),
    // Limits
    RateLimited => ("rate_limited", RateLimited, 429),
    QuotaExceeded => ("quota_exceeded", RateLimited, 429),
    TooManyLoginAttempts => ("too_many_login_attempts", RateLimited, 429),
    IpNotAllowed => ("ip_not_allowed", Permission, 403),
    OriginNotAllowed => ("origin_not_allowed", Permission, 403),
    SuperuserRequired => ("superuser_required", Permission, 403),
    CsrfFailed => ("csrf_failed", Permission, 403),
    RegistrationClosed => ("registration_closed", Permission, 403),
    InvitationInvalid => ("invitation_invalid", Permission, 403),
    TooManyRegistrations => ("too_many_registrations", RateLimited, 429),
    // Document processing (stored on the failed document, also usable in responses)
    UnsupportedFileType => ("unsupported_file_type", InvalidRequest, 415),
    EmbeddingModelNotAllowed => ("embedding_model_not_allowed", InvalidRequest, 422),
    CorruptFile => ("corrupt_file", InvalidRequest, 422),
    BinaryContent => ("binary_content", InvalidRequest, 422),
    NoTextContent => ("no_text_content", InvalidRequest, 422),
    // An image or scanned page needs text recognition, and this server has no Tesseract.
    OcrUnavailable => ("ocr_unavailable", InvalidRequest, 422),
    ProcessingInterrupted => ("processing_interrupted", InvalidRequest, 422),
    ProcessingTimeout => ("processing_timeout", InvalidRequest, 422),
    // Resource budgets (lore_core::budget): each names the limit a request or a file ran into.
    ResourceLimitExceeded => ("resource_limit_exceeded", InvalidRequest, 422),
    ChunkOverlapTooLarge => ("chunk_overlap_too_large", InvalidRequest, 422),
    TooManyChunks => ("too_many_chunks", InvalidRequest, 422),
    ExpandedSizeExceeded => ("expanded_size_exceeded", InvalidRequest, 422),
    TooManyCells => ("too_many_cells", InvalidRequest, 422),
    TooManyKnowledgeBases => ("too_many_knowledge_bases", InvalidRequest, 422),
    // Outbound requests and models
    OutboundNotAllowed => ("outbound_not_allowed", InvalidRequest, 422),
    LoopDetected => ("loop_detected", InvalidRequest, 422),
    UnknownModel => ("unknown_model", InvalidRequest, 422),
    // Embedding models and providers
    ModelUnavailable => ("model_unavailable", Internal, 503),
    EmbeddingFailed => ("embedding_failed", Internal, 502),
    EmbeddingProviderRejected => ("embedding_provider_rejected", InvalidRequest, 422),
    InvalidEmbeddingConfig => ("invalid_embedding_config", InvalidRequest, 422),
    // Chat models and providers
    InvalidAgentConfig => ("invalid_agent_config", InvalidRequest, 422),
    InvalidSourceConfig => ("invalid_source_config", InvalidRequest, 422),
    SourceUnreachable => ("source_unreachable", InvalidRequest, 422),
    LlmUnavailable => ("llm_unavailable", Internal, 502),
    LlmRejected => ("llm_provider_rejected", InvalidRequest, 422),
    LlmTimeout => ("llm_timeout", Internal, 504),
    LlmBadResponse => ("llm_bad_response", Internal, 502),
    // Lore's own fault
    Internal => ("internal_error", Internal, 500),
    Unavailable => ("service_unavailable", Internal, 503),
    // The machine's: conditions that clear by themselves or by an operator, never the request's
    StorageFull => ("storage_full", Internal, 507),
    StorageUnavailable => ("storage_unavailable", Internal, 503),
    DatabaseUnavailable => ("database_unavailable", Internal, 503),
    DatabaseBusy => ("database_busy", Internal, 503),
    // No node could read a document's file from its blob store (an operator's configuration).
    FileUnavailable => ("file_unavailable", Internal, 503),
}

/// An error with a code from the table, a message a person can act on, and (for internal
/// errors) the underlying cause, which is logged but never sent to clients.
pub struct Error {
    pub code: Code,
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), source: None }
    }

    /// An internal failure: the client sees a generic message, the log sees `cause`.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error { code: Code::Internal, message: "an internal error occurred".into(), source: Some(cause.into()) }
    }

    /// Keeps `cause` for the log behind an error whose code and message are already chosen.
    pub fn with_cause(self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error { source: Some(cause.into()), ..self }
    }

    pub fn not_found(what: &str) -> Self {
        Error::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Error::new(Code::ValidationFailed, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// A failure of the machine rather than of the request or the document (disk full, data
    /// directory read-only, database unreachable): the same work succeeds once it clears, so it is
    /// retried, never recorded as the document's fault.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            Code::StorageFull
                | Code::StorageUnavailable
                | Code::DatabaseUnavailable
                | Code::DatabaseBusy
                | Code::Unavailable
        )
    }

    /// An error of the disk under the data directory, or `None` for any other I/O error.
    pub fn from_storage(err: &std::io::Error) -> Option<Error> {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => {
                Some(Error::new(Code::StorageFull, "the server's storage is full; try again once space is freed"))
            }
            K::ReadOnlyFilesystem => Some(Error::new(
                Code::StorageUnavailable,
                "the server's storage is read-only; try again once it is writable",
            )),
            _ => None,
        }
    }

    /// The cause behind an internal error, for logging.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code.as_str()).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("cause", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {} ({source})", self.code.as_str(), self.message),
            None => write!(f, "{}: {}", self.code.as_str(), self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(err)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        match Error::from_storage(&err) {
            Some(storage) => storage.with_cause(err),
            None => Error::internal(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_statuses_match_kinds() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s} is not snake_case");
            let status = code.status();
            match code.kind() {
                ErrorKind::InvalidRequest => assert!((400..500).contains(&status), "{s}"),
                ErrorKind::Auth => assert_eq!(status, 401, "{s}"),
                ErrorKind::Permission => assert_eq!(status, 403, "{s}"),
                ErrorKind::NotFound => assert_eq!(status, 404, "{s}"),
                ErrorKind::Conflict => assert_eq!(status, 409, "{s}"),
                ErrorKind::RateLimited => assert_eq!(status, 429, "{s}"),
                ErrorKind::Internal => assert!(status >= 500, "{s}"),
            }
        }
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_message() {
        let err = Error::internal(std::io::Error::other("disk on fire at /secret/path"));
        assert_eq!(err.code, Code::Internal);
        assert!(!err.message.contains("secret"));
        assert!(err.to_string().contains("disk on fire"));
    }
}
