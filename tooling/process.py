"""Process entry points: each builds its runtime once (the composition root) and closes it."""

from __future__ import annotations

import re

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.core.runtime import Runtime, build_runtime
from services.core.server import ServiceServer, run_until_signalled
from services.core.settings import Settings
from services.registry import REGISTRY, Registry
from tooling.seed import Seeded, seed_demo

_OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")


async def serve(
    service: str,
    settings: Settings,
    *,
    registry: Registry = REGISTRY,
    port: int | None = None,
    reuse_port: bool = False,
    metrics: bool = True,
) -> int:
    """Runs one service process until SIGTERM/SIGINT; returns the exit code.

    Without `metrics` the process serves no metrics endpoint of its own (in a process group
    the supervisor serves the group's; so does a `reuse_port` process, whose siblings would
    contend for the same metrics port).
    """
    runtime = build_runtime(settings)
    grpc_port, metrics_port = settings.service_ports(service)
    server = ServiceServer(
        registry.get(service),
        runtime,
        host=settings.host,
        port=grpc_port if port is None else port,
        metrics_port=metrics_port if metrics and not reuse_port else 0,
        reuse_port=reuse_port,
    )
    await run_until_signalled(server)
    return 0


async def seed(settings: Settings) -> Seeded:
    """Seeds demo data into an empty database."""
    runtime: Runtime = build_runtime(settings)
    try:
        return await seed_demo(runtime)
    finally:
        await runtime.close()


async def backfill_embeddings(settings: Settings, *, batch_size: int) -> int:
    """Embeds all items missing a search vector from the configured provider; returns how many."""
    from services.content.embedding import backfill
    from services.content.service import build_deps

    runtime = build_runtime(settings)
    try:
        return await backfill(build_deps(runtime), batch_size=batch_size)
    finally:
        await runtime.close()


async def create_operator_key(settings: Settings, name: str) -> str:
    """Creates (or reuses) the operator `name` and returns a new key for it."""
    if not _OPERATOR_NAME.match(name):
        raise SystemExit("operator name: 1-100 letters, digits, spaces or ._@- characters")
    runtime = build_runtime(settings)
    try:
        key = generate_key(OPERATOR_KEY_PREFIX)
        await credentials.create_operator(
            runtime.engine, name=name, digest=key.digest, display_prefix=key.display_prefix
        )
        return key.plaintext
    finally:
        await runtime.close()
