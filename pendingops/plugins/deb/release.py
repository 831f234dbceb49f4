"""A suite's Release file, read from ``InRelease`` (a clearsigned message) or ``Release``.

The signature is not checked here: a mirror keeps the upstream's signed files as they are, for
apt to judge with the key its user trusts. What is read is the list of index files with their
SHA256 and size, which every index fetched must match, and whether ``by-hash`` paths exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pendingops.pending import PendingInputError
from pendingops.plugins.deb.stanza import StanzaError, read_stanzas

#: a larger InRelease, Release or Release.gpg is refused (Debian's are a few hundred KiB)
MAX_RELEASE_BYTES = 16 * 1024 * 1024
#: index file names in the order they are preferred: xz, then gzip, then plain
PACKAGES_NAMES = ("Packages.xz", "Packages.gz", "Packages")
_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE = b"-----BEGIN PGP SIGNATURE-----"
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_MAX_SIZE = 2**53


class ReleaseError(PendingInputError):
    """The InRelease or Release file cannot be read; the message names it and the problem."""


@dataclass(frozen=True, slots=True)
class IndexFile:
    """An index file a Release lists: its path below ``dists/<suite>/``, sha256 and size."""

    path: str
    sha256: str
    size: int

    @property
    def compression(self) -> str:
        return "xz" if self.path.endswith(".xz") else "gzip" if self.path.endswith(".gz") else "none"


@dataclass(frozen=True, slots=True)
class Release:
    suite: str | None
    codename: str | None
    origin: str | None
    label: str | None
    #: ``Acquire-By-Hash: yes``: index files are also at ``by-hash/SHA256/<digest>`` beside them
    by_hash: bool
    files: dict[str, IndexFile] = field(default_factory=dict)

    def packages_index(self, component: str, architecture: str) -> IndexFile | None:
        """The Packages index of ``component``/``binary-architecture`` the Release lists, xz preferred."""
        for name in PACKAGES_NAMES:
            found = self.files.get(f"{component}/binary-{architecture}/{name}")
            if found is not None:
                return found
        return None


def signed_text(data: bytes, where: str) -> bytes:
    """The text an ``InRelease`` file signs (the Release inside it), dash-escaping undone."""
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != _BEGIN:
        raise ReleaseError(f"{where}: not a clearsigned message (no '{_BEGIN.decode()}' line)")
    body = start + 1
    while body < len(lines) and lines[body].strip():  # armor headers ("Hash: SHA512") end at a blank line
        body += 1
    text = []
    for line in lines[body + 1 :]:
        if line.rstrip() == _SIGNATURE:
            return b"\n".join(text) + b"\n"
        text.append(line[2:] if line.startswith(b"- ") else line)
    raise ReleaseError(f"{where}: the clearsigned message has no signature")


def parse_release(text: bytes, where: str) -> Release:
    """The fields of a Release file's text; ReleaseError (one line) when it is not one."""
    try:
        stanzas = list(read_stanzas([text], max_bytes=MAX_RELEASE_BYTES))
    except StanzaError as exc:
        raise ReleaseError(f"{where}: {exc}") from None
    if len(stanzas) != 1:
        raise ReleaseError(f"{where}: expected one stanza, found {len(stanzas)}")
    fields = stanzas[0].fields
    if "SHA256" not in fields:
        raise ReleaseError(f"{where}: no SHA256 field (apt needs it to check the index files)")
    files: dict[str, IndexFile] = {}
    for line in fields["SHA256"].split("\n"):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not _DIGEST.fullmatch(parts[0]) or not parts[1].isascii() or not parts[1].isdigit():
            raise ReleaseError(f"{where}: SHA256 line is not 'sha256 size path': {line.strip()[:120]!r}")
        digest, size, path = parts[0].lower(), int(parts[1]), parts[2]
        if size > _MAX_SIZE:
            raise ReleaseError(f"{where}: SHA256 line gives an absurd size for {path[:120]!r}")
        files.setdefault(path, IndexFile(path, digest, size))
    return Release(
        suite=fields.get("Suite"),
        codename=fields.get("Codename"),
        origin=fields.get("Origin"),
        label=fields.get("Label"),
        by_hash=fields.get("Acquire-By-Hash", "").strip().lower() == "yes",
        files=files,
    )
