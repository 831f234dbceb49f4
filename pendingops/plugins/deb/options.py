"""The deb plugin's options (``sync --option KEY=VALUE``), checked before anything is fetched.

Suite, component and architecture names become parts of URLs and stored paths, so each is held
to the characters archives use: no empty, ``.`` or ``..`` segment, no backslash, no control
character, nothing that could climb out of ``dists/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pendingops.pending import PendingInputError

OPTIONS = {
    "suites": "comma-separated suites to sync, as named under dists/ (required), e.g. bookworm,bookworm-updates",
    "components": "comma-separated components (default: main)",
    "architectures": "comma-separated architectures (default: amd64,all)",
    "packages": "comma-separated package names to sync (default: every package the indexes list)",
    "signing_key": "the gpg key (id or fingerprint, in the GNUPGHOME keyring) signing our own indexes",
}
#: a suite or a component: segments of letters, digits and ``._+~-``, each starting with a letter or digit
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,99}(?:/[A-Za-z0-9][A-Za-z0-9._+~-]{0,99}){0,3}")
_ARCHITECTURE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
#: a binary package's name (Debian policy 5.6.1; one character is tolerated)
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{0,199}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+<> -]{0,199}")


class DebOptionError(PendingInputError):
    """An option value the deb plugin cannot use; the message names the option."""


@dataclass(frozen=True, slots=True)
class DebOptions:
    suites: tuple[str, ...]
    components: tuple[str, ...] = ("main",)
    architectures: tuple[str, ...] = ("amd64", "all")
    #: empty: every package
    packages: frozenset[str] = frozenset()
    signing_key: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> DebOptions:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise DebOptionError(f"unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
        suites = _names(options, "suites", None, _NAME)
        if not suites:
            raise DebOptionError("suites= is required (the suites under dists/ to sync, e.g. suites=bookworm)")
        components = _names(options, "components", "main", _NAME)
        architectures = _names(options, "architectures", "amd64,all", _ARCHITECTURE)
        if not components or not architectures:
            raise DebOptionError("components= and architectures= need at least one name each")
        packages = frozenset(_names(options, "packages", "", PACKAGE_NAME))
        key = options.get("signing_key", "").strip() or None
        if key is not None and not _KEY.fullmatch(key):
            raise DebOptionError(f"signing_key: not a gpg key id or user id: {key[:80]!r}")
        return cls(suites, components, architectures, packages, key)

    @property
    def selection(self) -> str:
        """What chose the packages read from a suite, in one canonical line (part of a suite unit's key)."""
        return ";".join(
            (
                f"components={','.join(sorted(self.components))}",
                f"architectures={','.join(sorted(self.architectures))}",
                f"packages={','.join(sorted(self.packages))}",
                f"signing_key={self.signing_key or ''}",
            )
        )


def _names(options: Mapping[str, str], key: str, default: str | None, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """The comma-separated names of option ``key`` (its ``default`` when absent), each checked, repeats dropped."""
    listed = [name.strip() for name in options.get(key, default or "").split(",") if name.strip()]
    for name in listed:
        if not pattern.fullmatch(name):
            raise DebOptionError(f"{key}: not a valid name: {name[:80]!r}")
    return tuple(dict.fromkeys(listed))
