"""Scheduled syncs: stored in ``sync_schedule``, queued by whichever worker looks when one is due.

Every worker registers a procrastinate periodic task (``pendingops.schedules``, every
``tick`` seconds); procrastinate defers each tick once across all workers, and the worker that runs
it claims the due schedules: in one transaction it locks each row, and a schedule whose latest due
time is after its ``last_due`` gets ``last_due`` = that time. Only then is its sync queued. So each
due time is queued at most once, even with two ticks at once; a worker dying between the claim and
the queueing loses that one due time (the next one comes as usual).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import croniter
from procrastinate import App
from sqlalchemy import Connection, delete, select, update

from pendingops.db.schema import SyncSchedule
from pendingops.sync import SyncRequest
from pendingops.sync.run import bind
from pendingops.workers.queue import enqueue

TICK_TASK = "pendingops.schedules"

_table = SyncSchedule.__table__
_EVERY = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(slots=True)
class ScheduleInfo:
    name: str
    repository: str
    url: str
    every: str | None
    cron: str | None
    last_due: datetime | None
    next_due: datetime
    plugin_options: dict[str, str] | None = None
    plugin: str = "file"
    mirror: bool = False
    policy: str = "immediate"


def parse_every(text: str) -> int:
    """Seconds in ``30s``, ``15m``, ``6h``, ``1d``; workers look every ``--schedule-tick`` seconds."""
    match = _EVERY.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"--every: not a period: {text!r} (examples: 15m, 6h, 1d)")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds < 1:
        raise ValueError(f"--every: at least 1s, got {text!r}")
    return seconds


def check_cron(expression: str) -> str:
    if len(expression.split()) != 5 or not croniter.croniter.is_valid(expression):
        raise ValueError(f"--cron: not a cron expression (5 fields, e.g. '0 */6 * * *'): {expression!r}")
    return expression


def latest_due(every_seconds: int | None, cron: str | None, created_at: datetime, now: datetime) -> datetime | None:
    """The last due time at or before ``now`` (None before the first one)."""
    if every_seconds:
        periods = int((now - created_at).total_seconds() // every_seconds)
        return created_at + timedelta(seconds=periods * every_seconds) if periods >= 1 else None
    assert cron is not None
    previous = croniter.croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)
    return previous if previous > created_at else None


def next_due(every_seconds: int | None, cron: str | None, created_at: datetime, now: datetime) -> datetime:
    if every_seconds:
        periods = int((now - created_at).total_seconds() // every_seconds) + 1
        return created_at + timedelta(seconds=periods * every_seconds)
    assert cron is not None
    return croniter.croniter(cron, now).get_next(datetime)


def add_schedule(
    conn: Connection,
    name: str,
    request: SyncRequest,
    every_seconds: int | None,
    cron: str | None,
    *,
    register: Callable[[Connection, SyncRequest], SyncRequest | None] | None = None,
) -> None:
    """Store a schedule of ``request``; ``register`` (``sync.run.bind``) binds it to its repository
    (created if new): a repository deleted later is never synced again by it."""
    if conn.execute(select(_table.c.id).where(_table.c.name == name)).first() is not None:
        raise ValueError(f"a schedule named {name!r} exists already (schedule remove {name} first)")
    if register is not None:
        request = register(conn, request) or request
    conn.execute(
        _table.insert().values(
            name=name,
            options=json.dumps(request.as_args()),
            every_seconds=every_seconds,
            cron=cron,
            created_at=datetime.now(UTC),
        )
    )


def remove_schedule(conn: Connection, name: str) -> None:
    if not conn.execute(delete(_table).where(_table.c.name == name)).rowcount:
        raise ValueError(f"no schedule named {name!r}")


def list_schedules(conn: Connection, now: datetime | None = None) -> list[ScheduleInfo]:
    now = now or datetime.now(UTC)
    found = []
    for row in conn.execute(select(_table).order_by(_table.c.name)):
        options = json.loads(row.options)
        created = _aware(row.created_at)
        found.append(
            ScheduleInfo(
                name=row.name,
                repository=options["repository"],
                url=options["url"],
                every=_shown_every(row.every_seconds),
                cron=row.cron,
                last_due=_aware(row.last_due) if row.last_due else None,
                next_due=next_due(row.every_seconds, row.cron, created, now),
                plugin_options=options.get("plugin_options"),
                plugin=options.get("plugin", "file"),
                mirror=bool(options.get("mirror", False)),
                policy=options.get("policy", "immediate"),
            )
        )
    return found


def claim_due(conn: Connection, now: datetime) -> list[SyncRequest]:
    """Mark every schedule due at ``now`` as queued for its latest due time; return their syncs."""
    claimed = []
    rows = conn.execute(select(_table).order_by(_table.c.id).with_for_update(skip_locked=True)).all()
    for row in rows:
        due = latest_due(row.every_seconds, row.cron, _aware(row.created_at), now)
        if due is None or (row.last_due is not None and due <= _aware(row.last_due)):
            continue
        conn.execute(update(_table).where(_table.c.id == row.id).values(last_due=due))
        request = _bound(conn, SyncRequest.from_args(json.loads(row.options)))
        if request is not None:
            claimed.append(request)
    return claimed


def _bound(conn: Connection, request: SyncRequest) -> SyncRequest | None:
    """The request bound to its repository; a schedule stored unbound (an older release) binds to the
    repository of its name, and while there is none its due times pass: a schedule never creates one."""
    return request if request.repository_id is not None else bind(conn, request, register=False)


def remove_repository_schedules(conn: Connection, repository: str) -> int:
    """Remove every schedule of ``repository``; return how many."""
    return sum(
        conn.execute(delete(_table).where(_table.c.id == row.id)).rowcount
        for row in conn.execute(select(_table.c.id, _table.c.options))
        if json.loads(row.options).get("repository") == repository
    )


def count_repository_schedules(conn: Connection, repository: str) -> int:
    """How many schedules sync ``repository``."""
    return sum(
        json.loads(row.options).get("repository") == repository for row in conn.execute(select(_table.c.options))
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _shown_every(seconds: int | None) -> str | None:
    if not seconds:
        return None
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def tick_cron(seconds: int) -> str:
    """The procrastinate cron of a tick every ``seconds`` (a divisor of 60, or 60)."""
    if seconds == 60:
        return "* * * * *"
    return f"* * * * * */{seconds}"  # croniter's sixth field is the second


def register_tick(app: App, seconds: int) -> None:
    """Register the periodic task that queues due schedules, every ``seconds``."""

    @app.periodic(cron=tick_cron(seconds), periodic_id="schedules")
    @app.task(name=TICK_TASK, pass_context=True, queueing_lock=TICK_TASK)
    async def queue_due_syncs(context: Any, timestamp: int) -> None:
        runtime = context.additional_context["runtime"]
        for request in await runtime.db.run(claim_due, datetime.now(UTC)):
            await enqueue(context.app, request)
