"""Remote URLs: base URLs normalised, bad ones refused in one line, joined as folders."""

from __future__ import annotations

import pytest

from pendingops import RemoteConfig
from pendingops.remote import normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:18778", "http://127.0.0.1:18778/"),
        ("HTTPS://example.org", "https://example.org/"),
        ("http://example.org/repo", "http://example.org/repo"),
        ("http://example.org/repo/PULP_MANIFEST", "http://example.org/repo/PULP_MANIFEST"),
        ("file:///srv/repo/PULP_MANIFEST", "file:///srv/repo/PULP_MANIFEST"),
    ],
)
def test_base_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_url(given) == expected
    assert RemoteConfig(url=given).url == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:99999/", "the port is not a number"),
        ("http://host:port/", "the port is not a number"),
        ("http:///path", "no host"),
        ("http://[::1/", "invalid URL"),
    ],
)
def test_a_bad_http_url_is_refused_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        RemoteConfig(url=url)
    assert "\n" not in str(info.value)


def test_credentials_are_kept_apart_and_never_shown() -> None:
    remote = RemoteConfig(url="http://user:s%40cret@127.0.0.1:8080")
    assert (remote.url, remote.username, remote.password) == ("http://127.0.0.1:8080/", "user", "s@cret")
    with pytest.raises(ValueError) as info:
        RemoteConfig(url="http://user:secret@127.0.0.1:99999")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://h/debian", "http://h/debian/"]
)
def test_join_treats_the_remote_url_as_a_folder(base: str) -> None:
    joined = RemoteConfig(url=base).join("Packages")
    assert joined == base.rstrip("/") + "/Packages"
