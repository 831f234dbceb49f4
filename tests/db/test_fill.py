"""Fill, never overwrite, at scale: a resync fills NULL fields of stored content in a few batch statements."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from pendingops import Database, LocalStorage, RemoteConfig, declarative_version
from pendingops.plugins.file import FileContent
from tests.conftest import count_statements, file_units

FILES = {f"pkg/file-{n:03d}.bin": bytes([n]) * (n + 1) for n in range(120)}
REMOTE = RemoteConfig(url="http://127.0.0.1:9/PULP_MANIFEST", policy="on_demand")  # nothing is downloaded


def _sync(db: Database, storage: LocalStorage, *, sizes: bool, wrong: bool = False) -> int:
    units = file_units(REMOTE.url, FILES)
    for unit in units:
        if not sizes:
            unit.fields["size"] = None  # as saved by a release whose model had no size column
        elif wrong:
            unit.fields["size"] += 1
    progress: list[int] = []

    async def run() -> None:
        await declarative_version(
            units,
            db=db,
            storage=storage,
            remote=REMOTE,
            repository="r",
            batch_size=50,
            on_progress=lambda snapshot: progress.append(snapshot.done("filled")),
        )

    asyncio.run(run())
    return progress[-1]


def _sizes(db: Database) -> dict[str, int | None]:
    table = FileContent.__table__
    with db.engine.connect() as conn:
        return {path: size for path, size in conn.execute(select(table.c.relative_path, table.c.size))}


def test_a_resync_fills_every_null_field_in_a_statement_per_batch_and_never_overwrites(db, storage) -> None:
    assert _sync(db, storage, sizes=False) == 0
    assert set(_sizes(db).values()) == {None}
    with count_statements(db) as statements:
        filled = _sync(db, storage, sizes=True)
    assert filled == len(FILES)
    assert _sizes(db) == {path: len(data) for path, data in FILES.items()}
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE FILE_CONTENT")]
    assert 1 <= len(updates) <= 3, updates  # 120 units in batches of 50: one statement per batch, not per unit
    # a remote that now declares other values changes nothing stored: content is immutable
    assert _sync(db, storage, sizes=True, wrong=True) == 0
    assert _sizes(db) == {path: len(data) for path, data in FILES.items()}
