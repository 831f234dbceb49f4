"""The cookbook plugin's content type and the URLs and paths of a Supermarket-style remote."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import JSON, BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Content


class CookbookContent(Content):
    """One version of a cookbook; unique by (name, version, content_id = the tarball's sha256)."""

    __tablename__ = "cookbook_content"
    type_name = "cookbook"
    natural_key = ("name", "version", "content_id")
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str] = mapped_column(String(64))
    dependencies: Mapped[dict[str, str] | None] = mapped_column(JSON)
    license: Mapped[str | None] = mapped_column(Text)
    tarball_size: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    maintainer: Mapped[str | None] = mapped_column(Text)


def base_url(url: str) -> str:
    """The remote's base url, accepting the universe's own url too."""
    url = url.rstrip("/")
    return url.removesuffix("/universe")


def universe_url(url: str) -> str:
    return base_url(url) + "/universe"


def metadata_url(url: str, name: str, version: str) -> str:
    """Where the remote at ``url`` describes one cookbook version."""
    return f"{base_url(url)}/api/v1/cookbooks/{quote(name, safe='')}/versions/{quote(version, safe='')}"


def tarball_path(name: str, version: str) -> str:
    """The relative path of a cookbook version's tarball inside its content unit."""
    return f"{name}-{version}.tar.gz"
