"""The admin API's client allow-list at Envoy: which RPCs it covers and the RBAC filter."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from google.api import annotations_pb2, http_pb2

from services.core.definition import ServiceDefinition
from services.core.policy import method_path

ADMIN_PATH_PREFIX = "/api/v1/admin/"
"""JSON paths of the admin API (the original product's); their RPCs are operator-only."""

RBAC_FILTER = "envoy.filters.http.rbac"


def _binding_paths(rule: http_pb2.HttpRule) -> list[str]:
    paths = []
    for binding in (rule, *rule.additional_bindings):
        pattern = binding.WhichOneof("pattern")
        if pattern == "custom":
            paths.append(binding.custom.path)
        elif pattern is not None:
            paths.append(getattr(binding, pattern))
    return paths


def admin_methods(definition: ServiceDefinition) -> tuple[str, ...]:
    """gRPC paths (`/package.Service/Method`) of the RPCs bound under /api/v1/admin/."""
    return tuple(
        method_path(service, method)
        for service in definition.contract
        for method in service.methods
        if any(
            path.startswith(ADMIN_PATH_PREFIX)
            for path in _binding_paths(method.GetOptions().Extensions[annotations_pb2.http])
        )
    )


def validate_cidrs(cidrs: Sequence[str]) -> None:
    """Raises ValueError naming the first entry that is not a network."""
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"admin allow-list entry {cidr!r}: {exc}") from None


def rbac_filter(cidrs: Sequence[str], methods: Sequence[str]) -> dict[str, Any]:
    """An RBAC filter that answers 403 to an admin request from outside `cidrs`.

    It sits after the gRPC-JSON transcoder, so a JSON request is judged by the RPC it was
    transcoded to, the same as a native gRPC call to that RPC: no spelling of a JSON path
    reaches an admin RPC around the list (a path no RPC is bound to is the transcoder's 404).
    The original JSON path, which the transcoder keeps in x-envoy-original-path (a header
    Envoy strips from clients), is matched on the admin prefix as well: a call under it is
    refused even for an RPC missing from `methods`. The peer address is the TCP connection's:
    nothing in front of Envoy is trusted.
    """
    validate_cidrs(cidrs)
    admin_request = [
        *({"url_path": {"path": {"exact": method}}} for method in methods),
        {
            "header": {
                "name": "x-envoy-original-path",
                "string_match": {"prefix": ADMIN_PATH_PREFIX},
            }
        },
    ]
    allowed = [
        {
            "direct_remote_ip": {
                "address_prefix": str(network.network_address),
                "prefix_len": network.prefixlen,
            }
        }
        for network in (ipaddress.ip_network(cidr) for cidr in cidrs)
    ]
    return {
        "name": RBAC_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "DENY",
                "policies": {
                    "admin_outside_allow_list": {
                        "permissions": [{"or_rules": {"rules": admin_request}}],
                        "principals": [{"not_id": {"or_ids": {"ids": allowed}}}],
                    }
                },
            },
        },
    }
