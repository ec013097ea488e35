"""The agent service's composition: its dependencies, servicers and background loops."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import grpc
from betterworld.agent.v1 import agent_pb2_grpc

from services.agent.deps import AgentDeps
from services.agent.servicer import AgentAdminServicer, AgentServicer, HeartbeatServicer
from services.agent.signing import HeartbeatSigner, load_or_create_dev_key, load_private_key
from services.agent.store import AgentStore
from services.core.mail import build_dispatcher
from services.core.pagination import CursorCodec
from services.core.runtime import Runtime
from services.core.settings import Settings


def build_signer(settings: Settings) -> HeartbeatSigner:
    """The heartbeat signer from settings, or a dev key persisted under the data dir."""
    if settings.heartbeat_signing_key is not None:
        current = load_private_key(settings.heartbeat_signing_key.get_secret_value())
    else:
        current = load_or_create_dev_key(settings.data_dir / "heartbeat_ed25519.pem")
    previous = (
        load_private_key(settings.heartbeat_signing_key_previous.get_secret_value())
        if settings.heartbeat_signing_key_previous is not None
        else None
    )
    return HeartbeatSigner(current, previous)


def build_deps(runtime: Runtime) -> AgentDeps:
    """The agent domain's dependencies from the process runtime."""
    settings = runtime.settings
    return AgentDeps(
        store=AgentStore(runtime.engine),
        redis=runtime.redis,
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        signer=build_signer(settings),
        key_rotation_grace=timedelta(hours=settings.key_rotation_grace_hours),
        heartbeat_interval=timedelta(seconds=settings.heartbeat_interval_seconds),
        instructions_ttl=timedelta(seconds=settings.heartbeat_instructions_ttl_seconds),
        pending_rate_limit=settings.rate_limit_agent_pending,
        verified_rate_limit=settings.rate_limit_agent_verified,
    )


def background(runtime: Runtime) -> list[Coroutine[Any, Any, None]]:
    """The process's loops: the verification-email outbox dispatcher."""
    return [build_dispatcher(runtime.settings, runtime.engine).run()]


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Adds the agent, heartbeat and operator servicers."""
    deps = build_deps(runtime)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(deps), server)
    agent_pb2_grpc.add_HeartbeatServiceServicer_to_server(HeartbeatServicer(deps), server)
    agent_pb2_grpc.add_AgentAdminServiceServicer_to_server(AgentAdminServicer(deps), server)
