"""Debian control-file stanzas (deb822): ``Field: value`` lines, continued by lines starting with a
space or tab, stanzas separated by blank lines. Read as a stream, one bounded stanza at a time.

A field's value is its first line without surrounding white space, then each continuation line
without its first character, joined by newlines: ``format_stanza`` writes it back the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from pendingops.pending import PendingInputError

#: a longer stanza is refused (the largest in Debian's archive are a few tens of KiB)
MAX_STANZA_BYTES = 1024 * 1024
_FIELD_NAME = re.compile(r"[!-9;-~]+")
#: control characters other than tab: no text a database or an index can hold verbatim
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class StanzaError(PendingInputError):
    """A stanza that is malformed or too large; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Stanza:
    """One stanza: its number in the file (from 1), its fields in order, and its text as read."""

    number: int
    fields: dict[str, str]
    #: the stanza's lines, each ending with a newline
    text: str


def read_stanzas(chunks: Iterable[bytes], *, max_bytes: int = MAX_STANZA_BYTES) -> Iterator[Stanza]:
    """The stanzas of the UTF-8 text arriving in ``chunks``, one at a time.

    Raises StanzaError for a stanza over ``max_bytes`` (before reading more of it than that), a
    line that is not ``Field: value``, a field given twice, invalid UTF-8 or a control character.
    """
    lines: list[bytes] = []
    size = 0
    number = 0
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            if line.strip():
                size += len(line) + 1
                if size > max_bytes:
                    raise StanzaError(f"stanza {number + 1} is larger than {max_bytes} bytes")
                lines.append(line)
            elif lines:
                number += 1
                yield _stanza(number, lines)
                lines, size = [], 0
        if size + len(rest) > max_bytes:
            raise StanzaError(f"stanza {number + 1} is larger than {max_bytes} bytes")
    if rest.strip():
        lines.append(rest)
    if lines:
        yield _stanza(number + 1, lines)


def _stanza(number: int, raw_lines: list[bytes]) -> Stanza:
    try:
        text = b"\n".join(raw_lines).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StanzaError(f"stanza {number}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if _CONTROL.search(line):
            raise StanzaError(f"stanza {number}: a control character in {_show(line)}")
        if line[0] in " \t":
            if current is None:
                raise StanzaError(f"stanza {number}: a continuation line before any field: {_show(line)}")
            current.append(line[1:])
            continue
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name) or name[0] in "#-":
            raise StanzaError(f"stanza {number}: not a 'Field: value' line: {_show(line)}")
        if name in fields:
            raise StanzaError(f"stanza {number}: field {name!r} given twice")
        current = fields[name] = [value.strip(" \t")]
    return Stanza(number, {name: "\n".join(parts) for name, parts in fields.items()}, "\n".join(lines) + "\n")


def format_stanza(fields: Mapping[str, str]) -> str:
    """The stanza text of ``fields`` (read back by ``read_stanzas`` as the same fields).

    Raises ValueError for what a stanza cannot hold: a bad field name, a first line with white
    space around it, a blank continuation line, a control character.
    """
    out = []
    for name, value in fields.items():
        if not _FIELD_NAME.fullmatch(name) or name[0] in "#-":
            raise ValueError(f"not a field name: {name!r}")
        first, *more = value.split("\n")
        if (
            first != first.strip(" \t")
            or any(not line.strip() for line in more)
            or _CONTROL.search(value.replace("\n", ""))
        ):
            raise ValueError(f"field {name!r}: a value a stanza cannot hold: {value[:80]!r}")
        out.append(f"{name}:{' ' + first if first else ''}\n")
        out.extend(f" {line}\n" for line in more)
    return "".join(out)


def _show(line: str, limit: int = 80) -> str:
    return repr(line) if len(line) <= limit else repr(line[:limit]) + "..."
