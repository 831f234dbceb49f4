"""The real pip, in a fresh virtual environment, installs from what ``pendingops serve`` serves of a
synced index (every policy) and from an export's static tree (behind nginx configured as the README
says, in PEP 691 JSON), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import venv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.cli import test_cli
from tests.cli.test_cli import Cli
from tests.cli.test_serve import serving
from tests.nginx import nginx
from tests.plugins.python_index import NegotiatingIndex, StaticFolder, index_files, sample_projects, wheel
from tests.serve.served import htpasswd_entry
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder
README = Path(__file__).resolve().parents[2] / "README.md"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def pip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """pip of a fresh virtual environment, reading no configuration and no PIP_* variable."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    yield [str(home / "bin" / "python"), "-m", "pip"]


def _pip_env(home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    if home is not None:  # where pip finds a .netrc (and nothing else of the user's)
        env |= {"HOME": str(home), "NETRC": str(home / ".netrc")}
    return env


def run_pip(pip: list[str], *args: str, home: Path | None = None) -> list[str]:
    done = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=300, env=_pip_env(home))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    sys.stdout.write("\n".join(["$ pip " + " ".join(args), *lines, ""]))
    return lines


def pip_fails(pip: list[str], *args: str, home: Path | None = None) -> str:
    """What pip says when it cannot do what it is asked."""
    done = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=300, env=_pip_env(home))
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def installed(target: Path) -> set[str]:
    return {p.name for p in target.iterdir() if p.name.endswith(".dist-info")}


@pytest.mark.parametrize("policy", ["immediate", "on_demand", "streamed"])
def test_pip_installs_from_a_served_repository(cli: Cli, pip: list[str], tmp_path: Path, policy: str) -> None:
    projects = sample_projects()
    with ServerThread(index_files(projects)) as origin:
        index = origin.base_url + "simple/"
        done = cli.run("sync", index, "--plugin", "python", "--repo", "py", "--policy", policy, "--quiet")
        assert done.returncode == 0, done.stderr
        with serving(cli) as (_, url):
            simple = f"{url}py/latest/simple/"
            target = tmp_path / "site"
            run_pip(pip, "install", "--index-url", simple, "--no-cache-dir", "--target", str(target), "Alpha_Pkg")
            # 3.0 needs Python >= 4, 2.5 is yanked: 2.0, and the newest beta that is not a pre-release
            assert installed(target) == {"alpha_pkg-2.0.dist-info", "beta-1.1.dist-info"}
            assert (target / "alpha_pkg" / "__init__.py").read_text() == "VERSION = '2.0'\n"
            wheels = tmp_path / "wheels"
            run_pip(
                pip,
                "download",
                "--index-url",
                simple,
                "--no-cache-dir",
                "--only-binary",
                ":all:",
                "-d",
                str(wheels),
                "alpha-pkg==2.0",
            )
            assert {p.name for p in wheels.iterdir()} == {"alpha_pkg-2.0-py3-none-any.whl", "beta-1.1-py3-none-any.whl"}
        if policy != "immediate":  # fetched while pip asked: the metadata file (PEP 658) first, then the wheel
            assert origin.requests["files/beta-1.1-py3-none-any.whl.metadata"] >= 1
            assert origin.requests["files/beta-1.1-py3-none-any.whl"] >= 1


def test_pip_sees_a_mirror_resync_in_latest_and_a_pinned_version_keeps_the_old_set(
    cli: Cli, pip: list[str], tmp_path: Path
) -> None:
    projects = sample_projects()
    with ServerThread(index_files(projects)) as origin:
        args = ("--plugin", "python", "--repo", "py", "--mirror", "--quiet", "--option", "projects=alpha-pkg,beta")
        assert cli.run("sync", origin.base_url + "simple/", *args).returncode == 0
    projects["beta"] = [wheel("beta", "1.0"), wheel("beta", "1.4")]  # 1.1 dropped, 1.4 added
    with ServerThread(index_files(projects)) as origin:
        assert cli.run("sync", origin.base_url + "simple/", *args).returncode == 0
    with serving(cli) as (_, url):
        for version, expected in (("latest", "beta-1.4.dist-info"), ("1", "beta-1.1.dist-info")):
            target = tmp_path / version
            run_pip(
                pip,
                "install",
                "--index-url",
                f"{url}py/{version}/simple/",
                "--no-cache-dir",
                "--target",
                str(target),
                "beta",
            )
            assert installed(target) == {expected}


