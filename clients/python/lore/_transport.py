"""Requests to Lore: URLs from the OpenAPI path templates, errors as exceptions carrying Lore's
code, retries of the retryable codes (honouring ``Retry-After``), and server-sent events."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, Tuple, Union
from urllib.parse import quote

import httpx

from ._version import __version__
from .errors import RETRYABLE_CODES, LoreError, error_for

# The longest pause a retry waits, whatever Retry-After says.
MAX_RETRY_WAIT = 30.0


def endpoint(method: str, template: str) -> Tuple[str, str]:
    """Names an endpoint of Lore's API as its OpenAPI document does. Every call goes through this
    marker, so that the SDK's tests can hold the SDK's endpoints to the document's."""
    return method, template


@dataclass
class Call:
    """One request, described before it is sent (so the sync and async clients share it)."""

    method: str
    template: str
    path: Dict[str, Any] = field(default_factory=dict)
    json: Any = None
    params: Optional[Dict[str, Any]] = None
    files: Any = None
    data: Any = None
    parse: Callable[[Any], Any] = lambda body: body
    # Uploads are not repeated: the file may be a stream, and the server deduplicates anyway.
    retry: bool = True

    def send_options(self) -> Dict[str, Any]:
        """What the request sends besides its method and URL."""
        return {"json": self.json, "params": self.query(), "files": self.files, "data": self.data}

    def result(self, response: httpx.Response) -> Any:
        """The parsed body of the response; a ``LoreError`` where it is an error."""
        check(response)
        return self.parse(_body(response))

    def url(self) -> str:
        url = self.template
        for name, value in self.path.items():
            url = url.replace("{" + name + "}", quote(str(value), safe=""))
        return url

    def query(self) -> Optional[Dict[str, Any]]:
        if not self.params:
            return None
        out = {}
        for k, v in self.params.items():
            if v is None:
                continue
            out[k] = ("true" if v else "false") if isinstance(v, bool) else v
        return out


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise error_for(response.status_code, _body(response), _retry_after(response))


def delay(attempt: int, error: LoreError) -> float:
    if error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_WAIT)
    return min(0.5 * (2**attempt) + random.uniform(0, 0.25), MAX_RETRY_WAIT)


def should_retry(error: LoreError, attempt: int, max_retries: int, call: Call) -> bool:
    return call.retry and attempt < max_retries and error.code in RETRYABLE_CODES


def headers_for(api_key: Optional[str], extra: Optional[Dict[str, str]]) -> Dict[str, str]:
    headers = {"user-agent": f"lore-client-python/{__version__}", "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def connection_error(e: Exception) -> LoreError:
    from .errors import ConnectionError as LoreConnectionError

    return LoreConnectionError("connection_error", f"Lore could not be reached: {e}")


def as_lore_error(e: Union[httpx.TransportError, LoreError]) -> LoreError:
    """A failed attempt's error: Lore's own, or a ``ConnectionError`` where Lore was not reached."""
    return connection_error(e) if isinstance(e, httpx.TransportError) else e


class SyncTransport:
    def __init__(self, client: httpx.Client, max_retries: int) -> None:
        self.http = client
        self.max_retries = max_retries

    def run(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return call.result(self.http.request(call.method, call.url(), **call.send_options()))
            except (httpx.TransportError, LoreError) as e:
                error = as_lore_error(e)
            if not should_retry(error, attempt, self.max_retries, call):
                raise error
            time.sleep(delay(attempt, error))
            attempt += 1

    def raw(self, call: Call) -> httpx.Response:
        response = self.http.request(call.method, call.url(), params=call.query())
        check(response)
        return response

    def events(self, call: Call) -> Iterator[Tuple[str, Any]]:
        with self.http.stream(call.method, call.url(), json=call.json, headers={"accept": "text/event-stream"}) as r:
            if r.status_code >= 400:
                r.read()
                check(r)
            yield from parse_events(r.iter_lines())


class AsyncTransport:
    def __init__(self, client: httpx.AsyncClient, max_retries: int) -> None:
        self.http = client
        self.max_retries = max_retries

    async def run(self, call: Call) -> Any:
        import asyncio

        attempt = 0
        while True:
            try:
                return call.result(await self.http.request(call.method, call.url(), **call.send_options()))
            except (httpx.TransportError, LoreError) as e:
                error = as_lore_error(e)
            if not should_retry(error, attempt, self.max_retries, call):
                raise error
            await asyncio.sleep(delay(attempt, error))
            attempt += 1

    async def raw(self, call: Call) -> httpx.Response:
        response = await self.http.request(call.method, call.url(), params=call.query())
        check(response)
        return response

    async def events(self, call: Call) -> AsyncIterator[Tuple[str, Any]]:
        async with self.http.stream(
            call.method, call.url(), json=call.json, headers={"accept": "text/event-stream"}
        ) as r:
            if r.status_code >= 400:
                await r.aread()
                check(r)
            lines = []
            async for line in r.aiter_lines():
                lines.append(line)
                if line == "":
                    for event in parse_events(iter(lines)):
                        yield event
                    lines = []
            for event in parse_events(iter(lines + [""])):
                yield event


def parse_events(lines: Iterator[str]) -> Iterator[Tuple[str, Any]]:
    """Server-sent events as (event, data), the data decoded from JSON where it is JSON."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload: Any = json.loads(text)
                except ValueError:
                    payload = text
                yield event, payload
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        text = "\n".join(data)
        try:
            yield event, json.loads(text)
        except ValueError:
            yield event, text
