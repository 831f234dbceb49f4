"""``pendingops serve`` as a real process: it prints its URL, serves, is synced from, stops on a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from prometheus_client.parser import text_string_to_metric_families

from tests.cli import test_cli
from tests.cli.test_cli import SCRIPT, Cli, digests, files_v1
from tests.serve.served import basic, htpasswd_entry
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder


@contextmanager
def serving(
    cli: Cli, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), "serve", "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("serving on http://127.0.0.1:"), (line, process.stderr.read())  # type: ignore[union-attr]
        yield process, line.split()[2]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(60)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def test_serve_is_a_remote_another_sync_can_mirror(cli: Cli) -> None:
    files = files_v1() | {"empty.txt": b""}
    with ServerThread(files) as origin:
        assert cli.run("sync", origin.manifest_url, "--repo", "r", "--quiet").returncode == 0
    with serving(cli) as (process, url):
        for path, data in files.items():
            assert fetch(f"{url}r/latest/{quote(path)}") == data
        assert b"pkg/" in fetch(f"{url}r/latest/")
        chained = cli.run("sync", f"{url}r/1/PULP_MANIFEST", "--repo", "copy", "--mirror", "--quiet")
        assert chained.returncode == 0, chained.stderr
        assert cli.version_files("copy") == digests(files)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]


def test_serve_stops_on_ctrl_c_and_refuses_a_bad_port(cli: Cli) -> None:
    with serving(cli) as (process, url):
        assert b"r/" not in fetch(url)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    done = cli.run("serve", "--port", "70000")
    assert done.returncode == 2 and "not a port number" in done.stderr and "Traceback" not in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = cli.run("serve", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1 and "cannot listen on 127.0.0.1 port" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_several_processes_shares_one_port_and_stops_them_all(cli: Cli) -> None:
    files = files_v1()
    with ServerThread(files) as origin:
        assert cli.run("sync", origin.manifest_url, "--repo", "r", "--quiet").returncode == 0
    with serving(cli, "--workers", "3") as (process, url):
        children = _children(process.pid)
        assert len(children) == 2
        for _ in range(10):  # new connections each time: the kernel spreads them over the processes
            for path, data in files.items():
                assert fetch(f"{url}r/latest/{quote(path)}") == data
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        taken = cli.run("serve", "--port", str(port), "--workers", "2")  # one of ours holds it
        assert taken.returncode == 1 and "cannot listen on 127.0.0.1 port" in taken.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    done = cli.run("serve", "--workers", "0")
    assert done.returncode == 2 and "not a number of processes" in done.stderr and "Traceback" not in done.stderr
    done = cli.run("serve", "--accel-redirect", "stored")
    assert done.returncode == 2 and "not a URL path" in done.stderr and "Traceback" not in done.stderr
    for option, value, problem in (
        ("--on-demand-concurrency", "0", "not a number of fetches"),
        ("--verify-before-send", "8 megs", "not a size"),
    ):
        done = cli.run("serve", option, value)
        assert (done.returncode, len(done.stderr.splitlines())) == (2, 1) and problem in done.stderr, done.stderr


def test_serve_behind_nginx_names_stored_files_for_it(cli: Cli) -> None:
    files = files_v1()
    with ServerThread(files) as origin:
        assert cli.run("sync", origin.manifest_url, "--repo", "r", "--quiet").returncode == 0
    with serving(cli, "--accel-redirect", "/stored") as (process, url):
        for path in files:
            with urllib.request.urlopen(f"{url}r/latest/{quote(path)}", timeout=60) as response:
                assert response.read() == b""
                assert response.headers["X-Accel-Redirect"].startswith("/stored/")
                stored = cli.storage / response.headers["X-Accel-Redirect"].removeprefix("/stored/")
                assert stored.read_bytes() == files[path]
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_on_demand_and_streamed_content_from_the_command_line(cli: Cli, tmp_path) -> None:
    files = {"a.txt": b"first", "dir/b.bin": bytes(range(256)) * 1000}
    passing = {"c.bin": b"streamed" * 5000}
    with ServerThread(files) as origin, ServerThread(passing) as streaming:
        done = cli.run("sync", origin.manifest_url, "--repo", "lazy", "--policy", "on_demand", "--quiet")
        assert done.returncode == 0, done.stderr
        done = cli.run("sync", streaming.manifest_url, "--repo", "passing", "--policy", "streamed", "--quiet")
        assert done.returncode == 0, done.stderr
        assert origin.file_requests() == streaming.file_requests() == 0
        assert "3 file(s) not fetched yet" in cli.run("verify").stdout

        refused = cli.run("export", "lazy", str(tmp_path / "refused"), "--no-fetch")
        assert refused.returncode == 1 and "'dir/b.bin': not fetched yet" in refused.stderr
        with serving(cli) as (process, url):
            assert fetch(f"{url}lazy/latest/a.txt") == b"first"  # fetched and stored
            assert fetch(f"{url}lazy/latest/a.txt") == b"first"
            assert fetch(f"{url}passing/latest/c.bin") == passing["c.bin"]  # fetched, never stored
            assert fetch(f"{url}passing/latest/c.bin") == passing["c.bin"]
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        assert origin.requests["a.txt"] == 1 and streaming.requests["c.bin"] == 2
        assert "2 file(s) not fetched yet" in cli.run("verify").stdout

        exported = cli.run("export", "lazy", str(tmp_path / "out"))
        assert exported.returncode == 0, exported.stderr
        assert "fetched 1 file(s)" in exported.stdout and origin.requests["dir/b.bin"] == 1
    assert {p: (tmp_path / "out" / p).read_bytes() for p in files} == files
    assert "1 file(s) not fetched yet" in cli.run("verify").stdout


def ask(url: str, **headers: str) -> tuple[int, Any, bytes]:
    """Status, headers and body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def test_serve_with_a_login_and_chosen_repositories_logs_each_request_as_json(cli: Cli, tmp_path: Path) -> None:
    files = files_v1()
    with ServerThread(files) as origin:
        for repo in ("a", "b"):
            assert cli.run("sync", origin.manifest_url, "--repo", repo, "--quiet").returncode == 0
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(htpasswd_entry("alice", "s3cret") + "\n")
    login = {"Authorization": basic("alice", "s3cret")}
    path = quote("pkg/file-01.txt")
    env = {**os.environ, "PENDINGOPS_LOG_FORMAT": "json"}
    with serving(cli, "--htpasswd", str(htpasswd), "--repos", "a", env=env) as (process, url):
        asked = [
            (f"{url}a/latest/{path}", {}, 401),
            (f"{url}a/latest/{path}", {"Authorization": basic("alice", "wrong")}, 401),
            (f"{url}a/latest/{path}", login, 200),
            (f"{url}b/latest/{path}", login, 404),
            (f"{url}b/", login, 404),
            (url, login, 200),
            (f"{url}-/health", {}, 200),
            (f"{url}-/metrics", {}, 401),
        ]
        answers = [ask(page, **headers) for page, headers, _ in asked]
        assert [status for status, _, _ in answers] == [status for _, _, status in asked]
        assert answers[0][1]["WWW-Authenticate"] == 'Basic realm="pendingops"'
        assert answers[2][2] == files["pkg/file-01.txt"]
        assert b"a/" in answers[5][2] and b"b/" not in answers[5][2]
        assert json.loads(answers[6][2]) == {"status": "ok", "database": "ok", "storage": "ok"}
        status, _, metrics = ask(f"{url}-/metrics", **login)
        assert status == 200
        counted = {
            sample.labels["status"]: sample.value
            for family in text_string_to_metric_families(metrics.decode())
            for sample in family.samples
            if sample.name == "pendingops_http_requests_total"
        }
        assert counted == {"401": 3, "200": 3, "404": 2}  # every request before this one
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        stderr = process.stderr.read()  # type: ignore[union-attr]
    logged = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    access = [line for line in logged if line["logger"] == "pendingops.access"]
    assert [(line["path"], line["status"]) for line in access] == [
        (urlsplit(page).path or "/", status) for page, _, status in [*asked, (f"{url}-/metrics", login, 200)]
    ]
    users = [None, None, "alice", "alice", "alice", "alice", None, None, "alice"]
    assert [line.get("user") for line in access] == users
    assert all(line["client"] == "127.0.0.1" and line["ts"].endswith("Z") for line in access)


