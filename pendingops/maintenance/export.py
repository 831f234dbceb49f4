"""Export a version as a plain directory tree plus its plugins' index files, never writing outside DEST.

The index files are the ones the plugins publish for the version (``published_files()``, as
``pendingops serve`` serves them): the file plugin's PULP_MANIFEST, the cookbook plugin's
universe (its download URLs relative to it), listing only what was exported, so DEST served by any
static web server is a remote another pendingops syncs from;
and the static form of their page folders (``published_pages()``: the python plugin's ``simple/``
index, its links relative, so DEST served by any static web server is an index pip installs from).

The export is planned before anything is written: the version's files are listed in an SQLite file
in storage's temporary area, where a path held by two files is given to the one the most recent
version added (the others are left out and counted), and the draft manifest must pass the file
plugin's own check, so the export re-syncs (no path that is another's folder, none too long, none
listed twice). Only then is DEST written, every step relative to a directory file descriptor
opened without following symlinks, into temporary names created exclusively and renamed into
place: a symlink in DEST, planted before or during the export, is refused, never followed.

Files are copied (reflinked where the filesystem can), so editing an export cannot change
storage; ``hardlink=True`` shares storage's inodes instead, faster but at that risk.

An export that fails part way (a full destination, an unreadable stored file, a storage outage)
removes what it wrote (files, then the folders it made, DEST too if it made it) and raises
``ExportFailed`` naming DEST: DEST is left as it was, but for files it replaced.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from pendingops.db.database import Database
from pendingops.db.versions import find_repository, version_info
from pendingops.maintenance.listing import iter_version_content
from pendingops.paths import unsafe_path_reason
from pendingops.plugins import PublishedFile, PublishedPage, VersionRef, available_plugins
from pendingops.plugins.file import ManifestError, check_manifest
from pendingops.plugins.published import Publisher
from pendingops.storage.base import ArtifactStorage, StorageError

MANIFEST_NAME = "PULP_MANIFEST"
#: the export's own temporary files start with this; no exported path may
TEMP_PREFIX = ".pendingops-export-"
#: Linux's ioctl cloning a file's extents (a reflink), on filesystems that share them
_FICLONE = 0x40049409
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP})
_BATCH = 1000
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ExportError(RuntimeError):
    """The export cannot be done safely; nothing outside DEST was touched."""


class ExportFailed(OSError):
    """Writing the export failed (no space, an unreadable stored file...); what it wrote was removed."""


@dataclass(slots=True)
class ExportResult:
    version: int
    files: int = 0
    linked: int = 0
    copied: int = 0
    skipped_not_stored: int = 0
    #: files left out because a version added later holds another file at the same path
    superseded: int = 0
    #: the index files written (plugins' published files)
    published: list[str] = field(default_factory=list)


def export_version(
    db: Database,
    storage: ArtifactStorage,
    repository: str,
    dest: Path,
    number: int | None = None,
    *,
    hardlink: bool = False,
    plugins: Iterable[object] | None = None,
) -> ExportResult:
    """Write every stored file of the version under ``dest`` at its relative path, and its index files.

    The index files are those ``plugins`` (by default every installed one) publish for the version.

    Raises ExportError before writing anything when the version cannot be exported as a tree that
    our own sync reads back. Artifacts not downloaded yet (on-demand content) are skipped and counted.
    """
    dest = Path(dest)
    if dest.is_symlink():
        raise ExportError(f"export destination {dest} is a symlink")
    publisher = Publisher(available_plugins().values() if plugins is None else plugins)
    with db.engine.connect() as conn:
        result = ExportResult(version=version_info(conn, repository, number).number)
        repository_id = find_repository(conn, repository)
        published = publisher.for_version(conn, repository_id, result.version)
        pages = [p for p in publisher.pages_for_version(conn, repository_id, result.version) if p.static]
    # links in what the plugins publish are relative to the export's top folder: the tree is servable as it is
    version = VersionRef(db, repository_id, result.version, "./", stored_only=True)
    # The plan lives in storage's temporary area, so nothing is written outside storage and DEST.
    temp_area = storage.new_temp_path().parent
    with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", suffix=".work", dir=temp_area) as work:
        plan, draft = Path(work) / "plan.sqlite", Path(work) / MANIFEST_NAME
        _plan(db, repository, result, plan)
        _leave_out_replaced(plan, pages)
        _draft_manifest(plan, draft, result)
        _check_published_names(plan, published, result.version)
        _check_page_folders(plan, pages, result.version)
        made_dest = not dest.exists()
        try:
            dest.mkdir(parents=True, exist_ok=True)
            root = os.open(dest, _OPEN_DIR)
        except OSError as exc:
            raise ExportError(f"export destination {dest}: {exc.strerror}") from None
        written = _Written()
        try:
            for relative_path, _ in _planned(plan):
                _check_place(root, relative_path)
            for name in published:
                _check_place(root, name)
            for page in pages:
                _check_place(root, f"{page.prefix}/index.html")
            for relative_path, location in _planned(plan):
                written.doing, written.source = relative_path, f"{storage}/{location}"
                if _place(root, relative_path, storage, location, hardlink, written):
                    result.linked += 1
                else:
                    result.copied += 1
            for name, index in published.items():
                written.doing, written.source = name, ""
                _write_published(root, name, index, version, written)
                result.published.append(name)
            for page in pages:
                written.doing, written.source = f"{page.prefix}/", ""
                count = _write_pages(root, page, version, written)
                result.published.append(f"{page.prefix}/ ({count} pages)")
        except BaseException as exc:
            written.undo(root)
            if made_dest:
                with suppress(OSError):
                    dest.rmdir()
            if isinstance(exc, OSError) and not isinstance(exc, ExportFailed | StorageError):
                source = f" (from {written.source})" if written.source else ""
                raise ExportFailed(
                    f"export to {dest} failed at {written.doing!r}{source}: {exc.strerror or exc};"
                    " what it wrote was removed"
                ) from None
            raise
        finally:
            os.close(root)
    return result


class _Written:
    """What the export wrote under DEST (files, then folders it made), to remove if it fails."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.folders: list[str] = []
        #: the path being written and where its bytes come from, for the message
        self.doing = ""
        self.source = ""

    def undo(self, root: int) -> None:
        for path in reversed(self.files):
            with suppress(OSError):
                os.unlink(path, dir_fd=root)
        for path in reversed(self.folders):  # deepest last made, first removed
            with suppress(OSError):
                os.rmdir(path, dir_fd=root)


