"""What a Debian archive declares: its suites' Release files, their Packages indexes, the packages.

For each suite, ``dists/<suite>/InRelease`` (or ``Release``, with ``Release.gpg`` beside it) is
fetched first, all suites before anything else, so an unchanged archive ends the sync right there
(``index_read`` of their digests). Each index used is the one the Release lists (xz, else gzip,
else plain; at its ``by-hash`` path when the Release says ``Acquire-By-Hash: yes``), fetched into
storage through the sync's fetcher, which refuses any byte that does not match the Release's size
and SHA256. Every index is checked whole into a catalog on disk before the first unit is emitted.

Units: one per binary package (its file at its ``Filename``, checked against the stanza's Size
and SHA256 when downloaded), then one per suite holding the Release files and the index files as
they were fetched, so a version can be served as the upstream published it, whatever the policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from pendingops.pending import PendingArtifact, PendingContent
from pendingops.plugins import Source, index_read
from pendingops.plugins.deb import catalog
from pendingops.plugins.deb.content import DebPackage, DebRelease
from pendingops.plugins.deb.options import DebOptionError, DebOptions
from pendingops.plugins.deb.packages import (
    MAX_INDEX_BYTES,
    MAX_UNPACKED_INDEX_BYTES,
    PackagesIndexError,
    read_chunks,
    unpacked,
)
from pendingops.plugins.deb.release import MAX_RELEASE_BYTES, Release, ReleaseError, parse_release, signed_text
from pendingops.plugins.deb.stanza import StanzaError, read_stanzas
from pendingops.remote import RemoteConfig

if TYPE_CHECKING:
    from pendingops.download.fetcher import Fetcher
    from pendingops.storage.base import ArtifactStorage

#: the files of a suite that sign its index list, as an archive publishes them
RELEASE_FILES = ("InRelease", "Release", "Release.gpg")


@dataclass(frozen=True, slots=True)
class Limits:
    """How large an index may be as fetched and once decompressed."""

    index_bytes: int = MAX_INDEX_BYTES
    unpacked_index_bytes: int = MAX_UNPACKED_INDEX_BYTES


@dataclass(slots=True)
class _Suite:
    name: str
    #: the Release files fetched, by name, in the work folder
    files: dict[str, Path]
    #: sha256 over the Release files as fetched (they name every index file's digest)
    digest: str
    release: Release | None = None
    artifacts: list[PendingArtifact] = field(default_factory=list)
    #: the architectures whose index was read
    architectures: set[str] = field(default_factory=set)


async def open_archive(remote: RemoteConfig, fetcher: Fetcher, workdir: Path, limits: Limits) -> Source:
    """Fetch and check what the archive at ``remote.url`` declares; the Source of its units."""
    options = DebOptions.parse(remote.options)
    suites = [await _release_files(remote, fetcher, workdir, name) for name in options.suites]
    digests = workdir / "release-digests"
    digests.write_text("".join(f"{s.name} {s.digest}\n" for s in suites), encoding="utf-8")
    await index_read(digests)  # an unchanged archive ends the sync here, before any index is read
    catalog_path = workdir / "packages.sqlite"
    catalog.create_catalog(catalog_path)
    for suite in suites:
        await _read_suite(remote, fetcher, suite, options, catalog_path, limits)
    missing = await asyncio.to_thread(catalog.names_missing, catalog_path, options.packages)
    if missing:
        raise DebOptionError(f"packages: not listed by the indexes read: {', '.join(missing)}")
    total = await asyncio.to_thread(catalog.package_count, catalog_path)
    return Source(_units(remote, catalog_path, suites, options), total + len(suites))


async def _release_files(remote: RemoteConfig, fetcher: Fetcher, workdir: Path, suite: str) -> _Suite:
    """Fetch the suite's InRelease, Release and Release.gpg, those the archive has (InRelease or Release at least)."""
    from pendingops.download.fetcher import DownloadError

    found: dict[str, Path] = {}
    errors: dict[str, str] = {}
    folder = workdir / "dists" / suite
    folder.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_FILES:
        local = folder / name
        try:
            await fetcher.fetch_file(_url(remote, f"dists/{suite}/{name}"), local, max_size=MAX_RELEASE_BYTES)
        except DownloadError as exc:  # a file the archive does not publish
            errors[name] = str(exc)
            local.unlink(missing_ok=True)
            continue
        found[name] = local
    if "InRelease" not in found and "Release" not in found:
        raise ReleaseError(f"suite {suite!r}: neither InRelease nor Release could be fetched ({errors['Release']})")
    lines = "".join(f"{name} {_sha256(path)}\n" for name, path in sorted(found.items()))
    return _Suite(suite, found, hashlib.sha256(lines.encode()).hexdigest())


