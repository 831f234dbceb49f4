"""A JSON object fed a chunk at a time, read one top-level value (or list entry) at a time.

PEP 691 pages are objects whose bulk is one list (``projects`` on the root page, ``files`` on a
project page). Memory holds the value being read and the text after it: one entry of a
top-level list, or one other top-level value, each at most ``MAX_ENTRY`` characters
(``ValueError`` beyond, and for anything that is not a JSON object). A value is decoded again only
once the text waiting for it has doubled, so a value cut into many small chunks costs time linear
in its length, and a chunk that cannot complete one is only set aside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

#: a top-level value, or an entry of a top-level list, longer than this is refused
MAX_ENTRY = 64 * 1024
_NUMBER_GOES_ON = frozenset(".eE+-0123456789")
_DECODER = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\r\n]+")


class JsonObjectStream:
    """``feed(text)`` yields ``(key, value, in_list)`` for each top-level value completed so far:
    a list's entries one by one (``in_list`` true), any other value whole.

    ``lists`` names the keys whose value was a list (an empty one yields nothing).
    """

    def __init__(self, what: str) -> None:
        #: what the document is, for messages ("the JSON root page")
        self._what = what
        self._text = ""
        self._at = 0
        #: chunks set aside until the value being read may be whole
        self._waiting: list[str] = []
        self._waiting_length = 0
        self._closed = False
        #: what comes next: "start", "key", "colon", "value", "item", "after_item", "after_value", "done"
        self._state = "start"
        self._key = ""
        self.lists: set[str] = set()
        #: characters the value being read must have before it is decoded again (each failed try
        #: doubles it, so a value cut into tiny chunks is not decoded again at every chunk)
        self._need = 0

    def feed(self, chunk: str) -> Iterator[tuple[str, Any, bool]]:
        self._waiting.append(chunk)
        self._waiting_length += len(chunk)
        if len(self._text) - self._at + self._waiting_length < self._need:
            return
        yield from self._read()

    def close(self) -> Iterator[tuple[str, Any, bool]]:
        self._closed = True
        yield from self._read()
        if self._state != "done":
            raise ValueError(f"{self._what} ends early")

    def _read(self) -> Iterator[tuple[str, Any, bool]]:
        self._text = self._text[self._at :] + "".join(self._waiting)
        self._at, self._waiting, self._waiting_length = 0, [], 0
        while (char := self._next_char()) != "":
            state = self._state
            if state == "start":
                self._expect(char, "{", f"{self._what} must be an object")
                self._state = "key"
            elif state == "key" and char == "}":
                self._at += 1
                self._state = "done"
            elif state == "key":
                found, key = self._value()
                if not found:
                    return
                if not isinstance(key, str):
                    raise ValueError("expected a key")
                self._key, self._state = key, "colon"
            elif state == "colon":
                self._expect(char, ":", "expected ':' after a key")
                self._state = "value"
            elif state == "value" and char == "[":
                self._at += 1
                self._state = "item"
                self.lists.add(self._key)
            elif state == "item" and char == "]":
                self._at += 1
                self._state = "after_value"
            elif state in ("value", "item"):
                found, value = self._value()
                if not found:
                    return
                self._state = "after_item" if state == "item" else "after_value"
                yield self._key, value, state == "item"
            elif state == "after_item":
                self._at += 1
                if char not in ",]":
                    raise ValueError(f"expected ',' or ']' after an entry of {self._key[:40]!r}")
                self._state = "item" if char == "," else "after_value"
            elif state == "after_value":
                self._at += 1
                if char not in ",}":
                    raise ValueError("expected ',' or '}' after a value")
                self._state = "key" if char == "," else "done"
            else:
                raise ValueError(f"extra data after {self._what}")

    def _next_char(self) -> str:
        """The next character that is not white space, or "" when the text read so far is used up."""
        match = _JSON_SPACE.match(self._text, self._at)
        self._at = match.end() if match else self._at
        return self._text[self._at : self._at + 1]

    def _expect(self, char: str, wanted: str, problem: str) -> None:
        if char != wanted:
            raise ValueError(problem)
        self._at += 1

    def _value(self) -> tuple[bool, Any]:
        """(True, the JSON value here) when it is whole, (False, None) while more text may complete it."""
        available = len(self._text) - self._at
        waiting = not self._closed and available <= MAX_ENTRY
        try:
            value, end = _DECODER.raw_decode(self._text, self._at)
        except json.JSONDecodeError as exc:
            if waiting:  # cut by the end of the text so far (or bad: known once it is too long)
                self._need = 2 * available
                return False, None
            too_long = available > MAX_ENTRY
            raise ValueError(f"a value longer than {MAX_ENTRY} characters" if too_long else exc.msg) from None
        except RecursionError:
            raise ValueError("a value nested too deeply") from None
        if waiting and isinstance(value, int | float) and self._text[end : end + 1] in ("", *_NUMBER_GOES_ON):
            self._need = available + 1  # a number ("1", "1.", "1e") may go on in the next chunk
            return False, None
        if end - self._at > MAX_ENTRY:
            raise ValueError(f"a value longer than {MAX_ENTRY} characters")
        self._at, self._need = end, 0
        return True, value
