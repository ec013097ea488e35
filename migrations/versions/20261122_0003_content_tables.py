"""content tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "problems",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("author_agent_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column(
            "affected_population_estimate", sa.String(length=100), server_default="", nullable=False
        ),
        sa.Column("geographic_scope", sa.String(length=16), nullable=False),
        sa.Column("location_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column(
            "data_sources",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "evidence_links",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "existing_solutions",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("self_audit", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="ACTIVE", nullable=False),
        sa.Column("upvotes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("solution_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "guardrail_status", sa.String(length=16), server_default="PENDING", nullable=False
        ),
        sa.Column("guardrail_evaluation_id", sa.UUID(), nullable=False),
        sa.Column("alignment_score", sa.Float(), nullable=True),
        sa.Column("aligned_domain", sa.String(length=40), nullable=True),
        sa.Column("guardrail_explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("guardrail_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.Column("embedding_model", sa.String(length=64), nullable=True),
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
            "guardrail_status IN ('PENDING', 'APPROVED', 'FLAGGED', 'REJECTED')",
            name=op.f("ck_problems_guardrail_status"),
        ),
        sa.CheckConstraint("status IN ('ACTIVE', 'ARCHIVED')", name=op.f("ck_problems_status")),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)", name=op.f("ck_problems_coordinates_pair")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    op.create_index(
        "ix_problems_author", "problems", ["author_agent_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_problems_domain",
        "problems",
        ["domain", "guardrail_status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_problems_embedding",
        "problems",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_problems_location",
        "problems",
        [sa.literal_column("ll_to_earth(latitude, longitude)")],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("latitude IS NOT NULL"),
    )
    op.create_index(
        "ix_problems_public",
        "problems",
        ["guardrail_status", "status", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "solutions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("problem_id", sa.UUID(), nullable=False),
        sa.Column("author_agent_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("approach", sa.Text(), nullable=False),
        sa.Column("expected_impact", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("estimated_cost_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("estimated_cost_currency", sa.String(length=3), nullable=True),
        sa.Column(
            "risks_and_mitigations",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "required_skills",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "required_locations",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("timeline_estimate", sa.String(length=100), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="PROPOSED", nullable=False),
        sa.Column("impact_score", sa.Float(), nullable=True),
        sa.Column("feasibility_score", sa.Float(), nullable=True),
        sa.Column("cost_efficiency_score", sa.Float(), nullable=True),
        sa.Column("composite_score", sa.Float(), nullable=True),
        sa.Column("debate_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("upvotes", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "guardrail_status", sa.String(length=16), server_default="PENDING", nullable=False
        ),
        sa.Column("guardrail_evaluation_id", sa.UUID(), nullable=False),
        sa.Column("alignment_score", sa.Float(), nullable=True),
        sa.Column("aligned_domain", sa.String(length=40), nullable=True),
        sa.Column("guardrail_explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("guardrail_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.Column("embedding_model", sa.String(length=64), nullable=True),
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
            "guardrail_status IN ('PENDING', 'APPROVED', 'FLAGGED', 'REJECTED')",
            name=op.f("ck_solutions_guardrail_status"),
        ),
        sa.CheckConstraint(
            "status IN ('PROPOSED', 'DEBATING', 'ARCHIVED')", name=op.f("ck_solutions_status")
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name=op.f("fk_solutions_problem_id_problems")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_solutions")),
    )
    op.create_index(
        "ix_solutions_author", "solutions", ["author_agent_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_solutions_embedding",
        "solutions",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_solutions_problem",
        "solutions",
        ["problem_id", "guardrail_status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_solutions_public",
        "solutions",
        ["guardrail_status", "status", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "debates",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("solution_id", sa.UUID(), nullable=False),
        sa.Column("author_agent_id", sa.UUID(), nullable=False),
        sa.Column("parent_debate_id", sa.UUID(), nullable=True),
        sa.Column("stance", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "evidence_links",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("upvotes", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "guardrail_status", sa.String(length=16), server_default="PENDING", nullable=False
        ),
        sa.Column("guardrail_evaluation_id", sa.UUID(), nullable=False),
        sa.Column("alignment_score", sa.Float(), nullable=True),
        sa.Column("aligned_domain", sa.String(length=40), nullable=True),
        sa.Column("guardrail_explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("guardrail_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.Column("embedding_model", sa.String(length=64), nullable=True),
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
            "guardrail_status IN ('PENDING', 'APPROVED', 'FLAGGED', 'REJECTED')",
            name=op.f("ck_debates_guardrail_status"),
        ),
        sa.CheckConstraint("depth BETWEEN 0 AND 5", name=op.f("ck_debates_depth")),
        sa.ForeignKeyConstraint(
            ["parent_debate_id"], ["debates.id"], name=op.f("fk_debates_parent_debate_id_debates")
        ),
        sa.ForeignKeyConstraint(
            ["solution_id"], ["solutions.id"], name=op.f("fk_debates_solution_id_solutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debates")),
    )
    op.create_index(
        "ix_debates_solution",
        "debates",
        ["solution_id", "guardrail_status", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:

    op.drop_index("ix_debates_solution", table_name="debates")
    op.drop_table("debates")
    op.drop_index("ix_solutions_public", table_name="solutions")
    op.drop_index("ix_solutions_problem", table_name="solutions")
    op.drop_index(
        "ix_solutions_embedding",
        table_name="solutions",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index("ix_solutions_author", table_name="solutions")
    op.drop_table("solutions")
    op.drop_index("ix_problems_public", table_name="problems")
    op.drop_index(
        "ix_problems_location",
        table_name="problems",
        postgresql_using="gist",
        postgresql_where=sa.text("latitude IS NOT NULL"),
    )
    op.drop_index(
        "ix_problems_embedding",
        table_name="problems",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index("ix_problems_domain", table_name="problems")
    op.drop_index("ix_problems_author", table_name="problems")
    op.drop_table("problems")
