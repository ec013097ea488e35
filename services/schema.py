"""The whole schema for migrations: core's own tables and those of every registered service."""

from __future__ import annotations

from sqlalchemy import MetaData

from services.core import audit, mail
from services.core.credentials import tables as credential_tables
from services.core.db import metadata
from services.registry import REGISTRY, Registry

CORE_TABLES = (audit, credential_tables, mail)
"""Core's tables: the audit log, the credentials every service authenticates with, and the
email outbox every service sends through."""


def collect(registry: Registry = REGISTRY) -> MetaData:
    """The shared metadata once every service's table modules are imported."""
    for definition in registry.definitions:
        definition.import_tables()
    return metadata
