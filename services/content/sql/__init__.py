"""The content stores over PostgreSQL (`services/content/store.py` is the contract)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.content.sql.debates import SqlDebates
from services.content.sql.embeddings import SqlEmbeddings
from services.content.sql.moderation import SqlModeration
from services.content.sql.problems import SqlProblems
from services.content.sql.search import SqlSearch
from services.content.sql.solutions import SqlSolutions
from services.core.store import SqlStore


class SqlContentStore(SqlStore):
    """ContentStore: the aggregate stores on one engine, or on one transaction's connection."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        super().__init__(engine, conn)
        connector = self._db
        self.problems = SqlProblems(connector)
        self.solutions = SqlSolutions(connector)
        self.debates = SqlDebates(connector)
        self.moderation = SqlModeration(connector)
        self.embeddings = SqlEmbeddings(connector)
        self.search = SqlSearch(connector)
