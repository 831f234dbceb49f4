"""HTTP Basic authentication against an htpasswd file: real bcrypt entries, the same work for unknown
users, a short memory of successes, the file read again when it changes."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import bcrypt
import pytest

from pendingops.serve import auth as auth_module
from pendingops.serve.auth import AuthUnavailable, BasicAuth, HtpasswdError, read_htpasswd
from tests.serve.served import HTPASSWD, basic, htpasswd_entry


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes bcrypt checked a password against, in order (bcrypt itself does the work)."""
    seen: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        seen.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(auth_module.bcrypt, "checkpw", counting)
    return seen


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_right_password_lets_in_a_wrong_one_or_an_unknown_user_does_not(tmp_path: Path, checks) -> None:
    file = write(tmp_path / "htpasswd", "# users", "", htpasswd_entry("alice", "s3cret"), htpasswd_entry("bob", "pw"))

    async def scenario() -> None:
        auth = BasicAuth(file)
        assert await auth.user(basic("alice", "s3cret")) == "alice"
        assert await auth.user(basic("bob", "pw")) == "bob"
        assert await auth.user(basic("alice", "pw")) is None
        assert await auth.user(basic("bob", "s3cret")) is None
        auth.close()

    asyncio.run(scenario())
    assert len(checks) == 4


def test_an_unknown_user_costs_the_same_bcrypt_work_as_a_known_one(tmp_path: Path, checks) -> None:
    """Answer times do not tell which users exist: an unknown name is checked against a hash of the cost the
    file's entries have."""
    file = write(tmp_path / "htpasswd", htpasswd_entry("alice", "s3cret", cost=6), htpasswd_entry("bob", "x", cost=6))

    async def scenario() -> None:
        auth = BasicAuth(file)
        assert await auth.user(basic("mallory", "s3cret")) is None
        assert await auth.user(basic("alice", "wrong")) is None
        auth.close()

    asyncio.run(scenario())
    unknown, known = checks
    assert unknown.startswith(b"$2b$06$") and known.startswith(b"$2y$06$") and unknown != known


def test_a_success_is_remembered_and_concurrent_checks_share_one_bcrypt_run(tmp_path: Path, checks) -> None:
    file = write(tmp_path / "htpasswd", htpasswd_entry("alice", "s3cret"))

    async def scenario() -> None:
        auth = BasicAuth(file)
        found = await asyncio.gather(*(auth.user(basic("alice", "s3cret")) for _ in range(5)))
        assert found == ["alice"] * 5 and len(checks) == 1
        assert await auth.user(basic("alice", "s3cret")) == "alice"
        assert len(checks) == 1  # remembered
        assert await auth.user(basic("alice", "wrong")) is None
        assert await auth.user(basic("alice", "wrong")) is None
        assert len(checks) == 3  # failures are never remembered
        forgetful = BasicAuth(file, remember_for=0)
        assert await forgetful.user(basic("alice", "s3cret")) == "alice"
        assert await forgetful.user(basic("alice", "s3cret")) == "alice"
        assert len(checks) == 5
        auth.close()
        forgetful.close()

    asyncio.run(scenario())


def test_the_file_is_read_again_when_it_changes_and_a_broken_one_lets_nobody_in(tmp_path: Path) -> None:
    file = write(tmp_path / "htpasswd", htpasswd_entry("alice", "old"))

    async def scenario() -> None:
        auth = BasicAuth(file, recheck_every=0)
        assert await auth.user(basic("alice", "old")) == "alice"
        replacement = write(tmp_path / "new", htpasswd_entry("alice", "new"))
        os.replace(replacement, file)  # as editors and htpasswd write it: a new inode
        assert await auth.user(basic("alice", "old")) is None  # the remembered success went with the old file
        assert await auth.user(basic("alice", "new")) == "alice"
        write(file, htpasswd_entry("alice", "new"), "carol:plain-text-password")
        with pytest.raises(AuthUnavailable, match="line 2: not a bcrypt hash"):
            await auth.user(basic("alice", "new"))
        write(file, htpasswd_entry("carol", "c"))
        assert await auth.user(basic("carol", "c")) == "carol"
        assert await auth.user(basic("alice", "new")) is None
        file.unlink()
        with pytest.raises(AuthUnavailable, match="cannot read the htpasswd file"):
            await auth.user(basic("carol", "c"))
        auth.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic !!!not base64", "Basic " + "YWxpY2U=", "Basic " + "OnMzY3JldA=="],
    ids=["none", "empty", "bearer", "no value", "bad base64", "no colon", "no user"],
)
def test_malformed_credentials_let_nobody_in(tmp_path: Path, header: str | None, checks) -> None:
    file = write(tmp_path / "htpasswd", htpasswd_entry("alice", "s3cret"))

    async def scenario() -> None:
        auth = BasicAuth(file)
        assert await auth.user(header) is None
        auth.close()

    asyncio.run(scenario())
    assert checks == []


NOT_BCRYPT = "not a bcrypt hash (make entries with 'htpasswd -B')"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="], f"line 1: {NOT_BCRYPT}"),
        (["# comment", "alice:$apr1$abc$defghijklmnopqrstuvwx."], f"line 2: {NOT_BCRYPT}"),
        (["alice"], "line 1: not 'user:hash'"),
        ([":$2y$05$" + "a" * 53], "line 1: not 'user:hash'"),
        (["alice:$2y$05$" + "a" * 53, "alice:$2y$05$" + "b" * 53], "line 2: user 'alice' is listed twice"),
    ],
    ids=["sha1", "md5", "no hash", "no user", "twice"],
)
def test_a_bad_file_is_one_line_naming_its_line(tmp_path: Path, lines: list[str], problem: str) -> None:
    file = write(tmp_path / "htpasswd", *lines)
    with pytest.raises(HtpasswdError) as raised:
        BasicAuth(file)
    assert str(raised.value) == f"htpasswd file {file} {problem}"  # one line, no hash shown
    with pytest.raises(HtpasswdError, match="cannot read the htpasswd file"):
        read_htpasswd(tmp_path / "missing")


def test_entries_the_real_htpasswd_writes_with_a_password_longer_than_bcrypt_reads(tmp_path: Path) -> None:
    """htpasswd -B cuts a password after 72 bytes, as bcrypt does: the same password is let in."""
    if HTPASSWD is None:
        if os.environ.get("PENDINGOPS_REQUIRE_HTPASSWD"):
            pytest.fail("htpasswd (apache2-utils) is required (PENDINGOPS_REQUIRE_HTPASSWD is set)")
        pytest.skip("htpasswd (apache2-utils) is not installed")
    long = "p" * 80
    file = tmp_path / "htpasswd"
    subprocess.run([HTPASSWD, "-c", "-b", "-B", str(file), "alice", long], check=True, capture_output=True)
    subprocess.run([HTPASSWD, "-b", "-B", "-C", "7", str(file), "bob", "ünïcode"], check=True, capture_output=True)
    assert file.read_text().startswith("alice:$2y$05$")

    async def scenario() -> None:
        auth = BasicAuth(file)
        assert await auth.user(basic("alice", long)) == "alice"
        assert await auth.user(basic("bob", "ünïcode")) == "bob"
        assert await auth.user(basic("bob", "unicode")) is None
        auth.close()

    asyncio.run(scenario())
