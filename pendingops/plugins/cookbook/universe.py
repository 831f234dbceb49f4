"""The universe document: read as a stream with limits, checked in full into an SQLite file.

The remote's universe lists every cookbook version; it is streamed one bounded entry at a time,
checked in full into an SQLite file (which also finds versions listed twice) before the first unit
is emitted from that file, so memory does not grow with it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import urljoin

from pendingops.paths import MAX_SEGMENT_BYTES
from pendingops.pending import PendingInputError
from pendingops.plugins.cookbook.content import tarball_path
from pendingops.remote import strip_credentials

#: streamed, so memory does not grow with it
MAX_UNIVERSE_BYTES = 512 * 1024 * 1024
#: one cookbook version's entry in the universe (its url and dependencies) is small
MAX_ENTRY_BYTES = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}")
#: ASCII digits without leading zeros: "01.00" is not another spelling of "1.0"
_VERSION = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,3}")
_URL = re.compile(r"(?:https?|file)://", re.IGNORECASE)
#: what a tarball's file name adds to the cookbook's name and version: "-" and ".tar.gz"
_TARBALL_NAME_EXTRA = len("-.tar.gz")
_READ = 64 * 1024
_BATCH = 1000


class UniverseError(PendingInputError):
    """The universe document is malformed; the message names the cookbook version and the problem."""


class UniverseEntry(NamedTuple):
    name: str
    version: str
    download_url: str
    dependencies: dict[str, str]


def parse_universe(document: Any, where: str = "universe") -> list[UniverseEntry]:
    """Check a decoded universe and return its entries sorted by name and version.

    Raises UniverseError naming the first bad cookbook version.
    """
    if not isinstance(document, dict):
        raise UniverseError(f"bad {where}: expected a JSON object of cookbooks, got {type(document).__name__}")
    entries = []
    for name, versions in document.items():
        _check_name(name, where)
        if not isinstance(versions, dict):
            raise UniverseError(f"bad {where}: cookbook {name!r}: expected an object of versions")
        for version, entry in versions.items():
            entries.append(_parse_entry(name, version, entry, where))
    entries.sort(key=lambda e: (e.name, tuple(int(part) for part in e.version.split("."))))
    return entries


def _check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise UniverseError(f"bad {where}: invalid cookbook name {_show(name)}")


def _parse_entry(name: str, version: Any, entry: Any, where: str) -> UniverseEntry:
    def bad(problem: str) -> UniverseError:
        return UniverseError(f"bad {where}: cookbook {name!r} version {_show(version)}: {problem}")

    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise bad("invalid version (expected up to four numbers without leading zeros, separated by dots)")
    if len(name) + len(version) + _TARBALL_NAME_EXTRA > MAX_SEGMENT_BYTES:  # both ASCII: characters are bytes
        raise bad(f"its tarball's file name {tarball_path(name, version)!r} is longer than {MAX_SEGMENT_BYTES} bytes")
    if not isinstance(entry, dict):
        raise bad("expected an object")
    url = entry.get("download_url")
    if isinstance(url, str) and url and not _URL.match(url) and _URL.match(where):
        url = urljoin(where, url)  # relative to the universe itself (an exported one, served anywhere)
    if not isinstance(url, str) or not _URL.match(url) or _text_problem(url):
        raise bad(f"download_url must be an http, https or file url, got {_show(url)}")
    dependencies = entry.get("dependencies") or {}
    if not isinstance(dependencies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and not _text_problem(k) and not _text_problem(v)
        for k, v in dependencies.items()
    ):
        raise bad("dependencies must map cookbook names to version constraints (valid text)")
    return UniverseEntry(name, version, strip_credentials(url), dict(sorted(dependencies.items())))


def iter_universe(path: Path, where: str = "universe") -> Iterator[UniverseEntry]:
    """Yield the entries of the universe saved at ``path``, in its order, checking each.

    The document is streamed: only the entry being read (at most ``MAX_ENTRY_BYTES``) is held, so
    neither its size nor its nesting can exhaust memory or the stack. Raises UniverseError (one line)
    for anything malformed. Duplicates are not checked here (``check_universe`` does).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # as json.load: a BOM is allowed
            yield from _UniverseReader(handle, where).entries()
    except UnicodeDecodeError as exc:
        raise UniverseError(f"bad {where}: not UTF-8 ({exc.reason} at byte {exc.start} of a chunk)") from None


