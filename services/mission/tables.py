"""Tables owned by the mission service: humans, their email verification codes, and failed
logins per email.

Login sessions live with the other credentials in core (`human_sessions`), where the
authenticator reads them on every request.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

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
