"""Which plugins' index files a version publishes: those of the content types it holds.

An empty version publishes every plugin's (an empty manifest is still a valid one to sync from).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, select

from pendingops.db.schema import Content, RepositoryContent
from pendingops.db.versions import membership_filter
from pendingops.plugins.protocol import PublishedFile, PublishedPage, published_files, published_pages

_rc = RepositoryContent.__table__
_content = Content.__table__


class Publisher:
    """The published files of every installed plugin, by the content type they describe."""

    def __init__(self, plugins: Iterable[object]) -> None:
        self._by_type: dict[str, list[PublishedFile]] = {}
        self._pages: dict[str, tuple[str, PublishedPage]] = {}
        for plugin in plugins:
            files = published_files(plugin)
            content_type = getattr(plugin, "content_type", None)
            if content_type is None:
                continue
            if files:
                self._by_type.setdefault(content_type.content_type_name(), []).extend(files)
            for page in published_pages(plugin):
                self._pages.setdefault(page.prefix, (content_type.content_type_name(), page))

    @property
    def names(self) -> frozenset[str]:
        """Every relative path some plugin publishes at."""
        return frozenset(f.relative_path for files in self._by_type.values() for f in files)

    def page_at(self, path: str) -> tuple[PublishedPage, str] | None:
        """The page folder ``path`` lies in and the rest of the path below it, or None."""
        prefix, _, rest = path.partition("/")
        found = self._pages.get(prefix)
        return None if found is None else (found[1], rest)

    def page_published(self, conn: Connection, repository_id: int, number: int, page: PublishedPage) -> bool:
        """Whether the version holds the content type whose plugin publishes ``page``, and the page applies."""
        type_name = self._pages[page.prefix][0]
        query = (
            select(_rc.c.id)
            .join(_content, _content.c.id == _rc.c.content_id)
            .where(membership_filter(repository_id, number), _content.c.content_type == type_name)
            .limit(1)
        )
        if conn.execute(query).first() is None:
            return False
        return page.applies is None or page.applies(conn, repository_id, number)

    def pages_for_version(self, conn: Connection, repository_id: int, number: int) -> list[PublishedPage]:
        """The page folders published for one version: those of the content types it holds."""
        return [page for _, page in self._pages.values() if self.page_published(conn, repository_id, number, page)]

    def for_version(self, conn: Connection, repository_id: int, number: int) -> Mapping[str, PublishedFile]:
        """The files published for one version, by relative path (first plugin wins a shared name)."""
        found: dict[str, PublishedFile] = {}
        members = membership_filter(repository_id, number)
        holds_any = False
        for type_name, files in self._by_type.items():
            query = (
                select(_rc.c.id)
                .join(_content, _content.c.id == _rc.c.content_id)
                .where(members, _content.c.content_type == type_name)
                .limit(1)
            )
            if conn.execute(query).first() is not None:
                holds_any = True
                for published in files:
                    found.setdefault(published.relative_path, published)
        if not holds_any and conn.execute(select(_rc.c.id).where(members).limit(1)).first() is None:
            for files in self._by_type.values():
                for published in files:
                    found.setdefault(published.relative_path, published)
        return found
