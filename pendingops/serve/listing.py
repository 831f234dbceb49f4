"""Folder listings: an HTML page a browser can walk, or JSON for scripts."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pendingops.readable import human_bytes

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "h1{font-size:1.3em;font-weight:600}"
    "table{border-collapse:collapse;min-width:40em}"
    "th,td{text-align:left;padding:.25em 1.2em .25em 0;border-bottom:1px solid #eee}"
    "td.size{text-align:right;white-space:nowrap}td.digest{font-family:monospace;color:#777}"
    "a{text-decoration:none;color:#0645ad}a:hover{text-decoration:underline}"
    ".note{color:#777;font-size:.9em}"
)


@dataclass(slots=True)
class Entry:
    """One line of a listing: a folder (its name ends with "/") or a file."""

    name: str
    size: int | None = None
    sha256: str | None = None
    stored: bool = True
    note: str = ""

    @property
    def is_folder(self) -> bool:
        return self.name.endswith("/")

    def href(self) -> str:
        # "./" first: a name like "a:b" must not read as a URL scheme.
        return "./" + quote(self.name.removesuffix("/"), safe="") + ("/" if self.is_folder else "")


@dataclass(slots=True)
class Listing:
    """What a listing shows: a title (the folder's URL path), its entries, and a link up or not."""

    title: str
    entries: list[Entry] = field(default_factory=list)
    parent: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> bytes:
        document = {
            **self.extra,
            "path": self.title,
            "entries": [
                {"name": e.name, "type": "folder" if e.is_folder else "file"}
                | ({} if e.is_folder else {"size": e.size, "sha256": e.sha256, "stored": e.stored})
                for e in self.entries
            ],
        }
        return json.dumps(document, ensure_ascii=False).encode()

    def as_html(self) -> bytes:
        title = html.escape(self.title)
        rows = []
        if self.parent:
            rows.append('<tr><td><a href="../">../</a></td><td class="size"></td><td class="digest"></td></tr>')
        for entry in self.entries:
            size = "" if entry.size is None else html.escape(human_bytes(entry.size))
            digest = html.escape(entry.sha256[:16] + "…") if entry.sha256 else ""
            note = f' <span class="note">{html.escape(entry.note)}</span>' if entry.note else ""
            if not entry.stored:
                note += ' <span class="note">(fetched on first request)</span>'
            rows.append(
                f'<tr><td><a href="{html.escape(entry.href())}">{html.escape(entry.name)}</a>{note}</td>'
                f'<td class="size">{size}</td><td class="digest">{digest}</td></tr>'
            )
        body = "\n".join(rows) or '<tr><td class="note">empty</td></tr>'
        page = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Index of {title}</title>'
            f"<style>{_STYLE}</style></head>\n<body><h1>Index of {title}</h1>\n"
            f"<table><thead><tr><th>Name</th><th>Size</th><th>sha256</th></tr></thead><tbody>\n{body}\n"
            "</tbody></table></body></html>\n"
        )
        return page.encode()
