"""The services of the mesh, one line each; everything that lists services derives from here.

Adding a service: its contract under `protos/betterworld/<name>/v1/`, its package with a
`definition.py` exporting `DEFINITION`, one line below, and its migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from services.core.definition import ServiceDefinition
from services.core.settings import Settings, load_settings, settings_type

DEFINITION_MODULES: tuple[str, ...] = (
    "services.agent.definition",
    "services.content.definition",
    "services.guardrail.definition",
    "services.mission.definition",
)


@dataclass(frozen=True)
class Registry:
    """An ordered set of service definitions, imported from their modules on first use."""

    modules: tuple[str, ...]
    extra: tuple[ServiceDefinition, ...] = field(default=())
    """Definitions given directly (tests add a service this way)."""

    @cached_property
    def definitions(self) -> tuple[ServiceDefinition, ...]:
        """The definitions in registry order; names and ports must be unique."""
        found = [importlib.import_module(m).DEFINITION for m in self.modules]
        found += self.extra
        names = [d.name for d in found]
        if len(set(names)) != len(names):
            raise ValueError(f"services registered twice: {names}")
        ports = [p for d in found for p in (d.port, d.metrics_port)]
        if len(set(ports)) != len(ports):
            raise ValueError(f"services share default ports: {ports}")
        return tuple(found)

    @property
    def names(self) -> tuple[str, ...]:
        """Service names in registry order."""
        return tuple(d.name for d in self.definitions)

    def get(self, name: str) -> ServiceDefinition:
        """The definition of a service by name."""
        for definition in self.definitions:
            if definition.name == name:
                return definition
        raise ValueError(f"unknown service {name!r}; known: {', '.join(self.names)}")

    def default_ports(self) -> Mapping[str, tuple[int, int]]:
        """(gRPC, metrics) default ports by service name."""
        return {d.name: (d.port, d.metrics_port) for d in self.definitions}

    def settings_type(self) -> type[Settings]:
        """Settings with a port and a metrics port setting for each service."""
        return settings_type(self.default_ports())

    def load_settings(self, **overrides: object) -> Settings:
        """Reads the settings of a process of this mesh (see `core.settings.load_settings`)."""
        return load_settings(self.settings_type(), **overrides)

    def with_service(self, definition: ServiceDefinition) -> Registry:
        """This registry plus one more service."""
        return Registry(self.modules, (*self.extra, definition))


REGISTRY = Registry(DEFINITION_MODULES)
"""The mesh's services."""
