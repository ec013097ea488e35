"""Tables owned by the credentials module: operators, API keys of both kinds, and humans' login
sessions."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, LargeBinary, String, Table, text
from sqlalchemy.dialects.postgresql import UUID

from services.core.db import metadata

operators = Table(
    "operators",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    # "agent" or "operator"; owner_id is agents.id or operators.id accordingly.
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("key_digest", LargeBinary(32), nullable=False, unique=True),
    Column("display_prefix", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # Set on rotation: the key keeps working until then.
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_owner", "owner_kind", "owner_id"),
)

human_sessions = Table(
    "human_sessions",
    metadata,
    # A human's login: every access and refresh token names it (`sid`), so revoking it ends
    # them all at once.
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("human_id", UUID(as_uuid=True), nullable=False),
    # The one refresh token of the session that may still be used; a refresh replaces it.
    Column("refresh_jti", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("refreshed_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(32)),
    # False while the human is deactivated: their tokens are refused with PERMISSION_DENIED.
    Column("owner_active", Boolean, nullable=False, server_default=text("true")),
    Index("ix_human_sessions_human", "human_id"),
)