async def _read_suite(
    remote: RemoteConfig, fetcher: Fetcher, suite: _Suite, options: DebOptions, catalog_path: Path, limits: Limits
) -> None:
    """Parse the suite's Release, fetch and check each index it lists for the options, keep their packages."""
    storage = fetcher.storage
    signed = "InRelease" in suite.files
    source = suite.files["InRelease" if signed else "Release"]
    where = _url(remote, f"dists/{suite.name}/{source.name}")
    text = await asyncio.to_thread(source.read_bytes)
    release = parse_release(signed_text(text, where) if signed else text, where)
    suite.release = release
    for name, path in suite.files.items():
        suite.artifacts.append(await _store_release_file(remote, storage, f"dists/{suite.name}/{name}", path))
    for component in options.components:
        for architecture in options.architectures:
            index = release.packages_index(component, architecture)
            if index is None:
                if architecture == "all":
                    continue  # "all" packages are then listed inside each architecture's index
                raise ReleaseError(f"{where}: no Packages index for {component}/binary-{architecture}")
            if index.size > limits.index_bytes:
                raise ReleaseError(
                    f"{where}: {index.path} is {index.size} bytes, over the limit of {limits.index_bytes}"
                )
            path = f"dists/{suite.name}/{index.path}"
            by_hash = f"{path.rpartition('/')[0]}/by-hash/SHA256/{index.sha256}"
            artifact = PendingArtifact(
                _url(remote, by_hash if release.by_hash else path), path, index.size, index.sha256
            )
            await fetcher.fetch(artifact)  # size and sha256 as the Release says, or the sync fails
            suite.artifacts.append(artifact)
            if release.by_hash:
                suite.artifacts.append(_stored_copy(artifact, _url(remote, by_hash), by_hash))
            listing = (suite.name, component, architecture)
            await asyncio.to_thread(
                _add_index, storage, artifact, index.compression, limits, catalog_path, artifact.url, listing, options
            )
            suite.architectures.add(architecture)


def _add_index(
    storage: ArtifactStorage,
    artifact: PendingArtifact,
    compression: str,
    limits: Limits,
    catalog_path: Path,
    where: str,
    listing: tuple[str, str, str],
    options: DebOptions,
) -> None:
    assert artifact.stored_sha256 is not None
    with storage.open(storage.location_for(artifact.stored_sha256)) as handle:
        text = unpacked(read_chunks(handle), compression, limits.unpacked_index_bytes, where)
        try:
            catalog.add_index(catalog_path, read_stanzas(text), where, listing, options.packages)
        except StanzaError as exc:
            raise PackagesIndexError(f"{where}: {exc}") from None


async def _store_release_file(
    remote: RemoteConfig, storage: ArtifactStorage, relative_path: str, local: Path
) -> PendingArtifact:
    """Put a fetched Release file into storage: an artifact of the suite unit, stored whatever the policy."""
    digest, size = _sha256(local), local.stat().st_size
    temp = storage.new_temp_path()
    await asyncio.to_thread(shutil.copyfile, local, temp)
    await storage.put_async(temp, digest)
    artifact = PendingArtifact(_url(remote, relative_path), relative_path, size, digest)
    artifact.stored_sha256, artifact.stored_size = digest, size
    return artifact


def _stored_copy(artifact: PendingArtifact, url: str, relative_path: str) -> PendingArtifact:
    """The same stored bytes at another path of the unit (an index at its by-hash path)."""
    copy = PendingArtifact(url, relative_path, artifact.size, artifact.sha256)
    copy.stored_sha256, copy.stored_size = artifact.stored_sha256, artifact.stored_size
    return copy


async def _units(
    remote: RemoteConfig, catalog_path: Path, suites: list[_Suite], options: DebOptions
) -> AsyncIterator[PendingContent]:
    for count, fields in enumerate(catalog.packages(catalog_path), start=1):
        yield package_unit(remote, fields)
        if count % 256 == 0:
            await asyncio.sleep(0)  # let downloads and saves run while a long catalog is read
    for suite in suites:
        yield _suite_unit(suite, options, catalog_path)


def package_unit(remote: RemoteConfig, fields: dict[str, object]) -> PendingContent:
    """The unit of one binary package: its file at its Filename, with the stanza's Size and SHA256."""
    filename, size, digest = str(fields["filename"]), int(fields["size"]), str(fields["sha256"])  # type: ignore[call-overload]
    artifact = PendingArtifact(url=_url(remote, filename), relative_path=filename, size=size, sha256=digest)
    return PendingContent(DebPackage, dict(fields), [artifact])


def _suite_unit(suite: _Suite, options: DebOptions, catalog_path: Path) -> PendingContent:
    release = suite.release
    assert release is not None
    fields = {
        "suite": suite.name,
        "release_digest": suite.digest,
        "selection": options.selection,
        "codename": release.codename,
        "origin": release.origin,
        "label": release.label,
        "components": " ".join(options.components),
        "architectures": " ".join(sorted(suite.architectures)),
        "filtered": bool(options.packages),
        "signing_key": options.signing_key,
    }
    unit = PendingContent(DebRelease, fields, list(suite.artifacts))
    unit.extra["members"] = (catalog_path, suite.name)
    return unit


def _url(remote: RemoteConfig, path: str) -> str:
    return remote.join(quote(path))


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
