"""Ports of a service's process group, and the gRPC target that reaches every process."""

from __future__ import annotations

import pytest

from services.core.process_ports import group_target, process_ports
from services.registry import REGISTRY
from tooling.stack import Stack, local_envoy_spec

Settings = REGISTRY.settings_type()


def test_each_process_has_its_own_port_clear_of_the_other_services() -> None:
    assert process_ports(50052, 1) == (50052,)
    assert process_ports(50052, 3) == (50052, 51052, 52052)
    defaults = {50051, 50052, 50053, 50054}
    groups = [set(process_ports(port, 16)) for port in sorted(defaults)]
    assert all(len(a & b) == 0 for i, a in enumerate(groups) for b in groups[i + 1 :])


@pytest.mark.parametrize(
    ("port", "processes", "message"),
    [
        (0, 2, "fixed port"),
        (60000, 7, "above 65535"),
        (50052, 0, "at least 1"),
    ],
)
def test_impossible_groups_are_refused(port: int, processes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        process_ports(port, processes)


def test_one_process_on_a_free_port_is_still_allowed() -> None:
    assert process_ports(0, 1) == (0,)


def test_group_targets() -> None:
    assert group_target("127.0.0.1", (50052,)) == "127.0.0.1:50052"
    assert group_target("127.0.0.1", (50052, 51052)) == "ipv4:127.0.0.1:50052,127.0.0.1:51052"
    assert group_target("::1", (1, 1001)) == "ipv6:[::1]:1,[::1]:1001"
    with pytest.raises(ValueError):
        group_target("content", (1, 1001))  # a name cannot list several addresses


def test_the_local_stack_routes_to_every_process() -> None:
    settings = Settings(_env_file=None, service_processes=2)  # type: ignore[call-arg]
    upstreams = {u.name: u.ports for u in local_envoy_spec(settings).upstreams}
    assert set(upstreams) == set(REGISTRY.names)
    assert upstreams["content"] == (settings.content_port, settings.content_port + 1000)
    assert Stack(settings).env()["CONTENT_INTERNAL_TARGET"] == (
        f"ipv4:127.0.0.1:{settings.content_port},127.0.0.1:{settings.content_port + 1000}"
    )
