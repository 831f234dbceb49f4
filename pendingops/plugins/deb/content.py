"""The deb plugin's tables: binary packages, suites, and which packages each suite's indexes list."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pendingops.db.schema import Base, Content


class DebPackage(Content):
    """One binary package stanza: unique by (package, version, architecture, sha256).

    ``stanza`` is the stanza as the index gave it, so our own indexes list it faithfully. The file
    lies at ``filename`` (``pool/...``). ``item_key`` makes a new version of a package a changed item.
    """

    __tablename__ = "deb_binary_package"
    type_name = "deb"
    natural_key = ("package", "version", "architecture", "sha256")
    item_key = ("package", "architecture")
    package: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    architecture: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    section: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str | None] = mapped_column(Text)
    depends: Mapped[str | None] = mapped_column(Text)
    #: the first line of the description
    description: Mapped[str | None] = mapped_column(Text)
    installed_size: Mapped[int | None] = mapped_column(BigInteger)
    stanza: Mapped[str] = mapped_column(Text)


class DebRelease(Content):
    """A suite as one sync read it: its InRelease/Release files and the index files used, as artifacts.

    Unique by (suite, release_digest, selection): ``release_digest`` is the sha256 over the suite's
    InRelease, Release and Release.gpg as fetched (they name every index file's digest), and
    ``selection`` the options that chose what was read (components, architectures, packages,
    signing key). Which packages its indexes listed is kept in ``deb_release_member``.
    """

    __tablename__ = "deb_release"
    type_name = "deb_release"
    natural_key = ("suite", "release_digest", "selection")
    item_key = ("suite",)
    suite: Mapped[str] = mapped_column(Text)
    release_digest: Mapped[str] = mapped_column(String(64))
    selection: Mapped[str] = mapped_column(Text)
    codename: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    #: the components read, space-separated
    components: Mapped[str] = mapped_column(Text)
    #: the architectures whose indexes were read (``all`` only when the suite has a binary-all index)
    architectures: Mapped[str] = mapped_column(Text)
    #: only some packages were selected (``packages=``): the suite is not the upstream's set
    filtered: Mapped[bool] = mapped_column(Boolean)
    #: the gpg key our own indexes of this suite are signed with, if any
    signing_key: Mapped[str | None] = mapped_column(Text)


class DebReleaseMember(Base):
    """A package a suite's index listed: (component, index architecture, the package unit's key digest).

    Written once per suite unit, before any version holds it; removed with it.
    """

    __tablename__ = "deb_release_member"
    release_id: Mapped[int] = mapped_column(ForeignKey("deb_release.id", ondelete="CASCADE"), primary_key=True)
    component: Mapped[str] = mapped_column(Text, primary_key=True)
    index_architecture: Mapped[str] = mapped_column(Text, primary_key=True)
    #: ``content.key_digest`` of the package unit
    package_key: Mapped[str] = mapped_column(String(64), primary_key=True)
