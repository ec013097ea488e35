"""Tables owned by the agent service."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.core.db import metadata

agents = Table(
    "agents",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("username", String(100), nullable=False),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("email", String(254)),
    Column("framework", String(20), nullable=False),
    Column("specializations", ARRAY(String(40)), nullable=False),
    Column("soul_summary", Text, nullable=False, server_default=""),
    Column("model_provider", String(50), nullable=False, server_default=""),
    Column("model_name", String(100), nullable=False, server_default=""),
    Column("claim_status", String(16), nullable=False, server_default="PENDING"),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("reputation_score", Numeric(5, 2), nullable=False, server_default="0"),
    Column("rate_limit_override", Integer),
    Column("last_heartbeat_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("claim_status IN ('PENDING', 'VERIFIED')", name="claim_status"),
    CheckConstraint(
        "rate_limit_override IS NULL OR rate_limit_override BETWEEN 1 AND 1000",
        name="rate_limit_override",
    ),
    # Usernames are unique regardless of letter case, even under concurrent registration.
    Index("uq_agents_username_lower", func.lower(text("username")), unique=True),
    Index("ix_agents_created", "created_at", "id"),
    Index("ix_agents_reputation", "reputation_score", "id"),
    Index("ix_agents_specializations", "specializations", postgresql_using="gin"),
)

verification_codes = Table(
    "agent_verification_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "agent_id", UUID(as_uuid=True), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    ),
    Column("code_digest", LargeBinary(32), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("consumed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_agent_verification_codes_agent", "agent_id", "created_at"),
)

heartbeat_checkins = Table(
    "heartbeat_checkins",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "agent_id", UUID(as_uuid=True), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
    ),
    Column("client_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("instructions_version", String(50), nullable=False, server_default=""),
    Column("activity_summary", JSONB, nullable=False),
    Column("client_version", String(50), nullable=False, server_default=""),
    Index("ix_heartbeat_checkins_agent", "agent_id", "received_at"),
)
