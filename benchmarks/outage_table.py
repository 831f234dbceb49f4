"""The outage table: a command-line sync of 3,000 files (the remote adds 20 ms to each) while the
PostgreSQL server is restarted at several moments, in a private cluster this script creates.

For each moment it prints what the sync printed last, its exit code, and what the database holds,
with the default retry time and with ``--db-retry-seconds 0``. Usage: ``python benchmarks/outage_table.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pendingops import open_database
from tests.pg_cluster import PrivateCluster
from tests.remote_server import Fault
from tests.server_thread import ServerThread

SCRIPT = str(Path(sys.executable).with_name("pendingops"))


def _reset(url: str) -> None:
    db = open_database(url, create=False)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.create_schema()
    db.close()


def _holds(url: str) -> str:
    db = open_database(url, create=False)
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.number, v.content_count FROM repository_version v "
                "JOIN repository r ON r.id = v.repository_id WHERE r.name = 'r' AND v.complete ORDER BY v.number"
            )
        ).all()
        runs = conn.execute(text("SELECT state FROM sync_run ORDER BY id")).scalars().all()
    db.close()
    versions = ", ".join(f"{n} ({count} units)" for n, count in rows)
    return f"versions {versions}; runs {', '.join(runs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds the remote adds to each file")
    parser.add_argument("--at", type=float, nargs="*", default=[0.8, 2.0, 4.0], help="restart moments (s)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pendingops-outage-"))
    folder.chmod(0o755)
    cluster = PrivateCluster(folder)
    cluster.create()
    files = {f"d{i % 30}/f{i:05}": f"outage table {i}".encode() * 4 for i in range(args.files)}
    faults = {path: Fault(stall=args.delay) for path in files}
    print("| retry | restart at | what the sync printed last | exit | time | what the database shows |")
    print("|---|---|---|---|---|---|")
    try:
        with ServerThread(files) as server:
            server.faults = faults
            for retry in ("30 (default)", "0"):
                for moment in args.at:
                    _reset(cluster.url)
                    storage = folder / "storage"
                    shutil.rmtree(storage, ignore_errors=True)
                    command = [SCRIPT, "--db", cluster.url, "--storage", str(storage), "sync", server.manifest_url,
                               "--repo", "r", "--mirror", "--quiet"]
                    if retry == "0":
                        command += ["--db-retry-seconds", "0"]
                    started = time.monotonic()
                    sync = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    timer = threading.Timer(moment, cluster.restart)
                    timer.start()
                    out, err = sync.communicate(timeout=600)
                    took = time.monotonic() - started
                    timer.join()
                    errors = [line for line in err.splitlines() if line.strip()]
                    summary = [line.strip() for line in out.splitlines() if "new version" in line or "nothing" in line]
                    said = (errors[-1] if sync.returncode else (summary or ["?"])[0]).strip()
                    waited = sum("trying again" in line for line in errors)
                    if waited and not sync.returncode:
                        said += f" (after {waited} 'trying again' line(s))"
                    holds = _holds(cluster.url)
                    print(f"| {retry} | {moment} s | `{said}` | {sync.returncode} | {took:.1f} s | {holds} |")
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()
