"""The ``<a>`` elements of an HTML page fed a chunk at a time, in time linear in the page.

A simple index page is a list of anchors, so this reads only what an anchor needs: start and end
tags with their attributes, the text between ``<a>`` and ``</a>``, and where comments, CDATA
sections, declarations, processing instructions and ``script``/``style`` text end (skipped, as
HTML says). A construct a chunk leaves open is resumed where the scan stopped, never scanned
again from its start, so each character is looked at a bounded number of times (a tag is first
tried whole, then read piece by piece when the chunk does not hold it all) and a chunk costs time
linear in its size, plus once per tag the parse of its attributes. Nothing grows with the page: a
tag longer than ``MAX_TAG`` characters is dropped (skipped to its end unread), an anchor keeps
``MAX_TEXT`` characters of text, and what is skipped is never kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

#: longer anchor texts are cut (a project or file name is short; a hostile page must not grow one)
MAX_TEXT = 1024
#: a tag (name and attributes) longer than this is dropped unread
MAX_TAG = 64 * 1024
#: raw text kept for an anchor: enough for MAX_TEXT characters written as character references
_MAX_RAW_TEXT = 8 * MAX_TEXT
#: elements whose content is text up to their end tag, never markup
_RAW_TEXT_ELEMENTS = ("script", "style")
_LONGEST_OPENING = len("<![CDATA[")
#: a "<" that opens a tag, an end tag, a comment, a declaration or an instruction, or that the text ends in
_OPENING = re.compile(r"<(?:[A-Za-z/!?]|\Z)")
_SPACES = re.compile(r"[ \t\n\r\f]*+")
_UNQUOTED_END = re.compile(r"[ \t\n\r\f>]")
#: complete attributes (names, ``=value`` pairs) and stray quotes; stops at ``>``, at the end of
#: the text, or at an ``=`` whose value the text does not hold whole yet
_RUN = r"""(?:[^>="']++|["']|=[ \t\n\r\f]*+(?:"[^"]*+"|'[^']*+'|[^ \t\n\r\f>"'][^ \t\n\r\f>]*+(?=[ \t\n\r\f>])))*+"""
_TAG_RUN = re.compile(_RUN)
#: a whole tag, from its name to its ">"
_WHOLE_TAG = re.compile(_RUN + ">")
_TAG_NAME = re.compile(r"[^ \t\n\r\f/>]*+")
_ATTRIBUTE = re.compile(
    r"""([^ \t\n\r\f/>][^ \t\n\r\f/>=]*+)(?:[ \t\n\r\f]*+=[ \t\n\r\f]*+("[^"]*+"|'[^']*+'|[^ \t\n\r\f>]*+))?"""
)

Attributes = dict[str, str | None]


class AnchorReader:
    """``feed(text)`` yields the ``(attributes, text)`` of each ``<a>`` element completed so far.

    Attribute names are lower case; a value is ``None`` for an attribute without one; the first
    of two same-named attributes counts. Character references are decoded in values and text.
    An element left open at the end of the page is dropped.
    """

    def __init__(self) -> None:
        #: a few characters (at most ``_LONGEST_OPENING``) a construct's opening or end was cut in
        self._carry = ""
        self._state = self._in_text
        #: what ends the comment-like construct being skipped ("-->", "]]>", ">")
        self._until = ""
        #: the end tag that ends the script or style text being skipped
        self._raw_end: re.Pattern[str] | None = None
        # the tag being read: its pieces so far (None once it is too long: it is dropped), whether
        # it is an end tag, and where its scan stands
        self._tag: list[str] | None = None
        self._tag_length = 0
        self._end_tag = False
        #: "" (between attributes), "=" (before a value), "'" or '"' (in a quoted value), "v" (in an unquoted one)
        self._tag_scan = ""
        # the anchor open, if any: its attributes and raw text
        self._anchor: Attributes | None = None
        self._text: list[str] = []
        self._text_length = 0
        self._found: list[tuple[Attributes, str]] = []

    def feed(self, chunk: str) -> Iterator[tuple[Attributes, str]]:
        text, self._carry = self._carry + chunk, ""
        at = 0
        while at < len(text):
            at = self._state(text, at)
        yield from self._drain()

    def close(self) -> Iterator[tuple[Attributes, str]]:
        """The anchors still to come at the end of the page (none: what is still open is dropped)."""
        self._carry, self._tag, self._anchor = "", None, None
        yield from self._drain()

    def _drain(self) -> Iterator[tuple[Attributes, str]]:
        found, self._found = self._found, []
        yield from found

    # -- states: each reads from ``at`` and returns where it stopped ---------------------------------

    def _in_text(self, text: str, at: int) -> int:
        found = _OPENING.search(text, at)  # a "<" that opens nothing is text
        if found is None:
            self._add_text(text, at, len(text))
            return len(text)
        start = found.start()
        self._add_text(text, at, start)
        opening = text[start : start + _LONGEST_OPENING]
        if start + len(opening) == len(text) and _may_open_more(opening):
            self._carry = opening  # "<", "</", "<!-", "<![CDA"...: the next chunk decides
            return len(text)
        second = opening[1]
        if second.isascii() and second.isalpha():
            return self._tag_at(text, start + 1, end=False)
        if second == "/":
            third = opening[2]
            if third.isascii() and third.isalpha():
                return self._tag_at(text, start + 2, end=True)
            return start + 3 if third == ">" else self._skip(">", start + 2)
        if opening.startswith("<!--"):
            return self._skip("-->", start + 4)
        if opening.startswith("<![CDATA["):
            return self._skip("]]>", start + 9)
        return self._skip(">", start + 2)  # "<!" or "<?"

    def _skip(self, until: str, at: int) -> int:
        self._until, self._state = until, self._in_skipped
        return at

    def _in_skipped(self, text: str, at: int) -> int:
        end = text.find(self._until, at)
        if end < 0:
            keep = len(self._until) - 1  # the end may be cut: keep what could be its start
            self._carry = text[max(at, len(text) - keep) :] if keep else ""
            return len(text)
        self._state = self._in_text
        return end + len(self._until)

    def _in_raw_text(self, text: str, at: int) -> int:
        assert self._raw_end is not None
        found = self._raw_end.search(text, at)
        if found is None:
            self._carry = text[max(at, len(text) - len("</script")) :]
            return len(text)
        self._raw_end = None
        return self._tag_at(text, found.start() + 2, end=True)

    def _tag_at(self, text: str, at: int, *, end: bool) -> int:
        """Read the tag whose name starts at ``at``: at once when the text holds it whole, else as it comes."""
        self._state, self._end_tag = self._in_text, end
        whole = _WHOLE_TAG.match(text, at)
        if whole is not None:
            if whole.end() - at <= MAX_TAG:
                self._tag_read(text[at : whole.end() - 1])
            return whole.end()
        self._tag, self._tag_length, self._tag_scan = [], 0, ""
        self._state = self._in_tag
        return at

    def _in_tag(self, text: str, at: int) -> int:
        """Find the ``>`` ending the tag (quoted values may hold one), keeping its text on the way."""
        stop = self._tag_stop(text, at)
        self._keep_tag_text(text, at, stop)
        if stop == len(text):
            return stop
        self._state = self._in_text
        if self._tag is not None:
            body, self._tag = "".join(self._tag), None
            self._tag_read(body)
        return stop + 1

    def _tag_stop(self, text: str, at: int) -> int:
        """Where the tag's closing ``>`` is in ``text`` from ``at``, or len(text) when not in it."""
        while at < len(text):
            scan = self._tag_scan
            if scan in ("'", '"'):
                end = text.find(scan, at)
                if end < 0:
                    return len(text)
                at, self._tag_scan = end + 1, ""
            elif scan == "v":
                found = _UNQUOTED_END.search(text, at)
                if found is None:
                    return len(text)
                at, self._tag_scan = found.start(), ""
            elif scan == "=":
                at = _SPACES.match(text, at).end()  # type: ignore[union-attr]
                if at == len(text):
                    return at
                self._tag_scan = "" if text[at] == ">" else text[at] if text[at] in "'\"" else "v"
                at += 1 if self._tag_scan in ("'", '"') else 0
            else:
                at = _TAG_RUN.match(text, at).end()  # type: ignore[union-attr]
                if at == len(text) or text[at] == ">":
                    return at
                self._tag_scan, at = "=", at + 1  # an "=" whose value goes on in the next chunk
        return at

    def _keep_tag_text(self, text: str, start: int, stop: int) -> None:
        if self._tag is None:
            return
        self._tag_length += stop - start
        if self._tag_length > MAX_TAG:
            self._tag = None  # dropped: read on to its end, unkept
        else:
            self._tag.append(text[start:stop])

    def _tag_read(self, body: str) -> None:
        """Act on a whole tag (its text between ``<`` or ``</`` and ``>``)."""
        name_end = _TAG_NAME.match(body).end()  # type: ignore[union-attr]
        name = body[:name_end].lower()
        if self._end_tag:
            if name == "a" and self._anchor is not None:
                self._end_anchor()
        elif name == "a":
            self._anchor, self_closing = _attributes(body, name_end)
            self._text, self._text_length = [], 0
            if self_closing:
                self._end_anchor()
        elif name in _RAW_TEXT_ELEMENTS and not _attributes(body, name_end)[1]:
            self._raw_end = re.compile(rf"</{name}(?=[ \t\n\r\f/>])", re.IGNORECASE)
            self._state = self._in_raw_text

    def _add_text(self, text: str, start: int, stop: int) -> None:
        if self._anchor is not None and start < stop and self._text_length < _MAX_RAW_TEXT:
            piece = text[start : min(stop, start + _MAX_RAW_TEXT - self._text_length)]
            self._text.append(piece)
            self._text_length += len(piece)

    def _end_anchor(self) -> None:
        assert self._anchor is not None
        self._found.append((self._anchor, unescape("".join(self._text))[:MAX_TEXT].strip()))
        self._anchor, self._text = None, []


def _may_open_more(opening: str) -> bool:
    """Whether ``opening``, the end of the text so far, may be the start of a longer opening."""
    return len(opening) < 3 or "<!--".startswith(opening) or "<![CDATA[".startswith(opening)


def _attributes(body: str, name_end: int) -> tuple[Attributes, bool]:
    """A whole tag's attributes (after its name) and whether it closes itself (``<a href="x"/>``)."""
    attributes: Attributes = {}
    end = name_end
    for found in _ATTRIBUTE.finditer(body, name_end):
        key, value = found.group(1).lower(), found.group(2)
        if value is not None and value[:1] in ("'", '"'):
            value = value[1:-1]
        if key not in attributes:
            attributes[key] = None if value is None else unescape(value)
        end = found.end()
    # a "/" ending an unquoted value (href=x/) is part of it, not the tag's own
    return attributes, body.endswith("/") and end < len(body)
