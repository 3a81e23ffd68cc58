"""Typed views of Lore's objects, written by hand after the OpenAPI document (``/openapi.json``).

Each model names the schema it mirrors (``__schema__``) and that schema's required fields
(``__required__``); the SDK's tests compare both with the live document, so a field added to Lore
and not here fails a test. Unknown fields a newer Lore sends are kept in ``extra``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, TypeVar

T = TypeVar("T", bound="Model")


@dataclass
class Model:
    __schema__: ClassVar[str] = ""
    __required__: ClassVar[Tuple[str, ...]] = ()
    # Fields holding other models (one, or a list of them).
    __nested__: ClassVar[Dict[str, Type["Model"]]] = {}

    extra: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values: Dict[str, Any] = {}
        for name in names & data.keys():
            value = data[name]
            nested = cls.__nested__.get(name)
            if nested is not None and isinstance(value, list):
                value = [nested.from_dict(v) if isinstance(v, dict) else v for v in value]
            elif nested is not None and isinstance(value, dict):
                value = nested.from_dict(value)
            values[name] = value
        return cls(**values, extra={k: v for k, v in data.items() if k not in names})

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name != "extra"]

    def to_dict(self) -> Dict[str, Any]:
        out = {name: getattr(self, name) for name in self.field_names()}
        for name, value in out.items():
            if isinstance(value, Model):
                out[name] = value.to_dict()
            elif isinstance(value, list):
                out[name] = [v.to_dict() if isinstance(v, Model) else v for v in value]
        out.update(self.extra)
        return out


@dataclass
class User(Model):
    __schema__ = "User"
    __required__ = (
        "id", "username", "email", "settings", "is_active", "is_staff", "is_superuser", "created_at",
        "updated_at", "storage_used", "api_calls_count",
    )
    id: str = ""
    username: str = ""
    email: str = ""
    full_name: Optional[str] = None
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    avatar_url: Optional[str] = None
    settings: Any = None
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    created_at: str = ""
    updated_at: str = ""
    last_login_at: Optional[str] = None
    storage_used: int = 0
    api_calls_count: int = 0


@dataclass
class AuthResponse(Model):
    __schema__ = "AuthResponse"
    __required__ = ("token", "token_type", "expires_at", "user")
    __nested__ = {"user": User}
    token: str = ""
    token_type: str = ""
    expires_at: str = ""
    user: Optional[User] = None


@dataclass
class KnowledgeBase(Model):
    __schema__ = "KnowledgeBase"
    __required__ = (
        "id", "user_id", "workspace_id", "name", "status", "settings", "document_count", "total_size_bytes",
        "chunk_count", "created_at", "updated_at",
    )
    id: str = ""
    user_id: str = ""
    # The workspace it lives in (another than the client's when shared into it), and its maker.
    workspace_id: str = ""
    created_by: Optional[str] = None
    name: str = ""
    description: Optional[str] = None
    icon_url: Optional[str] = None
    status: str = ""
    settings: Any = None
    document_count: int = 0
    total_size_bytes: int = 0
    chunk_count: int = 0
    embedding_space: Optional[str] = None
    last_updated_at: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Document(Model):
    __schema__ = "Document"
    __required__ = (
        "id", "knowledge_base_id", "user_id", "filename", "file_type", "file_size", "mime_type", "file_hash",
        "status", "progress", "processing_log", "metadata", "source_metadata", "chunk_count", "created_at",
        "updated_at",
    )
    id: str = ""
    knowledge_base_id: str = ""
    user_id: str = ""
    uploaded_by: Optional[str] = None
    data_source_id: Optional[str] = None
    file_type_id: Optional[int] = None
    title: Optional[str] = None
    filename: str = ""
    file_type: str = ""
    file_size: int = 0
    mime_type: str = ""
    file_hash: str = ""
    status: str = ""
    progress: int = 0
    error_code: Optional[str] = None
    error_message: Optional[str] = None
    processing_log: List[Any] = field(default_factory=list)
    metadata: Any = None
    source_metadata: Any = None
    chunking_config: Any = None
    chunk_count: int = 0
    processed_at: Optional[str] = None
    expires_at: Optional[str] = None
    soft_deleted_at: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def done(self) -> bool:
        """Processing has ended, well (``completed``) or not (``failed``)."""
        return self.status in ("completed", "failed")


@dataclass
class Chunk(Model):
    __schema__ = "Chunk"
    __required__ = (
        "id", "document_id", "knowledge_base_id", "content", "content_hash", "chunk_index", "metadata", "enabled",
        "created_at",
    )
    id: str = ""
    document_id: str = ""
    knowledge_base_id: str = ""
    content: str = ""
    content_hash: str = ""
    chunk_index: int = 0
    metadata: Any = None
    parent_chunk_id: Optional[str] = None
    embedding_model: Optional[str] = None
    enabled: bool = True
    edited_at: Optional[str] = None
    created_at: str = ""


@dataclass
class ParentChunk(Model):
    __schema__ = "ParentChunk"
    __required__ = ("chunk_id", "content")
    chunk_id: str = ""
    content: str = ""


@dataclass
class SearchHit(Model):
    """One result of a search: a chunk, its document, and why it matched."""

    __schema__ = "SearchResult"
    __required__ = (
        "chunk_id", "document_id", "knowledge_base_id", "filename", "content", "score", "chunk_index", "metadata",
        "highlight",
    )
    __nested__ = {"parent": ParentChunk}
    chunk_id: str = ""
    document_id: str = ""
    knowledge_base_id: str = ""
    filename: str = ""
    title: Optional[str] = None
    content: str = ""
    score: float = 0.0
    chunk_index: int = 0
    metadata: Any = None
    parent: Optional[ParentChunk] = None
    highlight: str = ""
    vector_score: Optional[float] = None
    fulltext_score: Optional[float] = None
    #: With a rerank stage: the reranker's score, which orders the results.
    rerank_score: Optional[float] = None

    @property
    def page(self) -> Optional[int]:
        """The page the chunk starts on, for paginated formats (PDF)."""
        meta = self.metadata if isinstance(self.metadata, dict) else {}
        page = meta.get("page")
        return page if isinstance(page, int) else None


@dataclass
class SearchResponse(Model):
    __schema__ = "SearchResponse"
    __required__ = ("query", "mode", "results", "took_ms")
    __nested__ = {"results": SearchHit}
    query: str = ""
    mode: str = ""
    results: List[SearchHit] = field(default_factory=list)
    took_ms: float = 0.0
    embedding_model: Optional[str] = None
    warning: Optional[str] = None


@dataclass
class ApiKey(Model):
    __schema__ = "ApiKey"
    __required__ = (
        "id", "user_id", "name", "key_prefix", "key_suffix", "scopes", "usage_count_today", "usage_count_month",
        "is_active", "security", "created_at", "updated_at",
    )
    id: str = ""
    user_id: str = ""
    created_by: Optional[str] = None
    knowledge_base_id: Optional[str] = None
    name: str = ""
    description: Optional[str] = None
    key_prefix: str = ""
    key_suffix: str = ""
    scopes: List[str] = field(default_factory=list)
    rate_limit: Optional[int] = None
    daily_quota: Optional[int] = None
    monthly_quota: Optional[int] = None
    usage_count_today: int = 0
    usage_count_month: int = 0
    is_active: bool = True
    expires_at: Optional[str] = None
    revoked_at: Optional[str] = None
    last_used_at: Optional[str] = None
    last_used_ip: Optional[str] = None
    security: Any = None
    created_at: str = ""
    updated_at: str = ""


@dataclass
class CreatedKey(Model):
    __schema__ = "CreatedKey"
    __required__ = ("key", "api_key")
    __nested__ = {"api_key": ApiKey}
    key: str = ""
    api_key: Optional[ApiKey] = None


@dataclass
class Agent(Model):
    __schema__ = "Agent"
    __required__ = (
        "id", "user_id", "name", "agent_type", "model_provider", "model_parameters", "conversation_mode",
        "max_documents", "domain_keywords", "expertise_areas", "is_active", "knowledge_base_ids", "data_source_ids",
        "file_type_ids", "created_at", "updated_at",
    )
    id: str = ""
    user_id: str = ""
    created_by: Optional[str] = None
    name: str = ""
    description: Optional[str] = None
    agent_type: str = ""
    model_provider: str = ""
    model_name: Optional[str] = None
    model_parameters: Any = None
    conversation_mode: str = ""
    context_window: Optional[int] = None
    memory_retention_days: Optional[int] = None
    system_prompt: Optional[str] = None
    user_prompt_template: Optional[str] = None
    max_documents: int = 0
    similarity_threshold: Optional[float] = None
    rate_limit_per_hour: Optional[int] = None
    rate_limit_per_day: Optional[int] = None
    domain_keywords: List[str] = field(default_factory=list)
    expertise_areas: List[str] = field(default_factory=list)
    is_active: bool = True
    knowledge_base_ids: List[str] = field(default_factory=list)
    data_source_ids: List[str] = field(default_factory=list)
    file_type_ids: List[int] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Citation(Model):
    __schema__ = "CitationView"
    __required__ = ("index", "document_id", "filename", "snippet", "score")
    index: int = 0
    document_id: str = ""
    chunk_id: Optional[str] = None
    filename: str = ""
    snippet: str = ""
    score: float = 0.0
    # Where the passage stands in its file: page, page_end, regions ({page, bbox, page_size}), slide, sheet.
    location: Optional[Dict[str, Any]] = None


@dataclass
class Message(Model):
    __schema__ = "MessageView"
    __required__ = ("id", "role", "content", "citations")
    __nested__ = {"citations": Citation}
    id: str = ""
    role: str = ""
    content: str = ""
    citations: List[Citation] = field(default_factory=list)


@dataclass
class ChatAnswer(Model):
    __schema__ = "ChatAnswer"
    __required__ = ("message", "usage", "extractive")
    __nested__ = {"message": Message}
    conversation_id: Optional[str] = None
    message: Optional[Message] = None
    usage: Any = None
    extractive: bool = False


@dataclass
class DataSource(Model):
    __schema__ = "DataSource"
    __required__ = (
        "id", "user_id", "knowledge_base_id", "name", "source_type", "status", "config", "has_credentials",
        "auto_sync", "created_at", "updated_at",
    )
    id: str = ""
    user_id: str = ""
    created_by: Optional[str] = None
    knowledge_base_id: str = ""
    name: str = ""
    source_type: str = ""
    status: str = ""
    config: Any = None
    has_credentials: bool = False
    auto_sync: bool = False
    sync_frequency: Optional[int] = None
    last_sync: Optional[str] = None
    last_error: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""


@dataclass
class SyncRun(Model):
    __schema__ = "SyncRun"
    __required__ = ("id", "data_source_id", "status", "started_at", "added", "updated", "removed", "failed", "errors")
    id: str = ""
    data_source_id: str = ""
    status: str = ""
    started_at: str = ""
    finished_at: Optional[str] = None
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    errors: List[Any] = field(default_factory=list)


@dataclass
class Conversation(Model):
    __schema__ = "Conversation"
    __required__ = ("id", "user_id", "agent_id", "context", "created_at", "updated_at")
    id: str = ""
    user_id: str = ""
    agent_id: str = ""
    title: Optional[str] = None
    context: Any = None
    created_at: str = ""
    updated_at: str = ""


# Every model, for the tests that hold them to the OpenAPI document.
MODELS: List[Type[Model]] = [
    User, AuthResponse, KnowledgeBase, Document, Chunk, ParentChunk, SearchHit, SearchResponse, ApiKey,
    CreatedKey, Agent, Citation, Message, ChatAnswer, DataSource, SyncRun, Conversation,
]