def test_serve_refuses_a_bad_password_file_in_one_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "htpasswd"
    bad.write_text(htpasswd_entry("alice", "s3cret") + "\nbob:$apr1$salt$hash\n")
    done = cli.run("serve", "--port", "0", "--htpasswd", str(bad))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"pendingops: error: htpasswd file {bad} line 2: not a bcrypt hash (make entries with 'htpasswd -B')\n"
    )
    done = cli.run("serve", "--port", "0", "--htpasswd", str(tmp_path / "missing"))
    assert done.returncode == 2 and done.stderr.startswith("pendingops: error: cannot read the htpasswd file")


def test_several_server_processes_count_each_others_requests(cli: Cli, tmp_path: Path) -> None:
    """A scrape, whichever process answers it, counts the requests every process answered (a request is
    counted once its last byte is sent, so one that another process just finished may show in the next
    scrape only); the folder where the processes share their counts is removed when the server stops."""
    files = files_v1()
    with ServerThread(files) as origin:
        assert cli.run("sync", origin.manifest_url, "--repo", "r", "--quiet").returncode == 0
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    with serving(cli, "--workers", "2", "--no-access-log", env=env) as (process, url):
        assert len(list(temp.glob("pendingops-metrics-*"))) == 1
        for _ in range(20):  # a new connection each time: the kernel spreads them over both processes
            assert fetch(f"{url}r/latest/{quote('pkg/file-01.txt')}") == files["pkg/file-01.txt"]
        totals: list[float] = []
        while len(totals) < 50 and (not totals or totals[-1] < 20 + len(totals) - 1):
            text = fetch(f"{url}-/metrics").decode()
            families = {family.name: family for family in text_string_to_metric_families(text)}
            totals.append(sum(sample.value for sample in families["pendingops_http_requests"].samples))
        # 20 files and the scrapes before the last: all of them, from both processes
        assert totals[-1] == 20 + len(totals) - 1, totals
        assert totals == sorted(totals), totals
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "pendingops.access" not in process.stderr.read()  # type: ignore[union-attr]
    assert list(temp.iterdir()) == []
