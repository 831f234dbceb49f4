"""Fetch one artifact into storage: stream, hash, check, retry, rename into place."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import aiohttp

from pendingops.pending import PendingArtifact, UnitError
from pendingops.remote import RemoteConfig
from pendingops.storage.base import ArtifactStorage

T = TypeVar("T")
_CHUNK = 256 * 1024
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 60.0


class DownloadError(UnitError):
    """A download failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Fetcher:
    """Downloads artifacts of one remote into storage, with retries and verification.

    Every attempt writes a new temporary file, hashes each chunk as it arrives, stops as soon as
    the body exceeds the expected size, and renames the file into storage only when size and
    digests match. Artifacts with the same expected sha256 are fetched one at a time, so bytes two
    units share are transferred once. Use as an async context manager (it owns the HTTP session).
    """

    def __init__(self, remote: RemoteConfig, storage: ArtifactStorage, *, connections: int | None = None) -> None:
        self.remote = remote
        self.storage = storage
        self._connections = remote.download_concurrency if connections is None else connections
        self._session: aiohttp.ClientSession | None = None
        self._digest_locks: dict[str, asyncio.Lock] = {}
        self._digest_users: Counter[str] = Counter()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            remote = self.remote
            ssl_context: ssl.SSLContext | bool = True
            if not remote.tls_validation:
                ssl_context = False
            elif remote.ca_cert or remote.client_cert:
                ssl_context = ssl.create_default_context(cafile=remote.ca_cert)
                if remote.client_cert:
                    ssl_context.load_cert_chain(remote.client_cert, remote.client_key)
            auth = None
            if remote.username is not None:
                auth = aiohttp.BasicAuth(remote.username, remote.password or "")
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=ssl_context),
                headers=remote.headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(
                    total=remote.total_timeout,
                    sock_connect=remote.connect_timeout,
                    sock_read=remote.read_timeout,
                ),
                auto_decompress=False,
            )
        return self._session

    async def fetch(self, artifact: PendingArtifact) -> None:
        """Store ``artifact``'s bytes, setting its ``stored_*`` fields; raise DownloadError if not."""
        digest = artifact.sha256
        if not digest:
            await self._with_retries(self._attempt, artifact)
            return
        lock = self._digest_locks.setdefault(digest, asyncio.Lock())
        self._digest_users[digest] += 1
        try:
            async with lock:
                if await self._adopt_stored(artifact):
                    return
                await self._with_retries(self._attempt, artifact)
        finally:
            self._digest_users[digest] -= 1
            if not self._digest_users[digest]:
                del self._digest_users[digest], self._digest_locks[digest]

    async def fetch_file(self, url: str, dest: Path, *, max_size: int | None = None) -> int:
        """Download ``url`` to the local file ``dest`` (a manifest, an index); return its size."""

        async def attempt() -> int:
            size = 0
            with open(dest, "wb") as out:
                async for chunk in self._body(url):
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise DownloadError(f"{url}: larger than {max_size} bytes", retryable=False)
                    out.write(chunk)
            return size

        return await self._with_retries(attempt)

    async def _with_retries(self, attempt: Callable[..., Awaitable[T]], *args: Any) -> T:
        tries = 0
        while True:
            try:
                return await attempt(*args)
            except DownloadError as exc:
                if not exc.retryable or tries >= self.remote.retries:
                    if tries:
                        raise DownloadError(f"{exc} (after {tries + 1} attempts)", retryable=False) from None
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.remote.retry_backoff * (2**tries) * random.uniform(0.5, 1.5)
                tries += 1
                await asyncio.sleep(min(delay, _MAX_RETRY_AFTER))

    async def _adopt_stored(self, artifact: PendingArtifact) -> bool:
        """Use a file already in storage (left by an interrupted run) when its bytes check out."""
        assert artifact.sha256 is not None
        location = self.storage.location_for(artifact.sha256)
        if not self.storage.exists(location):
            return False
        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)
        size = digests.pop("_size")
        if digests["sha256"] != artifact.sha256 or (artifact.size is not None and size != artifact.size):
            return False
        if any(digests.get(name) != value for name, value in artifact.digests.items()):
            return False
        _record(artifact, size, digests)
        return True

    async def _attempt(self, artifact: PendingArtifact) -> None:
        temp = self.storage.new_temp_path()
        hashers = {"sha256": hashlib.sha256()}
        for name in artifact.digests:
            hashers.setdefault(name, hashlib.new(name))
        size = 0
        try:
            with open(temp, "wb") as out:
                async for chunk in self._body(artifact.url):
                    size += len(chunk)
                    if artifact.size is not None and size > artifact.size:
                        raise DownloadError(
                            f"{artifact.url}: body is larger than the expected {artifact.size} bytes",
                            retryable=False,
                        )
                    for hasher in hashers.values():
                        hasher.update(chunk)
                    out.write(chunk)
            digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
            _verify(artifact, size, digests)
            # A rename on local storage: cheaper in place than a hop to a worker thread.
            self.storage.put(temp, digests["sha256"])
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _record(artifact, size, digests)

    async def _body(self, url: str) -> AsyncIterator[bytes]:
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            async for chunk in self._http_body(url):
                yield chunk
        elif scheme == "file":
            async for chunk in _file_body(url):
                yield chunk
        else:
            raise DownloadError(f"{url}: unsupported URL scheme {scheme!r}", retryable=False)

    async def _http_body(self, url: str) -> AsyncIterator[bytes]:
        try:
            async with self._http().get(url) as response:
                if response.status >= 400:
                    raise DownloadError(
                        f"{url}: HTTP {response.status} {response.reason or ''}".rstrip(),
                        retryable=response.status in _RETRYABLE_STATUS,
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
                async for chunk in response.content.iter_chunked(_CHUNK):
                    yield chunk
        except DownloadError:
            raise
        except aiohttp.TooManyRedirects:
            raise DownloadError(f"{url}: too many redirects", retryable=False) from None
        except aiohttp.InvalidURL as exc:
            raise DownloadError(f"{url}: invalid URL ({exc})", retryable=False) from None
        except TimeoutError as exc:
            raise DownloadError(f"{url}: timed out ({self._timeout_kind(exc)})", retryable=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DownloadError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from None

    def _timeout_kind(self, exc: TimeoutError) -> str:
        """Which of the remote's timeouts fired, as far as the HTTP client tells."""
        remote = self.remote
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"no connection within connect_timeout={remote.connect_timeout:g} s"
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return f"no data for read_timeout={remote.read_timeout:g} s"
        if remote.total_timeout is not None:
            return f"total_timeout={remote.total_timeout:g} s"
        return "timeout"


async def _file_body(url: str) -> AsyncIterator[bytes]:
    path = Path(url2pathname(urlsplit(url).path))
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise DownloadError(f"{url}: {exc.strerror}", retryable=False) from None
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        handle.close()


def _verify(artifact: PendingArtifact, size: int, digests: dict[str, str]) -> None:
    if artifact.size is not None and size != artifact.size:
        raise DownloadError(f"{artifact.url}: got {size} bytes, expected {artifact.size}", retryable=True)
    expected = dict(artifact.digests)
    if artifact.sha256:
        expected["sha256"] = artifact.sha256
    for name, value in expected.items():
        if digests[name] != value:
            raise DownloadError(
                f"{artifact.url}: {name} mismatch (expected {value}, got {digests[name]})", retryable=True
            )


def _record(artifact: PendingArtifact, size: int, digests: dict[str, str]) -> None:
    artifact.stored_sha256 = digests["sha256"]
    artifact.stored_size = size
    artifact.stored_digests = {k: v for k, v in digests.items() if k != "sha256"}


def _hash_stored(storage: ArtifactStorage, location: str, wanted: dict[str, str]) -> dict[str, Any]:
    hashers = {"sha256": hashlib.sha256(), **{name: hashlib.new(name) for name in wanted}}
    size = 0
    with storage.open(location) as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    return {"_size": size, **{name: hasher.hexdigest() for name, hasher in hashers.items()}}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
