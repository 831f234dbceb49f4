"""Credentials from netrc or the environment, on the host that runs the fetch, go only to the remote's
own origin: a second server in a redirect, even one netrc names, gets none (issue 25, item 3)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from pendingops import PendingArtifact, RemoteConfig
from pendingops.credentials import CredentialsError, credentials_for
from pendingops.download.fetcher import Fetcher
from tests.download.test_origins import DATA, SHA256, RecordingServer

NETRC_USER, NETRC_PASSWORD = "carol", "n3trcPW"
ENV_USER, ENV_PASSWORD = "dave", "envPW"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def netrc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A netrc naming 127.0.0.1 (both test servers' host), pointed at by $NETRC; no credentials in the env."""
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {NETRC_USER} password {NETRC_PASSWORD}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    monkeypatch.delenv("PENDINGOPS_REMOTE_USERNAME", raising=False)
    monkeypatch.delenv("PENDINGOPS_REMOTE_PASSWORD", raising=False)
    return path


def _fetch(own: RecordingServer, other: RecordingServer, where: str, storage, **remote: object) -> None:
    async def run() -> None:
        async with own, other:
            own.redirect_to = other.base_url + "f"
            url = {"own": own.base_url + "f", "away": own.base_url + "away"}[where]
            settings = RemoteConfig(
                url=remote.pop("url", own.base_url + "PULP_MANIFEST"),  # type: ignore[arg-type]
                retries=0,
                allow_private_destinations=True,  # the other origin is a second loopback server
                **remote,  # type: ignore[arg-type]
            )
            async with Fetcher(settings, storage) as fetcher:
                await fetcher.fetch(PendingArtifact(url=url, relative_path="f", size=len(DATA), sha256=SHA256))

    asyncio.run(run())


def test_netrc_credentials_reach_the_remotes_own_origin(netrc_file: Path, storage) -> None:
    own, other = RecordingServer(), RecordingServer()
    _fetch(own, other, "own", storage)
    assert [seen.get("Authorization") for seen in own.seen] == [basic(NETRC_USER, NETRC_PASSWORD)]


def test_netrc_credentials_never_follow_a_redirect_to_another_origin_of_the_same_host(
    netrc_file: Path, storage
) -> None:
    own, other = RecordingServer(), RecordingServer()
    _fetch(own, other, "away", storage)
    assert [seen.get("Authorization") for seen in own.seen] == [basic(NETRC_USER, NETRC_PASSWORD)]
    assert len(other.seen) == 1 and other.secrets_seen() == set()  # netrc names its host too: still none


def test_the_environment_wins_over_netrc_and_stays_on_the_origin(
    netrc_file: Path, storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENDINGOPS_REMOTE_USERNAME", ENV_USER)
    monkeypatch.setenv("PENDINGOPS_REMOTE_PASSWORD", ENV_PASSWORD)
    own, other = RecordingServer(), RecordingServer()
    _fetch(own, other, "away", storage)
    assert [seen.get("Authorization") for seen in own.seen] == [basic(ENV_USER, ENV_PASSWORD)]
    assert other.secrets_seen() == set()


def test_credentials_given_in_the_url_by_hand_win(netrc_file: Path, storage) -> None:
    own, other = RecordingServer(), RecordingServer()

    async def run() -> None:
        async with own, other:
            url = own.base_url.replace("http://", "http://erin:urlPW@") + "PULP_MANIFEST"
            settings = RemoteConfig(url=url, retries=0)
            assert "urlPW" not in settings.url
            async with Fetcher(settings, storage) as fetcher:
                unit = PendingArtifact(url=own.base_url + "f", relative_path="f", size=len(DATA), sha256=SHA256)
                await fetcher.fetch(unit)

    asyncio.run(run())
    assert [seen.get("Authorization") for seen in own.seen] == [basic("erin", "urlPW")]


def test_no_netrc_no_environment_no_credentials(tmp_path: Path, storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    monkeypatch.delenv("PENDINGOPS_REMOTE_USERNAME", raising=False)
    own, other = RecordingServer(), RecordingServer()
    _fetch(own, other, "own", storage)
    assert own.secrets_seen() == set()


def test_a_netrc_for_another_host_gives_nothing_and_a_broken_one_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PENDINGOPS_REMOTE_USERNAME", raising=False)
    path = tmp_path / "netrc"
    path.write_text("machine example.org login x password y\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    assert credentials_for("https://example.org/repo/") == ("x", "y")
    assert credentials_for("https://example.com/repo/") is None
    path.write_text("machine example.org login x password y\nbogus\n")
    with pytest.raises(CredentialsError) as caught:
        credentials_for("https://example.org/repo/")
    assert str(caught.value).startswith(f"cannot read the netrc file {path}") and "\n" not in str(caught.value)
