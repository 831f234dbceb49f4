"""Artifacts in an S3-compatible bucket: ``s3://BUCKET/PREFIX``.

A verified download up to ``part_size`` is one PutObject to its content address, with its
ChecksumSHA256 (the server refuses bytes that do not match) and ``If-None-Match: *`` (an object
already there, the same bytes by its key, is kept): one request per stored file. A larger one is
uploaded to a temporary key in parts, its size checked, then copied server-side to its content
address and the temporary key deleted. Either way a key under ``PREFIX/artifacts/`` only ever
holds a whole, verified artifact, whatever crashes. Temporary keys name their host and process, so
``remove_stale_temp_files`` removes those of dead processes of this host at once and those of any
host once older than ``stale_after`` (unfinished multipart uploads included).

Endpoint, credentials and region come from the standard AWS settings (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION``...). The client is aiobotocore's, on
an event loop of its own: blocking methods wait for it, ``*_async`` ones await it.

Every request is bounded in time: connect and read timeouts (``PENDINGOPS_S3_CONNECT_TIMEOUT``,
default 10 s, ``PENDINGOPS_S3_READ_TIMEOUT``, default 30 s). A request failing on a connection
error, a timeout or a 5xx/SlowDown answer is tried again for ``retry_seconds`` (``outage.py``), then
raises ``StorageUnavailable``; botocore's adaptive mode paces requests after throttling answers, and
the retries are ours, so a stalled storage ends a call within the retry time plus one timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import io
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.handlers import add_expect_header

from pendingops.storage._loop_thread import LoopThread
from pendingops.storage.base import StorageError, StorageUnavailable
from pendingops.storage.local import process_alive, remove_dead_writers_files
from pendingops.storage.outage import OutageClock, Transient, ride_out

_TEMP = "tmp/"
_ARTIFACTS = "artifacts/"
_MiB = 1024 * 1024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_LOCATION = re.compile(r"artifacts/[0-9a-f]{2}/[0-9a-f]{62}")
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
#: S3 copies at most 5 GiB in one request; larger objects are copied in parts
_MAX_COPY = 5 * 1024 * _MiB
#: HEAD requests at once when a sync checks that the objects it links are there
_HEADS_AT_ONCE = 32
#: the environment variables setting the connect and read timeouts, with their defaults (seconds)
CONNECT_TIMEOUT_ENV, READ_TIMEOUT_ENV = "PENDINGOPS_S3_CONNECT_TIMEOUT", "PENDINGOPS_S3_READ_TIMEOUT"
_DEFAULT_TIMEOUTS = {CONNECT_TIMEOUT_ENV: 10.0, READ_TIMEOUT_ENV: 30.0}
#: error codes of answers that a later attempt may not get (besides every 5xx status)
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}
#: an upload slower than this is an outage: it bounds one request's time with its body's size
_SLOWEST_UPLOAD = 64 * 1024  # bytes per second
_TRANSIENT_ERRORS = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    aiohttp.ClientError,
    TimeoutError,
    ConnectionError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://BUCKET[/PREFIX]``; the prefix is empty or ends with ``/``."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or any(c in rest for c in "?#\\"):
        raise StorageError(f"bad S3 storage URL {url!r}: expected s3://BUCKET/PREFIX")
    parts = [part for part in prefix.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise StorageError(f"bad S3 storage URL {url!r}: '.' or '..' in the prefix")
    return bucket, "".join(f"{part}/" for part in parts)


def s3_timeouts() -> tuple[float, float]:
    """The (connect, read) timeouts the environment sets; StorageError naming the variable if one is bad."""
    found = []
    for name, default in _DEFAULT_TIMEOUTS.items():
        text = os.environ.get(name, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            raise StorageError(f"{name} must be a positive number of seconds, not {text!r}")
        found.append(value)
    return found[0], found[1]


def this_host() -> str:
    """This host's name as temporary keys carry it."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


