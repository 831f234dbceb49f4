"""nginx on 127.0.0.1 for tests: a real static web server, run with a ``server`` block of the test's own.

nginx is a system package (``apt-get install -y nginx-light``): without it a test using this is
skipped, or fails when ``PENDINGOPS_REQUIRE_NGINX`` is set (CI installs it and sets it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: every request: the URI nginx answered (after an ``index`` redirect), its status and media type
ACCESS_LOG_FORMAT = "$uri $status $sent_http_content_type"
_CONFIG = """\
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
{user}
events {{ worker_connections 64; }}
http {{
    log_format pages '{log_format}';
    access_log {work}/access.log pages;
    default_type application/octet-stream;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{http}
}}
"""


def nginx_binary() -> str:
    """The nginx executable; skips the test (fails it under PENDINGOPS_REQUIRE_NGINX) when there is none."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = "nginx is not installed (apt-get install -y nginx-light)"
    if os.environ.get("PENDINGOPS_REQUIRE_NGINX"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def nginx(http_block: str, work: Path) -> Iterator[tuple[str, Path]]:
    """nginx running ``http_block`` (directives of its ``http`` context; ``{port}`` in it is the port
    to listen on) until the block ends: its base URL and its access log."""
    binary = nginx_binary()
    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    user = "user root;" if os.geteuid() == 0 else ""  # the test's folders are private to its user
    config = _CONFIG.format(
        work=work, user=user, log_format=ACCESS_LOG_FORMAT, http=http_block.replace("{port}", str(port))
    )
    (work / "nginx.conf").write_text(config, encoding="utf-8")
    process = subprocess.Popen([binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")])
    try:
        _wait_for(port, process, work / "error.log")
        yield f"http://127.0.0.1:{port}/", work / "access.log"
    finally:
        process.terminate()
        process.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until nginx accepts connections (it exits at once on a bad configuration or a taken port)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text() if log.exists() else 'no log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within 30 s")
