"""Imports every table module so the shared metadata describes the whole schema (for Alembic)."""

from services.agent import tables as agent_tables
from services.core import audit
from services.core.credentials import tables as credential_tables
from services.core.db import metadata

__all__ = ["agent_tables", "audit", "credential_tables", "metadata"]
