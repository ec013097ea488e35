"""The operator audit log: every admin action, who did it, and the request it came with."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, String, Table, insert, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from services.core.context import Principal, current_request_id
from services.core.db import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("operator_id", UUID(as_uuid=True), nullable=False),
    Column("operator_name", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target_type", String(50), nullable=False),
    Column("target_id", String(100), nullable=False),
    Column("details", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("request_id", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_audit_log_target", "target_type", "target_id"),
)


async def record(
    conn: AsyncConnection,
    *,
    operator: Principal,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any],
) -> None:
    """Writes one audit entry in the caller's transaction, so action and record commit together."""
    await conn.execute(
        insert(audit_log).values(
            operator_id=uuid.UUID(operator.id),
            operator_name=operator.name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
            request_id=current_request_id(),
        )
    )
