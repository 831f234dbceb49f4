"""Packages indexes: decompressed as a stream with a cap (bombs stop there), each stanza checked."""

from __future__ import annotations

import gzip
import lzma

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.plugins.deb.packages import PackagesIndexError, package_fields, unpacked
from pendingops.plugins.deb.stanza import read_stanzas
from tests.plugins.deb.archive import Deb

TEXT = b"".join(Deb(f"pkg{i}", "1.0").stanza().encode() + b"\n" for i in range(3))
COMPRESS = {"xz": lzma.compress, "gzip": lambda data: gzip.compress(data, mtime=0), "none": lambda data: data}


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@given(kind=st.sampled_from(sorted(COMPRESS)), size=st.integers(1, 4096), streams=st.integers(1, 3))
def test_every_kind_decompresses_to_the_text_however_it_is_cut(kind: str, size: int, streams: int) -> None:
    packed = COMPRESS[kind](TEXT) * streams  # xz and gzip allow concatenated streams
    assert b"".join(unpacked(pieces(packed, size), kind, 10**6, "Packages")) == TEXT * streams


@pytest.mark.parametrize("kind", ["xz", "gzip"])
def test_a_bomb_stops_at_the_cap_with_one_line(kind: str) -> None:
    stream = COMPRESS[kind](b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\n" * 200_000)  # 8.8 MB of stanzas
    bomb = stream * 100  # 880 MB once decompressed
    assert len(bomb) < 5_000_000
    produced = 0
    with pytest.raises(PackagesIndexError, match=r"^Packages.xz: larger than 1000000 bytes once decompressed$"):
        for piece in unpacked(pieces(bomb, 65536), kind, 1_000_000, "Packages.xz"):
            produced += len(piece)
            assert len(piece) <= 256 * 1024  # one step of output at a time, never the whole
    assert produced <= 1_000_000


@pytest.mark.parametrize("kind", ["xz", "gzip"])
def test_cut_or_foreign_data_is_one_line(kind: str) -> None:
    packed = COMPRESS[kind](TEXT)
    with pytest.raises(PackagesIndexError, match=r"not valid .* data"):
        list(unpacked([packed[: len(packed) // 2]], kind, 10**6, "Packages"))
    with pytest.raises(PackagesIndexError, match=r"not valid .* data"):
        list(unpacked([TEXT], kind, 10**6, "Packages"))


def test_plain_text_is_capped_too() -> None:
    with pytest.raises(PackagesIndexError, match="larger than 100 bytes"):
        list(unpacked([TEXT], "none", 100, "Packages"))


def fields_of(stanza_text: str) -> dict[str, object]:
    [stanza] = read_stanzas([stanza_text.encode()])
    return package_fields(stanza, "Packages")


def test_the_fields_a_unit_keeps() -> None:
    deb = Deb("hello", "2:1.0-1~bpo1", depends="libc6 (>= 2.36)")
    fields = fields_of(deb.stanza())
    assert fields == {
        "package": "hello",
        "version": "2:1.0-1~bpo1",
        "architecture": "amd64",
        "sha256": fields["sha256"],
        "filename": deb.filename(),
        "size": len(deb.data),
        "section": "misc",
        "priority": "optional",
        "depends": "libc6 (>= 2.36)",
        "description": "the hello test package",
        "installed_size": 8,
        "stanza": deb.stanza(),
    }


GOOD = Deb("hello", "1.0").stanza()


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("Filename: pool/", "Filename: ../../../etc/", "relative path has a '..' segment"),
        ("Filename: pool/", "Filename: /etc/", "relative path must not be absolute"),
        ("Filename: pool/main", "Filename: pool/../../x", "relative path has a '..' segment"),
        ("Filename: pool/", "Filename: dists/", "Filename must lie under pool/"),
        ("Filename: pool/", "Filename: pool//", "relative path has an empty segment"),
        ("Filename: pool/", "Filename: pool\\", "must not contain a backslash"),
        ("Package: hello", "Package: ../x", "Package is not a package name"),
        ("Version: 1.0", "Version: 1.0/../x", "Version is not a version"),
        ("Architecture: amd64", "Architecture: ../amd64", "Architecture is not an architecture name"),
        ("\nSize: ", "\nSize: -", "Size is not a number of bytes"),
        ("SHA256: ", "SHA256: z", "SHA256 is not 64 hex digits"),
        ("Filename: ", "X-Filename: ", "no Filename field"),
    ],
)
def test_unusable_stanzas_are_refused_naming_the_stanza(old: str, new: str, problem: str) -> None:
    assert old in GOOD
    with pytest.raises(PackagesIndexError, match=problem.replace("(", r"\(")) as caught:
        fields_of(GOOD.replace(old, new, 1))
    assert str(caught.value).startswith("Packages: stanza 1 (")
    assert "\n" not in str(caught.value)
