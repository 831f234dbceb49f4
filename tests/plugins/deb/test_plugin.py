"""The deb plugin from the command line: listed, its options checked, every failure one line."""

from __future__ import annotations

import lzma

import pytest

from tests.cli import test_cli
from tests.cli.test_cli import Cli, assert_clean_error
from tests.plugins.deb.archive import HELLO, Signer, stable
from tests.remote_server import Fault
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder
INDEX = "dists/stable/main/binary-amd64/Packages.xz"


def test_the_plugin_is_listed_and_bad_options_are_refused_before_anything_is_fetched(cli: Cli) -> None:
    listed = cli.run("plugins")
    assert any(line.split()[0] == "deb" and "apt-get" in line for line in listed.stdout.splitlines())
    for args, message in (
        ((), "suites= is required"),
        (("--option", "suites=../etc"), "suites: not a valid name: '../etc'"),
        (("--option", "suites=s", "--option", "component=main"), "has no option 'component' (known: architectures,"),
        (("--option", "suites=s", "--option", "packages=Hello"), "packages: not a valid name"),
    ):
        done = cli.run("sync", "http://127.0.0.1:9/", "--plugin", "deb", "--repo", "d", *args)
        assert_clean_error(done, 2)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_hostile_or_broken_archive_is_one_line(cli: Cli, signer: Signer) -> None:
    escaping = HELLO.stanza().replace(HELLO.filename(), "../../../etc/evil.deb").encode()
    hostile = stable(signer, compressions=("xz",), replaced={"main/binary-amd64/Packages.xz": lzma.compress(escaping)})
    args = ("--plugin", "deb", "--repo", "d", "--retries", "0", "--option", "suites=stable")
    with ServerThread(hostile.files()) as origin:
        done = cli.run("sync", origin.base_url, *args)
        assert_clean_error(done, 2)
        assert "stanza 1 ('hello'): relative path has a '..' segment: '../../../etc/evil.deb'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    with ServerThread(stable(signer, by_hash=False).files()) as origin:
        origin.faults[INDEX] = Fault(wrong_bytes=True)
        done = cli.run("sync", origin.base_url, *args)
        assert_clean_error(done, 1)
        assert f"{INDEX}: sha256 mismatch" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        done = cli.run("sync", origin.base_url + "nowhere/", *args)
        assert_clean_error(done, 2)
        assert "neither InRelease nor Release could be fetched" in done.stderr, done.stderr
    assert cli.json("versions", "d")[-1]["number"] == 0  # type: ignore[index]


@pytest.mark.parametrize("policy", ["on_demand", "streamed"])
def test_index_files_are_stored_whatever_the_policy(cli: Cli, signer: Signer, policy: str) -> None:
    with ServerThread(stable(signer).files()) as origin:
        done = cli.run(
            "sync",
            origin.base_url,
            "--plugin",
            "deb",
            "--repo",
            "d",
            "--policy",
            policy,
            "--option",
            "suites=stable",
            "--quiet",
        )
        assert done.returncode == 0, done.stderr
    units = cli.json("content", "d")
    assert isinstance(units, list)
    suite = next(unit for unit in units if unit["type"] == "deb_release")
    packages = [unit for unit in units if unit["type"] == "deb"]
    assert all(artifact["stored"] for artifact in suite["artifacts"]) and len(suite["artifacts"]) == 5
    assert not any(artifact["stored"] for unit in packages for artifact in unit["artifacts"])
