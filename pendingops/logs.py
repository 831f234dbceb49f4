"""Log lines: one format for every logger of the process (ours, aiohttp's, procrastinate's), text or JSON.

Every line starts with a UTC timestamp and a level. Context fields (the repository and task a
worker runs, a request's status and duration...) travel with the record: from ``extra=`` or from
``log_fields``, never formatted into the message, so the JSON format gives each its own key.
Tracebacks are written at the debug level only; above it an exception is one line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
#: record attributes a JSON line carries as keys of their own (when set), in this order
FIELDS = (
    "repository",
    "task",
    "outcome",
    "duration_s",
    "version",
    "client",
    "method",
    "path",
    "status",
    "bytes",
    "user",
    "url",
    "error",
)
#: the least severe level of libraries that say too much, (above debug, at debug): sqlalchemy would log every
#: statement, botocore every byte, procrastinate a line per job (a worker writes its own, see workers/observe.py)
_QUIETER = {
    "sqlalchemy": (logging.WARNING, logging.WARNING),
    "botocore": (logging.WARNING, logging.INFO),
    "aiobotocore": (logging.WARNING, logging.INFO),
    "s3transfer": (logging.WARNING, logging.INFO),
    "urllib3": (logging.WARNING, logging.INFO),
    "procrastinate": (logging.WARNING, logging.DEBUG),
    "alembic": (logging.WARNING, logging.DEBUG),
}
#: the fields a text line shows (the others are in its message)
_TEXT_FIELDS = ("repository", "task")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_fields: ContextVar[Mapping[str, Any] | None] = ContextVar("pendingops_log_fields", default=None)


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Every record logged inside the block (by this task, on any logger) carries ``fields``."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send every logger's records at ``level`` or above to stderr, as ``fmt`` lines ("text" or "json").

    Called again, it replaces what it set before (the command line runs in-process in tests).
    """
    if level not in LEVELS or fmt not in FORMATS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)} and format one of {', '.join(FORMATS)}")
    numeric = getattr(logging, level.upper())
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(LineFormatter(json_lines=fmt == "json", tracebacks=numeric <= logging.DEBUG))
    handler.addFilter(_add_fields)
    root.addHandler(handler)
    root.setLevel(numeric)
    # No line shows the thread or process: records need not look them up (serve logs one per request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name, (above_debug, at_debug) in _QUIETER.items():
        logging.getLogger(name).setLevel(max(numeric, at_debug if numeric <= logging.DEBUG else above_debug))


def _add_fields(record: logging.LogRecord) -> bool:
    for name, value in (_fields.get() or {}).items():
        if name not in record.__dict__:
            record.__dict__[name] = value
    return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record arrives (it may be replaced after setup)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def flush(self) -> None:
        stream = sys.stderr
        if not getattr(stream, "line_buffering", False):  # a line-buffered stderr wrote the line already
            stream.flush()


class LineFormatter(logging.Formatter):
    """One line per record: ``TIME LEVEL LOGGER [fields] message``, or one JSON object.

    Without ``tracebacks`` an exception is summed up as ``Type: message`` on the same line.
    """

    def __init__(self, *, json_lines: bool, tracebacks: bool) -> None:
        super().__init__()
        self.json_lines = json_lines
        self.tracebacks = tracebacks
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        stamp = self._stamp(record.created)
        error = traceback = None
        if record.exc_info and record.exc_info[1] is not None:
            if self.tracebacks:
                traceback = self.formatException(record.exc_info)
            else:
                error = _one_line(record.exc_info[1])
        attributes = record.__dict__
        if self.json_lines:
            line: dict[str, Any] = {"ts": stamp, "level": record.levelname.lower(), "logger": record.name}
            line["msg"] = message
            line.update((name, attributes[name]) for name in FIELDS if attributes.get(name) is not None)
            if error is not None:
                line["error"] = error
            if traceback is not None:
                line["traceback"] = traceback
            return json.dumps(line, default=str)
        context = [f"{name}={attributes[name]}" for name in _TEXT_FIELDS if attributes.get(name) is not None]
        text = f"{stamp} {record.levelname:<7} {record.name}" + (f" [{' '.join(context)}]" if context else "")
        text = f"{text} {message}" + (f" ({error})" if error is not None else "")
        text = _CONTROL.sub(_escaped, text)
        return text if traceback is None else f"{text}\n{traceback}"

    def _stamp(self, created: float) -> str:
        """``created`` as ISO 8601 UTC with milliseconds; the part up to the second is made once a second."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _escaped(match: re.Match[str]) -> str:
    return repr(match[0])[1:-1]
