"""The retry of a database step that lost its connection: bounded, restoring, and only for lost connections."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg2
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from pendingops.db.database import connection_lost
from pendingops.db.retry import OutageTooLong, retry_on_lost_connection


def _lost() -> OperationalError:
    return OperationalError("COMMIT", {}, psycopg2.OperationalError("server closed the connection unexpectedly"))


def _sqlite_busy() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


def _run(attempt, **options):
    return asyncio.run(retry_on_lost_connection(attempt, what="save", **options))


def test_a_lost_connection_is_retried_after_restoring_and_the_result_returned() -> None:
    calls: list[str] = []

    async def attempt() -> str:
        calls.append("attempt")
        if calls.count("attempt") < 3:
            raise _lost()
        return "saved"

    async def before_retry() -> None:
        calls.append("restore")

    assert _run(attempt, seconds=30, before_retry=before_retry) == "saved"
    assert calls == ["attempt", "restore", "attempt", "restore", "attempt"]


def test_with_no_retry_time_the_first_lost_connection_is_the_end() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise _lost()

    with pytest.raises(OutageTooLong) as raised:
        _run(attempt, seconds=0)
    assert calls == 1
    assert str(raised.value) == "database connection lost (server closed the connection unexpectedly) during save"


def test_an_outage_longer_than_the_retry_time_ends_with_one_line_naming_the_step() -> None:
    async def attempt() -> None:
        raise _lost()

    with pytest.raises(OutageTooLong) as raised:
        _run(attempt, seconds=0.3)
    message = str(raised.value)
    assert message.startswith("database connection lost (server closed the connection unexpectedly) during save")
    assert "retried for" in message and "\n" not in message


@pytest.mark.parametrize("error", [_sqlite_busy, lambda: IntegrityError("INSERT", {}, Exception("dup"))])
def test_errors_that_are_not_a_lost_connection_are_never_retried(error) -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise error()

    with pytest.raises((OperationalError, IntegrityError)):
        _run(attempt, seconds=30)
    assert calls == 1


def test_a_lost_connection_while_restoring_counts_as_one_more_failed_attempt() -> None:
    attempts = 0
    restores = 0

    async def attempt() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise _lost()
        return "done"

    async def before_retry() -> None:
        nonlocal restores
        restores += 1
        if restores == 1:  # the server is still starting: taking the lock again fails too
            raise _lost()

    assert _run(attempt, seconds=30, before_retry=before_retry) == "done"
    assert (attempts, restores) == (2, 2)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ('connection to server at "127.0.0.1", port 5432 failed: Connection refused', True),
        ("server closed the connection unexpectedly", True),
        ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is starting up', True),
        ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nosuch" does not exist', False),
        ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "nobody" does not exist', False),
        ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed', False),
    ],
)
def test_a_server_that_refuses_the_login_itself_is_not_an_outage(message: str, transient: bool) -> None:
    error = OperationalError("connect", {}, psycopg2.OperationalError(message))
    assert (connection_lost(error) is not None) is transient
