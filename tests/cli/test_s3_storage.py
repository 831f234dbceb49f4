"""Every storage command on S3 (moto's server): sync with both policies, export, verify, orphans."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendingops.storage.owner import OWNER_MARKER
from pendingops.storage.s3 import this_host
from tests.cli.test_cli import Cli, digests, files_v1
from tests.conftest import POSTGRES_URL, fresh_database
from tests.remote_server import Fault
from tests.s3_server import client
from tests.server_thread import ServerThread

pytestmark = pytest.mark.s3


@pytest.fixture
def s3cli(db_kind: str, tmp_path: Path, s3_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The console script on a fresh database and an empty bucket; downloads staged under tmp_path."""
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.close()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield Cli(url, s3_url)  # type: ignore[arg-type]


def _artifact_keys(endpoint: str, s3_url: str) -> dict[str, str]:
    """sha256 -> key of every object under the storage's artifacts/ prefix."""
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/artifacts/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    return {"".join(key.split("/")[-2:]): key for key in keys}


def _exported(dest: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file() and p.name != "PULP_MANIFEST"
    }


def test_sync_export_and_verify_on_s3(s3cli: Cli, s3_env: str, tmp_path: Path) -> None:
    files = files_v1()
    with ServerThread(files) as server:
        done = s3cli.run("sync", server.manifest_url, "--repo", "r", "--quiet")
        assert done.returncode == 0, done.stderr
    assert s3cli.version_files("r") == digests(files)
    assert set(_artifact_keys(s3_env, str(s3cli.storage))) == set(digests(files).values())
    assert not any((tmp_path / "data" / "pendingops" / "staging").iterdir())  # nothing left staged

    exported = s3cli.run("export", "r", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert _exported(tmp_path / "out") == files

    healthy = s3cli.run("verify")
    assert healthy.returncode == 0 and "0 problem(s)" in healthy.stdout, healthy.stdout + healthy.stderr
    bucket = str(s3cli.storage).removeprefix("s3://").split("/")[0]
    victim = sorted(_artifact_keys(s3_env, str(s3cli.storage)).values())[0]
    client(s3_env).put_object(Bucket=bucket, Key=victim, Body=b"corrupted")
    broken = s3cli.run("verify")
    assert broken.returncode == 1 and "1 problem(s)" in broken.stdout


def test_on_demand_then_immediate_on_s3(s3cli: Cli, s3_env: str, tmp_path: Path) -> None:
    files = files_v1()
    with ServerThread(files) as server:
        lazy = s3cli.run("sync", server.manifest_url, "--repo", "r", "--policy", "on_demand", "--quiet")
        assert lazy.returncode == 0, lazy.stderr
        assert server.file_requests() == 0
        assert _artifact_keys(s3_env, str(s3cli.storage)) == {}
        assert s3cli.version_files("r") == digests(files)
        refused = s3cli.run("export", "r", str(tmp_path / "refused"), "--no-fetch")
        assert refused.returncode != 0 and "not fetched yet" in refused.stderr, refused
        assert server.file_requests() == 0
        assert s3cli.run("verify").returncode == 0  # not fetched yet is no problem

        fetched = s3cli.run("export", "r", str(tmp_path / "lazy"))  # fetches into the bucket first
        assert fetched.returncode == 0 and f"fetched {len(files)} file(s)" in fetched.stdout, fetched
        assert _exported(tmp_path / "lazy") == files
        assert set(_artifact_keys(s3_env, str(s3cli.storage))) == set(digests(files).values())
        requests = server.file_requests()

        now = s3cli.run("sync", server.manifest_url, "--repo", "eager", "--quiet")
        assert now.returncode == 0, now.stderr
        assert server.file_requests() == requests  # already in the bucket: nothing downloaded again
    assert s3cli.run("export", "eager", str(tmp_path / "full")).returncode == 0
    assert _exported(tmp_path / "full") == files


def test_orphans_on_s3_remove_stray_objects_and_dead_syncs_temp_objects(s3cli: Cli, s3_env: str) -> None:
    with ServerThread(files_v1()) as server:
        server.faults["pkg/file-11.txt"] = Fault(status=404)
        failed = s3cli.run("sync", server.manifest_url, "--repo", "r", "--quiet", "--batch-size", "2")
        assert failed.returncode == 1
    stored_by_failed_sync = len(_artifact_keys(s3_env, str(s3cli.storage)))
    assert stored_by_failed_sync > 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    bucket, _, prefix = str(s3cli.storage).removeprefix("s3://").partition("/")
    host = this_host()
    client(s3_env).put_object(Bucket=bucket, Key=f"{prefix}/tmp/{host}/{dead.pid}-x.part", Body=b"half")
    stray = hashlib.sha256(b"no row").hexdigest()
    client(s3_env).put_object(Bucket=bucket, Key=f"{prefix}/artifacts/{stray[:2]}/{stray[2:]}", Body=b"no row")

    dry = s3cli.run("orphans", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    counts = re.search(r"(\d+) artifacts .* (\d+) stray file", dry.stdout)
    assert counts is not None, dry.stdout
    # What the failed sync stored, saved as a row or not, plus the one stray object.
    assert int(counts[1]) + int(counts[2]) == stored_by_failed_sync + 1, dry.stdout
    removed = s3cli.run("orphans")
    assert removed.returncode == 0, removed.stderr
    assert "removed 1 temporary file(s) of dead syncs" in removed.stdout
    assert _artifact_keys(s3_env, str(s3cli.storage)) == {}
    left = [item["Key"] for item in client(s3_env).list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert left == [f"{prefix}/{OWNER_MARKER}"]  # only the record of the database that owns the storage
    assert s3cli.run("verify").returncode == 0


def test_an_unusable_s3_storage_is_one_line_exit_2(s3cli: Cli) -> None:
    done = Cli(s3cli.db_url, "s3://no-such-bucket-anywhere/p").run("verify")  # type: ignore[arg-type]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "cannot use storage s3://no-such-bucket-anywhere/p" in done.stderr
