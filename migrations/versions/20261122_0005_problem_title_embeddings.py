"""problem title embeddings for duplicate detection

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "problems",
        sa.Column("title_embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
    )
    op.create_index(
        "ix_problems_title_embedding",
        "problems",
        ["title_embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_ops={"title_embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_problems_title_embedding",
        table_name="problems",
        postgresql_using="hnsw",
        postgresql_ops={"title_embedding": "vector_cosine_ops"},
    )
    op.drop_column("problems", "title_embedding")
