"""The content stores over PostgreSQL (`services/content/store.py` is the contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.content.sql.base import Connector
from services.content.sql.debates import SqlDebates
from services.content.sql.embeddings import SqlEmbeddings
from services.content.sql.moderation import SqlModeration
from services.content.sql.problems import SqlProblems
from services.content.sql.search import SqlSearch
from services.content.sql.solutions import SqlSolutions


class SqlContentStore:
    """ContentStore: the aggregate stores on one engine, or on one transaction's connection."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        connector = Connector(engine, conn)
        self._engine = engine
        self.problems = SqlProblems(connector)
        self.solutions = SqlSolutions(connector)
        self.debates = SqlDebates(connector)
        self.moderation = SqlModeration(connector)
        self.embeddings = SqlEmbeddings(connector)
        self.search = SqlSearch(connector)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlContentStore]:
        """The stores on one transaction, committed when the block ends normally."""
        async with self._engine.begin() as conn:
            yield SqlContentStore(self._engine, conn)