def index_universe(path: Path, scratch: Path, where: str = "universe") -> int:
    """Check every entry of the universe at ``path``, store them in an SQLite file at ``scratch``
    (for ``indexed_entries``) and return how many there are.

    Raises UniverseError for the first bad entry and for a version listed twice (JSON would keep
    the last silently). Memory stays flat: the entries are on disk, not in a list.
    """
    with closing(sqlite3.connect(scratch)) as conn:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(
            "CREATE TABLE entry (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
            " url TEXT NOT NULL, dependencies TEXT NOT NULL, UNIQUE (name, version))"
        )
        count = 0
        entries = iter_universe(path, where)
        while batch := [(e.name, e.version, e.download_url, json.dumps(e[3])) for e in islice(entries, _BATCH)]:
            try:
                conn.executemany("INSERT INTO entry (name, version, url, dependencies) VALUES (?, ?, ?, ?)", batch)
            except sqlite3.IntegrityError:
                name, version = _first_repeat(conn, batch)
                raise UniverseError(f"bad {where}: cookbook {name!r} version {version!r} is listed twice") from None
            count += len(batch)
        conn.commit()
    return count


def indexed_entries(scratch: Path) -> Iterator[UniverseEntry]:
    """The entries ``index_universe`` stored, in the universe's order, a batch at a time."""
    with closing(sqlite3.connect(scratch)) as conn:
        last = 0
        query = "SELECT id, name, version, url, dependencies FROM entry WHERE id > ? ORDER BY id LIMIT ?"
        while rows := conn.execute(query, (last, _BATCH)).fetchall():
            for _, name, version, url, dependencies in rows:
                yield UniverseEntry(name, version, url, json.loads(dependencies))
            last = rows[-1][0]


def _first_repeat(conn: sqlite3.Connection, batch: list[tuple[str, str, str, str]]) -> tuple[str, str]:
    """The first (name, version) of ``batch`` (whose insert failed as a whole) already stored or earlier in it."""
    seen: set[tuple[str, str]] = set()
    for name, version, _, _ in batch:
        query = "SELECT 1 FROM entry WHERE name = ? AND version = ?"
        if (name, version) in seen or conn.execute(query, (name, version)).fetchone():
            return name, version
        seen.add((name, version))
    raise AssertionError("an insert failed without a repeated version")


class _UniverseReader:
    """A reader of ``{name: {version: entry}}`` JSON that decodes one entry at a time."""

    def __init__(self, handle: IO[str], where: str) -> None:
        self.handle = handle
        self.where = where
        self.text = ""
        self.at = 0
        self.eof = False

    def entries(self) -> Iterator[UniverseEntry]:
        self.expect("{", "expected a JSON object of cookbooks")
        if self.next_is("}"):
            return self.end()
        while True:
            name = self.value("a cookbook name")
            if not isinstance(name, str):
                raise self.bad("expected a cookbook name")
            _check_name(name, self.where)
            self.expect(":", "expected ':' after a cookbook name")
            self.expect("{", f"cookbook {name!r}: expected an object of versions")
            if not self.next_is("}"):
                while True:
                    version = self.value(f"cookbook {name!r}: a version")
                    self.expect(":", f"cookbook {name!r}: expected ':' after a version")
                    yield _parse_entry(name, version, self.value(f"cookbook {name!r} version {version!r}"), self.where)
                    if self.next_is("}"):
                        break
                    self.expect(",", f"cookbook {name!r}: expected ',' or '}}' after a version")
            if self.next_is("}"):
                return self.end()
            self.expect(",", "expected ',' or '}' after a cookbook")

    def bad(self, problem: str) -> UniverseError:
        return UniverseError(f"bad {self.where}: not a JSON universe ({problem})")

    def fill(self) -> bool:
        """Read more text; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(_READ)
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.at :] + chunk
        self.at = 0
        return True

    def skip_space(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
                self.at += 1
            if self.at < len(self.text) or not self.fill():
                return self.text[self.at : self.at + 1]

    def next_is(self, char: str) -> bool:
        if self.skip_space() == char:
            self.at += 1
            return True
        return False

    def expect(self, char: str, problem: str) -> None:
        if not self.next_is(char):
            raise self.bad(problem)

    def value(self, what: str) -> Any:
        """Decode the JSON value at the current place, reading on until it is whole (within limits)."""
        self.skip_space()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except json.JSONDecodeError as exc:
                # Cut by the end of the text read so far, or malformed: read on while the window allows.
                if len(self.text) - self.at <= MAX_ENTRY_BYTES and self.fill():
                    continue
                if not self.eof and (exc.msg.startswith("Unterminated") or exc.pos >= len(self.text) - 1):
                    raise self.bad(f"{what}: longer than {MAX_ENTRY_BYTES} bytes") from None
                raise self.bad(f"{what}: {exc.msg}") from None
            except RecursionError:
                raise self.bad(f"{what}: nested too deeply") from None
            if end == len(self.text) and isinstance(value, int | float) and self.fill():
                continue  # a number may go on in the next chunk
            self.at = end
            return value

    def end(self) -> None:
        if self.skip_space():
            raise self.bad("extra data after the universe")


_DECODER = json.JSONDecoder()


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "it holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate {value[exc.start]!r} at {exc.start}"
    return None


def _show(value: Any, limit: int = 80) -> str:
    """``value`` quoted for an error message, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- the plugin -------------------------------------------------------------------------------------