def _write_published(root: int, name: str, index: PublishedFile, version: VersionRef, written: _Written) -> None:
    *folders, base = name.split("/")
    folder = _open_folders(root, folders, name, create=True, made=written.folders)
    assert folder is not None
    here = replace(version, base_url="../" * len(folders) or "./")  # from the file's folder to the top
    try:
        _write_new(folder, base, lambda out: out.writelines(index.generate(here)))
        written.files.append(name)
    finally:
        if folder != root:
            os.close(folder)


def _write_pages(root: int, page: PublishedPage, version: VersionRef, written_out: _Written) -> int:
    """Write the static form of a plugin's page folder; how many files that made."""
    assert page.static is not None
    written = 0
    for path, body in page.static(version):
        name = f"{page.prefix}/{path}"
        if unsafe_path_reason(name):  # the plugin's own page names: a bug, never remote input
            raise ExportError(f"refusing to export page {name!r}: {unsafe_path_reason(name)}")
        *folders, base = name.split("/")
        folder = _open_folders(root, folders, name, create=True, made=written_out.folders)
        assert folder is not None
        try:
            _write_new(folder, base, lambda out, body=body: out.writelines(body))
            written_out.files.append(name)
        finally:
            if folder != root:
                os.close(folder)
        written += 1
    return written


def _leave_out_replaced(plan: Path, pages: Iterable[PublishedPage]) -> None:
    """Leave out the stored files below the folder of pages that stand in for them (``files`` pages)."""
    with closing(sqlite3.connect(plan)) as conn:
        for page in pages:
            if page.files:
                query = "DELETE FROM file WHERE path = ? OR substr(path, 1, ?) = ?"
                conn.execute(query, (page.prefix, len(page.prefix) + 1, page.prefix + "/"))
        conn.commit()