def test_pip_installs_from_an_export_served_by_a_static_web_server_or_read_as_files(
    cli: Cli, pip: list[str], tmp_path: Path
) -> None:
    projects = sample_projects()
    with ServerThread(index_files(projects)) as origin:
        done = cli.run("sync", origin.base_url + "simple/", "--plugin", "python", "--repo", "py", "--quiet")
        assert done.returncode == 0, done.stderr
    dest = tmp_path / "export"
    exported = cli.run("export", "py", str(dest))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("exported version 1 of 'py'") and "and simple/ (8 pages)" in exported.stdout
    with ServerThread(server=StaticFolder(dest)) as static:
        for index in (f"{static.base_url}simple/", (dest / "simple").as_uri() + "/"):
            target = tmp_path / ("http" if index.startswith("http") else "file")
            run_pip(pip, "install", "--index-url", index, "--no-cache-dir", "--target", str(target), "Alpha_Pkg")
            # as from the served index: 3.0 needs Python >= 4, 2.5 is yanked
            assert installed(target) == {"alpha_pkg-2.0.dist-info", "beta-1.1.dist-info"}
            assert (target / "alpha_pkg" / "__init__.py").read_text() == "VERSION = '2.0'\n"
        assert static.requests["packages/beta/beta-1.1-py3-none-any.whl.metadata"] == 1  # PEP 658, read first
        assert static.requests["packages/beta/beta-1.1-py3-none-any.whl"] == 1


def readme_nginx_lines() -> str:
    """The nginx lines the README gives for serving an export, so the test runs what users copy."""
    marker = "<!-- nginx: an export's simple index, HTML or JSON by Accept -->\n```nginx\n"
    return README.read_text(encoding="utf-8").split(marker, 1)[1].split("```", 1)[0]


