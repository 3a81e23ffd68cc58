"""``Lore`` and ``AsyncLore``: every endpoint of Lore's HTTP API, typed.

The two clients share their resources: a method describes its request once, and the sync client
sends it at once while the async one returns an awaitable. Only what waits or streams (uploads
with ``wait=True``, chat streams) is written twice.
"""

from __future__ import annotations

import mimetypes
import os
import time
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import httpx

from ._transport import AsyncTransport, Call, SyncTransport, endpoint
from .errors import LoreError
from .models import (
    Agent,
    ApiKey,
    AuthResponse,
    ChatAnswer,
    Chunk,
    Conversation,
    CreatedKey,
    DataSource,
    Document,
    KnowledgeBase,
    SearchHit,
    SearchResponse,
    SyncRun,
    User,
)

FileInput = Union[str, os.PathLike, bytes]
Progress = Callable[[int, int], None]
JSON = Dict[str, Any]


def _data(body: Any) -> List[Any]:
    return body.get("data", []) if isinstance(body, dict) else list(body or [])


def _list_of(model: Any) -> Callable[[Any], List[Any]]:
    return lambda body: [model.from_dict(item) for item in _data(body)]


def _nothing(body: Any) -> None:
    """For the calls that return nothing (whatever the response's body says)."""
    return None


def _clean(**fields: Any) -> JSON:
    """The fields given (None means left out; pass ``clear`` values explicitly where Lore takes null)."""
    return {k: v for k, v in fields.items() if v is not None}


class SearchResults(List[SearchHit]):
    """The hits of a search, best first; ``response`` has the rest (``took_ms``, ``mode`` ...)."""

    response: SearchResponse

    def __init__(self, response: SearchResponse) -> None:
        super().__init__(response.results)
        self.response = response


class StreamEvent:
    """One event of a streamed answer: ``token`` (with ``content``), then ``done`` (with
    ``answer``), or ``error`` (raised as a ``LoreError`` instead)."""

    def __init__(self, type: str, content: str = "", answer: Optional[ChatAnswer] = None) -> None:
        self.type = type
        self.content = content
        self.answer = answer

    def __repr__(self) -> str:
        return f"StreamEvent({self.type!r}, {self.content!r})"


def _stream_event(event: str, payload: Any) -> StreamEvent:
    if event == "token":
        return StreamEvent("token", content=str(payload.get("content", "")) if isinstance(payload, dict) else "")
    if event == "done":
        return StreamEvent("done", answer=ChatAnswer.from_dict(payload if isinstance(payload, dict) else {}))
    if event == "error":
        from .errors import error_for

        raise error_for(502, payload, None)
    return StreamEvent(event)


class _Resource:
    def __init__(self, transport: Union[SyncTransport, AsyncTransport]) -> None:
        self._t = transport

    def _run(self, call: Call) -> Any:
        return self._t.run(call)

    def _send(self, route: Tuple[str, str], *, id: Any = None, **options: Any) -> Any:
        """Sends a request to ``route`` (an ``endpoint(...)``): ``id`` fills the ``{id}`` of its path
        (a path without one ignores it); ``options`` are the rest of the ``Call`` (``json``,
        ``params``, ``parse`` ...)."""
        return self._run(Call(*route, path={"id": id}, **options))


# ---------------------------------------------------------------------------------- accounts


class Auth(_Resource):
    def register(
        self,
        username: str,
        email: str,
        password: str,
        *,
        invitation: Optional[str] = None,
        full_name: Optional[str] = None,
    ) -> AuthResponse:
        body = _clean(username=username, email=email, password=password, invitation=invitation, full_name=full_name)
        return self._send(endpoint("POST", "/v1/auth/register"), json=body, parse=AuthResponse.from_dict)

    def login(self, username: str, password: str) -> AuthResponse:
        """``username`` may be the account's email address."""
        body = {"username": username, "password": password}
        return self._send(endpoint("POST", "/v1/auth/login"), json=body, parse=AuthResponse.from_dict)

    def logout(self) -> None:
        return self._send(endpoint("POST", "/v1/auth/logout"), parse=_nothing)

    def change_password(self, current_password: str, new_password: str) -> None:
        body = {"current_password": current_password, "new_password": new_password}
        return self._send(endpoint("POST", "/v1/auth/password"), json=body, parse=_nothing)

    def end_all_sessions(self) -> int:
        return self._send(endpoint("DELETE", "/v1/auth/sessions"), parse=lambda b: int((b or {}).get("revoked", 0)))


