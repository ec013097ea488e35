"""Imports every table module so the shared metadata describes the whole schema (for Alembic)."""

from services.agent import tables as agent_tables
from services.content import tables as content_tables
from services.core import audit
from services.core.credentials import tables as credential_tables
from services.core.db import metadata
from services.guardrail import tables as guardrail_tables

__all__ = [
    "agent_tables",
    "audit",
    "content_tables",
    "credential_tables",
    "guardrail_tables",
    "metadata",
]
