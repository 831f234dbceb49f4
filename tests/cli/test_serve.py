"""``pendingops serve`` as a real process: it prints its URL, serves, is synced from, stops on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from tests.cli import test_cli
from tests.cli.test_cli import SCRIPT, Cli, digests, files_v1
from tests.server_thread import ServerThread

cli = test_cli.cli  # the fixture: a database (SQLite, PostgreSQL) and a storage folder


@contextmanager
def serving(cli: Cli, *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [SCRIPT, "--db", cli.db_url, "--storage", str(cli.storage), "serve", "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
