"""Structured logging: one format for our lines and every library's, with `service` and the
request's fields on each, and secrets masked (redaction.py) before anything is written."""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor

from switchboard_common.redaction import redact_rendered

# grpc-core writes its traces to stderr itself, past logging: GRPC_TRACE=http2_stream_state or
# chttp2_hpack_parser prints raw metadata, keys included.
_TRACE_WARNING = ("GRPC_TRACE is set: grpc-core's traces go straight to stderr and may print raw "
                  "metadata, keys included; the local launcher masks them in its log files, other "
                  "log collectors see them as written")


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Our structlog lines and the stdlib's (libraries, warnings, uncaught exceptions) rendered
    alike on stderr: JSON lines (or console text), each with `service`, masked of secrets."""
    levelno = logging.getLevelName(level.upper())
    # orjson: the canonical line is written on every RPC, and stdlib json is several times slower.
    renderer: Processor = (structlog.processors.JSONRenderer(serializer=_orjson_dumps) if fmt == "json"
                           else structlog.dev.ConsoleRenderer(colors=False))
    common: list[Processor] = [structlog.contextvars.merge_contextvars, _ServiceField(service),
                               structlog.processors.add_log_level,
                               structlog.processors.TimeStamper(fmt="iso", utc=True)]
    # Our own lines skip the stdlib's machinery (a LogRecord and a handler lock per line), and
    # leave in one write(2) with their newline: print() makes two on an unbuffered stderr
    # (PYTHONUNBUFFERED, as the launcher and the images run), one more system call per request.
    structlog.configure(
        processors=[*common, structlog.processors.format_exc_info, renderer, redact_rendered],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *common],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer, redact_rendered],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(levelno)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    if os.environ.get("GRPC_TRACE"):
        structlog.get_logger("logs").warning(_TRACE_WARNING)


class _ServiceField:
    """Adds `service` to every line. A processor, not a context variable: the interceptor clears
    the request's context variables on every call, and this must survive that."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __call__(self, _logger: object, _method: str, event: EventDict) -> EventDict:
        event["service"] = self._service
        return event


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    # Python would print this traceback to stderr as is; through logging it is one JSON line, masked.
    logging.getLogger("uncaught").critical("uncaught exception", exc_info=(kind, value, tb))


def _orjson_dumps(obj: Any, **_kw: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def get(name: str | None = None) -> Any:
    return structlog.get_logger(name)