def fetch(url: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.headers["Content-Type"], response.read()


def test_pip_installs_from_an_export_behind_nginx_asking_for_json(cli: Cli, pip: list[str], tmp_path: Path) -> None:
    projects = sample_projects()
    projects["beta"][1] = replace(projects["beta"][1], upload_time="2024-05-06T07:08:09Z")
    with ServerThread(server=NegotiatingIndex(projects=projects)) as origin:
        done = cli.run("sync", origin.base_url + "simple/", "--plugin", "python", "--repo", "py", "--quiet")
        assert done.returncode == 0, done.stderr
    dest = tmp_path / "export"
    assert cli.run("export", "py", str(dest)).returncode == 0
    lines = readme_nginx_lines()
    assert "listen 8080;" in lines and "root /srv/pypi;" in lines
    lines = lines.replace("listen 8080;", "listen 127.0.0.1:{port};").replace("root /srv/pypi;", f"root {dest};")
    with nginx(lines, tmp_path / "nginx") as (url, access_log):
        kind, body = fetch(f"{url}simple/beta/", JSON_TYPE)
        page = json.loads(body)
        assert (kind, page["meta"], page["versions"]) == (JSON_TYPE, {"api-version": "1.1"}, ["1.0", "1.1", "1.2rc1"])
        files = {entry["filename"]: entry for entry in page["files"]}
        assert {name: entry["size"] for name, entry in files.items()} == {
            d.filename: len(d.data) for d in projects["beta"]
        }
        assert files["beta-1.1-py3-none-any.whl"]["upload-time"] == "2024-05-06T07:08:09Z"
        kind, body = fetch(f"{url}simple/beta/")  # a browser, or a client that asks for nothing
        assert kind.startswith("text/html") and b"beta-1.1-py3-none-any.whl" in body
        target = tmp_path / "site"
        run_pip(pip, "install", "--index-url", f"{url}simple/", "--no-cache-dir", "--target", str(target), "Alpha_Pkg")
        assert installed(target) == {"alpha_pkg-2.0.dist-info", "beta-1.1.dist-info"}
    served = access_log.read_text().splitlines()
    # pip asked for JSON and got it: the project pages went out as index.v1_json, never as index.html
    assert f"/simple/alpha-pkg/index.v1_json 200 {JSON_TYPE}" in served
    assert served.count(f"/simple/beta/index.v1_json 200 {JSON_TYPE}") == 2  # ours, then pip's
    assert [line for line in served if line.endswith("index.html 200 text/html")] == [
        "/simple/beta/index.html 200 text/html"
    ]


def test_unknown_options_are_refused_with_the_known_ones(cli: Cli) -> None:
    cases = (
        (("--plugin", "python", "--option", "platforms=linux"), "(known: latest, prereleases, projects)"),
        (("--plugin", "python", "--option", "latest"), "write KEY=VALUE"),
        (("--plugin", "python", "--option", "latest=none"), "latest must be a whole number"),
        (("--option", "projects=a"), "the file plugin has no option 'projects' (known: none)"),
    )
    for args, message in cases:
        done = cli.run("sync", "http://127.0.0.1:9/simple/", "--repo", "py", *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("credentials", ["in the index URL", "in netrc"])
def test_pip_installs_through_a_login_from_the_chosen_repository_only(
    cli: Cli, pip: list[str], tmp_path: Path, credentials: str
) -> None:
    """serve --htpasswd F --repos py: pip with credentials installs; without them, or from another repository,
    nothing is found."""
    projects = sample_projects()
    with ServerThread(index_files(projects)) as origin:
        for repo in ("py", "other"):
            done = cli.run("sync", origin.base_url + "simple/", "--plugin", "python", "--repo", repo, "--quiet")
            assert done.returncode == 0, done.stderr
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(htpasswd_entry("pip-user", "p@ss:w/rd") + "\n")
    home = tmp_path / "home"
    home.mkdir()
    with serving(cli, "--htpasswd", str(htpasswd), "--repos", "py") as (process, url):
        host = url.removeprefix("http://").rstrip("/")
        if credentials == "in netrc":
            (home / ".netrc").write_text(f"machine {host.split(':')[0]} login pip-user password p@ss:w/rd\n")
            index = f"{url}py/latest/simple/"
        else:
            index = f"http://pip-user:{quote('p@ss:w/rd', safe='')}@{host}/py/latest/simple/"
        target = tmp_path / "site"
        run_pip(pip, "install", "--index-url", index, "--no-cache-dir", "--target", str(target), "Alpha_Pkg", home=home)
        assert installed(target) == {"alpha_pkg-2.0.dist-info", "beta-1.1.dist-info"}
        nobody = tmp_path / "nobody"  # a home without a .netrc
        nobody.mkdir()
        anonymous = ("download", "--index-url", f"{url}py/latest/simple/", "beta")
        assert "No matching distribution found for beta" in pip_fails(pip, *anonymous, home=nobody)
        other = index.replace("/py/", "/other/")
        assert "No matching distribution" in pip_fails(pip, "download", "--index-url", other, "beta", home=home)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        access = [line.split('"')[1:] for line in process.stderr.read().splitlines() if " pendingops.access " in line]
    answered = {(request, reply.split()[0]) for request, reply in access}
    assert ("GET /py/latest/simple/beta/", "401") in answered  # without credentials
    assert ("GET /other/latest/simple/beta/", "404") in answered  # with them, but not a repository served
    assert any(request.startswith("GET /py/1/packages/") and code == "200" for request, code in answered)
