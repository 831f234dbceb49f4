"""Release files: the signed text of an InRelease, the index list, which index is used."""

from __future__ import annotations

import pytest

from pendingops.plugins.deb.release import ReleaseError, parse_release, signed_text
from tests.plugins.deb.archive import Archive, Deb, Signer

DIGEST = "ab" * 32
RELEASE = (
    "Origin: Test\nSuite: stable\nCodename: bookworm\nAcquire-By-Hash: yes\n"
    "Description: - a line that looks like a dash escape\n"
    f"SHA256:\n {DIGEST} 120 main/binary-amd64/Packages\n {'cd' * 32} 80 main/binary-amd64/Packages.gz\n"
    f" {'ef' * 32}  60 main/binary-all/Packages\n"
).encode()


def test_the_text_a_real_clearsigned_inrelease_signs_is_the_release() -> None:
    signer = Signer()
    try:
        inrelease = signer.clearsign(RELEASE)
        dashed = signer.clearsign(b"-----a line starting with dashes\n")
    finally:
        signer.close()
    assert signed_text(inrelease, "InRelease") == RELEASE
    assert b"\n- -----a line" in dashed  # gpg dash-escapes it
    assert signed_text(dashed, "InRelease") == b"-----a line starting with dashes\n"


def test_fields_index_list_and_preferred_index() -> None:
    release = parse_release(RELEASE, "Release")
    assert (release.suite, release.codename, release.origin, release.by_hash) == ("stable", "bookworm", "Test", True)
    chosen = release.packages_index("main", "amd64")
    assert chosen is not None and (chosen.path, chosen.size, chosen.compression) == (
        "main/binary-amd64/Packages.gz",
        80,
        "gzip",
    )
    assert release.packages_index("main", "all") is not None
    assert release.packages_index("contrib", "amd64") is None
    files = Archive(signer=None, signed="none").add("s", Deb("hello", "1.0")).files()
    built = parse_release(files["dists/s/Release"], "Release")
    assert built.packages_index("main", "amd64").path == "main/binary-amd64/Packages.xz"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"Origin: Test\n", "no SHA256 field"),
        (b"SHA256:\n nothex 12 main/binary-amd64/Packages\n", "is not 'sha256 size path'"),
        (f"SHA256:\n {DIGEST} -1 p\n".encode(), "is not 'sha256 size path'"),
        (f"SHA256:\n {DIGEST} 99999999999999999999 p\n".encode(), "absurd size"),
        (b"Origin: a\n\nOrigin: b\nSHA256:\n", "expected one stanza, found 2"),
        (b"Origin a\n", "not a 'Field: value' line"),
    ],
)
def test_a_bad_release_is_one_line_naming_it(text: bytes, problem: str) -> None:
    with pytest.raises(ReleaseError, match=problem) as caught:
        parse_release(text, "http://archive/dists/s/Release")
    assert str(caught.value).startswith("http://archive/dists/s/Release: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"Origin: Test\n", "not a clearsigned message"),
        (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Test\n", "has no signature"),
    ],
)
def test_an_inrelease_that_is_not_clearsigned_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(ReleaseError, match=problem):
        signed_text(data, "InRelease")
