"""Benchmark the deb plugin: a sync of a generated archive of N small packages against the raw download
of the same files, side by side in one run, each phase in its own process.

    .venv/bin/python benchmarks/deb.py                         # 10,000 packages, SQLite and PostgreSQL
    .venv/bin/python benchmarks/deb.py --packages 1000 --databases sqlite

The archive is written to a temporary folder and served by nginx (else aiohttp): suite ``bench``,
component ``main``, architecture ``amd64``; one Packages index (xz, gz and plain, by-hash) and an
unsigned Release. Each package is a real .deb (an ar archive with control.tar.gz and data.tar.gz,
about 600 bytes). Phases, per database: the raw download (a bare aiohttp GET of every .deb with the
same concurrency, each hashed and written to a file; the fastest of ``--repeat``), the initial mirror
sync, a forced no-op resync (every stanza read, the packages settled in SQL by ``unchanged``, the
suite unit looked up) and the unchanged resync
(the Release files are the previous sync's: it ends once they are fetched).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _repo import Entry, write_manifest
from _server import serve
from run import DEFAULT_POSTGRES, BenchError, database_version, fresh_database, machine, run_phase, source_revision

SUITE = "bench"


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deb_file(name: str, version: str) -> tuple[bytes, bytes]:
    """A small real .deb and its control file."""
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Bench <bench@example.org>\n"
        f"Installed-Size: 1\nDescription: benchmark package {name}\n generated for pendingops' deb benchmark\n"
    ).encode()
    readme = f"{name} {version}\n".encode()
    members = [
        _ar_member("debian-binary", b"2.0\n"),
        _ar_member("control.tar.gz", _tar_gz({"./control": control})),
        _ar_member("data.tar.gz", _tar_gz({f"./usr/share/doc/{name}/README": readme})),
    ]
    return b"!<arch>\n" + b"".join(members), control


def write_archive(root: Path, count: int) -> list[Entry]:
    """The archive of ``count`` packages under ``root``; the pool files' manifest entries."""
    entries, stanzas = [], []
    for index in range(count):
        name = f"pkg{index:06d}"
        data, control = deb_file(name, "1.0-1")
        path = f"pool/main/p/{name}/{name}_1.0-1_amd64.deb"
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append(Entry(path, digest, len(data)))
        stanzas.append(
            control.decode() + f"Section: misc\nPriority: optional\nFilename: {path}\n"
            f"Size: {len(data)}\nSHA256: {digest}\n"
        )
    text = "\n".join(stanzas).encode()
    folder = root / "dists" / SUITE / "main/binary-amd64"
    listed = {}
    for name, data in (
        ("Packages", text),
        ("Packages.gz", gzip.compress(text, mtime=0)),
        ("Packages.xz", lzma.compress(text)),
    ):
        (folder / "by-hash/SHA256").mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        (folder / "by-hash/SHA256" / digest).write_bytes(data)
        listed[f"main/binary-amd64/{name}"] = (digest, len(data))
    release = (
        f"Origin: Bench\nSuite: {SUITE}\nCodename: {SUITE}\nArchitectures: amd64\nComponents: main\n"
        "Acquire-By-Hash: yes\nSHA256:\n" + "".join(f" {d} {s} {p}\n" for p, (d, s) in listed.items())
    )
    (root / "dists" / SUITE / "Release").write_text(release)
    return entries


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--databases", default="sqlite,postgresql", type=lambda v: v.split(","))
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--repeat", type=int, default=3, help="raw downloads; the fastest counts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pendingops-deb-bench-"))
    try:
        print(f"Writing an archive of {args.packages} packages...", flush=True)
        root = work / "archive"
        entries = write_archive(root, args.packages)
        manifest = work / "pool.manifest"  # what the raw download fetches: the same .deb files
        write_manifest(manifest, entries)
        with serve(root, work / "server", args.server, install=False) as server:
            print(f"{machine()}; served by {server.kind}", flush=True)
            rows = []
            for database in args.databases:
                try:
                    version = database_version(database, args.postgres_url)
                except Exception as exc:  # an unreachable server is skipped, as in run.py
                    print(f"{database}: skipped ({str(exc).splitlines()[0]})")
                    continue
                rows += measure(args, work, server.base_url, manifest, database, version.split(" (")[0])
        print_table(rows, args.packages)
        measured = [row["package"] for row in rows if "package" in row]
        print(source_revision(measured[0]) if measured else "nothing measured")
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(
    args: argparse.Namespace, work: Path, base_url: str, manifest: Path, database: str, version: str
) -> list[dict[str, Any]]:
    raws = []
    for _ in range(args.repeat):
        dest = work / "raw"
        shutil.rmtree(dest, ignore_errors=True)
        spec = {"kind": "download", "manifest": str(manifest), "dest": str(dest), "base_url": base_url}
        raws.append(run_phase({**spec, "concurrency": args.concurrency}))
        shutil.rmtree(dest, ignore_errors=True)
    raw = min(raws, key=lambda row: row["wall"])
    rows = [{"database": version, "phase": "raw download", **raw}]
    url = fresh_database(database, work / database, args.postgres_url)
    sync = {
        "kind": "sync",
        "plugin": "deb",
        "options": {"suites": SUITE, "architectures": "amd64"},
        "db": url,
        "storage": str(work / database / "storage"),
        "url": base_url,
        "policy": "immediate",
        "concurrency": args.concurrency,
        "mirror": True,
    }
    for phase, extra, added in (
        ("initial sync", {}, args.packages + 1),
        ("no-op resync (forced)", {"force": True}, 0),
        ("unchanged resync (shortcut)", {}, 0),
    ):
        print(f"{database}: {phase}...", flush=True)
        result = run_phase({**sync, **extra})
        if result["added"] != added or result["failed"]:
            raise BenchError(f"PROBLEM: {phase} added {result['added']} (expected {added}), {result['failed']} failed")
        rows.append({"database": version, "phase": phase, **result})
    for row in rows:
        row["x_raw"] = row["wall"] / raw["wall"]
    shutil.rmtree(work / database, ignore_errors=True)
    return rows


def print_table(rows: list[dict[str, Any]], packages: int) -> None:
    columns = f"{'wall s':>7} {'x raw':>6} {'cpu s':>6} {'RSS MiB':>7} {'SQL':>8}"
    print(f"\n{'database':<18} {f'{packages} packages':<28} {columns}")
    for row in rows:
        statements = row.get("statements")
        print(
            f"{row['database']:<18} {row['phase']:<28} {row['wall']:7.2f} {row['x_raw']:6.2f}"
            f" {row['cpu']:6.2f} {row['peak_rss_mib']:7.0f} {statements if statements is not None else '':>8}"
        )


if __name__ == "__main__":
    sys.exit(main())
