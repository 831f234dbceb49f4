"""HTTP Basic authentication against an htpasswd file of bcrypt entries (``htpasswd -B``).

Every check costs the same bcrypt work whether the user exists or not (an unknown user is checked
against a made-up hash of the usual cost), so answer times do not tell which users exist. bcrypt is
slow on purpose (milliseconds to a tenth of a second of CPU per check), so it runs on threads of its
own, never on the event loop, and a success is remembered for ``remember_for`` seconds, keyed by a
keyed hash of the credentials: a client sending the same credentials with every request pays once.
Concurrent checks of the same credentials share one bcrypt run. The file is looked at (one ``stat``)
at most every ``recheck_every`` seconds and read again when its modification time, size or inode
changed; a file that became unusable is said once in the log and fails every request (503) until it
is fixed, rather than keeping users it may have removed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt

log = logging.getLogger("pendingops.serve")
#: bcrypt entries as ``htpasswd -B`` writes them ($2y$), and as other tools do ($2a$, $2b$)
_BCRYPT = re.compile(rb"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
#: bcrypt reads at most this many bytes of a password (htpasswd cuts longer ones the same way)
_BCRYPT_LIMIT = 72
_REMEMBERED = 10_000


class HtpasswdError(ValueError):
    """The htpasswd file cannot be used; the message names the file, the line and the problem."""


class AuthUnavailable(Exception):
    """The htpasswd file became unusable after the server started; no request is let in."""


class BasicAuth:
    """Who a request's ``Authorization`` header authenticates, from the htpasswd file at ``path``.

    Raises HtpasswdError at once when the file cannot be used.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, recheck_every: float = 1.0, remember_for: float = 60.0, threads: int = 2
    ) -> None:
        self.path = Path(path)
        self.recheck_every = recheck_every
        self.remember_for = remember_for
        self._stamp = _stamp(self.path)
        self._entries = read_htpasswd(self.path)
        self._decoy = _decoy(self._entries)
        self._generation = 0
        self._problem: str | None = None
        self._looked_at = time.monotonic()
        self._key = os.urandom(32)
        self._remembered: dict[bytes, float] = {}
        self._checking: dict[bytes, asyncio.Future[bool]] = {}
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pendingops-auth")

    async def user(self, authorization: str | None) -> str | None:
        """The user the header authenticates, or None. Raises AuthUnavailable when the file became unusable."""
        self._look_at_file()
        if self._problem is not None:
            raise AuthUnavailable(self._problem)
        credentials = _credentials(authorization)
        if credentials is None:
            return None
        name, password = credentials
        key = hmac.new(self._key, len(name).to_bytes(4, "big") + name + password, hashlib.sha256).digest()
        now = time.monotonic()
        if self._remembered.get(key, 0.0) > now:
            return name.decode("utf-8", "replace")
        checking = self._checking.get(key)
        if checking is None:
            generation = self._generation
            checking = asyncio.get_running_loop().run_in_executor(
                self._pool, _check, self._entries, self._decoy, name, password
            )
            self._checking[key] = checking
            checking.add_done_callback(lambda _: self._checking.pop(key, None))
            checking.add_done_callback(lambda done: self._remember(key, generation, done))
        if not await asyncio.shield(checking):
            return None
        return name.decode("utf-8", "replace")

    def _remember(self, key: bytes, generation: int, done: asyncio.Future[bool]) -> None:
        if done.cancelled() or done.exception() is not None or not done.result() or generation != self._generation:
            return
        now = time.monotonic()
        if len(self._remembered) >= _REMEMBERED:
            self._remembered = {k: until for k, until in self._remembered.items() if until > now}
            while len(self._remembered) >= _REMEMBERED:
                del self._remembered[next(iter(self._remembered))]
        self._remembered[key] = now + self.remember_for

    def _look_at_file(self) -> None:
        """Read the file again if it changed (looked at once per ``recheck_every`` seconds)."""
        now = time.monotonic()
        if now - self._looked_at < self.recheck_every:
            return
        self._looked_at = now
        try:
            stamp = _stamp(self.path)
            if stamp == self._stamp and self._problem is None:
                return
            entries = read_htpasswd(self.path)
        except HtpasswdError as exc:
            if str(exc) != self._problem:
                log.error("%s; every request is refused (503) until it is fixed", exc)
            self._problem = str(exc)
            return
        self._stamp, self._entries, self._decoy = stamp, entries, _decoy(entries)
        self._generation += 1
        self._remembered.clear()
        self._problem = None
        log.info("read %s again: %d user(s)", self.path, len(entries))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def read_htpasswd(path: Path) -> dict[bytes, bytes]:
    """The users and bcrypt hashes of an htpasswd file; blank lines and ``#`` comments are skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HtpasswdError(f"cannot read the htpasswd file {path}: {exc.strerror or exc}") from None
    entries: dict[bytes, bytes] = {}
    for number, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        name, colon, hashed = line.partition(b":")
        where = f"htpasswd file {path} line {number}"
        if not colon or not name:
            raise HtpasswdError(f"{where}: not 'user:hash'")
        if not _BCRYPT.fullmatch(hashed):
            raise HtpasswdError(f"{where}: not a bcrypt hash (make entries with 'htpasswd -B')")
        if name in entries:
            raise HtpasswdError(f"{where}: user {name.decode('utf-8', 'replace')!r} is listed twice")
        entries[name] = hashed
    return entries


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        found = path.stat()
    except OSError as exc:
        raise HtpasswdError(f"cannot read the htpasswd file {path}: {exc.strerror or exc}") from None
    return found.st_mtime_ns, found.st_size, found.st_ino


def _decoy(entries: dict[bytes, bytes]) -> bytes:
    """A hash no password matches, of the cost most entries have: what an unknown user is checked against."""
    costs = Counter(int(_BCRYPT.fullmatch(hashed)[1]) for hashed in entries.values())  # type: ignore[index]
    cost = costs.most_common(1)[0][0] if costs else 5
    return bcrypt.gensalt(rounds=cost) + b"." * 31


def _check(entries: dict[bytes, bytes], decoy: bytes, name: bytes, password: bytes) -> bool:
    """Whether ``password`` is ``name``'s: the same bcrypt work for a user the file does not list."""
    hashed = entries.get(name)
    matches = bcrypt.checkpw(password[:_BCRYPT_LIMIT], decoy if hashed is None else hashed)
    return matches and hashed is not None


def _credentials(authorization: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of a ``Basic`` Authorization header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name, colon, password = decoded.partition(b":")
    if not colon or not name:
        return None
    return name, password
