"""The real apt-get and apt-cache, with a state of their own: nothing of the machine's apt is read or written.

The host's apt configuration (``/etc/apt/apt.conf.d``: proxies, compression choices) is left out
through ``APT_CONFIG``; lists, caches, sources and keyrings live under the client's folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class AptClient:
    """apt reading one ``deb`` line; every command's output is echoed, so a test log shows the session."""

    def __init__(self, root: Path, source: str) -> None:
        self.root = root
        for folder in (
            "lists/partial",
            "cache/archives/partial",
            "etc/sources.list.d",
            "etc/trusted.gpg.d",
            "etc/apt.conf.d",
            "etc/preferences.d",
            "state",
            "downloads",
        ):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "etc/sources.list").write_text(source + "\n")
        (root / "apt.conf").write_text(f'Dir::Etc::Parts "{root}/etc/apt.conf.d";\n')
        self.options = [
            f"-oDir::State={root}/state",
            f"-oDir::State::Lists={root}/lists",
            f"-oDir::State::status={root}/state/status",
            f"-oDir::Cache={root}/cache",
            f"-oDir::Etc::SourceList={root}/etc/sources.list",
            f"-oDir::Etc::SourceParts={root}/etc/sources.list.d",
            f"-oDir::Etc::Trusted={root}/etc/trusted.gpg",
            f"-oDir::Etc::TrustedParts={root}/etc/trusted.gpg.d",
            f"-oDir::Etc::Preferences={root}/etc/preferences",
            f"-oDir::Etc::PreferencesParts={root}/etc/preferences.d",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
            "-oAPT::Architecture=amd64",
            "-oAPT::Architectures::=amd64",
            "-oAcquire::Languages=none",
            "-oAcquire::Retries=0",
        ]
        (root / "state/status").write_text("")

    def run(self, program: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "APT_CONFIG": str(self.root / "apt.conf"), "LC_ALL": "C"}
        env.pop("http_proxy", None)
        env.pop("https_proxy", None)
        command = [program, *self.options, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
        shown = " ".join([program, *args])
        sys.stdout.write("\n".join([f"$ {shown}", done.stdout.rstrip(), done.stderr.rstrip(), ""]))
        return done

    def update(self) -> subprocess.CompletedProcess[str]:
        """``apt-get update``; any warning or error (a bad signature, a missing index) makes it fail."""
        return self.run("apt-get", "-q", "--error-on=any", "update")

    def download(self, *packages: str) -> subprocess.CompletedProcess[str]:
        """``apt-get download``: the files land in ``downloads/``."""
        return self.run("apt-get", "-q", "download", *packages, cwd=self.root / "downloads")

    def offered(self) -> set[str]:
        """The package names the lists offer."""
        done = self.run("apt-cache", "pkgnames")
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    def downloaded(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.root / "downloads").iterdir()}
