"""What a service declares once: its contract, default ports, tables and how to run it.

Each service package exports one `ServiceDefinition` (`services/<name>/definition.py`), and the
registry (`services/registry.py`) lists them. Everything that names services derives from the
registry: the command line, the local stack, port settings, Envoy's routes and retries, schema
collection for migrations and the compose file. A definition module stays light (the contract's
descriptors and a few callables that import the service's code when called), so listing the
services costs no more than reading their contracts.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from google.api import annotations_pb2
from google.protobuf.descriptor import ServiceDescriptor

from services.core.policy import Access, MethodPolicy, method_path, policies_of

if TYPE_CHECKING:
    import grpc

    from services.core.business_gauges import BusinessGauges
    from services.core.jobs import JobConsumer, WorkerResources
    from services.core.runtime import Runtime


def lazy(target: str) -> Callable[..., Any]:
    """A callable standing for `"package.module:function"`, imported on the first call: a
    definition names its service's code without importing it."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"lazy target {target!r} is not 'module:function'")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"lazy({target})"
    return call


MAX_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024
"""1 MiB bodies are the public limit (Envoy answers 413 above it), plus room for framing."""


@dataclass(frozen=True, kw_only=True)
class ServiceDefinition:
    """One service of the mesh."""

    name: str
    """Short name: "agent", "content", ...; also its process, cluster and compose service name."""
    contract: tuple[ServiceDescriptor, ...]
    """The gRPC services it serves; each RPC declares its policy in the contract."""
    port: int
    """Default gRPC port (`<NAME>_PORT` overrides it)."""
    metrics_port: int
    """Default Prometheus port (`METRICS_PORT_<NAME>` overrides it)."""
    register: Callable[[grpc.aio.Server, Runtime], None]
    """Adds the servicers to a server."""
    tables: tuple[str, ...] = ()
    """Modules that define its tables (imported when the schema is collected)."""
    background: Callable[[Runtime], list[Coroutine[Any, Any, None]]] | None = None
    """Long-running loops of the process (started after the server, cancelled before close)."""
    jobs: Callable[[WorkerResources], Awaitable[list[JobConsumer]]] | None = None
    """Builds its job consumers in the worker process (queues it consumes, sweeps)."""
    business_gauges: BusinessGauges | None = None
    """Gauges of the business it computes from its own tables, refreshed by the worker on a
    schedule (never per scrape) and exported on the worker's metrics endpoint."""
    max_message_bytes: int = MAX_MESSAGE_BYTES
    """The largest request message it accepts. Raised only deliberately, for a service that
    takes files, and matched by Envoy's body limit on the routes that carry them."""

    @property
    def grpc_services(self) -> tuple[str, ...]:
        """Fully-qualified names of the gRPC services it registers."""
        return tuple(service.full_name for service in self.contract)

    @cached_property
    def streaming_methods(self) -> frozenset[str]:
        """gRPC paths of its client- or server-streaming RPCs."""
        return frozenset(
            method_path(service, method)
            for service in self.contract
            for method in service.methods
            if method.client_streaming or method.server_streaming
        )

    @cached_property
    def policies(self) -> Mapping[str, MethodPolicy]:
        """Every RPC's policy by gRPC path, from the contract."""
        return policies_of(self.contract)

    @property
    def routed_services(self) -> tuple[str, ...]:
        """The gRPC services Envoy routes: those with an RPC that is not internal-only."""
        return tuple(
            service.full_name
            for service in self.contract
            if any(
                self.policies[method_path(service, method)].access is not Access.INTERNAL
                for method in service.methods
            )
        )

    @property
    def read_only_methods(self) -> tuple[str, ...]:
        """Read-only RPCs of the routed services (Envoy may retry them)."""
        routed = set(self.routed_services)
        return tuple(
            path
            for path, policy in self.policies.items()
            if policy.read_only and path.split("/")[1] in routed
        )

    @cached_property
    def server_streaming_methods(self) -> tuple[str, ...]:
        """Routed RPCs that answer with a stream (downloads, feeds): no route timeout."""
        routed = set(self.routed_services)
        return tuple(
            method_path(service, method)
            for service in self.contract
            for method in service.methods
            if method.server_streaming and service.full_name in routed
        )

    @cached_property
    def upload_paths(self) -> tuple[str, ...]:
        """HTTP paths (templates, e.g. `/api/v1/missions/{mission_id}/evidence`) whose request
        body is a raw file (a `google.api.HttpBody` body field): they take bodies up to
        `max_message_bytes` (less framing room) instead of the JSON limit."""
        paths = []
        for service in self.contract:
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                field = method.input_type.fields_by_name.get(rule.body)
                if (
                    field is not None
                    and field.message_type is not None
                    and field.message_type.full_name == "google.api.HttpBody"
                ):
                    paths.append(getattr(rule, rule.WhichOneof("pattern") or "post"))
        return tuple(paths)

    def import_tables(self) -> None:
        """Imports its table modules, so the shared metadata describes them."""
        for module in self.tables:
            importlib.import_module(module)
