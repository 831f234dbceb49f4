"""The data model: one schema for SQLite and PostgreSQL.

Repository membership is stored as intervals: a ``repository_content`` row says a content unit
entered the repository in ``version_added`` and left it in ``version_removed`` (NULL while it is
still there). Version n is every row with ``version_added <= n`` and
``version_removed IS NULL OR version_removed > n``, so a new version writes rows only for what it
changes.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: the digests an artifact may carry, each a column of ``artifact`` and ``remote_artifact``
DIGEST_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
OTHER_DIGESTS = tuple(name for name in DIGEST_ALGORITHMS if name != "sha256")


@functools.cache
def _own_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name != "id")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every pendingops table, plugins' content tables included."""


class Artifact(Base):
    """A stored file, unique by sha256; ``location`` is its key in the artifact storage."""

    __tablename__ = "artifact"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    sha1: Mapped[str | None] = mapped_column(String(40))
    sha224: Mapped[str | None] = mapped_column(String(56))
    sha384: Mapped[str | None] = mapped_column(String(96))
    sha512: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Content(Base):
    """Base of every content type. A plugin subclasses it with its own table and natural key::

        class FileContent(Content):
            __tablename__ = "file_content"
            natural_key = ("relative_path", "sha256")
            relative_path: Mapped[str] = mapped_column(Text)
            sha256: Mapped[str] = mapped_column(String(64))

    The subclass gets its ``id`` column (a foreign key to ``content.id``), its polymorphic
    identity and a unique constraint on its natural key. ``content.key_digest`` holds a digest of
    (type, natural key) so that existence queries and concurrent inserts work on one indexed
    column whatever the plugin's key looks like.
    """

    __tablename__ = "content"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_type: Mapped[str] = mapped_column(String(64))
    key_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    __table_args__ = (UniqueConstraint("content_type", "key_digest", name="content_natural_key"),)
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "content_type",
        "polymorphic_identity": "content",
    }

    #: the plugin's natural-key column names
    natural_key: ClassVar[tuple[str, ...]] = ()
    #: the name stored in ``content.content_type``; defaults to the table name
    type_name: ClassVar[str | None] = None
    #: the fields naming the same item across contents (a file's path): ``diff`` reports a unit
    #: replaced by one with the same item key as changed; empty means every unit is its own item
    item_key: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "__tablename__" in cls.__dict__:
            if not cls.natural_key:
                raise TypeError(f"{cls.__name__} must declare natural_key, a tuple of column names")
            table = cls.__dict__["__tablename__"]
            cls.__mapper_args__ = {"polymorphic_identity": cls.type_name or table}
            if "id" not in cls.__dict__:
                cls.id = mapped_column(  # type: ignore[assignment]
                    Integer, ForeignKey("content.id", ondelete="CASCADE"), primary_key=True
                )
            extra = cls.__dict__.get("__table_args__", ())
            cls.__table_args__ = (UniqueConstraint(*cls.natural_key, name=f"{table}_natural_key"), *extra)
        super().__init_subclass__(**kwargs)

    @classmethod
    def content_type_name(cls) -> str:
        return str(cls.__mapper_args__["polymorphic_identity"])

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The plugin table's own columns (everything but ``id``); asked for every unit saved."""
        return _own_columns(cls.__table__)  # type: ignore[attr-defined]


class ContentArtifact(Base):
    """Links a content unit to one of its files; ``artifact_id`` is NULL until it is downloaded."""

    __tablename__ = "content_artifact"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("content.id", ondelete="CASCADE"))
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifact.id", ondelete="RESTRICT"), index=True)
    relative_path: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("content_id", "relative_path", name="content_artifact_path"),)


class Remote(Base):
    """Where content comes from; runtime settings (timeouts, retries...) live in ``RemoteConfig``."""

    __tablename__ = "remote"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    url: Mapped[str] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(16), default="immediate")
    #: the largest file its last sync accepted (its own setting, else its plugin's); NULL: the default cap
    max_file_size: Mapped[int | None] = mapped_column(BigInteger)