def _check_page_folders(plan: Path, pages: Iterable[PublishedPage], version: int) -> None:
    """Refuse a version holding a file in a folder a plugin writes its pages into."""
    with closing(sqlite3.connect(plan)) as conn:
        for page in pages:
            query = "SELECT path FROM file WHERE path = ? OR substr(path, 1, ?) = ? LIMIT 1"
            found = conn.execute(query, (page.prefix, len(page.prefix) + 1, page.prefix + "/")).fetchone()
            if found:
                problem = f"a plugin writes its {page.prefix}/ pages there"
                raise ExportError(f"cannot export version {version}: refusing {found[0]!r}: {problem}")


def _check_published_names(plan: Path, published: Mapping[str, PublishedFile], version: int) -> None:
    """Refuse a version holding a file where a plugin publishes its index."""
    with closing(sqlite3.connect(plan)) as conn:
        for name in published:
            if conn.execute("SELECT 1 FROM file WHERE path = ?", (name,)).fetchone():
                problem = "a plugin publishes its index there"
                raise ExportError(f"cannot export version {version}: refusing {name!r}: {problem}")


# -- the plan ---------------------------------------------------------------------------------------


def _plan(db: Database, repository: str, result: ExportResult, plan: Path) -> None:
    """List the version's stored files in ``plan``, refusing paths that cannot be written under DEST."""
    with closing(sqlite3.connect(plan)) as conn:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(
            "CREATE TABLE file (path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
            " location TEXT NOT NULL, added INTEGER NOT NULL, content INTEGER NOT NULL)"
        )
        rows = []
        for unit in iter_version_content(db, repository, result.version):
            for stored in unit.files:
                if stored.location is None or stored.sha256 is None:
                    result.skipped_not_stored += 1
                    continue
                _check_path(stored.relative_path, result.version)
                rows.append(
                    (stored.relative_path, stored.sha256, stored.size, stored.location, unit.added_in, unit.content_id)
                )
            if len(rows) >= _BATCH:
                conn.executemany("INSERT INTO file VALUES (?, ?, ?, ?, ?, ?)", rows)
                rows.clear()
        conn.executemany("INSERT INTO file VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("CREATE INDEX file_path ON file (path, added, content)")
        # One file per path: the one the latest version added (the remote's newest word on it).
        result.superseded = conn.execute(
            "DELETE FROM file WHERE EXISTS (SELECT 1 FROM file AS newer WHERE newer.path = file.path"
            " AND (newer.added, newer.content) > (file.added, file.content))"
        ).rowcount
        conn.commit()


def _check_path(relative_path: str, version: int) -> None:
    problem = unsafe_path_reason(relative_path)
    if problem is None and relative_path == MANIFEST_NAME:
        problem = "it is the manifest's own name"
    elif problem is None and any(part.startswith(TEMP_PREFIX) for part in relative_path.split("/")):
        problem = f"names starting with {TEMP_PREFIX!r} are the export's temporary files"
    elif problem is None and relative_path.startswith("#"):
        problem = "a manifest line starting with '#' is a comment"
    if problem:
        raise ExportError(f"cannot export version {version}: refusing {relative_path!r}: {problem}")


def _draft_manifest(plan: Path, draft: Path, result: ExportResult) -> None:
    """Write the manifest of the plan to ``draft`` and check it as our own sync would."""
    with closing(sqlite3.connect(plan)) as conn, open(draft, "w", encoding="utf-8", newline="\n") as out:
        for path, sha256, size in conn.execute("SELECT path, sha256, size FROM file ORDER BY path"):
            out.write(f"{path},{sha256},{size}\n")
            result.files += 1
    try:
        check_manifest(draft, draft.with_suffix(".sqlite"))
    except ManifestError as exc:
        raise ExportError(f"cannot export version {result.version} as a tree: {exc}") from None


def _planned(plan: Path) -> Iterator[tuple[str, str]]:
    """(relative_path, location) of every planned file, in path order, a batch at a time."""
    with closing(sqlite3.connect(plan)) as conn:
        last = ""
        query = "SELECT path, location FROM file WHERE path > ? ORDER BY path LIMIT ?"
        while rows := conn.execute(query, (last, _BATCH)).fetchall():
            yield from rows
            last = rows[-1][0]


# -- writing under DEST -----------------------------------------------------------------------------


def _check_place(root: int, relative_path: str) -> None:
    """Refuse, before anything is written, a path DEST already holds as a symlink or other non-file."""
    *folders, name = relative_path.split("/")
    folder = _open_folders(root, folders, relative_path, create=False)
    if folder is None:
        return
    try:
        _check_target(folder, name, relative_path)
    finally:
        if folder != root:
            os.close(folder)


def _place(
    root: int, relative_path: str, storage: ArtifactStorage, location: str, hardlink: bool, written: _Written
) -> bool:
    """Put the artifact at ``relative_path`` under ``root``; True if hard-linked, False if copied."""
    *folders, name = relative_path.split("/")
    folder = _open_folders(root, folders, relative_path, create=True, made=written.folders)
    assert folder is not None
    try:
        _check_target(folder, name, relative_path)
        source = storage.local_path(location)
        written.source = str(source) if source is not None else written.source
        if hardlink and source is not None and _link_new(source, folder, name):
            written.files.append(relative_path)
            return True
        if source is not None:
            source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write_new(folder, name, lambda out: _clone_or_copy(source_fd, out))
            finally:
                os.close(source_fd)
        else:
            with storage.open(location) as stream:
                _write_new(folder, name, lambda out: shutil.copyfileobj(stream, out))
        written.files.append(relative_path)
        return False
    finally:
        if folder != root:
            os.close(folder)


def _open_folders(
    root: int, folders: list[str], relative_path: str, *, create: bool, made: list[str] | None = None
) -> int | None:
    """A descriptor of the folder ``folders`` names under ``root``, never through a symlink.

    Missing folders are created when ``create`` (and their paths added to ``made``); otherwise None
    is returned for a missing one.
    """
    current = root
    try:
        for depth, part in enumerate(folders, start=1):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=current)
                    if made is not None:
                        made.append("/".join(folders[:depth]))
            try:
                opened = os.open(part, _OPEN_DIR, dir_fd=current)
            except FileNotFoundError:
                if create:
                    raise
                opened = None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    problem = f"refusing to export {relative_path!r} through {part!r}: not a plain directory"
                    raise ExportError(problem) from None
                raise
            if current != root:
                os.close(current)
            if opened is None:
                return None
            current = opened
    except BaseException:
        if current != root:
            os.close(current)
        raise
    return current


