"""Serve a directory on 127.0.0.1 from a separate process: nginx when available, else aiohttp.

Run as a script (``python _server.py ROOT``) it is the aiohttp fallback: it prints its port and
serves until terminated.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
        # the same files at the speed of a 1 Gbit/s link (119 MiB/s per connection), as a remote origin is
        location /at-link-speed/ {{ alias {root}/; limit_rate 119m; }}
    }}
}}
"""


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Server:
    """A running static server: its kind ("nginx 1.22.1", "aiohttp") and base URL (ends with /)."""

    kind: str
    base_url: str


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # sbin may not be on PATH


def _apt(*args: str) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, check=False).returncode


def find_nginx(install: bool) -> str | None:
    """The nginx binary; when missing and ``install``, try the Debian package (needs root)."""
    found = _nginx_binary()
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("nginx is not installed: trying 'apt-get install -y nginx-light'...", flush=True)
    if _apt("install", "-y", "nginx-light") != 0:
        _apt("update")
        _apt("install", "-y", "nginx-light")
    return _nginx_binary()


@contextmanager
def serve(root: Path, work: Path, choice: str = "auto", install: bool = True, workers: int = 1) -> Iterator[Server]:
    """Serve ``root`` until the block ends. ``choice`` is "auto", "nginx" or "aiohttp"; ``workers``: nginx's
    worker processes."""
    nginx = find_nginx(install) if choice in ("auto", "nginx") else None
    if choice == "nginx" and nginx is None:
        raise ServerError("nginx was asked for but is not installed")
    if nginx is not None:
        with _nginx(nginx, root, work, workers) as server:
            yield server
    else:
        with _aiohttp(root) as server:
            yield server


@contextmanager
def _nginx(binary: str, root: Path, work: Path, workers: int = 1) -> Iterator[Server]:
    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    user = "user root;" if os.geteuid() == 0 else ""  # the served temp dirs are private to us
    conf = work / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(work=work, root=root, port=port, user=user, workers=workers), encoding="utf-8")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    process = subprocess.Popen([binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf)])
    try:
        _wait_for_port(port, process, work / "error.log")
        yield Server(f"nginx {version}", f"http://127.0.0.1:{port}/")
    finally:
        _stop(process)


@contextmanager
def _aiohttp(root: Path) -> Iterator[Server]:
    process = subprocess.Popen([sys.executable, __file__, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise ServerError("the aiohttp static server did not start")
        yield Server("aiohttp (python)", f"http://127.0.0.1:{line}/")
    finally:
        _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"nginx exited: {log.read_text() if log.exists() else 'no log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"nginx did not listen on port {port} within 10 s")


def _stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _serve_forever(root: str) -> None:
    from aiohttp import web

    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve_forever(sys.argv[1]))
