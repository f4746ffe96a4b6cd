"""Where hot-reload documents come from: `CONFIG_URL` (conditional GET) or `CONFIG_FILE` (mtime).

`fetch` returns None when nothing changed, and raises `SourceUnavailableError`
when the source cannot be read; the reloader decides what to do about either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import anyio
import httpx

from tgworkers.config import Settings

HTTP_TIMEOUT_S: Final = 5.0
MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""A config document is a few KiB; a bigger answer is not read past this (1 MiB)."""


class SourceUnavailableError(Exception):
    """The config source could not be read (service down, file missing)."""


@dataclass(frozen=True)
class Fetched:
    """A document as read from its source, and the version that names it."""

    body: bytes
    version: str


class ConfigSource(Protocol):
    """Where documents come from; `fetch` returns None when nothing changed."""

    description: str

    async def fetch(self) -> Fetched | None: ...

    async def aclose(self) -> None: ...


class HttpSource:
    """`CONFIG_URL`: a conditional GET; `304 Not Modified` means no change.

    Read as named: a redirect is not followed (a document that moved is named again
    in `CONFIG_URL`, not chased to wherever a 302 points), and the body is streamed
    and refused past `MAX_DOCUMENT_BYTES`, whatever `Content-Length` claims.
    """

    def __init__(self, url: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url
        self.description = url
        self.etag: str | None = None
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def fetch(self) -> Fetched | None:
        headers = {"Accept": "application/json"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        try:
            async with self.client.stream("GET", self.url, headers=headers) as response:
                status = response.status_code
                if status == httpx.codes.NOT_MODIFIED:
                    return None
                if response.is_redirect:
                    raise SourceUnavailableError(f"HTTP {status}: redirects are not followed")
                if status != httpx.codes.OK:
                    raise SourceUnavailableError(f"HTTP {status}")
                body = await _capped(response)
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(type(exc).__name__) from None
        self.etag = response.headers.get("ETag")
        return Fetched(body, self.etag or digest(body))

    async def aclose(self) -> None:
        await self.client.aclose()


async def _capped(response: httpx.Response) -> bytes:
    """The body, read up to `MAX_DOCUMENT_BYTES`; past it, unavailable (nothing applied)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise SourceUnavailableError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class FileSource:
    """`CONFIG_FILE`: read again only when its mtime (or size) changed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = str(path)
        self.stamp: tuple[int, int] | None = None

    async def fetch(self) -> Fetched | None:
        try:
            stat = await anyio.Path(self.path).stat()
            if (stat.st_mtime_ns, stat.st_size) == self.stamp:
                return None
            body = await anyio.Path(self.path).read_bytes()
        except OSError as exc:
            raise SourceUnavailableError(f"{type(exc).__name__}: {self.path}") from None
        self.stamp = (stat.st_mtime_ns, stat.st_size)
        return Fetched(body, f"mtime:{stat.st_mtime_ns}")

    async def aclose(self) -> None:
        return None


def source_for(settings: Settings) -> ConfigSource | None:
    """The source `CONFIG_URL` or `CONFIG_FILE` names, if any."""
    if settings.config_url:
        return HttpSource(settings.config_url)
    if settings.config_file:
        return FileSource(settings.config_file)
    return None


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()[:16]
