"""Structured JSON logs with the request id on every line and secrets redacted."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from services.core.context import current_request_id

REDACTED = "[REDACTED]"
_SECRET_KEYS = re.compile(
    r"(authorization|api[_-]?key|apikey|password|passwd|secret|token|cookie|"
    r"verification[_-]?code|private[_-]?key|signing[_-]?key)",
    re.IGNORECASE,
)
# Values that look like credentials wherever they appear in free text.
_SECRET_VALUES = re.compile(
    r"(Bearer\s+[A-Za-z0-9._~+/=-]+|bw_(?:agent|op)_[A-Za-z0-9_-]{8,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]*-----END [A-Z ]*PRIVATE KEY-----)",
)


def redact_value(value: Any) -> Any:
    """Redacts credential-shaped substrings in strings and secret keys in nested mappings."""
    if isinstance(value, str):
        return _SECRET_VALUES.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {
        key: (REDACTED if _SECRET_KEYS.search(key) else redact_value(value))
        for key, value in event_dict.items()
    }


def _add_request_id(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = current_request_id()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def configure_logging(*, service: str, level: str = "INFO") -> None:
    """Sends JSON lines to stderr; stdlib loggers (grpc, sqlalchemy, alembic) go the same way."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        structlog.processors.format_exc_info,
        _redact,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The pid tells apart the processes of a group (`serve --processes N`) in one log stream.
    structlog.contextvars.bind_contextvars(service=service, pid=os.getpid())


def get_logger(name: str) -> Any:
    """A structlog logger; bind fields with keyword arguments at call sites."""
    return structlog.stdlib.get_logger(name)
