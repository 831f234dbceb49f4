"""Which database owns a storage: an id kept in both, checked by every command that uses storage.

The database gets a random id on first use (table ``database_identity``); the storage records it
in ``OWNER_MARKER`` when it is first used with that database. Another database is then refused
with one line: its orphan cleanup would take the first one's files for stray ones.

A storage that predates the record and already holds files is adopted by a database that has
artifacts (an existing user upgrading), with the time of adoption: files written before then may
belong to another database that shared the folder, so orphan cleanup never removes them as stray.
A storage holding files, without a record, is refused to a database that has no artifacts.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, select

from pendingops.db.database import Database, dialect_insert
from pendingops.db.schema import Artifact, DatabaseIdentity
from pendingops.storage.base import ArtifactStorage, StorageError

OWNER_MARKER = "pendingops-owner.json"
_identity = DatabaseIdentity.__table__
_artifact = Artifact.__table__


class StorageOwnedElsewhere(StorageError):
    """The storage belongs to another database; the message says which folder and what to do."""


@dataclass(frozen=True, slots=True)
class Ownership:
    """The owning database's id; ``adopted_at`` is set when the storage held files before it was recorded."""

    database_id: str
    adopted_at: float | None = None

    def may_be_foreign(self, storage: ArtifactStorage, location: str) -> bool:
        """True when a file no artifact row records may be another database's (never removed as stray)."""
        return self.adopted_at is not None and storage.modified_before(location, self.adopted_at)


def database_id(db: Database) -> str:
    """This database's id, made on first use (concurrent first uses agree on one)."""
    return db.transact(_database_id)


def _database_id(conn: Connection) -> str:
    found = conn.execute(select(_identity.c.uuid).where(_identity.c.id == 1)).scalar()
    if found is None:
        insert = dialect_insert(conn.dialect.name, _identity).values(id=1, uuid=uuid.uuid4().hex)
        found = conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]).returning(_identity.c.uuid)).scalar()
        if found is None:  # another process made it first
            found = conn.execute(select(_identity.c.uuid).where(_identity.c.id == 1)).scalar_one()
    return str(found)


def claim_storage(db: Database, storage: ArtifactStorage) -> Ownership:
    """Check (or record, on first use) that ``db`` owns ``storage``; raise StorageOwnedElsewhere if not."""
    return settle_claim(storage, db.transact(claim_in, storage))


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim_in`` found: the storage's owner, or the record to write once the transaction committed.

    The record names this database's id, which may have been made in that very transaction: it is
    written only after the commit, so a rolled-back transaction never leaves a record naming an id
    the database does not have.
    """

    ownership: Ownership | None
    to_record: Ownership | None = None


def claim_in(conn: Connection, storage: ArtifactStorage) -> Claim:
    """The database side of ``claim_storage``, in the caller's transaction (a sync's registration)."""
    mine = _database_id(conn)
    recorded = _read(storage)
    if recorded is not None:
        _check(storage, recorded, mine)
        return Claim(recorded)
    adopted_at = None
    if next(iter(storage.iter_locations()), None) is not None:
        if not _has_artifacts(conn):
            raise StorageOwnedElsewhere(
                f"storage {_where(storage)} holds files but records no owning database, and this database has"
                " no artifacts: it may be another database's storage; use an empty --storage folder"
            )
        adopted_at = time.time()
    return Claim(None, Ownership(mine, adopted_at))


def settle_claim(storage: ArtifactStorage, claim: Claim) -> Ownership:
    """Write the owner record a claim left to write (after its commit), and check whoever wrote it first."""
    if claim.ownership is not None:
        return claim.ownership
    assert claim.to_record is not None
    mine = claim.to_record
    record = {"database": mine.database_id, "adopted_at": mine.adopted_at}
    storage.create_marker(OWNER_MARKER, json.dumps(record) + "\n")
    recorded = _read(storage)  # a concurrent first use may have written its own record first
    if recorded is None:
        raise StorageError(f"storage {_where(storage)}: cannot record its owner in {OWNER_MARKER}")
    _check(storage, recorded, mine.database_id)
    return recorded


def _check(storage: ArtifactStorage, recorded: Ownership, mine: str) -> None:
    if recorded.database_id != mine:
        raise StorageOwnedElsewhere(
            f"storage {_where(storage)} belongs to another database (id {recorded.database_id}, this one is {mine});"
            " use that database, or another --storage folder for this one"
        )


def _read(storage: ArtifactStorage) -> Ownership | None:
    text = storage.read_marker(OWNER_MARKER)
    if text is None:
        return None
    try:
        record = json.loads(text)
        adopted_at = record.get("adopted_at")
        return Ownership(str(record["database"]), float(adopted_at) if adopted_at is not None else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StorageError(f"storage {_where(storage)}: unreadable {OWNER_MARKER}") from None


def _has_artifacts(conn: Connection) -> bool:
    return conn.execute(select(_artifact.c.id).limit(1)).first() is not None


def _where(storage: ArtifactStorage) -> str:
    return str(getattr(storage, "root", storage))
