"""Fetch one artifact into storage: stream, hash, check, retry, rename into place."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
from yarl import URL

from pendingops.credentials import credentials_for
from pendingops.download._file_urls import FileRefused, file_body, file_root
from pendingops.download._sink import BodySink
from pendingops.download._small_writes import SMALL_BODY, SmallWrites
from pendingops.download.destinations import PrivateDestination, PublicResolver, check_literal
from pendingops.pending import PendingArtifact, UnitError
from pendingops.remote import DEFAULT_MAX_FILE_SIZE, RemoteConfig, origin, strip_credentials
from pendingops.storage.base import ArtifactStorage, storage_full

T = TypeVar("T")
_CHUNK = 256 * 1024
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 60.0
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_HTTP = ("http", "https")
#: digests this fetcher wrote lately: a later fetch of one checks storage before fetching it again
_RECENT_WRITES = 4096


class DownloadError(UnitError):
    """A download failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Fetcher:
    """Downloads artifacts of one remote into storage, with retries and verification.

    Every attempt writes a new temporary file, hashes each chunk as it arrives, stops as soon as
    the body exceeds the expected size (or ``max_file_size`` when the size is unknown), and renames
    the file into storage only when size and digests match. Artifacts with the same expected sha256
    are fetched one at a time, so bytes two units share are transferred once. Use as an async
    context manager (it owns the HTTP sessions).

    Every URL is treated as the remote's data: an http(s) remote may only name http(s) URLs, a
    ``file://`` remote only regular files under its own folder. Credentials, custom headers and the
    client certificate go only to the remote's own origin, redirects included. Any other origin is
    reached only at public addresses (see ``destinations``), unless the remote's
    ``allow_private_destinations`` says otherwise.
    """

    def __init__(self, remote: RemoteConfig, storage: ArtifactStorage, *, connections: int | None = None) -> None:
        self.remote = remote
        self.storage = storage
        self._connections = remote.download_concurrency if connections is None else connections
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._resolvers: list[PublicResolver] = []
        self._origin = origin(remote.url)
        self._file_root = file_root(remote.url) if self._origin[0] == "file" else None
        #: what only the remote's own origin is sent: its custom headers and its credentials
        self._own_headers = dict(remote.headers)
        found = (remote.username, remote.password or "") if remote.username is not None else None
        if found is None and self._origin[0] in _HTTP:
            found = credentials_for(remote.url)
        if found is not None:
            self._own_headers["Authorization"] = _basic_auth(*found)
        #: proxies from the environment (http_proxy, https_proxy, no_proxy), used when the remote names none
        self._env_proxies = {} if remote.proxy_url else getproxies_environment()
        self._digest_locks: dict[str, asyncio.Lock] = {}
        self._digest_users: Counter[str] = Counter()
        write_many = getattr(storage, "put_bytes_many", None)
        self._small = SmallWrites(write_many, getattr(storage, "root", storage)) if write_many else None
        self._recent: dict[str, None] = {}  # insertion-ordered, at most _RECENT_WRITES

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._small is not None:
            await self._small.drain()  # no thread may still write when the storage is closed
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            await session.close()
        resolvers, self._resolvers = self._resolvers, []
        for resolver in resolvers:  # a connector leaves a resolver it was given open
            await resolver.close()

    def _http(self, own: bool) -> aiohttp.ClientSession:
        """The session for the remote's own origin (``own``) or for any other: their TLS settings differ."""
        session = self._sessions.get(own)
        if session is None:
            remote = self.remote
            resolver = None
            if not own and not remote.allow_private_destinations:
                resolver = PublicResolver(self._proxy_addresses())
                self._resolvers.append(resolver)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl(own), resolver=resolver),
                timeout=aiohttp.ClientTimeout(
                    total=remote.total_timeout,
                    sock_connect=remote.connect_timeout,
                    sock_read=remote.read_timeout,
                ),
                auto_decompress=False,
            )
            self._sessions[own] = session
        return session

    def _ssl(self, own: bool) -> ssl.SSLContext | bool:
        remote = self.remote
        if not remote.tls_validation:
            return False
        client_cert = remote.client_cert if own else None
        if not remote.ca_cert and not client_cert:
            return True
        context = ssl.create_default_context(cafile=remote.ca_cert)
        if client_cert:
            context.load_cert_chain(client_cert, remote.client_key)
        return context

    async def fetch(self, artifact: PendingArtifact, *, defer_write: bool = False) -> bool:
        """Store ``artifact``'s bytes, setting its ``stored_*`` fields; raise DownloadError if not.

        True when the bytes came over the network, False when a file already in storage (left by an
        interrupted run, or fetched meanwhile for another unit) was checked and adopted. Storage is
        looked at first only when the artifact's ``in_storage`` does not say (a batch did not look)
        or this fetcher wrote the same digest lately. With ``defer_write``, a small body's file may
        still be on its way when this returns: ``artifact.stored_write`` must be awaited (see
        ``_small_writes.settle``) before a row points at it.
        """
        limit = self.remote.max_file_size
        if limit is not None and artifact.size is not None and artifact.size > limit:
            raise DownloadError(
                f"{_shown(artifact.url)}: declared size {artifact.size} bytes is over max_file_size={limit}",
                retryable=False,
            )
        digest = artifact.sha256
        if not digest:
            await self._with_retries(self._attempt, artifact)
        else:
            lock = self._digest_locks.setdefault(digest, asyncio.Lock())
            self._digest_users[digest] += 1
            try:
                async with lock:
                    if await self._adopt_stored(artifact):
                        return False
                    await self._with_retries(self._attempt, artifact)
            finally:
                self._digest_users[digest] -= 1
                if not self._digest_users[digest]:
                    del self._digest_users[digest], self._digest_locks[digest]
        write = artifact.stored_write
        if write is not None and not defer_write:
            artifact.stored_write = None
            await write  # the caller writes rows as soon as this returns: the file must be there
        return True

    async def fetch_file(self, url: str, dest: Path, *, max_size: int | None = None) -> int:
        """Download ``url`` to the local file ``dest`` (a manifest, an index); return its size."""

        async def attempt() -> int:
            try:
                with open(dest, "wb") as out:
                    return await self._write_body(url, out, (), max_size, f"larger than {max_size} bytes")
            except OSError as exc:
                raise storage_full(exc, dest.parent) or exc from None

        return await self._with_retries(attempt)

    async def stream(self, url: str, *, accept: str | None = None) -> AsyncIterator[bytes]:
        """The bytes at ``url``, retried as ``fetch`` retries until the first chunk arrives, never after.

        For a caller passing the bytes on as they come (a server answering a client): once a byte
        has gone out, a retry could not be joined to it. The remote's rules apply as to every
        download (allowed URLs, origins, timeouts, ``min_rate``); nothing is checked or stored.
        ``accept`` is sent as the Accept header (to every hop: it is no secret).
        """

        async def first_chunk() -> tuple[AsyncIterator[bytes], bytes | None]:
            body = self._body(url, accept)
            try:
                return body, await anext(body)
            except StopAsyncIteration:
                return body, None
            except BaseException:
                await body.aclose()  # type: ignore[attr-defined]
                raise

        body, chunk = await self._with_retries(first_chunk)
        async with aclosing(body):  # type: ignore[type-var]
            if chunk is None:
                return
            yield chunk
            async for chunk in body:
                yield chunk

    async def fetch_bytes(self, url: str, *, max_size: int) -> bytes:
        """The body at ``url`` (metadata a plugin step needs), at most ``max_size`` bytes, with retries."""
        path = self.storage.new_temp_path()
        try:
            await self.fetch_file(url, path, max_size=max_size)
            return await asyncio.to_thread(path.read_bytes)
        finally:
            path.unlink(missing_ok=True)

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
        write = self._small.pending(artifact.sha256) if self._small is not None else None
        if write is not None:
            await asyncio.wait([write])  # written for another unit a moment ago: adopted once it is there
        elif artifact.in_storage is False and artifact.sha256 not in self._recent:
            return False  # a batch looked, found no file, and none was written since
        location = self.storage.location_for(artifact.sha256)
        if artifact.in_storage is None and not await self.storage.exists_async(location):
            return False
        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)
        if digests is None:
            return False
        size = digests.pop("_size")
        if digests["sha256"] != artifact.sha256 or (artifact.size is not None and size != artifact.size):
            return False
        if any(digests.get(name) != value for name, value in artifact.digests.items()):
            return False
        _record(artifact, size, digests)
        return True

    async def _attempt(self, artifact: PendingArtifact) -> None:
        hashers = {"sha256": hashlib.sha256()}
        for name in artifact.digests:
            hashers.setdefault(name, hashlib.new(name))
        cap = artifact.size if artifact.size is not None else self.remote.max_file_size or DEFAULT_MAX_FILE_SIZE
        if self._small is not None and artifact.size is not None and artifact.size <= SMALL_BODY:
            await self._attempt_small(artifact, hashers, cap)
            return
        temp = self.storage.new_temp_path()
        try:
            with open(temp, "wb") as out:
                size = await self._write_body(artifact.url, out, hashers.values(), cap, _too_large(artifact, cap))
            digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
            _verify(artifact, size, digests)
            await self.storage.put_async(temp, digests["sha256"])
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            full = storage_full(exc, temp.parent.parent)
            if full is not None:
                raise full from None
            raise
        _record(artifact, size, digests)

    async def _attempt_small(self, artifact: PendingArtifact, hashers: dict[str, Any], cap: int) -> None:
        """A body of a declared small size: kept in memory, hashed on the loop, queued for a batched write."""
        assert self._small is not None
        chunks: list[bytes] = []
        size = 0
        async with aclosing(self._body(artifact.url)) as body:
            async for chunk in body:
                size += len(chunk)
                if size > cap:
                    raise DownloadError(f"{_shown(artifact.url)}: {_too_large(artifact, cap)}", retryable=False)
                chunks.append(chunk)
        data = b"".join(chunks)
        for hasher in hashers.values():
            hasher.update(data)
        digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        _verify(artifact, size, digests)
        artifact.stored_write = self._small.put(digests["sha256"], data)
        self._recent[digests["sha256"]] = None
        if len(self._recent) > _RECENT_WRITES:
            del self._recent[next(iter(self._recent))]
        _record(artifact, size, digests)

    async def _write_body(
        self, url: str, out: BinaryIO, hashers: Iterable[Any], cap: int | None, too_large: str
    ) -> int:
        """Write the body at ``url`` to ``out`` through ``hashers``; return its size.

        A body over ``cap`` bytes is cut off as soon as it is (DownloadError with ``too_large``).
        """
        size = 0
        sink = BodySink(out, hashers)
        try:
            async with aclosing(self._body(url)) as chunks:
                async for chunk in chunks:
                    size += len(chunk)
                    if cap is not None and size > cap:
                        raise DownloadError(f"{_shown(url)}: {too_large}", retryable=False)
                    await sink.add(chunk)
            await sink.finish()
        finally:
            await sink.settle()  # the caller closes ``out``: no thread may still write to it
        return size

    async def _body(self, url: str, accept: str | None = None) -> AsyncIterator[bytes]:
        """The bytes at ``url``, if the remote may name it, at no less than the remote's ``min_rate``."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in (*_HTTP, "file"):
            raise DownloadError(f"{_shown(url)}: unsupported URL scheme {scheme!r}", retryable=False)
        if (scheme == "file") != (self._origin[0] == "file"):
            allowed = "file" if self._origin[0] == "file" else "http(s)"
            raise DownloadError(
                f"{_shown(url)}: refused: the remote is {self._origin[0]}://, so the URLs it names must be {allowed}",
                retryable=False,
            )
        loop = asyncio.get_running_loop()
        started, received = loop.time(), 0
        body = self._file_body(url) if scheme == "file" else self._http_body(url, accept)
        async with aclosing(body) as chunks:
            async for chunk in chunks:
                received += len(chunk)
                self._check_rate(url, received, loop.time() - started)
                yield chunk

    async def _file_body(self, url: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in file_body(url, self._file_root, _CHUNK):
                yield chunk
        except FileRefused as exc:
            raise DownloadError(f"{_shown(url)}: {exc}", retryable=False) from None

    def _check_rate(self, url: str, received: int, elapsed: float) -> None:
        remote = self.remote
        rate = remote.min_rate
        if rate and elapsed > remote.connect_timeout + remote.read_timeout and received < rate * elapsed:
            raise DownloadError(
                f"{_shown(url)}: too slow: {received} bytes in {elapsed:.1f} s, under min_rate={rate:g} bytes/s",
                retryable=True,
            )

    async def _http_body(self, url: str, accept: str | None = None) -> AsyncIterator[bytes]:
        try:
            async with await self._open(url, accept) as response:
                if response.status >= 400:
                    raise DownloadError(
                        f"{_shown(url)}: HTTP {response.status} {response.reason or ''}".rstrip(),
                        retryable=response.status in _RETRYABLE_STATUS,
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
                async for chunk in response.content.iter_chunked(_CHUNK):
                    yield chunk
        except DownloadError:
            raise
        except PrivateDestination as exc:
            raise DownloadError(f"{_shown(url)}: {exc}", retryable=False) from None
        except aiohttp.InvalidURL as exc:
            raise DownloadError(f"{_shown(url)}: invalid URL ({_shown(str(exc))})", retryable=False) from None
        except TimeoutError as exc:
            raise DownloadError(f"{_shown(url)}: timed out ({self._timeout_kind(exc)})", retryable=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DownloadError(f"{_shown(url)}: {type(exc).__name__}: {exc}", retryable=True) from None

    async def _open(self, url: str, accept: str | None = None) -> aiohttp.ClientResponse:
        """GET ``url``, following redirects one hop at a time.

        Each hop gets the remote's credentials and headers only if it is on the remote's own
        origin; a hop to anything but http(s) is refused, and so is a hop to another origin at a
        non-public address (the resolver checks names; IP literals are checked here). Through a
        proxy, the proxy resolves names, under its own rules. The response headers must arrive within
        ``connect_timeout + read_timeout`` of each request, however slowly they trickle in.
        """
        remote = self.remote
        deadline = remote.connect_timeout + remote.read_timeout
        target: str | URL = url
        for _ in range(_MAX_REDIRECTS + 1):
            own = origin(str(target)) == self._origin
            if not own and not remote.allow_private_destinations:
                check_literal(URL(target).host or "")
            headers = dict(self._own_headers) if own else {}
            if accept and not any(name.lower() == "accept" for name in headers):  # the remote's own wins
                headers["Accept"] = accept
            request = self._http(own).get(
                target, headers=headers or None, allow_redirects=False, proxy=self._proxy_for(URL(target))
            )
            try:
                async with asyncio.timeout(deadline) as timer:
                    response = await request
            except TimeoutError:
                if not timer.expired():
                    raise
                raise DownloadError(
                    f"{_shown(url)}: timed out (no response within connect_timeout + read_timeout = {deadline:g} s)",
                    retryable=True,
                ) from None
            location = response.headers.get("Location")
            if response.status not in _REDIRECT_STATUS or location is None:
                return response
            response.release()
            try:
                target = response.url.join(URL(location))
                if target.scheme not in _HTTP:
                    refused = f"{_shown(url)}: refused a redirect to a {target.scheme!r} URL"
                    raise DownloadError(refused, retryable=False)
                target = target.with_user(None)  # credentials come from the remote's settings only
            except ValueError:
                raise DownloadError(f"{_shown(url)}: redirected to an invalid URL", retryable=False) from None
        raise DownloadError(f"{_shown(url)}: too many redirects", retryable=False)

    def _proxy_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every proxy this fetcher may use: the operator's, never checked."""
        proxies = [self.remote.proxy_url] if self.remote.proxy_url else list(self._env_proxies.values())
        found = []
        for proxy in proxies:
            try:
                parsed = URL(proxy)
            except (TypeError, ValueError):
                continue
            if parsed.host and parsed.port:
                found.append((parsed.host, parsed.port))
        return found

    def _proxy_for(self, target: URL) -> str | None:
        """The HTTP proxy a request to ``target`` goes through: the remote's, else the environment's."""
        if self.remote.proxy_url:
            return self.remote.proxy_url
        proxy = self._env_proxies.get(target.scheme or "")
        if proxy is None or proxy_bypass_environment(target.host or "", self._env_proxies):
            return None
        return proxy

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


