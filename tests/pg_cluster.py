"""A PostgreSQL cluster of a test's own (initdb + pg_ctl into a temporary folder, on a free port),
to restart and stop at will without disturbing the shared server other tests use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

_BIN = Path("/usr/lib/postgresql")


def pg_bin(name: str) -> str | None:
    found = sorted(_BIN.glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


class PrivateCluster:
    """A PostgreSQL cluster of our own, started and restarted with pg_ctl."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # Output goes to a file, not a pipe: a server started by pg_ctl would hold a pipe open for ever.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with open(self.folder / "pg_ctl.out", "ab") as out:
            done = subprocess.run([*prefix, *command], stdout=out, stderr=subprocess.STDOUT, timeout=300)
        if done.returncode:
            output = (self.folder / "pg_ctl.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {output}")

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        initdb = pg_bin("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def _ctl(self) -> str:
        ctl = pg_bin("pg_ctl")
        assert ctl is not None
        return ctl

    def stop(self) -> None:
        """Stop the server at once, as a crash would, and leave it down."""
        self._run(self._ctl(), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def start(self) -> None:
        log = str(self.folder / "log")
        self._run(self._ctl(), "-D", str(self.data), "-o", self._options(), "-l", log, "-w", "start")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def restart(self) -> None:
        """Stop the server at once (as a crash or a failover would: every session and its locks end), then start it."""
        log = str(self.folder / "log")
        self._run(self._ctl(), "-D", str(self.data), "-m", "immediate", "-l", log, "-w", "restart")

    def remove(self) -> None:
        try:
            self._run(self._ctl(), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


