"""Tables owned by the guardrail: evaluations and the human review queue."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Index, Integer, String, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.core.db import metadata

evaluations = Table(
    "guardrail_evaluations",
    metadata,
    # The id content got at submission; also the job id.
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("content_kind", String(16), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("author_agent_id", UUID(as_uuid=True), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("explanation", Text, nullable=False, server_default=""),
    Column("alignment_score", Float),
    Column("aligned_domain", String(40)),
    Column("harm_risk", String(16)),
    Column("trust_tier", String(16), nullable=False),
    Column("layer_a", JSONB, nullable=False),
    Column("layer_b", JSONB),
    Column("classifier", String(64)),
    Column("cache_hit", String(8), nullable=False, server_default="false"),
    Column("timings_ms", JSONB, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_guardrail_evaluations_content", "content_kind", "content_id"),
    Index("ix_guardrail_evaluations_created", "created_at"),
)

flagged = Table(
    "flagged_content",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("evaluation_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("content_kind", String(16), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text, nullable=False),
    # WAITING → CLAIMED → RESOLVED
    Column("status", String(16), nullable=False, server_default="WAITING"),
    Column("claimed_by", String(100)),
    Column("claimed_at", DateTime(timezone=True)),
    Column("review_decision", String(16)),
    Column("review_notes", Text),
    Column("reviewed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_flagged_content_status", "status", "created_at"),
)
