"""The schema change that lets a provider with other dimensions replace the embedding model.

A migration that switches providers calls `resize_embeddings(op, N)` and, in the same change,
`services/content/tables.py` sets `EMBEDDING_DIMENSIONS = N`. Vectors of one model cannot be
turned into another's, so the old ones are dropped; `betterworld embeddings backfill` computes
the new ones (until it has, items are missing from search and similar-problem lists). Problem
titles keep their local vectors: the duplicate check does not depend on the provider.
"""

from __future__ import annotations

from alembic.operations import Operations
from pgvector.sqlalchemy import Vector
from sqlalchemy import text

from services.content.tables import APPROVED_ONLY

_INDEXED = {"problems": "ix_problems_embedding", "solutions": "ix_solutions_embedding"}
_TABLES = ("problems", "solutions", "debates")


def resize_embeddings(op: Operations, dimensions: int) -> None:
    """Makes every search-vector column `vector(dimensions)`, empty, with its HNSW index."""
    for table in _TABLES:
        index = _INDEXED.get(table)
        if index:
            op.drop_index(index, table_name=table)
        op.alter_column(table, "embedding", type_=Vector(dimensions), postgresql_using="NULL")
        op.execute(f"UPDATE {table} SET embedding_model = NULL")  # noqa: S608 (constant names)
        if index:
            op.create_index(
                index,
                table,
                ["embedding"],
                postgresql_using="hnsw",
                postgresql_ops={"embedding": "vector_cosine_ops"},
                postgresql_where=text(APPROVED_ONLY),
            )
