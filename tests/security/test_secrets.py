"""Secrets stay secret (guarantee 5) and go only to their own origin (guarantee 4).

Credentials given in a remote URL are moved into the remote's settings: never printed, never
stored. Credentials and custom headers reach the remote's own origin only, not another host its
data or its redirects name. A database password is masked by parsing the URL, whatever it holds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess

import pytest
from sqlalchemy import select

from pendingops import PendingArtifact, RemoteConfig, open_database, sync_remote
from pendingops.db.database import DatabaseError, mask_password
from pendingops.db.schema import Remote, RemoteArtifact, SyncRun
from pendingops.plugins.cookbook import CookbookPlugin
from pendingops.plugins.file import FilePlugin
from tests.cli.test_hostile_input import SCRIPT, Env, assert_one_line_error, env  # noqa: F401 (the fixture)
from tests.plugins.cookbook_server import CookbookServer, cookbook
from tests.remote_server import Fault, RemoteServer
from tests.server_thread import ServerThread

USER, PASSWORD = "alice", "s3cr@t:pw"
#: the password as it appears in a URL, percent-encoded; neither form may show anywhere
QUOTED = "s3cr%40t%3Apw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FILES = {"here.txt": b"served by the remote\n", "moved.txt": b"served by another host\n", "gone.txt": b"404\n"}


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{QUOTED}@")


def _leaks(text: str) -> bool:
    return "s3cr" in text


def _faults(other: RemoteServer) -> dict[str, Fault]:
    """moved.txt redirects to the same file on ``other``, another origin; gone.txt is missing."""
    return {"moved.txt": Fault(redirect_to=other.base_url + "moved.txt"), "gone.txt": Fault(status=404)}


def test_credentials_in_a_url_move_into_the_settings() -> None:
    remote = RemoteConfig(url=f"https://{USER}:{QUOTED}@repo.example:8443/x/PULP_MANIFEST")
    assert remote.url == "https://repo.example:8443/x/PULP_MANIFEST"
    assert (remote.username, remote.password) == (USER, PASSWORD)
    assert remote.display_name == remote.url
    assert not _leaks(repr(remote))
    given = RemoteConfig(url=f"https://{USER}:{QUOTED}@h/", username="bob", password="other")
    assert (given.url, given.username, given.password) == ("https://h/", "bob", "other")
    artifact = PendingArtifact(url=f"http://{USER}:{QUOTED}@cdn.example/f", relative_path="f")
    assert artifact.url == "http://cdn.example/f"


def test_the_command_line_neither_prints_nor_stores_credentials_nor_sends_them_elsewhere(env: Env) -> None:  # noqa: F811
    with ServerThread(server=RemoteServer({"moved.txt": FILES["moved.txt"]})) as other, ServerThread(FILES) as server:
        server.faults = _faults(other)
        url = _with_credentials(server.manifest_url)
        elsewhere = "--allow-private-destinations"  # the redirect leads to another loopback server
        text = env.run("sync", url, "--repo", "r", "--on-error", "skip", elsewhere)
        as_json = env.run("sync", url, "--repo", "r2", "--on-error", "skip", "--json", elsewhere)
        failed = env.run("sync", url, "--repo", "r3", elsewhere)
    for done in (text, as_json):
        assert done.returncode == 0, done.stderr
    assert failed.returncode == 1
    assert f"Synced {server.manifest_url} into 'r'" in text.stdout
    assert json.loads(as_json.stdout)["failures"][0]["reason"] == f"{server.base_url}gone.txt: HTTP 404 Not Found"
    for done in (text, as_json, failed):
        assert not _leaks(done.stdout + done.stderr), done.stdout + done.stderr
    # What is stored: the remote's url and name, every RemoteArtifact's url, every run's error.
    with env.db.engine.connect() as conn:
        stored = [
            *conn.execute(select(Remote.__table__.c.name, Remote.__table__.c.url)).all(),
            *conn.execute(select(RemoteArtifact.__table__.c.url)).all(),
            *conn.execute(select(SyncRun.__table__.c.error)).all(),
        ]
    assert stored and not any(_leaks(str(value)) for row in stored for value in row)
    # The remote's own origin got the credentials; the host it redirected to never did.
    assert {h.get("Authorization") for h in server.request_headers["PULP_MANIFEST"]} == {BASIC}
    assert {h.get("Authorization") for h in server.request_headers["moved.txt"]} == {BASIC}
    elsewhere = other.request_headers["moved.txt"]
    assert elsewhere and all("Authorization" not in h for h in elsewhere)


def test_credentials_and_headers_go_only_to_the_remotes_own_origin(db, storage) -> None:
    offered = dict([cookbook("here", "1.0.0"), cookbook("cdn", "1.0.0")])

    async def scenario() -> tuple[RemoteServer, RemoteServer]:
        async with RemoteServer({"cdn.tar.gz": offered[("cdn", "1.0.0")].tarball}) as cdn:
            offered[("cdn", "1.0.0")].download_url = cdn.base_url + "cdn.tar.gz"
            async with CookbookServer(offered) as supermarket, RemoteServer(dict(FILES)) as files:
                files.faults = _faults(cdn)
                cdn.files["moved.txt"] = FILES["moved.txt"]
                for url, plugin in ((supermarket.base_url, CookbookPlugin()), (files.manifest_url, FilePlugin())):
                    remote = RemoteConfig(
                        url=_with_credentials(url),
                        headers={"X-Api-Key": "k3y"},
                        retries=0,
                        allow_private_destinations=True,  # the cdn is another loopback server
                    )
                    result = await sync_remote(
                        plugin, remote, db=db, storage=storage, repository=plugin.name, on_error="skip"
                    )
                    assert result.added == 2
                return files, cdn

    files, cdn = asyncio.run(scenario())
    for path in ("PULP_MANIFEST", "here.txt", "moved.txt"):
        assert [(h.get("Authorization"), h.get("X-Api-Key")) for h in files.request_headers[path]] == [(BASIC, "k3y")]
    assert set(cdn.request_headers) == {"cdn.tar.gz", "moved.txt"}
    for path, seen in cdn.request_headers.items():
        assert seen and all("Authorization" not in h and "X-Api-Key" not in h for h in seen), path


DB_PASSWORD = "Zq@9x:Wy/7k"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bob:{DB_PASSWORD}@127.0.0.1:1/db",
        f"postgresql://bob:{DB_PASSWORD}@127.0.0.1:notaport/db",
        "postgresql://bob:Zq%409x%3AWy%2F7k@127.0.0.1:1/db",  # percent-encoded: parsed alike, still hidden
    ],
)
def test_a_database_password_is_masked_whatever_it_holds(url: str) -> None:
    assert mask_password(url).startswith("postgresql://bob:***@127.0.0.1:")
    with pytest.raises(DatabaseError) as raised:
        open_database(url)
    assert "bob:***@127.0.0.1" in str(raised.value)
    assert not any(piece in str(raised.value) for piece in ("Zq", "9x", "Wy", "7k")), str(raised.value)


def test_the_command_line_masks_the_database_password_in_errors_and_help(tmp_path) -> None:
    url = f"postgresql://bob:{DB_PASSWORD}@127.0.0.1:1/db"
    environment = {**os.environ, "PENDINGOPS_DB": url}
    done = subprocess.run([SCRIPT, "repos"], capture_output=True, text=True, timeout=60, env=environment)
    line = assert_one_line_error(done, r"invalid database URL 'postgresql://bob:\*\*\*@127\.0\.0\.1:1/db'")
    shown = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=60, env=environment)
    assert shown.returncode == 0 and "bob:***@127.0.0.1:1/db" in shown.stdout.replace("\n", "").replace(" ", "")
    assert not any(piece in text for piece in ("Zq", "9x", "Wy", "7k") for text in (line, shown.stdout))


def test_an_sqlite_path_holding_colon_and_at_is_no_password(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x:y@z.db'}"
    assert mask_password(url) == url
    open_database(url).close()
