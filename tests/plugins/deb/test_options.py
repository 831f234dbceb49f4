"""The deb plugin's options: names that cannot climb out of dists/, one line for each mistake."""

from __future__ import annotations

import pytest

from pendingops.plugins.deb.options import DebOptionError, DebOptions


def test_defaults_and_selection() -> None:
    options = DebOptions.parse({"suites": "bookworm, bookworm-updates,bookworm"})
    assert options.suites == ("bookworm", "bookworm-updates")
    assert (options.components, options.architectures, options.packages) == (("main",), ("amd64", "all"), frozenset())
    assert options.selection == "components=main;architectures=all,amd64;packages=;signing_key="
    other_order = DebOptions.parse({"suites": "x", "architectures": "all,amd64", "packages": "b,a"})
    assert other_order.selection == "components=main;architectures=all,amd64;packages=a,b;signing_key="
    assert DebOptions.parse({"suites": "stable/updates", "components": "non-free-firmware"}).suites == (
        "stable/updates",
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "suites= is required"),
        ({"suites": " , "}, "suites= is required"),
        ({"suites": "../../etc"}, "suites: not a valid name: '../../etc'"),
        ({"suites": "a/../b"}, "suites: not a valid name"),
        ({"suites": "/abs"}, "suites: not a valid name"),
        ({"suites": "a//b"}, "suites: not a valid name"),
        ({"suites": "a\\b"}, "suites: not a valid name"),
        ({"suites": "s", "components": ".."}, "components: not a valid name"),
        ({"suites": "s", "components": "main%2f.."}, "components: not a valid name"),
        ({"suites": "s", "architectures": "AMD64"}, "architectures: not a valid name"),
        ({"suites": "s", "architectures": "amd64/../x"}, "architectures: not a valid name"),
        ({"suites": "s", "packages": "Hello"}, "packages: not a valid name"),
        ({"suites": "s", "signing_key": "--homedir=/tmp"}, "signing_key: not a gpg key id"),
        ({"suites": "s", "mirror": "yes"}, "unknown option 'mirror'"),
    ],
)
def test_bad_options_are_one_line(options: dict[str, str], problem: str) -> None:
    with pytest.raises(DebOptionError, match=problem.replace("(", r"\(")) as caught:
        DebOptions.parse(options)
    assert "\n" not in str(caught.value)
