"""Where the processes of a service group listen, and the gRPC target that reaches them all.

`serve --processes N` runs N processes of one service, each on its own port: process i listens
on `port + PROCESS_PORT_STRIDE * i`. Distinct ports let the callers balance requests: Envoy
lists every process as an endpoint of the service's cluster, and an internal gRPC channel
round-robins over them. (Sharing one port through SO_REUSEPORT does not balance: the kernel
spreads connections, not requests, and Envoy keeps one long-lived HTTP/2 connection per worker
thread, so one process could get all the traffic.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

PROCESS_PORT_STRIDE = 1000
"""Port distance between the processes of a group: clear of the default service ports
(50051-50054), each of which is the base of its own group."""


def format_host(host: str) -> str:
    """Return ``host`` as it must appear in an address or URL (IPv6 literals get brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def process_ports(port: int, processes: int) -> tuple[int, ...]:
    """The ports of a group of `processes` processes whose first one listens on `port`."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if processes > 1 and port == 0:
        raise ValueError("a process group needs a fixed port: its callers must know the ports")
    ports = tuple(port + PROCESS_PORT_STRIDE * i for i in range(processes))
    if ports[-1] > 65535:
        raise ValueError(
            f"{processes} processes from port {port} need port {ports[-1]}, above 65535"
        )
    return ports


def group_target(host: str, ports: Sequence[int]) -> str:
    """A gRPC target naming every process of a group (`host` must be an IP literal when there
    are several, as gRPC's static address list takes no DNS names)."""
    if len(ports) == 1:
        return f"{format_host(host)}:{ports[0]}"
    scheme = "ipv6" if ipaddress.ip_address(host).version == 6 else "ipv4"
    return f"{scheme}:" + ",".join(f"{format_host(host)}:{port}" for port in ports)
