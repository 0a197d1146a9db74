"""Structured logging: JSON lines carrying the request id bound for the current call."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    # orjson: the canonical line is written on every RPC, and stdlib json is several times slower.
    renderer = (structlog.processors.JSONRenderer(serializer=_orjson_dumps) if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format=f'{{"service":"{service}","logger":"%(name)s","level":"%(levelname)s","event":"%(message)s"}}')


def _orjson_dumps(obj, **_kw) -> str:
    return orjson.dumps(obj, default=str).decode()


def get(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
