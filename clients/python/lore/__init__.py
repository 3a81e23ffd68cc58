"""The Python client of Lore, the self-hosted knowledge base and RAG service.

    from lore import Lore
    lore = Lore(base_url="http://127.0.0.1:8080", api_key="lore_...")
    kb = lore.knowledge_bases.create(name="docs")
    doc = lore.documents.upload(kb.id, "guide.md", wait=True)
    hits = lore.search(kb.id, "query", top_k=5)
"""

from ._version import __version__
from .client import AsyncLore, Lore, SearchResults, StreamEvent
from .errors import (
    AuthenticationError,
    ConflictError,
    ConnectionError,
    LoreError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from .models import (
    Agent,
    ApiKey,
    AuthResponse,
    ChatAnswer,
    Chunk,
    Citation,
    Conversation,
    CreatedKey,
    DataSource,
    Document,
    KnowledgeBase,
    Message,
    SearchHit,
    SearchResponse,
    SyncRun,
    User,
)

__all__ = [
    "__version__", "Lore", "AsyncLore", "SearchResults", "StreamEvent", "LoreError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "ValidationError", "RateLimitError", "ServerError",
    "ConnectionError", "Agent", "ApiKey", "AuthResponse", "ChatAnswer", "Chunk", "Citation", "Conversation",
    "CreatedKey", "DataSource", "Document", "KnowledgeBase", "Message", "SearchHit", "SearchResponse", "SyncRun",
    "User",
]
