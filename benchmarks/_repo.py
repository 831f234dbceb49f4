"""A deterministic file repository: file ``i`` always has the same path and bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "PULP_MANIFEST"


@dataclass(frozen=True, slots=True)
class Entry:
    """One manifest line: ``relative_path,sha256,size``."""

    path: str
    sha256: str
    size: int

    def line(self) -> str:
        return f"{self.path},{self.sha256},{self.size}"


def file_path(index: int) -> str:
    return f"files/{index // 1000:04d}/file-{index:07d}.bin"


def file_bytes(index: int, size: int) -> bytes:
    """``size`` bytes unique to ``index`` (for sizes of 32 bytes and more)."""
    seed = hashlib.sha256(f"pendingops-bench-{index}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def make_entries(root: Path | None, indices: Iterable[int], size: int) -> dict[int, Entry]:
    """The entries of files ``indices``; their bytes are written under ``root`` unless it is None."""
    entries = {}
    for index in indices:
        data = file_bytes(index, size)
        path = file_path(index)
        if root is not None:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        entries[index] = Entry(path, hashlib.sha256(data).hexdigest(), size)
    return entries


def write_manifest(path: Path, entries: Iterable[Entry]) -> int:
    """Write a PULP_MANIFEST listing ``entries``; return how many lines it has."""
    lines = [entry.line() for entry in entries]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def read_manifest(path: Path) -> list[Entry]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        relative_path, sha256, size = line.rsplit(",", 2)
        entries.append(Entry(relative_path, sha256, int(size)))
    return entries


def make_large_entries(root: Path, count: int, size: int) -> list[Entry]:
    """``count`` files of ``size`` bytes under ``root/large/SIZE/``, written a MiB at a time."""
    block_size = 1024 * 1024
    entries = []
    for index in range(count):
        path = f"large/{size}/file-{index:04d}.bin"
        block = file_bytes(index, min(size, block_size))
        hasher = hashlib.sha256()
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for start in range(0, size, block_size):
                piece = block[: min(block_size, size - start)]
                hasher.update(piece)
                out.write(piece)
        entries.append(Entry(path, hasher.hexdigest(), size))
    return entries
