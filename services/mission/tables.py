"""Tables owned by the mission service: humans, their email verification codes, failed logins
per email, missions and their claims.

Login sessions live with the other credentials in core (`human_sessions`), where the
authenticator reads them on every request.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.core.db import metadata

humans = Table(
    "humans",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("email_verified_at", DateTime(timezone=True)),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("uq_humans_email_lower", func.lower(text("email")), unique=True),
    Index("ix_humans_created", "created_at", "id"),
)

human_verification_codes = Table(
    "human_verification_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "human_id", UUID(as_uuid=True), ForeignKey("humans.id", ondelete="CASCADE"), nullable=False
    ),
    Column("code_digest", LargeBinary(32), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("consumed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_human_verification_codes_human", "human_id", "created_at"),
)

# Failed logins per email in lower case, whether or not an account has that email, so that a
# lock (5 failures in a row: 15 minutes) tells nothing about which emails are registered.
login_failures = Table(
    "login_failures",
    metadata,
    Column("email_key", String(254), primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

# One profile per human (their id is the key). Skills and languages are short lists read and
# written whole, so arrays; availability is three nullable columns set together.
human_profiles = Table(
    "human_profiles",
    metadata,
    Column(
        "human_id",
        UUID(as_uuid=True),
        ForeignKey("humans.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("skills", ARRAY(String(100)), nullable=False),
    Column("languages", ARRAY(String(2)), nullable=False),
    Column("city", String(200)),
    Column("country", String(2)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("service_radius_km", Integer, nullable=False, server_default="10"),
    Column("available_weekdays", Boolean),
    Column("available_weekends", Boolean),
    Column("timezone", String(64)),
    Column("bio", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="coordinates_pair"),
    CheckConstraint("service_radius_km BETWEEN 5 AND 50", name="service_radius_km"),
)

# Missions: tasks from an approved solution. `active_claims` is kept in step with the claims
# under the mission's row lock, and the CHECK makes an over-claim impossible even for a bug.
missions = Table(
    "missions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("solution_id", UUID(as_uuid=True), nullable=False),
    Column("problem_id", UUID(as_uuid=True), nullable=False),
    Column("author_agent_id", UUID(as_uuid=True), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("instructions", JSONB, nullable=False),
    Column("evidence_required", JSONB, nullable=False),
    Column("required_skills", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("location_name", String(200), nullable=False, server_default=""),
    Column("location_radius_km", Integer, nullable=False, server_default="5"),
    Column("estimated_duration_minutes", Integer, nullable=False),
    Column("difficulty", String(16), nullable=False),
    Column("token_reward", Integer, nullable=False),
    Column("bonus_for_quality", Integer, nullable=False, server_default="0"),
    Column("max_claims", Integer, nullable=False, server_default="1"),
    Column("active_claims", Integer, nullable=False, server_default="0"),
    Column("completed_claims", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("domain", String(64), nullable=False),
    Column("guardrail_status", String(16), nullable=False, server_default="pending"),
    Column("guardrail_evaluation_id", UUID(as_uuid=True), nullable=False),
    Column("guardrail_explanation", Text, nullable=False, server_default=""),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("active_claims >= 0 AND active_claims <= max_claims", name="claims_in_range"),
    CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="location_both_or_neither"),
    Index("ix_missions_author", "author_agent_id", "created_at", "id"),
    Index(
        "ix_missions_public",
        "created_at",
        "id",
        postgresql_where=text("guardrail_status = 'approved'"),
    ),
    Index(
        "ix_missions_pending",
        "updated_at",
        postgresql_where=text("guardrail_status = 'pending'"),
    ),
    # Geo search: earth_box prefilter on this index, then the exact distance.
    Index(
        "ix_missions_earth",
        text("ll_to_earth(latitude, longitude)"),
        postgresql_using="gist",
        postgresql_where=text("guardrail_status = 'approved' AND latitude IS NOT NULL"),
    ),
)

mission_claims = Table(
    "mission_claims",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "mission_id",
        UUID(as_uuid=True),
        ForeignKey("missions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "human_id", UUID(as_uuid=True), ForeignKey("humans.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("progress_percent", Integer, nullable=False, server_default="0"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # One live claim per human and mission (a second claim is ALREADY_EXISTS, also in a race).
    Index(
        "uq_mission_claims_live",
        "mission_id",
        "human_id",
        unique=True,
        postgresql_where=text("status IN ('active', 'submitted')"),
    ),
    Index("ix_mission_claims_human", "human_id", "claimed_at", "id"),
    Index(
        "ix_mission_claims_deadline",
        "deadline_at",
        postgresql_where=text("status = 'active'"),
    ),
)

# ImpactTokens. A human's balance row is locked for every movement; the ledger is append-only
# (the migration adds a trigger refusing UPDATE and DELETE) and its CHECKs make a row that does
# not add up, or that would leave a negative balance, impossible to write.
token_balances = Table(
    "token_balances",
    metadata,
    Column(
        "human_id",
        UUID(as_uuid=True),
        ForeignKey("humans.id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("total_earned", BigInteger, nullable=False, server_default="0"),
    Column("total_spent", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
    CheckConstraint("balance = total_earned - total_spent", name="balance_is_totals"),
)

token_ledger = Table(
    "token_ledger",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "human_id",
        UUID(as_uuid=True),
        ForeignKey("humans.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("amount", BigInteger, nullable=False),
    Column("balance_before", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("reference_id", String(64), nullable=False, server_default=""),
    Column("description", String(500), nullable=False, server_default=""),
    Column("idempotency_key", String(128), nullable=False),
    # SHA-256 of what the request asked for: a replay with another body is refused.
    Column("request_digest", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    CheckConstraint("balance_after = balance_before + amount", name="adds_up"),
    CheckConstraint("balance_after >= 0", name="never_negative"),
    Index("uq_token_ledger_key", "human_id", "idempotency_key", unique=True),
    Index("ix_token_ledger_human", "human_id", "created_at", "id"),
)

# Evidence: a file that proves a claim. The file is stored (content-addressed by `sha256`)
# before the row commits; the orphan sweep removes stored files no row names.
evidence = Table(
    "evidence",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "mission_id",
        UUID(as_uuid=True),
        ForeignKey("missions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "claim_id",
        UUID(as_uuid=True),
        ForeignKey("mission_claims.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "human_id", UUID(as_uuid=True), ForeignKey("humans.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=False, server_default="0"),
    Column("height", Integer, nullable=False, server_default="0"),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("captured_at", DateTime(timezone=True)),
    Column("exif_latitude", Float),
    Column("exif_longitude", Float),
    Column("exif_taken_at", DateTime(timezone=True)),
    Column("notes", Text, nullable=False, server_default=""),
    Column("pair_id", String(64), nullable=False, server_default=""),
    Column("sequence", String(16), nullable=False, server_default="standalone"),
    Column("final_confidence", Float),
    Column("decided_by", String(16), nullable=False, server_default=""),
    Column("decision_reason", Text, nullable=False, server_default=""),
    Column("dispute_reason", String(32), nullable=False, server_default=""),
    Column("reward", BigInteger, nullable=False, server_default="0"),
    Column("appealed", Boolean, nullable=False, server_default=text("false")),
    Column("appeal_reason", Text, nullable=False, server_default=""),
    Column("check_attempts", Integer, nullable=False, server_default="0"),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("decided_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="location_both_or_neither"),
    CheckConstraint(
        "final_confidence IS NULL OR (final_confidence >= 0 AND final_confidence <= 1)",
        name="confidence_in_range",
    ),
    CheckConstraint("reward >= 0", name="reward_not_negative"),
    Index("ix_evidence_mission", "mission_id", "submitted_at", "id"),
    Index("ix_evidence_claim", "claim_id"),
    Index("ix_evidence_sha256", "sha256"),
    Index(
        "ix_evidence_open",
        "status",
        "updated_at",
        postgresql_where=text("status IN ('pending', 'disputed', 'appealed')"),
    ),
)

# Peer review: one row per assigned reviewer, the vote filled in once.
peer_reviews = Table(
    "peer_reviews",
    metadata,
    Column(
        "evidence_id",
        UUID(as_uuid=True),
        ForeignKey("evidence.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "reviewer_id",
        UUID(as_uuid=True),
        ForeignKey("humans.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("assigned_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("verdict", String(16)),
    Column("confidence", Float),
    Column("reasoning", Text),
    Column("voted_at", DateTime(timezone=True)),
    CheckConstraint(
        "(verdict IS NULL) = (voted_at IS NULL) AND (verdict IS NULL) = (confidence IS NULL)",
        name="vote_complete",
    ),
    CheckConstraint("confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="conf"),
    Index("ix_peer_reviews_reviewer", "reviewer_id", "voted_at"),
    Index(
        "ix_peer_reviews_waiting",
        "reviewer_id",
        "assigned_at",
        postgresql_where=text("verdict IS NULL"),
    ),
)

# Every step of a piece of evidence, with who and when: submission, the automatic check,
# assignments, votes, decisions, the appeal and the operator's resolution.
evidence_history = Table(
    "evidence_history",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column(
        "evidence_id",
        UUID(as_uuid=True),
        ForeignKey("evidence.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(64), nullable=False, server_default=""),
    Column("action", String(32), nullable=False),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_evidence_history_evidence", "evidence_id", "created_at"),
)
