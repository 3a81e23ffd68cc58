"""Errors as Lore reports them: every error response carries a stable ``code``."""

from __future__ import annotations

from typing import Any, Optional


class LoreError(Exception):
    """An error answer from Lore (or no answer at all, with ``code`` ``connection_error``).

    ``code`` is Lore's stable error code (``not_found``, ``rate_limited``, ``invalid_body`` ...),
    ``status`` the HTTP status, ``retry_after`` the seconds Lore asked to wait, if any.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: Optional[int] = None,
        *,
        type: Optional[str] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.type = type
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body


class AuthenticationError(LoreError):
    """401: no token, or one that is invalid, revoked or expired."""


class PermissionDeniedError(LoreError):
    """403: the key lacks a scope, is bound elsewhere, or its address or origin is not allowed."""


class NotFoundError(LoreError):
    """404: no such object for this caller (another tenant's objects are not found either)."""


class ConflictError(LoreError):
    """409: a duplicate document, a taken name, an archived knowledge base."""


class ValidationError(LoreError):
    """400, 413, 415, 422: the request was refused as it stands."""


class RateLimitError(LoreError):
    """429: a rate limit or quota; ``retry_after`` says when to try again."""


class ServerError(LoreError):
    """5xx: Lore or something it depends on is unavailable."""


class ConnectionError(LoreError):
    """No answer: Lore could not be reached."""


# Codes worth trying again after a pause (the rest would fail the same way).
RETRYABLE_CODES = frozenset(
    {
        "rate_limited",
        "model_unavailable",
        "embedding_failed",
        "llm_unavailable",
        "llm_timeout",
        "service_unavailable",
        "storage_unavailable",
        "database_unavailable",
        "database_busy",
        "connection_error",
    }
)


def error_for(status: int, body: Any, retry_after: Optional[float]) -> LoreError:
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = str(detail.get("code") or "unknown_error")
        message = str(detail.get("message") or "")
        kind, request_id = detail.get("type"), detail.get("request_id")
    else:
        code, message, kind, request_id = f"http_{status}", str(body)[:500], None, None
    cls: type[LoreError]
    if status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 429:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = ValidationError
    return cls(code, message, status, type=kind, request_id=request_id, retry_after=retry_after, body=body)
