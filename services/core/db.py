"""PostgreSQL access: the async engine (built by a composition root) and the shared metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.core.settings import Settings
from services.core.vectors import use_binary_vectors

# One MetaData for every table so Alembic sees the whole schema; each service declares (and
# writes) only its own tables.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """An engine whose connections time out instead of hanging when PostgreSQL is down."""
    timeout = settings.database_timeout_seconds
    engine = create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.database_pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        # No pre-ping: it costs a round trip per checkout (a large share of a short request's
        # database time). After a PostgreSQL restart the first disconnect error invalidates
        # every pooled connection at once, and the health probe drops the pool when the
        # database returns, so the service still recovers by itself.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "timeout": timeout,
            "command_timeout": timeout * 2,
            "server_settings": {"application_name": "betterworld"},
        },
    )
    use_binary_vectors(engine)
    return engine


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection on which each statement commits on its own (AUTOCOMMIT).

    For reads, and for writes that are one statement (an INSERT ... RETURNING is atomic by
    itself): it saves the BEGIN and ROLLBACK/COMMIT round trips of a transaction, and their
    client CPU. Several statements that must succeed or fail
    together, or see one snapshot, use `engine.begin()`.
    """
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


class Connector:
    """Where a store's statements run: its transaction's connection, or (outside one) a pooled
    connection in AUTOCOMMIT, where each statement commits on its own."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.conn = conn

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for the statements of one call."""
        if self.conn is not None:
            return nullcontext(self.conn)
        return autocommit(self.engine)

    def atomic(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for statements that must commit together: the transaction's, or a new
        one that commits when the block ends."""
        if self.conn is not None:
            return nullcontext(self.conn)
        return self.engine.begin()
