"""A cookbook tarball's ``metadata.json``, read as a stream with caps on members and bytes."""

from __future__ import annotations

import gzip
import json
import tarfile
import zlib
from typing import IO, Any

from pendingops.pending import UnitError
from pendingops.plugins.cookbook.universe import _text_problem

#: per-version metadata documents and a tarball's metadata.json are small
MAX_METADATA_BYTES = 4 * 1024 * 1024
#: a tarball with more members, or more bytes once decompressed, is refused
MAX_TARBALL_MEMBERS = 20_000
MAX_TARBALL_BYTES = 512 * 1024 * 1024


def read_metadata_json(handle: IO[bytes], where: str) -> dict[str, Any] | None:
    """The ``<cookbook>/metadata.json`` of a gzipped cookbook tarball, or None if it has none.

    Read as a stream, gzip only, at most ``MAX_TARBALL_MEMBERS`` members and ``MAX_TARBALL_BYTES``
    decompressed bytes, forgetting each member once passed: a bomb costs bounded time and memory.
    """
    if handle.read(2) != b"\x1f\x8b":
        raise UnitError(f"{where}: not a gzip-compressed tarball")
    handle.seek(0)
    try:
        with (
            gzip.GzipFile(fileobj=handle, mode="rb") as unzipped,
            tarfile.open(fileobj=_Capped(unzipped, where), mode="r|") as tar,
        ):
            for count in range(1, MAX_TARBALL_MEMBERS + 2):
                member = tar.next()
                tar.members.clear()  # a stream keeps every header it read otherwise
                if member is None:
                    return None
                if count > MAX_TARBALL_MEMBERS:
                    raise UnitError(f"{where}: more than {MAX_TARBALL_MEMBERS} members")
                parts = member.name.strip("/").split("/")
                if len(parts) == 2 and parts[1] == "metadata.json" and member.isfile():
                    return _metadata_document(tar, member, where)
    except (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnitError(f"{where}: not a readable cookbook tarball ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise UnitError(f"{where}: metadata.json is nested too deeply") from None
    return None


def _metadata_document(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> dict[str, Any]:
    if member.size > MAX_METADATA_BYTES:
        raise UnitError(f"{where}: metadata.json is larger than {MAX_METADATA_BYTES} bytes")
    extracted = tar.extractfile(member)
    assert extracted is not None
    document = json.load(extracted)
    if not isinstance(document, dict):
        raise UnitError(f"{where}: metadata.json is not a JSON object")
    return document


class _Capped:
    """A reader that refuses to go past ``MAX_TARBALL_BYTES`` (a decompression bomb)."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self.raw = raw
        self.where = where
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.read_bytes += len(data)
        if self.read_bytes > MAX_TARBALL_BYTES:
            raise UnitError(f"{self.where}: more than {MAX_TARBALL_BYTES} bytes once decompressed")
        return data


def _text(document: dict[str, Any], field: str, where: str, max_length: int | None = None) -> str | None:
    """``document[field]`` if it is a string the database can store (None if absent or not a string).

    Raises UnitError otherwise: bad text from a remote fails its unit, never the batch it is saved in.
    """
    value = document.get(field)
    if not isinstance(value, str):
        return None
    problem = _text_problem(value)
    if problem is None and max_length is not None and len(value) > max_length:
        problem = f"longer than {max_length} characters"
    if problem:
        raise UnitError(f"{where}: {field} is not valid text ({problem})")
    return value
