"""``run_sync``, the one sync path, on SQLite and PostgreSQL: a request bound to a repository that was
deleted since fails and creates nothing; retention given or remembered applies on every run."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from pendingops.db.database import Database
from pendingops.db.schema import Repository
from pendingops.maintenance.lifecycle import delete_repository
from pendingops.plugins.options import options_for_sync
from pendingops.sync import RepositoryGone, SyncRequest, run_sync
from pendingops.sync.request import CredentialsInURL
from pendingops.sync.run import bind
from tests.conftest import version_numbers
from tests.remote_server import RemoteServer


def _sync(db: Database, storage, server: RemoteServer, request: SyncRequest):
    return asyncio.run(run_sync(request, db=db, storage=storage))


def _names(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(Repository.__table__.c.name)).scalars())


def test_a_request_bound_to_a_deleted_repository_fails_and_creates_nothing(db: Database, storage) -> None:
    server = RemoteServer({"a": b"one\n"})

    async def scenario() -> None:
        async with server:
            request = db.transact(bind, SyncRequest("r", server.manifest_url))
            assert (await run_sync(request, db=db, storage=storage)).result.version.number == 1
            delete_repository(db, "r")
            with pytest.raises(RepositoryGone, match="repository 'r' was deleted after this sync was queued"):
                await run_sync(request, db=db, storage=storage)
            assert _names(db) == []
            await run_sync(SyncRequest("r", server.manifest_url), db=db, storage=storage)  # by hand: created
            with pytest.raises(RepositoryGone):  # same name, another repository
                await run_sync(request, db=db, storage=storage)

    asyncio.run(scenario())
    assert _names(db) == ["r"] and version_numbers(db, "r") == [0, 1]
    assert server.file_requests() == 1  # the refused runs fetched nothing


def test_a_repository_deleted_between_the_check_and_the_registration_is_not_created_again(
    db: Database, storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RemoteServer({"a": b"one\n"})
    deleted = []

    def delete_then_read_options(db_: Database, name: str, *args: object) -> dict[str, str]:
        # run_sync reads the remembered options after its check and before the sync registers the
        # repository: the deletion lands in that instant, in this order, every time.
        deleted.append(delete_repository(db_, name).name)
        return options_for_sync(db_, name, *args)

    async def scenario() -> None:
        async with server:
            request = db.transact(bind, SyncRequest("r", server.manifest_url))
            monkeypatch.setattr("pendingops.sync.run.options_for_sync", delete_then_read_options)
            with pytest.raises(RepositoryGone, match="repository 'r' was deleted after this sync was queued"):
                await run_sync(request, db=db, storage=storage)

    asyncio.run(scenario())
    assert deleted == ["r"]
    assert _names(db) == []
    assert not +server.requests  # nothing fetched, not even the manifest


def test_retention_given_or_remembered_applies_on_every_run(db: Database, storage) -> None:
    server = RemoteServer({"a": b"one\n"})

    async def scenario() -> list[list[int]]:
        removed = []
        async with server:
            for number, retain in enumerate((None, 2, None, None)):
                server.files[f"f{number}"] = b"%d\n" % number
                outcome = await run_sync(SyncRequest("r", server.manifest_url, retain=retain), db=db, storage=storage)
                removed.append(outcome.removed_versions)
        return removed

    assert asyncio.run(scenario()) == [[], [0], [1], [2]]
    assert version_numbers(db, "r") == [3, 4]


_texts = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-._~", min_size=1, max_size=12)
_requests = st.builds(
    SyncRequest,
    repository=_texts,
    url=_texts.map(lambda path: f"https://example.org/{path}/"),
    mirror=st.booleans(),
    retain=st.none() | st.integers(min_value=1, max_value=50),
    plugin_options=st.none() | st.dictionaries(_texts, _texts, max_size=3),
    allow_private_destinations=st.none() | st.booleans(),
    repository_id=st.none() | st.integers(min_value=1, max_value=10**9),
    repository_created=st.none() | _texts,
    storage_retry_seconds=st.none() | st.floats(min_value=0, max_value=3600),
)


@given(_requests)
def test_a_request_survives_the_queue_and_an_older_releases_arguments_still_read(request: SyncRequest) -> None:
    stored = json.loads(json.dumps(request.as_args()))  # what a job's arguments or a schedule keep
    assert SyncRequest.from_args(stored) == request
    older = {key: stored[key] for key in ("repository", "url", "plugin", "mirror", "force")}
    assert SyncRequest.from_args({**older, "removed_in_a_later_release": 1}).retain is None


@given(_requests, _texts, st.none() | _texts)
def test_a_url_with_credentials_never_goes_into_the_queue(
    request: SyncRequest, user: str, password: str | None
) -> None:
    userinfo = user if password is None else f"{user}:{password}"
    with_credentials = dataclasses.replace(request, url=request.url.replace("https://", f"https://{userinfo}@"))
    with pytest.raises(CredentialsInURL, match="netrc"):
        with_credentials.as_args()
