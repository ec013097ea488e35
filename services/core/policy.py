"""Per-RPC access and rate policy, declared in the contract and read from the descriptors.

Every RPC carries `option (betterworld.common.v1.policy)`; `policies_of` reads them once at
start-up. An RPC without one (access unspecified) stops the server from starting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from betterworld.common.v1 import policy_pb2
from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

_PROTO = policy_pb2.MethodPolicy


class Access(Enum):
    """Who may call an RPC."""

    PUBLIC = "public"
    """Anyone; a valid key is still resolved (and a bad one rejected) when sent."""
    AGENT = "agent"
    """An agent API key."""
    OPERATOR = "operator"
    """An operator API key."""
    HUMAN = "human"
    """A human's access token."""
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
    """Access and rate policy of one RPC; `creation` adds the per-caller creation limit."""

    access: Access
    rate: RateClass = RateClass.CALLER
    creation: bool = False
    read_only: bool = False
    """No side effects: Envoy may retry it."""
    window: tuple[int, int] | None = None
    """(calls, seconds): the RPC's own bucket per client IP, e.g. 3 registrations in 300 s."""


PUBLIC_UNLIMITED = MethodPolicy(Access.PUBLIC, RateClass.NONE, read_only=True)

_ACCESS = {
    _PROTO.PUBLIC: Access.PUBLIC,
    _PROTO.AGENT: Access.AGENT,
    _PROTO.OPERATOR: Access.OPERATOR,
    _PROTO.HUMAN: Access.HUMAN,
    _PROTO.INTERNAL: Access.INTERNAL,
}
_RATE = {
    _PROTO.RATE_UNSPECIFIED: RateClass.CALLER,
    _PROTO.UNLIMITED: RateClass.NONE,
    _PROTO.AUTH_IP: RateClass.AUTH_IP,
}


class PolicyError(ValueError):
    """An RPC of the contract declares no access policy."""


def method_path(service: ServiceDescriptor, method: MethodDescriptor) -> str:
    """The gRPC path of a method: `/package.Service/Method`."""
    return f"/{service.full_name}/{method.name}"


def policy_of(method: MethodDescriptor) -> MethodPolicy:
    """The policy an RPC declares; raises PolicyError when it declares none."""
    options = method.GetOptions()
    declared = options.Extensions[policy_pb2.policy]
    if declared.access not in _ACCESS:
        raise PolicyError(f"{method.full_name} declares no (betterworld.common.v1.policy)")
    http = options.Extensions[annotations_pb2.http]
    if (declared.window_limit > 0) != (declared.window_seconds > 0):
        raise PolicyError(f"{method.full_name}: window_limit and window_seconds go together")
    window = (declared.window_limit, declared.window_seconds) if declared.window_limit else None
    return MethodPolicy(
        access=_ACCESS[declared.access],
        rate=_RATE[declared.rate],
        creation=declared.creation,
        read_only=declared.read_only or http.WhichOneof("pattern") == "get",
        window=window,
    )


def policies_of(services: Iterable[ServiceDescriptor]) -> Mapping[str, MethodPolicy]:
    """Every RPC's policy by gRPC path; raises PolicyError naming the RPCs that declare none."""
    policies: dict[str, MethodPolicy] = {}
    missing = []
    for service in services:
        for method in service.methods:
            try:
                policies[method_path(service, method)] = policy_of(method)
            except PolicyError:
                missing.append(method_path(service, method))
    if missing:
        raise PolicyError(f"RPCs without an access policy: {', '.join(missing)}")
    return policies
