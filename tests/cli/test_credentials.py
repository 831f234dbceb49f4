"""A remote behind a login, from the command line (issue 25, item 3), on SQLite and PostgreSQL: a
``user:password@`` typed by hand works and is never stored; serve's on_demand fetches take the
credentials from netrc on the serving host."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import urllib.error
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.cli import test_cli
from tests.cli.test_cli import SCRIPT, Cli
from tests.cli.test_serve import fetch, serving
from tests.remote_server import LoginServer
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder
USER, PASSWORD = "alice", "S3cretPW"


def _stored(db_url: str) -> str:
    """Every row of the tables a sync writes URLs to, as one text."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                str(row)
                for table in ("remote", "remote_artifact", "repository", "sync_run")
                for row in conn.execute(text(f"SELECT * FROM {table}")).all()
            )
    finally:
        engine.dispose()


def _env(netrc: Path) -> dict[str, str]:
    env = {**os.environ, "NETRC": str(netrc)}
    env.pop("PENDINGOPS_REMOTE_USERNAME", None)
    env.pop("PENDINGOPS_REMOTE_PASSWORD", None)
    return env


def test_a_login_by_hand_is_never_stored_and_on_demand_takes_netrc(cli: Cli, tmp_path: Path) -> None:
    login = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    server = LoginServer({"a.txt": b"behind a login\n"}, login=login)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    with ServerThread(server=server):
        url = server.manifest_url.replace("http://", f"http://{USER}:{PASSWORD}@")
        done = cli.run("sync", url, "--repo", "lazy", "--policy", "on_demand")
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        assert PASSWORD not in _stored(cli.db_url) and server.manifest_url in _stored(cli.db_url)
        with serving(cli, env=_env(tmp_path / "no-netrc")) as (_, served):
            with pytest.raises(urllib.error.HTTPError) as refused:
                fetch(f"{served}lazy/latest/a.txt")  # nothing stored to log in with
            assert refused.value.code == 502
        with serving(cli, env=_env(netrc)) as (_, served):
            assert fetch(f"{served}lazy/latest/a.txt") == b"behind a login\n"
    assert [h.get("Authorization") for h in server.request_headers["a.txt"]][-1] == login


def test_verify_repair_takes_netrc_for_a_remote_behind_a_login(cli: Cli, tmp_path: Path) -> None:
    from pendingops.storage.local import LocalStorage

    login = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    server = LoginServer({"f1.txt": b"repair me\n"}, login=login)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)

    def run(netrc_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        line = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), *args]
        return subprocess.run(line, capture_output=True, text=True, timeout=120, env=_env(netrc_path))

    with ServerThread(server=server):
        synced = run(netrc, "sync", server.manifest_url, "--repo", "r", "--quiet")
        assert synced.returncode == 0, synced.stderr
        storage = LocalStorage(cli.storage)
        (storage.root / storage.location_for(hashlib.sha256(b"repair me\n").hexdigest())).unlink()
        assert run(netrc, "verify").returncode == 1
        repaired = run(netrc, "verify", "--repair")
        assert repaired.returncode == 0, repaired.stderr
        assert "repaired 1, quarantined 0" in repaired.stdout
    assert PASSWORD not in _stored(cli.db_url)
