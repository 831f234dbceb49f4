"""The python plugin's content type: one distribution file, and where it lies in a version."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Content

#: the folder (below each version's top) the distribution files are stored in, by project
PACKAGES = "packages"


class PythonContent(Content):
    """A distribution file (wheel or sdist) of a project and its yank mark.

    Units are immutable, so the yank mark is part of the natural key (filename, sha256, yanked,
    yanked_reason): a file the index yanks (or un-yanks) later becomes a new unit replacing the old
    one, sharing its artifact. ``item_key`` makes ``diff`` show that as a changed file.
    """

    __tablename__ = "python_distribution"
    type_name = "python"
    natural_key = ("filename", "sha256", "yanked", "yanked_reason")
    item_key = ("filename",)
    __table_args__ = (Index("python_distribution_name", "name"),)
    filename: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    #: the project's name, normalised as PEP 503 says
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    #: "bdist_wheel" or "sdist"
    packagetype: Mapped[str] = mapped_column(String(16))
    requires_python: Mapped[str | None] = mapped_column(Text)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "" when not yanked or yanked without a reason (never NULL: it is part of the natural key)
    yanked_reason: Mapped[str] = mapped_column(Text, default="")
    #: the sha256 of the PEP 658 metadata file when the index gives one, "true" when it exists without one
    core_metadata: Mapped[str | None] = mapped_column(String(64))
    #: from the metadata file, when the index offers one
    summary: Mapped[str | None] = mapped_column(Text)
    requires_dist: Mapped[list[str] | None] = mapped_column(JSON)
    #: when the file was uploaded, as the index's JSON page gives it (PEP 700: ``2024-01-31T12:34:56.123456Z``)
    upload_time: Mapped[str | None] = mapped_column(String(32))


def file_path(name: str, filename: str) -> str:
    """Where a distribution file lies in a version: ``packages/{project}/{filename}``."""
    return f"{PACKAGES}/{name}/{filename}"