class ApiKeys(_Resource):
    def create(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        knowledge_base_id: Optional[str] = None,
        description: Optional[str] = None,
        expires_at: Optional[str] = None,
        expires_in_days: Optional[int] = None,
        rate_limit: Optional[int] = None,
        daily_quota: Optional[int] = None,
        monthly_quota: Optional[int] = None,
        security: Optional[JSON] = None,
    ) -> CreatedKey:
        """A new key; ``.key`` is shown this once."""
        body = _clean(
            name=name, scopes=list(scopes), knowledge_base_id=knowledge_base_id, description=description,
            expires_at=expires_at, expires_in_days=expires_in_days, rate_limit=rate_limit, daily_quota=daily_quota,
            monthly_quota=monthly_quota, security=security,
        )
        return self._send(endpoint("POST", "/v1/api-keys"), json=body, parse=CreatedKey.from_dict)

    def list(self) -> List[ApiKey]:
        return self._send(endpoint("GET", "/v1/api-keys"), parse=_list_of(ApiKey))

    def update(self, id: str, **changes: Any) -> ApiKey:
        """Changes name, description, scopes (narrower only), rate_limit, daily_quota,
        monthly_quota, security or expires_at; ``None`` clears a limit, the description or the expiry."""
        return self._send(endpoint("PATCH", "/v1/api-keys/{id}"), id=id, json=changes, parse=ApiKey.from_dict)

    def revoke(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/api-keys/{id}"), id=id, parse=_nothing)


# ---------------------------------------------------------------------------------- knowledge


class KnowledgeBases(_Resource):
    def create(
        self,
        name: str,
        *,
        description: Optional[str] = None,
        icon_url: Optional[str] = None,
        settings: Optional[JSON] = None,
    ) -> KnowledgeBase:
        body = _clean(name=name, description=description, icon_url=icon_url, settings=settings)
        return self._send(endpoint("POST", "/v1/knowledge-bases"), json=body, parse=KnowledgeBase.from_dict)

    def list(self) -> List[KnowledgeBase]:
        return self._send(endpoint("GET", "/v1/knowledge-bases"), parse=_list_of(KnowledgeBase))

    def get(self, id: str) -> KnowledgeBase:
        return self._send(endpoint("GET", "/v1/knowledge-bases/{id}"), id=id, parse=KnowledgeBase.from_dict)

    def update(self, id: str, **changes: Any) -> KnowledgeBase:
        """Changes name, description, icon_url, status (``active``/``archived``) or settings."""
        route = endpoint("PATCH", "/v1/knowledge-bases/{id}")
        return self._send(route, id=id, json=changes, parse=KnowledgeBase.from_dict)

    def delete(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/knowledge-bases/{id}"), id=id, parse=_nothing)

    def share(self, id: str, workspace_id: str) -> JSON:
        """Shares a knowledge base read-only into another workspace the caller is in."""
        body = {"workspace_id": workspace_id}
        return self._send(endpoint("POST", "/v1/knowledge-bases/{id}/shares"), id=id, json=body)

    def shares(self, id: str) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/knowledge-bases/{id}/shares"), id=id, parse=_data)

    def unshare(self, id: str, workspace_id: str) -> None:
        route = endpoint("DELETE", "/v1/knowledge-bases/{id}/shares/{workspace_id}")
        return self._run(Call(*route, path={"id": id, "workspace_id": workspace_id}, parse=_nothing))


class Workspaces(_Resource):
    """Team workspaces and their members. To act in a team, pass
    ``headers={"X-Lore-Workspace": id}`` to the client (an API key acts in its own workspace)."""

    def create(self, name: str) -> JSON:
        return self._send(endpoint("POST", "/v1/workspaces"), json={"name": name})

    def list(self) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/workspaces"), parse=_data)

    def get(self, id: str) -> JSON:
        return self._send(endpoint("GET", "/v1/workspaces/{id}"), id=id)

    def rename(self, id: str, name: str) -> JSON:
        return self._send(endpoint("PATCH", "/v1/workspaces/{id}"), id=id, json={"name": name})

    def delete(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/workspaces/{id}"), id=id, parse=_nothing)

    def members(self, id: str) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/workspaces/{id}/members"), id=id, parse=_data)

    def add_member(self, id: str, username: str, role: str) -> JSON:
        body = {"username": username, "role": role}
        return self._send(endpoint("POST", "/v1/workspaces/{id}/members"), id=id, json=body)

    def set_role(self, id: str, user_id: str, role: str) -> JSON:
        route = endpoint("PATCH", "/v1/workspaces/{id}/members/{user_id}")
        return self._run(Call(*route, path={"id": id, "user_id": user_id}, json={"role": role}))

    def remove_member(self, id: str, user_id: str) -> None:
        route = endpoint("DELETE", "/v1/workspaces/{id}/members/{user_id}")
        return self._run(Call(*route, path={"id": id, "user_id": user_id}, parse=_nothing))

    def audit(
        self, id: str, *, action: Optional[str] = None, since: Optional[str] = None, before: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[JSON]:
        params = _clean(action=action, since=since, before=before, limit=limit)
        return self._send(endpoint("GET", "/v1/workspaces/{id}/audit"), id=id, params=params, parse=_data)

    def invite(
        self, id: str, role: str, *, email: Optional[str] = None, username: Optional[str] = None,
        expires_in_hours: Optional[int] = None,
    ) -> JSON:
        """An invitation link (its ``token`` is shown once), for whoever holds it, or only the
        person with ``email`` or ``username``."""
        body = _clean(role=role, email=email, username=username, expires_in_hours=expires_in_hours)
        return self._send(endpoint("POST", "/v1/workspaces/{id}/invitations"), id=id, json=body)

    def invitations(self, id: str) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/workspaces/{id}/invitations"), id=id, parse=_data)

    def revoke_invitation(self, id: str, invitation_id: str) -> None:
        route = endpoint("DELETE", "/v1/workspaces/{id}/invitations/{invitation_id}")
        return self._run(Call(*route, path={"id": id, "invitation_id": invitation_id}, parse=_nothing))

    def join(self, token: str) -> JSON:
        return self._send(endpoint("POST", "/v1/workspaces/join"), json={"token": token})


class Evaluations(_Resource):
    """Golden questions run against search configurations, with hit@k, MRR, nDCG@10 and latency
    kept per configuration. A run starts ``running``; ``get`` it until ``completed``."""

    def create(
        self,
        knowledge_base_id: str,
        questions: List[JSON],
        *,
        configurations: Optional[List[JSON]] = None,
        k: Optional[int] = None,
        name: Optional[str] = None,
    ) -> JSON:
        body = _clean(questions=questions, configurations=configurations, k=k, name=name)
        return self._send(endpoint("POST", "/v1/knowledge-bases/{id}/evaluations"), id=knowledge_base_id, json=body)

    def list(self, knowledge_base_id: str) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/knowledge-bases/{id}/evaluations"), id=knowledge_base_id, parse=_data)

    def draft(self, knowledge_base_id: str, provider: str, model: str, *, count: Optional[int] = None) -> JSON:
        """Golden questions drafted by your chat model from the knowledge base, to review before
        ``create``: ``{"questions": [...], "log": "..."}``."""
        body = _clean(provider=provider, model=model, count=count)
        route = endpoint("POST", "/v1/knowledge-bases/{id}/evaluations/draft")
        return self._send(route, id=knowledge_base_id, json=body)

    def get(self, id: str) -> JSON:
        return self._send(endpoint("GET", "/v1/evaluations/{id}"), id=id)


def _open(file: FileInput, filename: Optional[str]) -> Tuple[str, Any, int]:
    if isinstance(file, (bytes, bytearray)):
        if not filename:
            raise ValueError("name the file: upload(kb_id, data, filename='notes.md')")
        return filename, bytes(file), len(file)
    path = Path(file)
    return filename or path.name, path, path.stat().st_size


class _ProgressReader:
    """A file read by httpx in pieces, reporting the bytes sent so far."""

    def __init__(self, path: Path, total: int, progress: Optional[Progress]) -> None:
        self._file = open(path, "rb")
        self._total = total
        self._sent = 0
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        chunk = self._file.read(n)
        self._sent += len(chunk)
        if self._progress and chunk:
            self._progress(self._sent, self._total)
        return chunk

    def close(self) -> None:
        self._file.close()


class _DocumentCalls(_Resource):
    def _upload_call(
        self,
        knowledge_base_id: str,
        file: FileInput,
        filename: Optional[str],
        metadata: Optional[JSON],
        chunking_config: Optional[JSON],
        on_progress: Optional[Progress],
    ) -> Tuple[Call, Optional[_ProgressReader]]:
        import json

        name, content, size = _open(file, filename)
        reader = None
        if isinstance(content, Path):
            reader = _ProgressReader(content, size, on_progress)
            payload: Any = reader
        else:
            payload = content
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        data = _clean(
            metadata=json.dumps(metadata) if metadata is not None else None,
            chunking_config=json.dumps(chunking_config) if chunking_config is not None else None,
        )
        call = Call(
            *endpoint("POST", "/v1/knowledge-bases/{id}/documents"),
            path={"id": knowledge_base_id},
            files={"file": (name, payload, mime)},
            data=data or None,
            parse=lambda b: Document.from_dict(b or {}),
            retry=False,
        )
        if on_progress and reader is None:
            on_progress(size, size)
        return call, reader

    def get(self, id: str) -> Document:
        return self._send(endpoint("GET", "/v1/documents/{id}"), id=id, parse=Document.from_dict)

    def list(
        self,
        knowledge_base_id: str,
        *,
        status: Optional[str] = None,
        include_deleted: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> List[Document]:
        params = {"status": status, "include_deleted": include_deleted, "limit": limit, "offset": offset}
        route = endpoint("GET", "/v1/knowledge-bases/{id}/documents")
        return self._send(route, id=knowledge_base_id, params=params, parse=_list_of(Document))

    def delete(self, id: str) -> None:
        """Moves the document to the trash (restorable until it is purged)."""
        return self._send(endpoint("DELETE", "/v1/documents/{id}"), id=id, parse=_nothing)

    def restore(self, id: str) -> Document:
        return self._send(endpoint("POST", "/v1/documents/{id}/restore"), id=id, parse=Document.from_dict)

    def chunks(self, id: str) -> List[Chunk]:
        return self._send(endpoint("GET", "/v1/documents/{id}/chunks"), id=id, parse=_list_of(Chunk))

    def _file_call(self, id: str) -> Call:
        return Call(*endpoint("GET", "/v1/documents/{id}/file"), path={"id": id})

    def _page_call(self, id: str, page: int) -> Call:
        return Call(*endpoint("GET", "/v1/documents/{id}/pages/{page}"), path={"id": id, "page": str(page)})


def _folder_files(folder: Union[str, os.PathLike], pattern: str) -> List[Path]:
    root = Path(folder)
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("."))


class Documents(_DocumentCalls):
    def upload(
        self, knowledge_base_id: str, file: FileInput, filename: Optional[str] = None, *, wait: bool = False,
        timeout: float = 600.0, metadata: Optional[JSON] = None, chunking_config: Optional[JSON] = None,
        on_progress: Optional[Progress] = None,
    ) -> Document:
        """Uploads a file (a path, or bytes with ``filename``). With ``wait=True``, returns once it
        is processed (``status`` ``completed`` or ``failed``). ``on_progress(sent, total)`` hears
        of the bytes sent."""
        call, reader = self._upload_call(knowledge_base_id, file, filename, metadata, chunking_config, on_progress)
        try:
            document = self._t.run(call)
        finally:
            if reader:
                reader.close()
        return self.wait(document.id, timeout=timeout) if wait else document

    def upload_folder(
        self, knowledge_base_id: str, folder: Union[str, os.PathLike], *, pattern: str = "**/*", wait: bool = False,
        timeout: float = 600.0, on_progress: Optional[Callable[[int, int, Path], None]] = None,
    ) -> List[Document]:
        """Uploads every file under ``folder`` matching ``pattern``; ``on_progress(done, total,
        path)`` after each file."""
        files = _folder_files(folder, pattern)
        documents = []
        for i, path in enumerate(files):
            documents.append(self.upload(knowledge_base_id, path))
            if on_progress:
                on_progress(i + 1, len(files), path)
        return [self.wait(d.id, timeout=timeout) for d in documents] if wait else documents

    def wait(self, id: str, *, timeout: float = 600.0, interval: float = 0.25) -> Document:
        """Polls until the document is processed; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            document = self.get(id)
            if document.done:
                return document
            if time.monotonic() > deadline:
                raise TimeoutError(f"document {id} still {document.status} after {timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 2.0)

    def download(self, id: str) -> bytes:
        """The file as it was uploaded."""
        return self._t.raw(self._file_call(id)).content

    def page_image(self, id: str, page: int) -> bytes:
        """A PDF page as a PNG, to show a chunk's ``regions`` on (boxes come with their page's size)."""
        return self._t.raw(self._page_call(id, page)).content


class AsyncDocuments(_DocumentCalls):
    async def upload(
        self, knowledge_base_id: str, file: FileInput, filename: Optional[str] = None, *, wait: bool = False,
        timeout: float = 600.0, metadata: Optional[JSON] = None, chunking_config: Optional[JSON] = None,
        on_progress: Optional[Progress] = None,
    ) -> Document:
        call, reader = self._upload_call(knowledge_base_id, file, filename, metadata, chunking_config, on_progress)
        if reader is not None:
            # httpx's async client streams bytes, not sync file objects: read in pieces here.
            chunks = []
            while True:
                piece = reader.read(1 << 16)
                if not piece:
                    break
                chunks.append(piece)
            reader.close()
            name, _, mime = call.files["file"]
            call.files = {"file": (name, b"".join(chunks), mime)}
        document = await self._t.run(call)
        return await self.wait(document.id, timeout=timeout) if wait else document

    async def upload_folder(
        self, knowledge_base_id: str, folder: Union[str, os.PathLike], *, pattern: str = "**/*", wait: bool = False,
        timeout: float = 600.0, on_progress: Optional[Callable[[int, int, Path], None]] = None,
    ) -> List[Document]:
        files = _folder_files(folder, pattern)
        documents = []
        for i, path in enumerate(files):
            documents.append(await self.upload(knowledge_base_id, path))
            if on_progress:
                on_progress(i + 1, len(files), path)
        if not wait:
            return documents
        return [await self.wait(d.id, timeout=timeout) for d in documents]

    async def wait(self, id: str, *, timeout: float = 600.0, interval: float = 0.25) -> Document:
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            document = await self.get(id)
            if document.done:
                return document
            if time.monotonic() > deadline:
                raise TimeoutError(f"document {id} still {document.status} after {timeout} s")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 2.0)

    async def download(self, id: str) -> bytes:
        return (await self._t.raw(self._file_call(id))).content

    async def page_image(self, id: str, page: int) -> bytes:
        return (await self._t.raw(self._page_call(id, page))).content


class Chunks(_Resource):
    def get(self, id: str) -> Chunk:
        return self._send(endpoint("GET", "/v1/chunks/{id}"), id=id, parse=Chunk.from_dict)

    def update(
        self,
        id: str,
        *,
        content: Optional[str] = None,
        metadata: Optional[JSON] = None,
        enabled: Optional[bool] = None,
    ) -> Chunk:
        """New text (re-indexed and re-embedded), new metadata, or ``enabled=False`` to keep the
        chunk out of every search."""
        body = _clean(content=content, metadata=metadata, enabled=enabled)
        return self._send(endpoint("PATCH", "/v1/chunks/{id}"), id=id, json=body, parse=Chunk.from_dict)

    def add(
        self,
        document_id: str,
        content: Optional[str] = None,
        *,
        question: Optional[str] = None,
        answer: Optional[str] = None,
        match_answer: Optional[bool] = None,
        metadata: Optional[JSON] = None,
    ) -> Chunk:
        """A chunk written by hand, or a Q&A entry (``question`` and ``answer``), found by its
        question (and its answer too with ``match_answer=True``)."""
        body = _clean(content=content, question=question, answer=answer, match_answer=match_answer, metadata=metadata)
        route = endpoint("POST", "/v1/documents/{id}/chunks")
        return self._send(route, id=document_id, json=body, parse=Chunk.from_dict)


class Chunking(_Resource):
    def preview(
        self, text: str, *, chunking_config: Optional[JSON] = None, knowledge_base_id: Optional[str] = None
    ) -> JSON:
        body = _clean(text=text, chunking_config=chunking_config, knowledge_base_id=knowledge_base_id)
        return self._send(endpoint("POST", "/v1/chunking/preview"), json=body)

    def from_description(
        self, description: str, *, llm_provider: Optional[str] = None, model: Optional[str] = None
    ) -> JSON:
        body = _clean(description=description, llm_provider=llm_provider, model=model)
        return self._send(endpoint("POST", "/v1/chunking/from-description"), json=body)


# ---------------------------------------------------------------------------------- agents


class _AgentCalls(_Resource):
    def create(self, name: str, **spec: Any) -> Agent:
        """An agent: ``knowledge_base_ids``, ``model_provider`` (``extractive`` by default),
        ``model_name``, ``system_prompt``, ``max_documents`` ... as Lore's AgentSpec."""
        body = {"name": name, **spec}
        return self._send(endpoint("POST", "/v1/agents"), json=body, parse=Agent.from_dict)

    def list(self) -> List[Agent]:
        return self._send(endpoint("GET", "/v1/agents"), parse=_list_of(Agent))

    def get(self, id: str) -> Agent:
        return self._send(endpoint("GET", "/v1/agents/{id}"), id=id, parse=Agent.from_dict)

    def update(self, id: str, **changes: Any) -> Agent:
        return self._send(endpoint("PATCH", "/v1/agents/{id}"), id=id, json=changes, parse=Agent.from_dict)

    def delete(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/agents/{id}"), id=id, parse=_nothing)

    def route(self, question: str) -> JSON:
        """Which agent knows the question's domain best."""
        return self._send(endpoint("POST", "/v1/agents/route"), json={"question": question})

    def chat(self, id: str, message: str, *, conversation_id: Optional[str] = None) -> ChatAnswer:
        """An answer with citations; pass the returned ``conversation_id`` to go on."""
        body = _clean(message=message, conversation_id=conversation_id)
        return self._send(endpoint("POST", "/v1/agents/{id}/chat"), id=id, json=body, parse=ChatAnswer.from_dict)

    def _stream_call(self, id: str, message: str, conversation_id: Optional[str]) -> Call:
        body = _clean(message=message, conversation_id=conversation_id, stream=True)
        return Call("POST", "/v1/agents/{id}/chat", path={"id": id}, json=body)


class Agents(_AgentCalls):
    def chat_stream(self, id: str, message: str, *, conversation_id: Optional[str] = None) -> Iterator[StreamEvent]:
        """The answer as it is written: ``token`` events, then ``done`` with the whole answer."""
        for event, payload in self._t.events(self._stream_call(id, message, conversation_id)):
            yield _stream_event(event, payload)


class AsyncAgents(_AgentCalls):
    async def chat_stream(
        self, id: str, message: str, *, conversation_id: Optional[str] = None
    ) -> AsyncIterator[StreamEvent]:
        async for event, payload in self._t.events(self._stream_call(id, message, conversation_id)):
            yield _stream_event(event, payload)


class Conversations(_Resource):
    def list(self, *, agent_id: Optional[str] = None) -> List[Conversation]:
        params = {"agent_id": agent_id}
        return self._send(endpoint("GET", "/v1/conversations"), params=params, parse=_list_of(Conversation))

    def get(self, id: str) -> Conversation:
        return self._send(endpoint("GET", "/v1/conversations/{id}"), id=id, parse=Conversation.from_dict)

    def messages(self, id: str) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/conversations/{id}/messages"), id=id, parse=_data)

    def delete(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/conversations/{id}"), id=id, parse=_nothing)


class _CompletionCalls(_Resource):
    def _call(self, model: str, messages: Sequence[JSON], stream: bool, extra: JSON) -> Call:
        body = {"model": model, "messages": list(messages), "stream": stream, **extra}
        return Call(*endpoint("POST", "/v1/chat/completions"), json=body)


class ChatCompletions(_CompletionCalls):
    """Lore's OpenAI-compatible endpoint; ``model`` is an agent's id or name."""

    def create(self, model: str, messages: Sequence[JSON], *, stream: bool = False, **extra: Any) -> Any:
        call = self._call(model, messages, stream, extra)
        if not stream:
            return self._t.run(call)
        return (payload for event, payload in self._t.events(call) if isinstance(payload, dict))


class AsyncChatCompletions(_CompletionCalls):
    async def create(self, model: str, messages: Sequence[JSON], *, stream: bool = False, **extra: Any) -> Any:
        call = self._call(model, messages, stream, extra)
        if not stream:
            return await self._t.run(call)

        async def chunks() -> AsyncIterator[JSON]:
            async for _, payload in self._t.events(call):
                if isinstance(payload, dict):
                    yield payload

        return chunks()


# ---------------------------------------------------------------------------------- sources


class DataSources(_Resource):
    def create(self, name: str, knowledge_base_id: str, source_type: str, config: JSON, **more: Any) -> DataSource:
        """``source_type``: ``local_folder``, ``web``, ``git`` or ``s3``; ``credentials``,
        ``auto_sync`` and ``sync_frequency`` may follow."""
        body = {"name": name, "knowledge_base_id": knowledge_base_id, "source_type": source_type, "config": config}
        body.update(more)
        return self._send(endpoint("POST", "/v1/data-sources"), json=body, parse=DataSource.from_dict)

    def list(self) -> List[DataSource]:
        return self._send(endpoint("GET", "/v1/data-sources"), parse=_list_of(DataSource))

    def get(self, id: str) -> DataSource:
        return self._send(endpoint("GET", "/v1/data-sources/{id}"), id=id, parse=DataSource.from_dict)

    def update(self, id: str, **changes: Any) -> DataSource:
        return self._send(endpoint("PATCH", "/v1/data-sources/{id}"), id=id, json=changes, parse=DataSource.from_dict)

    def delete(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/data-sources/{id}"), id=id, parse=_nothing)

    def sync(self, id: str) -> SyncRun:
        return self._send(endpoint("POST", "/v1/data-sources/{id}/sync"), id=id, parse=SyncRun.from_dict)

    def syncs(self, id: str) -> List[SyncRun]:
        return self._send(endpoint("GET", "/v1/data-sources/{id}/syncs"), id=id, parse=_list_of(SyncRun))


# ---------------------------------------------------------------------------------- account-wide


def _usage_filters(filters: JSON) -> JSON:
    """The filters as sent: ``from_`` (``from`` being a Python keyword) as ``from``."""
    if "from_" in filters:
        filters["from"] = filters.pop("from_")
    return filters


class Usage(_Resource):
    def api(self, **filters: Any) -> JSON:
        """API-key requests: ``api_key_id``, ``from``/``from_``, ``to``, ``status``, ``endpoint``,
        ``limit``, ``offset``."""
        return self._send(endpoint("GET", "/v1/usage/api"), params=_usage_filters(filters))

    def agents(self, **filters: Any) -> JSON:
        return self._send(endpoint("GET", "/v1/usage/agents"), params=_usage_filters(filters))


class Settings(_Resource):
    """The caller's settings: defaults, retention, notifications, provider keys (sealed at rest)."""

    def get(self) -> JSON:
        return self._send(endpoint("GET", "/v1/config"))

    def update(self, **changes: Any) -> JSON:
        return self._send(endpoint("PUT", "/v1/config"), json=changes)


class FileTypes(_Resource):
    def list(self) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/file-types"), parse=_data)

    def create(self, **spec: Any) -> JSON:
        return self._send(endpoint("POST", "/v1/file-types"), json=spec)

    def update(self, id: int, **changes: Any) -> JSON:
        return self._send(endpoint("PATCH", "/v1/file-types/{id}"), id=id, json=changes)


class Admin(_Resource):
    """Administrators only."""

    def users(self, *, limit: int = 100, offset: int = 0) -> List[User]:
        params = {"limit": limit, "offset": offset}
        return self._send(endpoint("GET", "/v1/admin/users"), params=params, parse=_list_of(User))

    def set_user_active(self, id: str, is_active: bool) -> User:
        body = {"is_active": is_active}
        return self._send(endpoint("PATCH", "/v1/admin/users/{id}"), id=id, json=body, parse=User.from_dict)

    def invite(self, *, email: Optional[str] = None, expires_in_hours: Optional[int] = None) -> JSON:
        body = _clean(email=email, expires_in_hours=expires_in_hours)
        return self._send(endpoint("POST", "/v1/admin/invitations"), json=body)

    def invitations(self) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/admin/invitations"), parse=_data)

    def revoke_invitation(self, id: str) -> None:
        return self._send(endpoint("DELETE", "/v1/admin/invitations/{id}"), id=id, parse=_nothing)

    def nodes(self) -> List[JSON]:
        return self._send(endpoint("GET", "/v1/admin/nodes"), parse=_data)

    def audit(
        self, *, user_id: Optional[str] = None, action: Optional[str] = None, since: Optional[str] = None,
        before: Optional[str] = None, limit: Optional[int] = None,
    ) -> List[JSON]:
        """Everyone's audit log, or the entries concerning ``user_id``, newest first."""
        params = _clean(user_id=user_id, action=action, since=since, before=before, limit=limit)
        return self._send(endpoint("GET", "/v1/admin/audit"), params=params, parse=_data)

    def server(self) -> JSON:
        """The answering node's readiness, queue, disk and the limits it enforces."""
        return self._send(endpoint("GET", "/v1/admin/server"))


# ---------------------------------------------------------------------------------- clients


def _search_call(
    knowledge_base_ids: Union[str, Sequence[str]],
    query: str,
    top_k: Optional[int],
    mode: Optional[str],
    filters: Optional[JSON],
    similarity_threshold: Optional[float],
    search_target: Optional[str],
    weights: Optional[JSON],
    fusion: Optional[str] = None,
    rerank: Optional[Union[bool, JSON]] = None,
) -> Call:
    body = _clean(
        query=query, top_k=top_k, mode=mode, filters=filters, similarity_threshold=similarity_threshold,
        search_target=search_target, weights=weights, fusion=fusion, rerank=rerank,
    )
    parse = lambda b: SearchResults(SearchResponse.from_dict(b))  # noqa: E731
    if isinstance(knowledge_base_ids, str):
        return Call(*endpoint("POST", "/v1/knowledge-bases/{id}/search"), path={"id": knowledge_base_ids}, json=body,
                    parse=parse)
    body["knowledge_base_ids"] = list(knowledge_base_ids)
    return Call(*endpoint("POST", "/v1/search"), json=body, parse=parse)


class _Client:
    def _setup(self, transport: Union[SyncTransport, AsyncTransport], is_async: bool) -> None:
        self.auth = Auth(transport)
        self.api_keys = ApiKeys(transport)
        self.knowledge_bases = KnowledgeBases(transport)
        self.evaluations = Evaluations(transport)
        self.documents = AsyncDocuments(transport) if is_async else Documents(transport)
        self.chunks = Chunks(transport)
        self.chunking = Chunking(transport)
        self.agents = AsyncAgents(transport) if is_async else Agents(transport)
        self.conversations = Conversations(transport)
        self.chat = _Namespace(completions=AsyncChatCompletions(transport) if is_async else ChatCompletions(transport))
        self.data_sources = DataSources(transport)
        self.usage = Usage(transport)
        self.settings = Settings(transport)
        self.file_types = FileTypes(transport)
        self.admin = Admin(transport)
        self.workspaces = Workspaces(transport)
        self._transport = transport

    def search(
        self,
        knowledge_base_ids: Union[str, Sequence[str]],
        query: str,
        *,
        top_k: Optional[int] = None,
        mode: Optional[str] = None,
        filters: Optional[JSON] = None,
        similarity_threshold: Optional[float] = None,
        search_target: Optional[str] = None,
        weights: Optional[JSON] = None,
        fusion: Optional[str] = None,
        rerank: Optional[Union[bool, JSON]] = None,
    ) -> Any:
        """Searches one knowledge base (an id) or several (a list of ids): ``mode`` is
        ``hybrid`` (the default), ``vector`` or ``fulltext``; hybrid ``fusion`` is ``weighted``
        (the default) or ``rrf``; ``rerank`` is ``False`` (no rerank stage) or a reranker
        (``{"provider": "tei", "base_url": ...}``), the knowledge base's otherwise. Returns the
        hits, best first."""
        call = _search_call(knowledge_base_ids, query, top_k, mode, filters, similarity_threshold, search_target,
                            weights, fusion, rerank)
        return self._transport.run(call)

    def me(self) -> Any:
        return self._transport.run(Call(*endpoint("GET", "/v1/me"), parse=User.from_dict))

    def notifications(self) -> Any:
        return self._transport.run(Call(*endpoint("GET", "/v1/notifications"), parse=_data))

    def audit(
        self, *, action: Optional[str] = None, since: Optional[str] = None, before: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Any:
        """The audit log entries that concern the signed-in person, newest first (``action`` is a
        prefix: ``auth.`` for every sign-in event; ``before`` pages by an entry's ``at``)."""
        params = _clean(action=action, since=since, before=before, limit=limit)
        return self._transport.run(Call(*endpoint("GET", "/v1/audit"), params=params, parse=_data))


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def _connection(
    base_url: Optional[str], api_key: Optional[str], headers: Optional[Dict[str, str]]
) -> Tuple[str, Dict[str, str]]:
    """The server's address and the request headers, from the arguments or the environment."""
    from ._transport import headers_for

    url = (base_url or os.environ.get("LORE_BASE_URL") or "http://127.0.0.1:8080").rstrip("/")
    key = api_key if api_key is not None else os.environ.get("LORE_API_KEY")
    return url, headers_for(key, headers)


class Lore(_Client):
    """A synchronous client: ``Lore(base_url=..., api_key=...)`` (an API key or a session token;
    ``LORE_BASE_URL`` and ``LORE_API_KEY`` are read when they are not given)."""

    def __init__(
        self, base_url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 120.0,
        max_retries: int = 2, headers: Optional[Dict[str, str]] = None, http_client: Optional[httpx.Client] = None,
    ) -> None:
        self.base_url, sent = _connection(base_url, api_key, headers)
        self._http = http_client or httpx.Client(base_url=self.base_url, headers=sent, timeout=timeout)
        self._setup(SyncTransport(self._http, max_retries), is_async=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Lore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncLore(_Client):
    """The same API for asyncio: every method is awaited, streams are async iterators."""

    def __init__(
        self, base_url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 120.0,
        max_retries: int = 2, headers: Optional[Dict[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        self.base_url, sent = _connection(base_url, api_key, headers)
        self._http = http_client or httpx.AsyncClient(base_url=self.base_url, headers=sent, timeout=timeout)
        self._setup(AsyncTransport(self._http, max_retries), is_async=True)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncLore":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["Lore", "AsyncLore", "SearchResults", "StreamEvent", "LoreError", "Iterable"]
