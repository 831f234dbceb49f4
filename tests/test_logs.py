"""Log lines: every logger through one format, text or JSON, with a UTC timestamp, a level and its fields."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops.logs import configure, log_fields

_TEXT_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (DEBUG|INFO|WARNING|ERROR) +(\S+) (.*)")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging its way; the handlers and levels are put back afterwards."""
    names = ("", "procrastinate", "aiohttp", "sqlalchemy", "botocore")
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_text_lines_have_a_utc_timestamp_a_level_the_logger_and_the_task_fields(capsys) -> None:
    configure("info", "text")
    before = datetime.now(UTC).replace(microsecond=0)
    logging.getLogger("pendingops.worker").info("hello %s", "there")
    with log_fields(task=7, repository="repo"):
        logging.getLogger("pendingops").warning("inside")
    logging.getLogger("pendingops").debug("not at info")
    lines = _lines(capsys)
    assert len(lines) == 2
    first, second = (_TEXT_LINE.fullmatch(line) for line in lines)
    assert first is not None and second is not None, lines
    assert datetime.fromisoformat(first[1]) >= before
    assert first.group(2, 3, 4) == ("INFO", "pendingops.worker", "hello there")
    assert second.group(2, 3, 4) == ("WARNING", "pendingops", "[repository=repo task=7] inside")


def test_json_lines_carry_the_context_and_extra_fields_as_keys(capsys) -> None:
    configure("info", "json")
    with log_fields(task=3, repository="r"):
        logging.getLogger("pendingops.worker").info(
            "succeeded", extra={"outcome": "succeeded", "duration_s": 1.5, "version": 2, "not_a_field": object()}
        )
    logging.getLogger("pendingops.access").info("no context here")
    first, second = (json.loads(line) for line in _lines(capsys))
    assert first.pop("ts").endswith("Z")
    assert first == {
        "level": "info",
        "logger": "pendingops.worker",
        "msg": "succeeded",
        "repository": "r",
        "task": 3,
        "outcome": "succeeded",
        "duration_s": 1.5,
        "version": 2,
    }
    assert set(second) == {"ts", "level", "logger", "msg"}


def test_libraries_loggers_use_the_same_format(capsys) -> None:
    configure("info", "json")
    logging.getLogger("aiohttp.server").error("Error handling request")
    logging.getLogger("procrastinate.worker").error("Job failed")
    logging.getLogger("procrastinate.worker").info("Starting job (said by the worker's own lines instead)")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1 (every statement: never at info)")
    found = [json.loads(line) for line in _lines(capsys)]
    assert [(line["logger"], line["level"], line["msg"]) for line in found] == [
        ("aiohttp.server", "error", "Error handling request"),
        ("procrastinate.worker", "error", "Job failed"),
    ]


def test_a_traceback_only_at_debug_else_one_line(capsys) -> None:
    def fail() -> None:
        raise RuntimeError("boom\nsecond line")

    for level in ("info", "debug"):
        configure(level, "text")
        try:
            fail()
        except RuntimeError:
            logging.getLogger("pendingops").exception("it failed")
    info_lines = _lines(capsys)
    assert info_lines[0].endswith("it failed (RuntimeError: boom)")
    assert info_lines[1].endswith("it failed") and info_lines[2] == "Traceback (most recent call last):"
    assert "Traceback" not in info_lines[0]
    configure("info", "json")
    try:
        fail()
    except RuntimeError:
        logging.getLogger("pendingops").exception("it failed")
    (line,) = _lines(capsys)
    assert json.loads(line)["error"] == "RuntimeError: boom" and "traceback" not in json.loads(line)


def test_configuring_again_replaces_the_handler(capsys) -> None:
    configure("info", "text")
    configure("info", "json")
    logging.getLogger("pendingops").info("once")
    (line,) = _lines(capsys)
    assert json.loads(line)["msg"] == "once"


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of debug, info, warning, error"):
        configure("verbose", "text")
    with pytest.raises(ValueError, match="format one of text, json"):
        configure("info", "xml")


@given(message=st.text(), repository=st.text(), task=st.integers())
def test_any_message_and_fields_make_one_line_that_reads_back(message: str, repository: str, task: int) -> None:
    """A hostile path or URL in a message never splits a line, in either format; JSON gives it back whole."""
    from pendingops.logs import LineFormatter

    record = logging.LogRecord("pendingops.access", logging.INFO, __file__, 1, "%s", (message,), None)
    record.__dict__.update(repository=repository, task=task)
    json_line = LineFormatter(json_lines=True, tracebacks=False).format(record)
    text_line = LineFormatter(json_lines=False, tracebacks=False).format(record)
    assert "\n" not in json_line and "\r" not in json_line
    assert "\n" not in text_line and "\r" not in text_line
    parsed = json.loads(json_line)
    assert (parsed["msg"], parsed["repository"], parsed["task"]) == (message, repository, task)
