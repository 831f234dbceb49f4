"""Real Debian archives for tests: .deb files built by ``dpkg-deb``, Packages indexes, Release files
signed with a throwaway gpg key, laid out as ``dists/`` and ``pool/`` (a dict of path -> bytes that
``RemoteServer`` serves, or a folder)."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pendingops.plugins.deb.stanza import format_stanza


@dataclass(frozen=True)
class Deb:
    """A binary package built by dpkg-deb: its control fields and bytes."""

    name: str
    version: str
    architecture: str = "amd64"
    depends: str | None = None

    @property
    def data(self) -> bytes:
        return _build(self.name, self.version, self.architecture, self.depends)

    def filename(self, component: str = "main") -> str:
        return f"pool/{component}/{self.name[0]}/{self.name}/{self.name}_{self.version}_{self.architecture}.deb"

    def stanza(self, component: str = "main") -> str:
        data = self.data
        fields = {
            "Package": self.name,
            "Version": self.version,
            "Architecture": self.architecture,
            "Maintainer": "Test Maintainer <test@example.org>",
            "Installed-Size": "8",
        }
        if self.depends:
            fields["Depends"] = self.depends
        fields |= {
            "Section": "misc",
            "Priority": "optional",
            "Filename": self.filename(component),
            "Size": str(len(data)),
            "SHA256": hashlib.sha256(data).hexdigest(),
            "Description": f"the {self.name} test package\nIt prints nothing.\n.\nBuilt for pendingops' tests.",
        }
        return format_stanza(fields)


@cache
def _build(name: str, version: str, architecture: str, depends: str | None) -> bytes:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr/share/doc" / name).mkdir(parents=True)
        (root / "usr/share/doc" / name / "README").write_text(f"{name} {version}\n")
        control = (
            f"Package: {name}\nVersion: {version}\nArchitecture: {architecture}\n"
            f"Maintainer: Test Maintainer <test@example.org>\n"
            + (f"Depends: {depends}\n" if depends else "")
            + f"Description: the {name} test package\n It prints nothing.\n"
        )
        (root / "DEBIAN/control").write_text(control)
        out = Path(work) / "package.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
            check=True,
            capture_output=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
        )
        return out.read_bytes()


class Signer:
    """A throwaway gpg key in a GNUPGHOME of its own; ``close()`` stops its gpg-agent and removes it."""

    def __init__(self, uid: str = "Test Archive <archive@example.org>") -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gpg-"))  # short: the agent's socket path has a length limit
        self.home.chmod(0o700)
        self.env = {**os.environ, "GNUPGHOME": str(self.home)}
        self._gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        listed = self._gpg("--list-secret-keys", "--with-colons").stdout.decode()
        self.fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))

    def _gpg(self, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        command = ["gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", *args]
        return subprocess.run(command, input=data, capture_output=True, check=True, env=self.env)

    def clearsign(self, text: bytes) -> bytes:
        return self._gpg("--digest-algo", "SHA512", "--clearsign", data=text).stdout

    def detach_sign(self, text: bytes) -> bytes:
        return self._gpg("--digest-algo", "SHA512", "--armor", "--detach-sign", data=text).stdout

    def public_key(self, path: Path) -> Path:
        """The public key, binary, at ``path`` (what apt's ``signed-by=`` names)."""
        path.write_bytes(self._gpg("--export", self.fingerprint).stdout)
        return path

    def verify(self, signature: bytes, data: bytes | None = None) -> bool:
        """Whether ``signature`` (clearsigned, or detached over ``data``) is good for this key."""
        with tempfile.TemporaryDirectory() as work:
            keyring = self.public_key(Path(work) / "key.gpg")
            signed = Path(work) / "signed"
            signed.write_bytes(signature)
            args = ["gpgv", "--keyring", str(keyring), str(signed)]
            if data is not None:
                (Path(work) / "data").write_bytes(data)
                args.append(str(Path(work) / "data"))
            return subprocess.run(args, capture_output=True, check=False).returncode == 0

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, capture_output=True, check=False)
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class Archive:
    """Suites of an archive: suite -> component -> debs; ``files()`` lays it out as an archive does."""

    suites: dict[str, dict[str, list[Deb]]] = field(default_factory=dict)
    architectures: tuple[str, ...] = ("amd64",)
    #: index files written per component and architecture, and listed in the Release
    compressions: tuple[str, ...] = ("xz", "gz", "")
    by_hash: bool = True
    #: write binary-all indexes (arch all packages are in each architecture's index either way)
    binary_all: bool = False
    #: "inrelease": InRelease, Release and Release.gpg; "release": Release and Release.gpg; "none": Release only
    signed: str = "inrelease"
    signer: Signer | None = None
    #: index files (path below ``dists/<suite>/``) served and listed as these bytes instead of the built ones
    replaced: dict[str, bytes] = field(default_factory=dict)

    def add(self, suite: str, deb: Deb, component: str = "main") -> Archive:
        self.suites.setdefault(suite, {}).setdefault(component, []).append(deb)
        return self

    def files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for suite, components in self.suites.items():
            listed: dict[str, bytes] = {}
            for component, debs in components.items():
                for deb in debs:
                    files[deb.filename(component)] = deb.data
                for architecture in self.index_architectures():
                    chosen = [d for d in debs if d.architecture in (architecture, "all")]
                    if architecture == "all":
                        chosen = [d for d in debs if d.architecture == "all"]
                    text = "\n".join(d.stanza(component) for d in chosen).encode()
                    for suffix, data in self.compressed(text):
                        path = f"{component}/binary-{architecture}/Packages{suffix}"
                        listed[path] = self.replaced.get(path, data)
            for path, data in listed.items():
                files[f"dists/{suite}/{path}"] = data
                if self.by_hash:
                    folder = path.rpartition("/")[0]
                    files[f"dists/{suite}/{folder}/by-hash/SHA256/{hashlib.sha256(data).hexdigest()}"] = data
            files.update(self.release_files(suite, sorted(components), listed))
        return files

    def index_architectures(self) -> Iterator[str]:
        yield from self.architectures
        if self.binary_all:
            yield "all"

    def compressed(self, text: bytes) -> Iterator[tuple[str, bytes]]:
        for kind in self.compressions:
            if kind == "xz":
                yield ".xz", lzma.compress(text)
            elif kind == "gz":
                yield ".gz", gzip.compress(text, mtime=0)
            else:
                yield "", text

    def release_text(self, suite: str, components: list[str], listed: dict[str, bytes]) -> bytes:
        lines = "".join(f"\n{hashlib.sha256(d).hexdigest()} {len(d)} {p}" for p, d in sorted(listed.items()))
        fields = {
            "Origin": "Test",
            "Label": "Test",
            "Suite": suite,
            "Codename": suite,
            "Date": "Thu, 05 Dec 2026 00:00:00 UTC",
            "Architectures": " ".join(self.index_architectures()),
            "Components": " ".join(components),
        }
        if self.by_hash:
            fields["Acquire-By-Hash"] = "yes"
        fields["SHA256"] = lines
        return format_stanza(fields).encode()

    def release_files(self, suite: str, components: list[str], listed: dict[str, bytes]) -> dict[str, bytes]:
        release = self.release_text(suite, components, listed)
        files = {f"dists/{suite}/Release": release}
        if self.signed != "none":
            assert self.signer is not None
            files[f"dists/{suite}/Release.gpg"] = self.signer.detach_sign(release)
            if self.signed == "inrelease":
                files[f"dists/{suite}/InRelease"] = self.signer.clearsign(release)
        return files


def write_tree(files: dict[str, bytes], root: Path) -> Path:
    """Write ``files`` under ``root`` (an archive a file:// URL or a static server can serve)."""
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


#: the sample archive's packages: an amd64 one, an "all" one, one depending on the first
HELLO, WORLD, TOOL = Deb("hello", "1.0"), Deb("world", "2.0", "all"), Deb("tool", "0.1", depends="hello")


def stable(signer: Signer, *debs: Deb, **settings: Any) -> Archive:
    """The suite ``stable`` holding ``debs`` (HELLO, WORLD and TOOL by default), signed by ``signer``."""
    archive = Archive(signer=signer, **settings)
    for deb in debs or (HELLO, WORLD, TOOL):
        archive.add("stable", deb)
    return archive
