"""Bad data fails a unit, not the sync (guarantee 4), on SQLite and PostgreSQL.

Text a remote sends is checked where it enters: a lone surrogate or a NUL cannot be stored, and a
string too long for its column is refused on PostgreSQL. Either would abort the batch insert, and
with it the whole sync, even under ``on_error="skip"``; now only that cookbook version fails.
"""

from __future__ import annotations

import asyncio

import pytest

from pendingops import Database, LocalStorage, RemoteConfig, SyncResult, sync_remote
from pendingops.plugins.cookbook import CookbookContent, CookbookPlugin, UniverseError, parse_universe
from tests.plugins.cookbook_server import CookbookServer, CookbookVersion, cookbook, make_tarball

LONE_SURROGATE = "Apache\ud800"


def _sync(db: Database, storage: LocalStorage, bad: CookbookVersion) -> tuple[SyncResult, CookbookServer]:
    offered = dict([cookbook("good", "1.0.0"), cookbook("other", "2.0.0")])
    offered[("bad", "1.0.0")] = bad

    async def scenario() -> tuple[SyncResult, CookbookServer]:
        async with CookbookServer(offered) as server:
            remote = RemoteConfig(url=server.base_url, retries=0)
            plugin = CookbookPlugin()
            result = await sync_remote(plugin, remote, db=db, storage=storage, repository="r", on_error="skip")
            return result, server

    return asyncio.run(scenario())


def _names(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(CookbookContent.__table__.select().with_only_columns(CookbookContent.name)).scalars())


BAD_TEXT = {
    "lone surrogate in the license": (
        {"license": LONE_SURROGATE},
        "{metadata}: license is not valid text (a lone surrogate '\\ud800' at 6)",
    ),
    "published_at too long for its column": (
        {"published_at": "2024-01-02T03:04:05Z" * 4},
        "{metadata}: published_at is not valid text (longer than 64 characters)",
    ),
    "NUL in metadata.json's description": (
        {"tarball": make_tarball("bad", "1.0.0", metadata={"name": "bad", "description": "a\x00b"})},
        "bad-1.0.0.tar.gz: description is not valid text (it holds a NUL character)",
    ),
}


@pytest.mark.parametrize(("bad", "reason"), list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_bad_text_from_the_remote_fails_that_unit_only(db, storage, bad: dict, reason: str) -> None:
    version = CookbookVersion(**{"tarball": make_tarball("bad", "1.0.0"), **bad})
    result, server = _sync(db, storage, version)
    assert (result.version.number, result.added) == (1, 2)
    [failure] = result.failures
    metadata = f"{server.base_url}api/v1/cookbooks/bad/versions/1.0.0"
    assert failure.reason == reason.format(metadata=metadata)
    assert _names(db) == {"good", "other"}


def test_bad_text_in_the_universe_is_a_bad_universe() -> None:
    entry = {"download_url": "https://s/x", "dependencies": {"apt": ">= 1.0\ud800"}}
    with pytest.raises(UniverseError, match=r"cookbook 'x' version '1\.0\.0': dependencies must map"):
        parse_universe({"x": {"1.0.0": entry}})