class S3Storage:
    """Artifacts at ``s3://BUCKET/PREFIX/artifacts/ab/cdef...``; downloads staged in ``temp_dir``."""

    def __init__(
        self,
        url: str,
        temp_dir: str | os.PathLike[str],
        *,
        stale_after: float = 6 * 3600,
        part_size: int = 16 * _MiB,
        connections: int = 32,
        retry_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.connect_timeout, self.read_timeout = s3_timeouts()
        self._outage = OutageClock(retry_seconds)
        self.temp_dir = Path(temp_dir).absolute()
        self.stale_after = stale_after
        self.part_size = max(part_size, 5 * _MiB)  # S3's smallest part but the last
        self._host = this_host()
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot use temporary directory {self.temp_dir}: {exc.strerror}") from None
        self._loop = LoopThread(f"s3-{self.bucket}")
        self._exit: Any = None
        try:
            self._client = self._loop.call(self._connect(connections))
        except BaseException:
            self.close()
            raise

    def __str__(self) -> str:
        """``s3://BUCKET/PREFIX``: how every message names this storage."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def retry_seconds(self) -> float:
        """How long a request failing on an outage is tried again before ``StorageUnavailable``.

        Setting it (a sync starting) starts the count afresh: each sync rides out an outage for its
        own retry time, even one that began before it (a worker's next sync).
        """
        return self._outage.seconds

    @retry_seconds.setter
    def retry_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("retry_seconds must not be negative")
        self._outage.seconds = seconds
        self._outage.answered()

    async def _connect(self, connections: int) -> Any:
        config = AioConfig(
            max_pool_connections=connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # One attempt per request: the retries are ride_out's, bounded by retry_seconds.
            retries={"mode": "adaptive", "total_max_attempts": 1},
        )
        context = get_session().create_client("s3", config=config)
        client = await context.__aenter__()
        # No "Expect: 100-continue": a request body held back until a continue that a stalled
        # storage never sends is a wait no read timeout covers (the body is never sent).
        client.meta.events.unregister("before-call.s3", add_expect_header)
        self._exit = context.__aexit__
        self._client = client  # _call_once's

        async def check_bucket() -> None:
            try:
                await self._call_once("head_bucket")
            except Transient:
                raise  # ridden out
            except FileNotFoundError:
                raise StorageError(f"cannot use storage {self}: no such bucket") from None
            except Exception as exc:
                # A bucket-level request's error begins with the storage's name: said once here.
                detail = str(exc).removeprefix(f"{self}: ")
                raise StorageError(f"cannot use storage {self}: {detail}") from None

        try:
            # An outage at start-up is ridden out like one met later (retry_seconds), not a failure at once.
            await ride_out(check_bucket, self._outage, str(self))
        except BaseException:
            await self._exit(None, None, None)
            self._exit = None
            raise
        return client

    def close(self) -> None:
        """Let abandoned uploads clean up (for at most the retry time and a timeout), then close for good."""
        if self._exit is not None:
            exit_, self._exit = self._exit, None
            # Once an outage outlasted the retry time, the abandoned uploads' cleanups are skipped
            # (``_quietly``): waiting for them would only hold the process up.
            longest = 0.0 if self._outage.gave_up else self.retry_seconds + self.connect_timeout + self.read_timeout
            self._loop.call(_drain(longest))
            self._loop.call(exit_(None, None, None))
        self._loop.stop()

    # -- the ArtifactStorage interface -------------------------------------------------------------

    def new_temp_path(self) -> Path:
        return self.temp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.part"

    def location_for(self, sha256: str) -> str:
        return f"{_ARTIFACTS}{sha256[:2]}/{sha256[2:]}"

    def put(self, temp_path: Path, sha256: str) -> str:
        return self._loop.call(self._put(temp_path, sha256))

    async def put_async(self, temp_path: Path, sha256: str) -> str:
        # A cancelled caller does not cancel the upload: a PUT cut off mid-way may still land after
        # the DELETE of its temporary key. It finishes instead, and ``close`` waits for it.
        return await self._loop.call_detached(self._put(temp_path, sha256))

    def exists(self, location: str) -> bool:
        return self._loop.call(self._exists(self.prefix + location))

    async def exists_async(self, location: str) -> bool:
        return await self._loop.call_async(self._exists(self.prefix + location))

    def open(self, location: str) -> BinaryIO:
        body = self._loop.call(self._get(self.prefix + location))
        reader = _ObjectReader(self._loop, body, f"{self}/{location}")
        return io.BufferedReader(reader, buffer_size=_MiB)  # type: ignore[return-value]

    def local_path(self, location: str) -> Path | None:
        return None

    def delete(self, location: str) -> None:
        self._loop.call(self._call("delete_object", Key=self.prefix + location))

    def iter_locations(self) -> Iterator[str]:
        for key, _ in self._iter_objects(self.prefix + _ARTIFACTS):
            location = key[len(self.prefix) :]
            if _LOCATION.fullmatch(location):
                yield location

    def missing(self, locations: Iterable[str]) -> list[str]:
        """The ``locations`` with no object: HEAD requests, ``_HEADS_AT_ONCE`` at a time."""
        return self._loop.call(self._missing(list(locations)))

    def read_marker(self, name: str) -> str | None:
        try:
            body = self._loop.call(self._get(self.prefix + name))
        except FileNotFoundError:
            return None
        return self._loop.call(_read_all(body)).decode("utf-8")

    def create_marker(self, name: str, text: str) -> bool:
        """A conditional PUT (If-None-Match: *): of two writers at once, exactly one creates it."""
        try:
            self._loop.call(self._call("put_object", Key=self.prefix + name, Body=text.encode(), IfNoneMatch="*"))
        except _AlreadyThere:
            return False
        return True

    def modified_before(self, location: str, when: float) -> bool:
        try:
            head = self._loop.call(self._call("head_object", Key=self.prefix + location))
        except FileNotFoundError:
            return False
        return head["LastModified"].timestamp() < when

    def remove_stale_temp_files(self) -> int:
        """Remove local temporary files of dead processes, then stale temporary objects and uploads."""
        removed = remove_dead_writers_files(self.temp_dir)
        now = datetime.datetime.now(datetime.UTC)
        for key, modified in list(self._iter_objects(self.prefix + _TEMP)):
            if self._stale(key, modified, now):
                self._loop.call(self._call("delete_object", Key=key))
                removed += 1
        for key, upload_id, started in self._loop.call(self._uploads()):
            if self._stale(key, started, now):
                self._loop.call(self._call("abort_multipart_upload", Key=key, UploadId=upload_id))
                removed += 1
        return removed

    # -- on the client's loop -----------------------------------------------------------------------

    async def _call(self, operation: str, **params: Any) -> Any:
        """One request, tried again while the storage is out (see ``outage.py``)."""
        return await ride_out(lambda: self._call_once(operation, **params), self._outage, str(self))

    async def _call_once(self, operation: str, **params: Any) -> Any:
        where = f"s3://{self.bucket}/{params['Key']}" if "Key" in params else str(self)
        body = params.get("Body", b"")
        limit = self.connect_timeout + self.read_timeout + len(body) / _SLOWEST_UPLOAD
        try:
            # The timeouts bound each wait for the network; this bounds the whole request, so a
            # storage that takes what is sent but never answers cannot hold a call for ever.
            async with asyncio.timeout(limit):
                return await getattr(self._client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"{where} is missing") from None
            if _code(exc) == "PreconditionFailed" and params.get("IfNoneMatch") == "*":
                raise _AlreadyThere from None
            if _transient(exc):
                raise Transient(f"{operation} of {where}: {_reason(exc)}") from None
            raise StorageError(f"{where}: {operation} failed: {_reason(exc)}") from None
        except _TRANSIENT_ERRORS as exc:
            raise Transient(f"{operation} of {where}: {_reason(exc)}") from None
        except BotoCoreError as exc:
            raise StorageError(f"{where}: {operation} failed: {_reason(exc)}") from None

    async def _quietly(self, error: BaseException, operation: str, **params: Any) -> None:
        """A cleanup after ``error``, whose own failure must not mask it: the first error wins.

        Skipped when ``error`` is an outage (or the cancellation of a call it held up): the cleanup
        would only wait for it too. What is left behind, remove_stale_temp_files removes later.
        """
        if isinstance(error, StorageUnavailable) or not isinstance(error, Exception):
            return
        with contextlib.suppress(StorageError, FileNotFoundError):
            await self._call(operation, **params)

    async def _exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=key)
        except FileNotFoundError:
            return False
        return True

    async def _missing(self, locations: list[str]) -> list[str]:
        gate = asyncio.Semaphore(_HEADS_AT_ONCE)

        async def absent(location: str) -> bool:
            async with gate:
                return not await self._exists(self.prefix + location)

        found = await asyncio.gather(*(absent(location) for location in locations))
        return [location for location, gone in zip(locations, found, strict=True) if gone]

    async def _get(self, key: str) -> Any:
        return (await self._call("get_object", Key=key))["Body"]

    async def _put(self, temp_path: Path, sha256: str) -> str:
        location = self.location_for(sha256)
        size = os.stat(temp_path).st_size
        if size <= self.part_size:
            with open(temp_path, "rb") as source:
                data = source.read()
            with contextlib.suppress(_AlreadyThere):  # already stored: its key is its sha256
                key = self.prefix + location
                await self._call("put_object", Key=key, Body=data, ChecksumSHA256=_b64(sha256), IfNoneMatch="*")
            temp_path.unlink(missing_ok=True)
            return location
        temp_key = f"{self.prefix}{_TEMP}{self._host}/{os.getpid()}-{uuid.uuid4().hex}.part"
        try:
            await self._upload_parts(temp_path, temp_key, size)
            head = await self._call("head_object", Key=temp_key)
            if head["ContentLength"] != size:
                raise StorageError(f"{self}: uploaded {head['ContentLength']} bytes of {size} for {sha256}")
            await self._copy(temp_key, self.prefix + location, size, head["ETag"])
        except BaseException as exc:
            await self._quietly(exc, "delete_object", Key=temp_key)
            raise
        await self._call("delete_object", Key=temp_key)
        temp_path.unlink(missing_ok=True)
        return location

    async def _upload_parts(self, path: Path, key: str, size: int) -> None:
        upload_id = (await self._call("create_multipart_upload", Key=key))["UploadId"]
        try:
            parts = []
            with open(path, "rb") as source:
                for number, offset in enumerate(range(0, size, self.part_size), start=1):
                    source.seek(offset)
                    chunk = source.read(self.part_size)
                    answer = await self._call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=chunk)
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            await self._call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException as exc:
            await self._quietly(exc, "abort_multipart_upload", Key=key, UploadId=upload_id)
            raise

    async def _copy(self, source_key: str, key: str, size: int, etag: str) -> None:
        """Copy ``source_key`` (exactly the version whose size was checked) to ``key``."""
        source = {"Bucket": self.bucket, "Key": source_key}
        if size <= _MAX_COPY:
            await self._call("copy_object", Key=key, CopySource=source, CopySourceIfMatch=etag)
            return
        upload_id = (await self._call("create_multipart_upload", Key=key))["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, size, _MAX_COPY), start=1):
                last = min(offset + _MAX_COPY, size) - 1
                answer = await self._call(
                    "upload_part_copy",
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceIfMatch=etag,
                    CopySourceRange=f"bytes={offset}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            await self._call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException as exc:
            await self._quietly(exc, "abort_multipart_upload", Key=key, UploadId=upload_id)
            raise

    async def _page(self, prefix: str, token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"Prefix": prefix}
        if token:
            params["ContinuationToken"] = token
        return await self._call("list_objects_v2", **params)

    def _iter_objects(self, prefix: str) -> Iterator[tuple[str, datetime.datetime]]:
        """``(key, last modified)`` of every object under ``prefix``, one listed page at a time."""
        token: str | None = None
        while True:
            page = self._loop.call(self._page(prefix, token))
            for item in page.get("Contents", ()):
                yield item["Key"], item["LastModified"]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def _uploads(self) -> list[tuple[str, str, datetime.datetime]]:
        found = []
        params: dict[str, Any] = {"Prefix": self.prefix + _TEMP}
        while True:
            page = await self._call("list_multipart_uploads", **params)
            found += [(item["Key"], item["UploadId"], item["Initiated"]) for item in page.get("Uploads", ())]
            if not page.get("IsTruncated"):
                return found
            params.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])

    def _stale(self, key: str, modified: datetime.datetime, now: datetime.datetime) -> bool:
        """True for a temporary key of a dead process of this host, or of any host after ``stale_after``."""
        if (now - modified).total_seconds() >= self.stale_after:
            return True
        host, _, name = key[len(self.prefix) + len(_TEMP) :].partition("/")
        pid_text = name.split("-", 1)[0]
        return host == self._host and pid_text.isdigit() and not process_alive(int(pid_text))


class _AlreadyThere(Exception):
    """A conditional PUT found the key already written."""


async def _read_all(body: Any) -> bytes:
    async with body as stream:
        return await stream.read()


class _ObjectReader(io.RawIOBase):
    """A blocking reader of an object's body, read on the storage's loop."""

    def __init__(self, loop: LoopThread, body: Any, where: str) -> None:
        self._loop = loop
        self._body = body
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._loop.call(self._body.read(len(buffer)))
        except _TRANSIENT_ERRORS as exc:
            raise StorageUnavailable(f"storage {self._where}: reading failed ({_reason(exc)})") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._loop.call_soon(self._body.close)
        super().close()


async def _drain(longest: float) -> None:
    """Wait (at most ``longest`` seconds) for the loop's other tasks: a cancelled upload still deletes its
    temporary key. Those still running then (the storage is out) are cancelled; their keys are stale."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if not others:
        return
    _, running = await asyncio.wait(others, timeout=longest)
    for task in running:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _b64(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode()


def _transient(exc: BaseException) -> bool:
    """True for a failure a later attempt may not meet: no connection, a timeout, a 5xx or SlowDown answer."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500 or _code(exc) in _TRANSIENT_CODES
    return isinstance(exc, _TRANSIENT_ERRORS)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')} {error.get('Message', '')}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
