"""The command line starts fast: a command imports only what it uses.

Checked by what a run leaves in ``sys.modules``, not by timing it (``benchmarks/cli_startup.py`` times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pendingops.db.versions import ensure_repository
from tests.conftest import POSTGRES_URL, fresh_database

#: what no listing or help needs: the HTTP client, the stream library, the task queue, S3, the progress bars
_HEAVY = ("aiohttp", "reactivex", "procrastinate", "aiobotocore", "botocore", "rich", "alembic")

_PROBE = """
import json, sys
from pendingops.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted({name.partition(".")[0] for name in sys.modules})}))
"""


def _run(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"code": found["code"], "loaded": [name for name in found["loaded"] if name in _HEAVY]}


@pytest.mark.parametrize("argv", [["--help"], ["sync", "--help"], ["tasks", "wait", "--help"], ["no-such-command"]])
def test_help_and_usage_errors_import_nothing_heavy(argv: list[str]) -> None:
    found = _run(*argv)
    assert found["loaded"] == []
    assert found["code"] == (2 if argv == ["no-such-command"] else 0)


def test_listing_versions_imports_only_the_database_layer(db_kind: str, tmp_path: Path) -> None:
    db = fresh_database(db_kind, tmp_path)
    url = POSTGRES_URL if db_kind == "postgresql" else db.engine.url.render_as_string(hide_password=False)
    db.transact(ensure_repository, "listed")
    db.close()
    found = _run("--db", url, "--storage", str(tmp_path / "storage"), "versions", "listed", "--json")
    assert found == {"code": 0, "loaded": []}
