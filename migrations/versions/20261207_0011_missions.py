"""missions and their claims (mission service), with earthdistance for geo search

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    # earthdistance (on cube) ships with PostgreSQL's contrib modules.
    op.execute("CREATE EXTENSION IF NOT EXISTS cube")
    op.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
    uuid = postgresql.UUID(as_uuid=True)
    op.create_table(
        "missions",
        sa.Column("id", uuid, server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("solution_id", uuid, nullable=False),
        sa.Column("problem_id", uuid, nullable=False),
        sa.Column("author_agent_id", uuid, nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instructions", postgresql.JSONB(), nullable=False),
        sa.Column("evidence_required", postgresql.JSONB(), nullable=False),
        sa.Column(
            "required_skills",
            postgresql.ARRAY(sa.String(100)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("location_name", sa.String(200), server_default="", nullable=False),
        sa.Column("location_radius_km", sa.Integer(), server_default="5", nullable=False),
        sa.Column("estimated_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("difficulty", sa.String(16), nullable=False),
        sa.Column("token_reward", sa.Integer(), nullable=False),
        sa.Column("bonus_for_quality", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_claims", sa.Integer(), server_default="1", nullable=False),
        sa.Column("active_claims", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completed_claims", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("guardrail_status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("guardrail_evaluation_id", uuid, nullable=False),
        sa.Column("guardrail_explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "active_claims >= 0 AND active_claims <= max_claims",
            name=op.f("ck_missions_claims_in_range"),
        ),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)",
            name=op.f("ck_missions_location_both_or_neither"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missions")),
    )
    op.create_index("ix_missions_author", "missions", ["author_agent_id", "created_at", "id"])
    op.create_index(
        "ix_missions_public",
        "missions",
        ["created_at", "id"],
        postgresql_where=sa.text("guardrail_status = 'approved'"),
    )
    op.create_index(
        "ix_missions_pending",
        "missions",
        ["updated_at"],
        postgresql_where=sa.text("guardrail_status = 'pending'"),
    )
    op.create_index(
        "ix_missions_earth",
        "missions",
        [sa.text("ll_to_earth(latitude, longitude)")],
        postgresql_using="gist",
        postgresql_where=sa.text("guardrail_status = 'approved' AND latitude IS NOT NULL"),
    )
    op.create_table(
        "mission_claims",
        sa.Column("id", uuid, server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("mission_id", uuid, nullable=False),
        sa.Column("human_id", uuid, nullable=False),
        sa.Column("status", sa.String(16), server_default="active", nullable=False),
        sa.Column("progress_percent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        _timestamp("claimed_at"),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["missions.id"],
            name=op.f("fk_mission_claims_mission_id_missions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["human_id"],
            ["humans.id"],
            name=op.f("fk_mission_claims_human_id_humans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mission_claims")),
    )
    op.create_index(
        "uq_mission_claims_live",
        "mission_claims",
        ["mission_id", "human_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('active', 'submitted')"),
    )
    op.create_index("ix_mission_claims_human", "mission_claims", ["human_id", "claimed_at", "id"])
    op.create_index(
        "ix_mission_claims_deadline",
        "mission_claims",
        ["deadline_at"],
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_table("mission_claims")
    op.drop_table("missions")
    # cube and earthdistance stay: other objects may use them.
