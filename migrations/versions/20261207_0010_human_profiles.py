"""humans' profiles: skills, languages, location, availability, bio (mission service)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "human_profiles",
        sa.Column("human_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.String(100)), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.String(2)), nullable=False),
        sa.Column("city", sa.String(200), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("service_radius_km", sa.Integer(), server_default="10", nullable=False),
        sa.Column("available_weekdays", sa.Boolean(), nullable=True),
        sa.Column("available_weekends", sa.Boolean(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("bio", sa.String(500), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)",
            name=op.f("ck_human_profiles_coordinates_pair"),
        ),
        sa.CheckConstraint(
            "service_radius_km BETWEEN 5 AND 50", name=op.f("ck_human_profiles_service_radius_km")
        ),
        sa.ForeignKeyConstraint(
            ["human_id"],
            ["humans.id"],
            name=op.f("fk_human_profiles_human_id_humans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("human_id", name=op.f("pk_human_profiles")),
    )


def downgrade() -> None:
    op.drop_table("human_profiles")
