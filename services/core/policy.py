"""Per-RPC access and rate-limit policy, declared by each service next to its servicer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Access(Enum):
    """Who may call an RPC."""

    PUBLIC = "public"
    """Anyone; a valid key is still resolved (and a bad one rejected) when sent."""
    AGENT = "agent"
    """An agent API key."""
    OPERATOR = "operator"
    """An operator API key."""
    INTERNAL = "internal"
    """The internal service credential; never routed by Envoy."""


class RateClass(Enum):
    """Which bucket an RPC draws from."""

    NONE = "none"
    """Not limited (health, readiness, reflection)."""
    AUTH_IP = "auth"
    """Authentication endpoints: per client IP (10/min by default)."""
    CALLER = "caller"
    """Per agent when authenticated (30/60/override per minute), else per client IP (300/min)."""


@dataclass(frozen=True)
class MethodPolicy:
    """Access and rate policy of one RPC; `content_creation` adds the per-agent creation limit."""

    access: Access
    rate: RateClass = RateClass.CALLER
    content_creation: bool = False


PUBLIC_UNLIMITED = MethodPolicy(Access.PUBLIC, RateClass.NONE)
