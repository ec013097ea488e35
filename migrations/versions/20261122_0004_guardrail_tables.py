"""guardrail tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "flagged_content",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("evaluation_id", sa.UUID(), nullable=False),
        sa.Column("content_kind", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="WAITING", nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_decision", sa.String(length=16), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flagged_content")),
        sa.UniqueConstraint("evaluation_id", name=op.f("uq_flagged_content_evaluation_id")),
    )
    op.create_index(
        "ix_flagged_content_status", "flagged_content", ["status", "created_at"], unique=False
    )
    op.create_table(
        "guardrail_evaluations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("content_kind", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("author_agent_id", sa.UUID(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("alignment_score", sa.Float(), nullable=True),
        sa.Column("aligned_domain", sa.String(length=40), nullable=True),
        sa.Column("harm_risk", sa.String(length=16), nullable=True),
        sa.Column("trust_tier", sa.String(length=16), nullable=False),
        sa.Column("layer_a", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("layer_b", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("classifier", sa.String(length=64), nullable=True),
        sa.Column("cache_hit", sa.String(length=8), server_default="false", nullable=False),
        sa.Column("timings_ms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_evaluations")),
    )
    op.create_index(
        "ix_guardrail_evaluations_content",
        "guardrail_evaluations",
        ["content_kind", "content_id"],
        unique=False,
    )
    op.create_index(
        "ix_guardrail_evaluations_created", "guardrail_evaluations", ["created_at"], unique=False
    )


def downgrade() -> None:

    op.drop_index("ix_guardrail_evaluations_created", table_name="guardrail_evaluations")
    op.drop_index("ix_guardrail_evaluations_content", table_name="guardrail_evaluations")
    op.drop_table("guardrail_evaluations")
    op.drop_index("ix_flagged_content_status", table_name="flagged_content")
    op.drop_table("flagged_content")
