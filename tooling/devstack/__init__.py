"""Process manager for the embedded local stack: PostgreSQL and Valkey on local TCP ports."""

from tooling.devstack.ports import free_port
from tooling.devstack.postgres import EmbeddedPostgres
from tooling.devstack.valkey import EmbeddedValkey

__all__ = ["EmbeddedPostgres", "EmbeddedValkey", "free_port"]
