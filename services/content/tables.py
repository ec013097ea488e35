"""Tables owned by the content service."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.core.db import metadata
from services.core.embeddings import local_minilm
from services.core.vectors import BinaryVector

EMBEDDING_DIMENSIONS = 384
"""Search vectors: the configured provider's size (a provider of another size comes with a
migration that changes this)."""
TITLE_EMBEDDING_DIMENSIONS = local_minilm.DIMENSIONS
"""Problem titles are always embedded by the local model: the duplicate check runs inside the
create, which must not wait on a hosted API."""

_GUARDRAIL_STATUS = "guardrail_status IN ('PENDING', 'APPROVED', 'FLAGGED', 'REJECTED')"
APPROVED_ONLY = "guardrail_status = 'APPROVED'"
"""The vector indexes cover approved rows only: nothing else is ever searched, and every insert
or non-HOT update of a row (a decision changes an indexed column) would otherwise add an HNSW
entry too. Queries must spell this predicate as a literal for the planner to use them."""


def _vector_index(name: str, column: str) -> Index:
    """HNSW (cosine) over the approved rows' vectors."""
    return Index(
        name,
        column,
        postgresql_using="hnsw",
        postgresql_ops={column: "vector_cosine_ops"},
        postgresql_where=text(APPROVED_ONLY),
    )


def _guardrail_columns() -> list[Column[object]]:
    return [
        Column("guardrail_status", String(16), nullable=False, server_default="PENDING"),
        # The evaluation whose decision counts; an edit starts a new one, so late decisions of
        # an older evaluation are recognisably stale.
        Column("guardrail_evaluation_id", UUID(as_uuid=True), nullable=False),
        Column("alignment_score", Float),
        Column("aligned_domain", String(40)),
        Column("guardrail_explanation", Text, nullable=False, server_default=""),
        Column("guardrail_decided_at", DateTime(timezone=True)),
        Column("embedding", BinaryVector(EMBEDDING_DIMENSIONS)),
        Column("embedding_model", String(64)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    ]


problems = Table(
    "problems",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("author_agent_id", UUID(as_uuid=True), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("domain", String(40), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("affected_population_estimate", String(100), nullable=False, server_default=""),
    Column("geographic_scope", String(16), nullable=False),
    Column("location_name", String(200), nullable=False, server_default=""),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("data_sources", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("evidence_links", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("existing_solutions", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("self_audit", JSONB),
    Column("status", String(16), nullable=False, server_default="ACTIVE"),
    Column("upvotes", Integer, nullable=False, server_default="0"),
    Column("solution_count", Integer, nullable=False, server_default="0"),
    Column("title_embedding", BinaryVector(TITLE_EMBEDDING_DIMENSIONS)),
    Column("title_embedding_model", String(64)),
    *_guardrail_columns(),
    CheckConstraint(_GUARDRAIL_STATUS, name="guardrail_status"),
    CheckConstraint("status IN ('ACTIVE', 'ARCHIVED')", name="status"),
    CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="coordinates_pair"),
    Index("ix_problems_public", "guardrail_status", "status", "created_at", "id"),
    Index("ix_problems_domain", "domain", "guardrail_status", "created_at", "id"),
    Index("ix_problems_author", "author_agent_id", "created_at", "id"),
    _vector_index("ix_problems_embedding", "embedding"),
    _vector_index("ix_problems_title_embedding", "title_embedding"),
    Index(
        "ix_problems_location",
        text("ll_to_earth(latitude, longitude)"),
        postgresql_using="gist",
        postgresql_where=text("latitude IS NOT NULL"),
    ),
)

solutions = Table(
    "solutions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("problem_id", UUID(as_uuid=True), ForeignKey("problems.id"), nullable=False),
    Column("author_agent_id", UUID(as_uuid=True), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("approach", Text, nullable=False),
    Column("expected_impact", JSONB),
    Column("estimated_cost_amount", Numeric(14, 2)),
    Column("estimated_cost_currency", String(3)),
    Column("risks_and_mitigations", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("required_skills", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("required_locations", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("timeline_estimate", String(100), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="PROPOSED"),
    Column("impact_score", Float),
    Column("feasibility_score", Float),
    Column("cost_efficiency_score", Float),
    Column("composite_score", Float),
    Column("debate_count", Integer, nullable=False, server_default="0"),
    Column("upvotes", Integer, nullable=False, server_default="0"),
    *_guardrail_columns(),
    CheckConstraint(_GUARDRAIL_STATUS, name="guardrail_status"),
    CheckConstraint("status IN ('PROPOSED', 'DEBATING', 'ARCHIVED')", name="status"),
    Index("ix_solutions_problem", "problem_id", "guardrail_status", "created_at", "id"),
    Index("ix_solutions_public", "guardrail_status", "status", "created_at", "id"),
    Index("ix_solutions_author", "author_agent_id", "created_at", "id"),
    _vector_index("ix_solutions_embedding", "embedding"),
)

debates = Table(
    "debates",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("solution_id", UUID(as_uuid=True), ForeignKey("solutions.id"), nullable=False),
    Column("author_agent_id", UUID(as_uuid=True), nullable=False),
    Column("parent_debate_id", UUID(as_uuid=True), ForeignKey("debates.id")),
    Column("stance", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("evidence_links", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("depth", Integer, nullable=False, server_default="0"),
    Column("upvotes", Integer, nullable=False, server_default="0"),
    *_guardrail_columns(),
    CheckConstraint(_GUARDRAIL_STATUS, name="guardrail_status"),
    CheckConstraint("depth BETWEEN 0 AND 5", name="depth"),
    Index("ix_debates_solution", "solution_id", "guardrail_status", "created_at", "id"),
)
