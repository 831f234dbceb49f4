"""Signing our own Release files with the ``gpg`` binary: ``InRelease`` clearsigned, ``Release.gpg``
an armored detached signature, with the key named by ``signing_key`` from the keyring of
``GNUPGHOME`` (gpg's default home when it is not set) of the process that serves or exports."""

from __future__ import annotations

import os
import subprocess

from pendingops.pending import PendingInputError

GPG = "gpg"
_TIMEOUT = 120


class SigningError(PendingInputError):
    """gpg is missing, the key is not in the keyring, or gpg could not sign; the message says which."""


def check_key(key: str) -> None:
    """Raise SigningError unless the keyring holds a secret key for ``key``."""
    done = _gpg(["--list-secret-keys", "--with-colons", "--", key], b"")
    if done.returncode != 0 or not any(line.startswith(b"sec:") for line in done.stdout.splitlines()):
        raise SigningError(f"signing_key {key!r}: no secret key for it in the gpg keyring ({_home()})")


def sign(release: bytes, key: str) -> tuple[bytes, bytes]:
    """(InRelease, Release.gpg) of the Release text ``release``, signed with ``key``."""
    common = ["--digest-algo", "SHA512", "--local-user", key]
    return _signed([*common, "--clearsign"], release, key), _signed([*common, "--armor", "--detach-sign"], release, key)


def _signed(arguments: list[str], data: bytes, key: str) -> bytes:
    done = _gpg(arguments, data)
    if done.returncode != 0 or not done.stdout:
        reason = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise SigningError(f"gpg could not sign with signing_key {key!r} ({_home()}): {reason[:200]}")
    return done.stdout


def _gpg(arguments: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    command = [GPG, "--batch", "--no-tty", "--yes", *arguments]
    try:
        return subprocess.run(command, input=data, capture_output=True, timeout=_TIMEOUT, check=False)
    except FileNotFoundError:
        raise SigningError("signing_key is set but the gpg program is not installed") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"gpg did not answer within {_TIMEOUT} s (is the key protected by a passphrase?)") from None


def _home() -> str:
    home = os.environ.get("GNUPGHOME")
    return f"GNUPGHOME={home}" if home else "GNUPGHOME not set: ~/.gnupg"
