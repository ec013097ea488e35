"""Process manager for the embedded local stack: PostgreSQL and Valkey on local TCP ports."""

from services.devstack.ports import free_port
from services.devstack.postgres import EmbeddedPostgres
from services.devstack.valkey import EmbeddedValkey

__all__ = ["EmbeddedPostgres", "EmbeddedValkey", "free_port"]
