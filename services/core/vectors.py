"""pgvector columns sent and read in pgvector's binary format.

pgvector's SQLAlchemy type turns every vector into text ('[0.0123,...]'): about 190 µs of the
event loop for 384 floats on the bench VM, and PostgreSQL parses the text back. Binary costs
7 µs. The engines of `services.core.db` register pgvector's binary codec on each new asyncpg
connection; columns of type `BinaryVector` then hand lists and arrays to that codec unchanged.
"""

from __future__ import annotations

from typing import Any

from pgvector import Vector
from pgvector.asyncpg import register_vector
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.logging import get_logger

log = get_logger(__name__)


class BinaryVector(VECTOR):
    """`vector(N)` whose values go to asyncpg as they are (a list or array of floats), for the
    connection's binary codec to encode; read back as lists of floats."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return None

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        return Vector._from_db  # a Vector from the binary codec, text from anything else


def use_binary_vectors(engine: AsyncEngine) -> None:
    """Registers pgvector's binary codec on every connection the engine opens."""

    @event.listens_for(engine.sync_engine, "connect")
    def register(dbapi_connection: Any, _record: Any) -> None:
        try:
            dbapi_connection.run_async(register_vector)
        except ValueError as exc:
            # A database without the extension yet (before its first migration): nothing in
            # it has a vector column to read or write.
            log.info("vector_codec_not_registered", reason=str(exc))
