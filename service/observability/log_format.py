"""The log lines of a voxroute process: `text` (the default) or `json`
(`VOXROUTE_LOG_FORMAT=json`), for voxroute's loggers and uvicorn's alike.

A JSON line is one object: `time` (UTC, milliseconds), `level`, `logger`,
`message`, `trace_id` and `span_id` inside a traced request, every field a
call passed with `extra=` (the routing context of a line about a session:
`session_id`, `tenant_id`, `region`, `flag_key`, ...), the fields of an access
line (`client_addr`, `method`, `path`, `status_code`) and `exception` when
there is one. A text line is `time level logger: message`, with
` trace_id=... span_id=...` appended inside a traced request.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson
from opentelemetry import trace

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message with ANSI colours
}
"""The attributes every record has (and uvicorn's coloured copy of the message);
any other one came with `extra=`."""
_ACCESS_FIELDS = ("client_addr", "method", "path", "http_version", "status_code")
"""uvicorn's access line arguments, in order."""


def trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids (hex), or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = trace_ids()
        return line if ids is None else f"{line} trace_id={ids[0]} span_id={ids[1]}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = trace_ids()
        if ids is not None:
            body["trace_id"], body["span_id"] = ids
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            body.update(zip(_ACCESS_FIELDS, record.args, strict=False))
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    "text": TextFormatter,
    "json": JsonFormatter,
}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (found again and replaced by the next
    call); it writes to `sys.stderr` as it is when a line is written, like `print`."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Every log line of this process to stderr in `log_format`, from `level` up;
    handlers that others installed on the root logger (pytest's) stay."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_FORMATTERS[log_format]())
    root.addHandler(handler)
    root.setLevel(level.upper())


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the root logger and uvicorn's: uvicorn
    applies it in each of its worker processes (`uvicorn.run(log_config=...)`)."""
    formatter = _FORMATTERS[log_format]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"voxroute": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "voxroute",
                "stream": "ext://sys.stderr",
            },
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "voxroute",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        },
    }
