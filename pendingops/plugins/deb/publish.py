"""A version's ``dists/``: as the upstream published it, or as our own indexes of its packages.

**Verbatim** when the version is the upstream's set: each suite held by exactly one suite unit, read
without ``packages=``, and the version's packages exactly those its indexes list. The suite units'
stored files (InRelease, Release, Release.gpg, the index files and their by-hash paths) are then
served and exported as they are, so apt checks the upstream's own signature.

**Our own** otherwise (``packages=``, an additive sync that merged two Releases, a package that
failed): for each suite, ``Packages`` and ``Packages.gz`` per component and architecture, listing the
version's packages that the suite's indexes listed (each stanza as the index gave it), a ``Release``
naming them (``Acquire-By-Hash: yes``, with the by-hash copies) and, when the suite has a
``signing_key``, ``InRelease`` and ``Release.gpg`` signed with it. These pages stand in for every
stored file below ``dists/``. They are generated from the database; what a version's suite
publishes is worked out once per process (versions never change) and kept.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, select

from pendingops.db.schema import Content, ContentArtifact, RepositoryContent, RepositoryVersion
from pendingops.db.versions import membership_filter
from pendingops.plugins import PageResponse, VersionRef
from pendingops.plugins.deb.content import DebPackage, DebRelease, DebReleaseMember
from pendingops.plugins.deb.signing import sign
from pendingops.plugins.deb.stanza import format_stanza

TEXT = "text/plain; charset=utf-8"
_PAGE = 1000
_REMEMBERED = 64
_BY_HASH = re.compile(r"(?P<folder>.+)/by-hash/SHA256/(?P<digest>[0-9a-f]{64})")
_content = Content.__table__
_rc = RepositoryContent.__table__
_ca = ContentArtifact.__table__
_version = RepositoryVersion.__table__
_package = DebPackage.__table__
_release = DebRelease.__table__
_member = DebReleaseMember.__table__
_PACKAGE_TYPE = DebPackage.content_type_name()
_RELEASE_TYPE = DebRelease.content_type_name()


@dataclass(frozen=True, slots=True)
class _Suite:
    """The suite units of one suite name in a version, newest first, and what our indexes cover."""

    name: str
    ids: tuple[int, ...]
    codename: str | None
    origin: str | None
    label: str | None
    signing_key: str | None
    components: tuple[str, ...]
    architectures: tuple[str, ...]

    def indexes(self) -> Iterator[tuple[str, str]]:
        for component in self.components:
            for architecture in self.architectures:
                yield component, architecture


@dataclass(frozen=True, slots=True)
class _Published:
    """What our own ``dists/<suite>/`` holds: index files by path (sha256, size) and the Release files."""

    files: dict[str, tuple[str, int]]
    release: bytes
    inrelease: bytes | None
    release_gpg: bytes | None


_lock = threading.Lock()
_own: OrderedDict[tuple[Any, ...], bool] = OrderedDict()
_published: OrderedDict[tuple[Any, ...], _Published] = OrderedDict()


# -- which form a version takes -------------------------------------------------------------------


def own_indexes(conn: Connection, repository_id: int, number: int) -> bool:
    """Whether our own indexes stand in for the version's stored ``dists/`` (it is not the upstream's set)."""
    key = (_version_key(conn, repository_id, number),)
    with _lock:
        if key in _own:
            return _own[key]
    found = not _is_upstream_set(conn, repository_id, number)
    with _lock:
        _remember(_own, key, found)
    return found


def _is_upstream_set(conn: Connection, repository_id: int, number: int) -> bool:
    members = membership_filter(repository_id, number)
    rows = conn.execute(
        select(_release.c.id, _release.c.suite, _release.c.filtered)
        .join(_rc, _rc.c.content_id == _release.c.id)
        .where(members)
    ).all()
    names = [row.suite for row in rows]
    if not rows or len(set(names)) != len(names) or any(row.filtered for row in rows):
        return False
    ids = [row.id for row in rows]
    held = conn.execute(
        select(func.count())
        .select_from(_rc.join(_content, _content.c.id == _rc.c.content_id))
        .where(members, _content.c.content_type == _PACKAGE_TYPE)
    ).scalar_one()
    listed = conn.execute(
        select(func.count(distinct(_member.c.package_key))).where(_member.c.release_id.in_(ids))
    ).scalar_one()
    listed_and_held = conn.execute(
        select(func.count(distinct(_member.c.package_key)))
        .select_from(_member.join(_content, _package_content()).join(_rc, _rc.c.content_id == _content.c.id))
        .where(_member.c.release_id.in_(ids), members)
    ).scalar_one()
    return held == listed == listed_and_held


def _package_content() -> Any:
    return and_(_content.c.content_type == _PACKAGE_TYPE, _content.c.key_digest == _member.c.package_key)


# -- serving and exporting our own indexes --------------------------------------------------------


def render(version: VersionRef, path: str, accept: str) -> PageResponse | None:
    """Our own file at ``dists/{path}``, or None when there is none."""
    with version.db.engine.connect() as conn:
        suites, created = _suites_of(conn.execution_options(isolation_level="AUTOCOMMIT"), version)
    suite = next((s for s in sorted(suites, key=lambda s: -len(s.name)) if path.startswith(s.name + "/")), None)
    if suite is None:
        return None
    rest = path[len(suite.name) + 1 :]
    published = _publication(version, suite, created)
    named = {
        "Release": (TEXT, published.release),
        "InRelease": (TEXT, published.inrelease),
        "Release.gpg": ("application/pgp-signature", published.release_gpg),
    }
    if rest in named:
        media_type, body = named[rest]
        return None if body is None else PageResponse(media_type, iter([body]))
    by_hash = _BY_HASH.fullmatch(rest)
    if by_hash is not None:  # two indexes may have the same bytes (empty ones): the one in the folder asked for
        folder, digest = by_hash["folder"], by_hash["digest"]
        rest = next((p for p, (d, _) in published.files.items() if d == digest and p.rpartition("/")[0] == folder), "")
    if rest not in published.files:
        return None
    return PageResponse("application/gzip" if rest.endswith(".gz") else TEXT, _index_body(version, suite, rest))


def static(version: VersionRef) -> Iterator[tuple[str, Iterable[bytes]]]:
    """Our own ``dists/`` as files below it: each index at its path and by-hash path, then the Release files."""
    with version.db.engine.connect() as conn:
        suites, created = _suites_of(conn.execution_options(isolation_level="AUTOCOMMIT"), version)
    for suite in suites:
        published = _publication(version, suite, created)
        for path, (digest, _) in published.files.items():
            folder = path.rpartition("/")[0]
            yield f"{suite.name}/{path}", _index_body(version, suite, path)
            yield f"{suite.name}/{folder}/by-hash/SHA256/{digest}", _index_body(version, suite, path)
        yield f"{suite.name}/Release", [published.release]
        if published.inrelease is not None and published.release_gpg is not None:
            yield f"{suite.name}/InRelease", [published.inrelease]
            yield f"{suite.name}/Release.gpg", [published.release_gpg]


def _index_body(version: VersionRef, suite: _Suite, path: str) -> Iterator[bytes]:
    """The bytes of our index at ``path`` (``<component>/binary-<arch>/Packages[.gz]``) below the suite."""
    component, _, rest = path.partition("/binary-")
    architecture, _, name = rest.partition("/")
    text = _packages_text(version, suite, component, architecture)
    return _gzipped(text) if name == "Packages.gz" else text


def _publication(version: VersionRef, suite: _Suite, created: datetime) -> _Published:
    key = (version.db.engine.url, version.repository_id, version.number, created, version.stored_only, suite)
    with _lock:
        if key in _published:
            return _published[key]
        published = _build(version, suite, created)  # once: gpg signs once per version and suite
        _remember(_published, key, published)
        return published


def _build(version: VersionRef, suite: _Suite, created: datetime) -> _Published:
    files: dict[str, tuple[str, int]] = {}
    for component, architecture in suite.indexes():
        plain, packed = hashlib.sha256(), hashlib.sha256()
        plain_size = packed_size = 0
        compressor = _compressor()
        for chunk in _packages_text(version, suite, component, architecture):
            plain.update(chunk)
            plain_size += len(chunk)
            piece = compressor.compress(chunk)
            packed.update(piece)
            packed_size += len(piece)
        piece = compressor.flush()
        packed.update(piece)
        packed_size += len(piece)
        folder = f"{component}/binary-{architecture}"
        files[f"{folder}/Packages"] = (plain.hexdigest(), plain_size)
        files[f"{folder}/Packages.gz"] = (packed.hexdigest(), packed_size)
    fields = {
        "Origin": suite.origin or "pendingops",
        "Label": suite.label or suite.origin or "pendingops",
        "Suite": suite.name,
        "Codename": suite.codename or suite.name,
        "Date": format_datetime(created.astimezone(UTC), usegmt=True),
        "Architectures": " ".join(suite.architectures),
        "Components": " ".join(suite.components),
        "Acquire-By-Hash": "yes",
        "SHA256": "".join(f"\n{digest} {size} {path}" for path, (digest, size) in files.items()),
    }
    release = format_stanza(fields).encode()
    if suite.signing_key is None:
        return _Published(files, release, None, None)
    inrelease, detached = sign(release, suite.signing_key)
    return _Published(files, release, inrelease, detached)


def _packages_text(version: VersionRef, suite: _Suite, component: str, architecture: str) -> Iterator[bytes]:
    """The stanzas of the version's packages the suite's ``component``/``architecture`` indexes listed,
    in natural-key order (name, version, architecture, digest), a page at a time."""
    listed = (
        select(_content.c.id)
        .select_from(_member.join(_content, _package_content()))
        .where(
            _member.c.release_id.in_(suite.ids),
            _member.c.component == component,
            _member.c.index_architecture == architecture,
        )
    )
    parts: list[str] = []
    for row in version.units(DebPackage, where=[_package.c.id.in_(listed)]):
        parts.append(row.stanza + "\n")
        if len(parts) >= _PAGE:
            yield "".join(parts).encode()
            parts = []
    if parts:
        yield "".join(parts).encode()


def _gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    compressor = _compressor()
    for chunk in chunks:
        piece = compressor.compress(chunk)
        if piece:
            yield piece
    yield compressor.flush()


def _compressor() -> Any:
    """A gzip compressor whose output depends only on its input (no name, no time in the header)."""
    return zlib.compressobj(9, zlib.DEFLATED, 31)


# -- reading the version ---------------------------------------------------------------------------


def _suites(version: VersionRef) -> list[_Suite]:
    """The version's suites, each from its suite units newest first (the latest version added, then saved).

    Every suite unit counts, its Release files stored or not: our own Release replaces them.
    """
    by_name: dict[str, list[Any]] = {}
    for row in replace(version, stored_only=False).units(DebRelease):
        by_name.setdefault(row.suite, []).append(row)
    suites = []
    for name, rows in by_name.items():
        rows.sort(key=lambda row: (row.version_added, row.id), reverse=True)
        newest = rows[0]
        suites.append(
            _Suite(
                name=name,
                ids=tuple(row.id for row in rows),
                codename=_first_line(newest.codename),
                origin=_first_line(newest.origin),
                label=_first_line(newest.label),
                signing_key=newest.signing_key,
                components=tuple(dict.fromkeys(c for row in rows for c in row.components.split())),
                architectures=tuple(sorted({a for row in rows for a in row.architectures.split()})),
            )
        )
    return suites


def _suites_of(conn: Connection, version: VersionRef) -> tuple[list[_Suite], datetime]:
    """The version's suites and when the version was made (our Release's Date)."""
    query = select(_version.c.created_at).where(
        _version.c.repository_id == version.repository_id, _version.c.number == version.number
    )
    moment = conn.execute(query).scalar_one()
    return _suites(version), moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version_key(conn: Connection, repository_id: int, number: int) -> tuple[Any, ...]:
    """What names a version for good: a version deleted and made again has another creation time."""
    query = select(_version.c.created_at).where(_version.c.repository_id == repository_id, _version.c.number == number)
    return (conn.engine.url, repository_id, number, conn.execute(query).scalar())


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > _REMEMBERED:
        cache.popitem(last=False)


def _first_line(text: str | None) -> str | None:
    return None if text is None else text.split("\n", 1)[0].strip() or None