def _check_target(folder: int, name: str, relative_path: str) -> None:
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise ExportError(f"refusing to export {relative_path!r}: it exists in DEST and is not a regular file")


def _link_new(source: Path, folder: int, name: str) -> bool:
    """Hard-link ``source`` to ``name`` in ``folder`` (via a fresh temporary name); False if links cannot be made."""
    temp = _temp_name()
    try:
        os.link(source, temp, dst_dir_fd=folder, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_LINK:
            return False
        raise
    _rename_into_place(folder, temp, name)
    return True


def _write_new(folder: int, name: str, fill: Callable[[BinaryIO], object]) -> None:
    """Create a fresh temporary file in ``folder`` (exclusively, never through a symlink), let
    ``fill(file)`` write it, then rename it to ``name``: a reader never sees a partial file."""
    temp = _temp_name()
    fd = os.open(temp, _CREATE, 0o644, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        _rename_into_place(folder, temp, name)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)
        raise


def _rename_into_place(folder: int, temp: str, name: str) -> None:
    # A rename replaces whatever ``name`` is (a symlink planted meanwhile included), never its target.
    os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)


def _clone_or_copy(source: int, out: BinaryIO) -> None:
    """Copy ``source`` into ``out``: a reflink where the filesystem shares extents, else the bytes
    (in the kernel where it can)."""
    target = out.fileno()
    try:
        fcntl.ioctl(target, _FICLONE, source)
        return
    except OSError:
        pass
    try:
        while os.copy_file_range(source, target, 1 << 30):
            pass
        return
    except OSError as exc:  # another filesystem on an old kernel...: copy the bytes in user space
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(source, 0, os.SEEK_SET)
    os.lseek(target, 0, os.SEEK_SET)
    os.ftruncate(target, 0)
    shutil.copyfileobj(os.fdopen(source, "rb", closefd=False), out)


def _temp_name() -> str:
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp"