def _basic_auth(username: str, password: str) -> str:
    credentials = f"{username}:{password}"
    try:
        raw = credentials.encode("latin-1")  # what servers have long expected
    except UnicodeEncodeError:
        raw = credentials.encode()  # RFC 7617's charset="UTF-8"
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _shown(url: str) -> str:
    """``url`` as it may appear in messages: without credentials."""
    return strip_credentials(url)


def _too_large(artifact: PendingArtifact, cap: int) -> str:
    if artifact.size is not None:
        return f"body is larger than the expected {artifact.size} bytes"
    return f"body is larger than max_file_size={cap} bytes"


def _verify(artifact: PendingArtifact, size: int, digests: dict[str, str]) -> None:
    url = _shown(artifact.url)
    if artifact.size is not None and size != artifact.size:
        raise DownloadError(f"{url}: got {size} bytes, expected {artifact.size}", retryable=True)
    expected = dict(artifact.digests)
    if artifact.sha256:
        expected["sha256"] = artifact.sha256
    for name, value in expected.items():
        if digests[name] != value:
            raise DownloadError(f"{url}: {name} mismatch (expected {value}, got {digests[name]})", retryable=True)


def _record(artifact: PendingArtifact, size: int, digests: dict[str, str]) -> None:
    artifact.stored_sha256 = digests["sha256"]
    artifact.stored_size = size
    artifact.stored_digests = {k: v for k, v in digests.items() if k != "sha256"}


def _hash_stored(storage: ArtifactStorage, location: str, wanted: dict[str, str]) -> dict[str, Any] | None:
    """Size and digests of the stored file at ``location``; None when there is none."""
    hashers = {"sha256": hashlib.sha256(), **{name: hashlib.new(name) for name in wanted}}
    size = 0
    try:
        handle = storage.open(location)
    except FileNotFoundError:
        return None
    with handle:
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
