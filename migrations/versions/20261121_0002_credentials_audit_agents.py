"""credentials audit agents

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("framework", sa.String(length=20), nullable=False),
        sa.Column("specializations", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("soul_summary", sa.Text(), server_default="", nullable=False),
        sa.Column("model_provider", sa.String(length=50), server_default="", nullable=False),
        sa.Column("model_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("claim_status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "reputation_score", sa.Numeric(precision=5, scale=2), server_default="0", nullable=False
        ),
        sa.Column("rate_limit_override", sa.Integer(), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "claim_status IN ('PENDING', 'VERIFIED')", name=op.f("ck_agents_claim_status")
        ),
        sa.CheckConstraint(
            "rate_limit_override IS NULL OR rate_limit_override BETWEEN 1 AND 1000",
            name=op.f("ck_agents_rate_limit_override"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_index("ix_agents_created", "agents", ["created_at", "id"], unique=False)
    op.create_index("ix_agents_reputation", "agents", ["reputation_score", "id"], unique=False)
    op.create_index(
        "ix_agents_specializations",
        "agents",
        ["specializations"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "uq_agents_username_lower", "agents", [sa.literal_column("lower(username)")], unique=True
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("key_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("display_prefix", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_api_keys_key_digest")),
    )
    op.create_index("ix_api_keys_owner", "api_keys", ["owner_kind", "owner_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("operator_id", sa.UUID(), nullable=False),
        sa.Column("operator_name", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target_type", sa.String(length=50), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"], unique=False)
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
    )
    op.create_table(
        "operators",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
    )
    op.create_table(
        "agent_verification_codes",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("agent_id", sa.UUID(), nullable=False),
        sa.Column("code_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_verification_codes_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_verification_codes")),
    )
    op.create_index(
        "ix_agent_verification_codes_agent",
        "agent_verification_codes",
        ["agent_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "heartbeat_checkins",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("agent_id", sa.UUID(), nullable=False),
        sa.Column("client_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("instructions_version", sa.String(length=50), server_default="", nullable=False),
        sa.Column("activity_summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("client_version", sa.String(length=50), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_heartbeat_checkins_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_checkins")),
    )
    op.create_index(
        "ix_heartbeat_checkins_agent",
        "heartbeat_checkins",
        ["agent_id", "received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_heartbeat_checkins_agent", table_name="heartbeat_checkins")
    op.drop_table("heartbeat_checkins")
    op.drop_index("ix_agent_verification_codes_agent", table_name="agent_verification_codes")
    op.drop_table("agent_verification_codes")
    op.drop_table("operators")
    op.drop_table("email_outbox")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_api_keys_owner", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("uq_agents_username_lower", table_name="agents")
    op.drop_index("ix_agents_specializations", table_name="agents", postgresql_using="gin")
    op.drop_index("ix_agents_reputation", table_name="agents")
    op.drop_index("ix_agents_created", table_name="agents")
    op.drop_table("agents")