class RemoteArtifact(Base):
    """Where one artifact of a content unit can be fetched from, with what to expect."""

    __tablename__ = "remote_artifact"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_artifact_id: Mapped[int] = mapped_column(ForeignKey("content_artifact.id", ondelete="CASCADE"))
    remote_id: Mapped[int] = mapped_column(ForeignKey("remote.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32))
    sha1: Mapped[str | None] = mapped_column(String(40))
    sha224: Mapped[str | None] = mapped_column(String(56))
    sha384: Mapped[str | None] = mapped_column(String(96))
    sha512: Mapped[str | None] = mapped_column(String(128))
    __table_args__ = (UniqueConstraint("content_artifact_id", "remote_id", name="remote_artifact_source"),)


class Repository(Base):
    __tablename__ = "repository"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    #: how many of the latest versions a sync keeps (``sync --retain``); NULL keeps them all
    retain_versions: Mapped[int | None] = mapped_column(Integer)
    #: the plugin options (JSON) its last sync given ``--option`` ran with; later syncs reuse them
    plugin_options: Mapped[str | None] = mapped_column(Text)
    #: whether its last successful sync could fetch from private addresses (``--allow-private-destinations``)
    allow_private_destinations: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class RepositoryVersion(Base):
    """An immutable numbered version; invisible until ``complete`` is true."""

    __tablename__ = "repository_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    base_number: Mapped[int | None] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    content_count: Mapped[int] = mapped_column(Integer, default=0)
    added_count: Mapped[int] = mapped_column(Integer, default=0)
    removed_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    #: the version a rollback copied the content of; NULL for a version a sync made
    rolled_back_to: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("repository_id", "number", name="repository_version_number"),)


class RepositoryContent(Base):
    """Membership interval of a content unit in a repository (see the module docstring)."""

    __tablename__ = "repository_content"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    content_id: Mapped[int] = mapped_column(ForeignKey("content.id", ondelete="RESTRICT"))
    version_added: Mapped[int] = mapped_column(Integer)
    version_removed: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("repository_content_lookup", "repository_id", "content_id"),
        # "Is this content in any repository?" (orphan cleanup, and ON DELETE RESTRICT's own check)
        Index("repository_content_content", "content_id"),
        Index("repository_content_added", "repository_id", "version_added"),
        Index("repository_content_removed", "repository_id", "version_removed"),
        Index(
            "repository_content_current",
            "repository_id",
            "content_id",
            unique=True,
            sqlite_where=text("version_removed IS NULL"),
            postgresql_where=text("version_removed IS NULL"),
        ),
    )


class DeclaredContent(Base):
    """Scratch set of content ids a mirror sync declared; emptied when the version is finished."""

    __tablename__ = "declared_content"
    version_id: Mapped[int] = mapped_column(ForeignKey("repository_version.id", ondelete="CASCADE"), primary_key=True)
    content_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class DatabaseIdentity(Base):
    """This database's id (one row, made on first use): a storage folder records which database owns it."""

    __tablename__ = "database_identity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SyncRun(Base):
    """One sync attempt and how it ended.

    A completed run without problems (no failed unit, no stored file found missing) records the
    digest of the remote index it read and of the settings shaping the version, and the
    repository's latest version when it ended: the next sync reading the same index with the same
    settings, the repository still at that version, ends at once (``remote_unchanged``).
    """

    __tablename__ = "sync_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    remote_id: Mapped[int | None] = mapped_column(ForeignKey("remote.id", ondelete="SET NULL"))
    mirror: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), default="running")
    version_number: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    failed_units: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: sha256 of the remote's index (a PULP_MANIFEST, a universe) as read, when the plugin says it
    index_digest: Mapped[str | None] = mapped_column(String(64))
    #: sha256 of the settings that shape the version (url, policy, mirror, plugin and its options...)
    settings_digest: Mapped[str | None] = mapped_column(String(64))
    #: the repository's latest version when the run completed: the one it made, or the one it kept
    latest_version: Mapped[int | None] = mapped_column(Integer)
    #: the run ended at once: same index and settings as the previous run, repository unchanged since
    remote_unchanged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    __table_args__ = (Index("sync_run_repository", "repository_id", "id"),)


class StoreCleanup(Base):
    """One orphan cleanup that deleted (or was about to delete) rows and files; dry runs are not recorded.

    A sync notes the latest one when it takes the store lock; if it loses that lock with its database
    session and takes it again, a newer row means a cleanup ran meanwhile and may have removed what
    the sync had downloaded: the sync then fails instead of saving rows for missing files.
    """

    __tablename__ = "store_cleanup"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content: Mapped[int] = mapped_column(BigInteger, default=0)
    artifacts: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stray_files: Mapped[int] = mapped_column(BigInteger, default=0)


class ProgressReport(Base):
    """Final per-stage counters of a sync run."""

    __tablename__ = "progress_report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sync_run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncTask(Base):
    """What a queued sync (a task-queue job, by its id) did: the worker that ran it and its outcome."""

    __tablename__ = "sync_task"
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    worker: Mapped[str | None] = mapped_column(String(255))
    version_number: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    #: the number users see: sync jobs only, in the order they were queued, no gaps
    number: Mapped[int | None] = mapped_column(Integer)
    #: the sync's latest progress, as its worker recorded it: units finished of units listed, bytes downloaded
    units_done: Mapped[int | None] = mapped_column(Integer)
    units_total: Mapped[int | None] = mapped_column(Integer)
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("number", name="sync_task_number"),)


class SyncSchedule(Base):
    """A sync queued every ``every_seconds`` (from ``created_at``) or at each time ``cron`` names.

    ``options`` is the sync's arguments as JSON; ``last_due`` the latest due time already queued,
    so each due time is queued at most once whichever worker looks first.
    """

    __tablename__ = "sync_schedule"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    options: Mapped[str] = mapped_column(Text)
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    cron: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
