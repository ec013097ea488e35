"""Readiness says why a dependency is down, in a few words and never with its error text."""

from __future__ import annotations

import ssl

import pytest
from asyncpg.exceptions import InvalidPasswordError
from redis.exceptions import AuthenticationError, ResponseError
from sqlalchemy.exc import DBAPIError

from services.core.health import _describe


class _Wrapped(Exception):
    pass


def _sqlalchemy(orig: BaseException) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig)


def _chained(cause: BaseException) -> BaseException:
    try:
        raise _Wrapped("connect failed") from cause
    except _Wrapped as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "connection refused"),
        (AuthenticationError("invalid username-password pair"), "authentication failed"),
        (ResponseError("NOAUTH Authentication required."), "authentication failed"),
        (
            _sqlalchemy(InvalidPasswordError("password authentication failed")),
            "authentication failed",
        ),
        (_chained(ssl.SSLError(1, "certificate verify failed")), "TLS failed"),
        (_chained(OSError("host down at 10.0.0.7")), "unreachable"),
    ],
)
def test_a_failure_is_described_without_its_text(exc: BaseException, said: str) -> None:
    assert _describe(exc) == said
