"""which model made each problem's title vector

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every title vector stored before this revision came from the packaged model computing in
# float32; the backfill replaces vectors of any other model than the current one.
_EARLIER_MODEL = "all-MiniLM-L6-v2-onnx-int8"


def upgrade() -> None:
    op.add_column("problems", sa.Column("title_embedding_model", sa.String(64), nullable=True))
    op.execute(
        sa.text(
            "UPDATE problems SET title_embedding_model = :model WHERE title_embedding IS NOT NULL"
        ).bindparams(model=_EARLIER_MODEL)
    )


def downgrade() -> None:
    op.drop_column("problems", "title_embedding_model")
