"""The mission service's composition: its dependencies, servicers and background loops."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import grpc
from betterworld.mission.v1 import mission_pb2_grpc

from services.core.mail import build_dispatcher
from services.core.pagination import CursorCodec
from services.core.runtime import Runtime, token_signer
from services.mission.deps import MissionDeps
from services.mission.passwords import Passwords
from services.mission.servicer import HumanAdminServicer, HumanAuthServicer
from services.mission.store import HumanStore


def build_deps(runtime: Runtime) -> MissionDeps:
    """The mission domain's dependencies from the process runtime."""
    settings = runtime.settings
    return MissionDeps(
        store=HumanStore(runtime.engine),
        redis=runtime.redis,
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        tokens=token_signer(settings),
        passwords=Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
        ),
        access_lifetime=timedelta(seconds=settings.human_access_token_seconds),
        refresh_lifetime=timedelta(seconds=settings.human_refresh_token_seconds),
    )


def background(runtime: Runtime) -> list[Coroutine[Any, Any, None]]:
    """The process's loops: the verification-email outbox dispatcher."""
    return [build_dispatcher(runtime.settings, runtime.engine).run()]


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Adds the humans' and operators' servicers."""
    deps = build_deps(runtime)
    mission_pb2_grpc.add_HumanAuthServiceServicer_to_server(HumanAuthServicer(deps), server)
    mission_pb2_grpc.add_HumanAdminServiceServicer_to_server(HumanAdminServicer(deps), server)
