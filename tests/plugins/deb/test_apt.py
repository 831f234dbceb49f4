"""The real apt-get updates and downloads from what ``pendingops serve`` serves of a synced archive (every
policy, with the upstream's signed-by key), from our own indexes (a packages= sync; signed with our
key, or trusted), and from an export served by a static web server; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.cli.test_serve import serving
from tests.plugins.deb.apt_client import AptClient
from tests.plugins.deb.archive import HELLO, TOOL, WORLD, Deb, Signer, stable
from tests.plugins.python_index import StaticFolder
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder
DEBS = {deb.filename(): deb for deb in (HELLO, WORLD, TOOL)}


def sync(cli: Cli, url: str, *args: str) -> None:
    done = cli.run("sync", url, "--plugin", "deb", "--repo", "deb", "--quiet", "--option", "suites=stable", *args)
    assert done.returncode == 0, done.stderr


def apt(tmp_path: Path, name: str, url: str, options: str) -> AptClient:
    return AptClient(tmp_path / name, f"deb [{options}] {url} stable main")


def refused_signature(done: subprocess.CompletedProcess[str]) -> bool:
    """apt-get update failed because the Release is not signed by a key it was told to trust."""
    said = done.stdout + done.stderr
    return done.returncode != 0 and ("NO_PUBKEY" in said or "is not signed" in said)


def fetched(client: AptClient, *debs: Deb) -> None:
    """apt-get download of ``debs`` succeeds and gives each one's exact bytes."""
    done = client.download(*(deb.name for deb in debs))
    assert done.returncode == 0, done.stdout + done.stderr
    files = client.downloaded()
    for deb in debs:
        assert files[Path(deb.filename()).name] == deb.data


@pytest.mark.parametrize("policy", ["immediate", "on_demand", "streamed"])
def test_apt_gets_a_served_mirror_checked_with_the_upstreams_key(
    cli: Cli, signer: Signer, tmp_path: Path, policy: str
) -> None:
    key = signer.public_key(tmp_path / "upstream.gpg")
    with ServerThread(stable(signer).files()) as origin:
        sync(cli, origin.base_url, "--mirror", "--policy", policy)
        before = {path: origin.requests[path] for path in DEBS}
        with serving(cli) as (_, url):
            for client in (
                apt(tmp_path, "first", f"{url}deb/latest/", f"signed-by={key}"),
                apt(tmp_path, "second", f"{url}deb/1/", f"signed-by={key}"),
            ):
                done = client.update()
                assert done.returncode == 0, done.stdout + done.stderr
                assert "InRelease" in done.stdout and "Packages" in done.stdout
                assert client.offered() == {"hello", "world", "tool"}
                fetched(client, HELLO, WORLD, TOOL)
            stranger = Signer("Someone Else <else@example.org>")
            try:
                wrong = apt(
                    tmp_path, "wrong", f"{url}deb/latest/", f"signed-by={stranger.public_key(tmp_path / 'x.gpg')}"
                )
            finally:
                stranger.close()
            assert refused_signature(wrong.update())  # the upstream's signature, checked by apt
        pulled = {path: origin.requests[path] - before[path] for path in DEBS}
    expected = {"immediate": 0, "on_demand": 1, "streamed": 2}[policy]  # two clients downloaded each file
    assert pulled == dict.fromkeys(DEBS, expected)


def test_apt_sees_a_resync_in_latest_and_the_old_set_in_a_pinned_version(
    cli: Cli, signer: Signer, tmp_path: Path
) -> None:
    key = signer.public_key(tmp_path / "upstream.gpg")
    newer = Deb("hello", "1.1")
    with ServerThread(stable(signer).files()) as origin:
        sync(cli, origin.base_url, "--mirror")
    with ServerThread(stable(signer, newer, WORLD, TOOL).files()) as origin:
        sync(cli, origin.base_url, "--mirror")
    with serving(cli) as (_, url):
        for version, expected in (("latest", newer), ("1", HELLO)):
            client = apt(tmp_path, version, f"{url}deb/{version}/", f"signed-by={key}")
            assert client.update().returncode == 0
            fetched(client, expected)


def test_apt_reads_our_own_index_of_a_packages_sync(cli: Cli, signer: Signer, tmp_path: Path) -> None:
    with ServerThread(stable(signer).files()) as origin:
        sync(cli, origin.base_url, "--mirror", "--option", "packages=hello")
    with serving(cli) as (_, url):
        client = apt(tmp_path, "trusted", f"{url}deb/latest/", "trusted=yes")
        done = client.update()
        assert done.returncode == 0, done.stdout + done.stderr
        assert client.offered() == {"hello"}  # and not the others
        fetched(client, HELLO)
        assert client.download("world").returncode != 0
        key = signer.public_key(tmp_path / "upstream.gpg")
        assert refused_signature(apt(tmp_path, "signed", f"{url}deb/latest/", f"signed-by={key}").update())


def test_apt_checks_our_own_indexes_with_our_signing_key(
    cli: Cli, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = Signer("Our Mirror <mirror@example.org>")
    try:
        monkeypatch.setenv("GNUPGHOME", str(ours.home))  # the keyring of the sync and of serve
        with ServerThread(stable(signer).files()) as origin:
            sync(cli, origin.base_url, "--option", "packages=hello,tool", "--option", f"signing_key={ours.fingerprint}")
        with serving(cli) as (_, url):
            client = apt(tmp_path, "ours", f"{url}deb/latest/", f"signed-by={ours.public_key(tmp_path / 'ours.gpg')}")
            done = client.update()
            assert done.returncode == 0, done.stdout + done.stderr
            assert client.offered() == {"hello", "tool"}
            fetched(client, HELLO, TOOL)
            upstream = apt(
                tmp_path, "upstream", f"{url}deb/latest/", f"signed-by={signer.public_key(tmp_path / 'u.gpg')}"
            )
            assert refused_signature(upstream.update())
    finally:
        ours.close()


def test_apt_gets_an_export_from_a_static_web_server(cli: Cli, signer: Signer, tmp_path: Path) -> None:
    files = stable(signer).files()
    with ServerThread(files) as origin:
        sync(cli, origin.base_url, "--mirror", "--policy", "on_demand")
        exported = cli.run("export", "deb", str(tmp_path / "mirror"))  # fetches what on_demand left upstream
        assert exported.returncode == 0, exported.stderr
        sync(cli, origin.base_url, "--mirror", "--option", "packages=hello")
        exported = cli.run("export", "deb", str(tmp_path / "ours"))
        assert exported.returncode == 0, exported.stderr
        assert "dists/ (" in exported.stdout
    tree = (tmp_path / "mirror/dists").rglob("*")
    written = {str(p.relative_to(tmp_path / "mirror")): p.read_bytes() for p in tree if p.is_file()}
    assert written == {path: files[path] for path in written}  # byte for byte the upstream's
    assert {"InRelease", "Release", "Release.gpg"} <= {Path(path).name for path in written}
    assert len(written) == 5  # and the index used, at its path and its by-hash path
    assert not (tmp_path / "ours/dists/stable/InRelease").exists()  # the upstream's files are not ours
    key = signer.public_key(tmp_path / "upstream.gpg")
    for name, options, offered in (
        ("mirror", f"signed-by={key}", {"hello", "world", "tool"}),
        ("ours", "trusted=yes", {"hello"}),
    ):
        with ServerThread(server=StaticFolder(tmp_path / name)) as static:
            client = apt(tmp_path, f"apt-{name}", static.base_url, options)
            done = client.update()
            assert done.returncode == 0, done.stdout + done.stderr
            assert client.offered() == offered
            fetched(client, HELLO)
