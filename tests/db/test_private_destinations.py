"""What a repository remembers about private destinations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version
from pendingops.db import private_destinations
from pendingops.db.schema import Artifact
from pendingops.db.versions import find_repository
from tests.conftest import file_units
from tests.remote_server import RemoteServer


def sync(db: Database, storage: LocalStorage, repository: str, files: dict[str, bytes], **settings: object) -> None:
    async def scenario() -> None:
        async with RemoteServer(dict(files)) as server:
            remote = RemoteConfig(url=server.manifest_url, **settings)  # type: ignore[arg-type]
            units = file_units(server.manifest_url, files)
            await declarative_version(units, db=db, storage=storage, remote=remote, repository=repository)

    asyncio.run(scenario())


def test_a_repository_remembers_what_its_last_successful_sync_ran_with(db: Database, storage: LocalStorage) -> None:
    assert private_destinations.for_sync(db, "r", None) is False  # a repository not made yet
    sync(db, storage, "r", {"a.txt": b"a"}, allow_private_destinations=True)
    assert private_destinations.for_sync(db, "r", None) is True
    assert private_destinations.for_sync(db, "r", False) is False  # given wins
    with db.engine.connect() as conn:
        assert private_destinations.for_repository(conn, find_repository(conn, "r")) is True
    sync(db, storage, "r", {"a.txt": b"a", "b.txt": b"b"})
    assert private_destinations.for_sync(db, "r", None) is False


def test_an_artifact_is_allowed_what_any_repository_holding_it_allows(db: Database, storage: LocalStorage) -> None:
    sync(db, storage, "strict", {"shared.txt": b"shared", "own.txt": b"own"})
    sync(db, storage, "lenient", {"shared.txt": b"shared"}, allow_private_destinations=True)
    with db.engine.connect() as conn:
        ids = dict(conn.execute(Artifact.__table__.select().with_only_columns(Artifact.sha256, Artifact.id)).all())
        allowed = {sha: private_destinations.for_artifact(conn, artifact_id) for sha, artifact_id in ids.items()}
    assert allowed == {hashlib.sha256(b"shared").hexdigest(): True, hashlib.sha256(b"own").hexdigest(): False}
