"""Take a screenshot of the content server's HTML listing with headless Chromium (Debian's ``chromium``).

    .venv/bin/python tools/screenshot_listing.py [OUT.png]     # default: docs/serve-listing.png

Syncs a small generated repository from a file:// remote into a scratch database and storage,
serves it in this process, and points Chromium at one of its folders. Not part of the test suite
(CI has no Chromium).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from pendingops import LocalStorage, RemoteConfig, open_database, sync_remote
from pendingops.plugins.file import FilePlugin
from pendingops.serve import ContentServer
from pendingops.serve.run import url_of

FILES = {
    "README.txt": b"A small repository served by pendingops.\n",
    "CHANGELOG.md": b"# Changes\n" * 700,
    "hello-1.1.iso": b"\0" * 5_600_000,
    "docs/guide.html": b"<html><body>guide</body></html>\n" * 40,
    "docs/changes, 2026.txt": b"changes\n" * 300,
    "images/logo.png": bytes(range(256)) * 90,
    "pool/main/hello_1.0_amd64.deb": b"\0" * 340_000,
    "pool/main/hello_1.1_amd64.deb": b"\1" * 352_000,
    "releases/v1.0.tar.gz": b"\x1f\x8b" + b"x" * 2_400_000,
    "releases/v1.1.tar.gz": b"\x1f\x8b" + b"y" * 2_500_000,
    "ünïcødé name.txt": b"non-ASCII\n",
}


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/serve-listing.png").absolute()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        remote = root / "remote"
        for path, data in FILES.items():
            (remote / path).parent.mkdir(parents=True, exist_ok=True)
            (remote / path).write_bytes(data)
        lines = [f"{p},{hashlib.sha256(d).hexdigest()},{len(d)}\n" for p, d in sorted(FILES.items())]
        (remote / "PULP_MANIFEST").write_text("".join(lines), encoding="utf-8")
        db = open_database(f"sqlite:///{root / 'db.sqlite'}")
        storage = LocalStorage(root / "storage")
        config = RemoteConfig(url=(remote / "PULP_MANIFEST").as_uri())
        asyncio.run(sync_remote(FilePlugin(), config, db=db, storage=storage, repository="example"))
        url = _serve_in_background(ContentServer(db, storage))
        profile = root / "profile"
        profile.mkdir()
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--window-size=1000,420",
            f"--screenshot={out}",
            url + "example/latest/",
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        db.close()
    print(f"wrote {out}")
    return 0


def _serve_in_background(server: ContentServer) -> str:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def start() -> None:
        runner = web.AppRunner(server.build_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        server.base_url = url_of("127.0.0.1", runner.addresses[0][1])
        ready.set()

    threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True).start()
    ready.wait(30)
    return server.base_url


if __name__ == "__main__":
    sys.exit(main())
