"""The fuzz tests' leak check: internals in an error's details fail it, the client's own input
echoed back does not."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from tests.support.fuzzing import assert_clean


def _error(details: str) -> AioRpcError:
    return AioRpcError(grpc.StatusCode.NOT_FOUND, Metadata(), Metadata(), details=details)


def test_an_internal_name_in_the_details_is_a_leak() -> None:
    with pytest.raises(AssertionError):
        assert_clean(_error("problem x not found: sqlalchemy.exc.NoResultFound"), b"x")


def test_the_clients_own_id_echoed_back_is_not_a_leak() -> None:
    assert_clean(_error("problem sqlalchemy.url not found"), b"\n\x0esqlalchemy.url")
