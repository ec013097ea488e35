"""vector indexes cover approved rows only

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_problems_embedding", "problems", "embedding"),
    ("ix_problems_title_embedding", "problems", "title_embedding"),
    ("ix_solutions_embedding", "solutions", "embedding"),
)


def _create(name: str, table: str, column: str, where: str | None) -> None:
    op.create_index(
        name,
        table,
        [column],
        unique=False,
        postgresql_using="hnsw",
        postgresql_ops={column: "vector_cosine_ops"},
        postgresql_where=sa.text(where) if where else None,
    )


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.drop_index(name, table_name=table)
        _create(name, table, column, "guardrail_status = 'APPROVED'")


def downgrade() -> None:
    for name, table, column in _INDEXES:
        op.drop_index(name, table_name=table)
        _create(name, table, column, None)
