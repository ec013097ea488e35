"""The mission service's composition: its dependencies, servicers and background loops."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import grpc
from betterworld.mission.v1 import (
    activity_pb2_grpc,
    dashboard_pb2_grpc,
    evidence_pb2_grpc,
    mission_pb2_grpc,
    missions_pb2_grpc,
    profile_pb2_grpc,
    tokens_pb2_grpc,
)

from services.core.activity import ActivityHub
from services.core.mail import build_dispatcher
from services.core.pagination import CursorCodec
from services.core.runtime import Runtime, token_signer
from services.core.s3 import S3Location
from services.core.settings import Settings
from services.mission.activity_servicer import ActivityServicer
from services.mission.decomposition import Decomposer, OfflineDecomposer
from services.mission.deps import MissionDeps
from services.mission.evidence_servicer import (
    EvidenceAdminServicer,
    EvidenceServicer,
    PeerReviewServicer,
)
from services.mission.evidence_store import EvidenceStore
from services.mission.files import FileStore, LocalFileStore, S3FileStore
from services.mission.ledger_store import LedgerStore
from services.mission.mission_servicer import (
    DashboardServicer,
    MissionInternalServicer,
    MissionServicer,
)
from services.mission.mission_store import MissionStore
from services.mission.passwords import Passwords
from services.mission.profile_servicer import ProfileServicer
from services.mission.profile_store import ProfileStore
from services.mission.servicer import HumanAdminServicer, HumanAuthServicer
from services.mission.solutions import ContentSolutions
from services.mission.store import HumanStore
from services.mission.token_servicer import TokenAdminServicer, TokenServicer
from services.mission.vision import EvidenceAssessor


def build_decomposer(settings: Settings) -> Decomposer:
    """Claude when ANTHROPIC_API_KEY is set, else the offline decomposition."""
    if settings.anthropic_api_key is None:
        return OfflineDecomposer()
    from anthropic import AsyncAnthropic

    from services.mission.claude_planner import ClaudeDecomposer

    client = AsyncAnthropic(
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        timeout=60.0,
        max_retries=2,
    )
    return ClaudeDecomposer(client, model=settings.decomposition_model)


def build_assessor(runtime: Runtime) -> EvidenceAssessor | None:
    """Claude's vision when ANTHROPIC_API_KEY is set, else None (peers review everything)."""
    settings = runtime.settings
    if settings.anthropic_api_key is None:
        return None
    from anthropic import AsyncAnthropic

    from services.core.budget import DailyBudget
    from services.mission.claude_vision import ClaudeVision

    client = AsyncAnthropic(
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        timeout=60.0,
        max_retries=2,
    )
    return ClaudeVision(
        client,
        model=settings.evidence_vision_model,
        redis=runtime.redis,
        budget=DailyBudget(
            runtime.redis,
            limit_cents=settings.evidence_vision_daily_budget_cents,
            prefix="bw:vision:budget",
        ),
    )


def build_file_store(settings: Settings) -> FileStore:
    """Evidence files on the local disk, or in the S3-compatible bucket of the settings."""
    if settings.evidence_storage == "local":
        return LocalFileStore(settings.data_dir / "evidence")

    return S3FileStore(
        S3Location.from_settings(settings, bucket=settings.s3_bucket, prefix="evidence/"),
        spool_dir=settings.data_dir / "evidence-spool",
    )


def build_deps(runtime: Runtime) -> MissionDeps:
    """The mission domain's dependencies from the process runtime."""
    settings = runtime.settings
    return MissionDeps(
        store=HumanStore(runtime.engine),
        profiles=ProfileStore(runtime.engine),
        missions=MissionStore(runtime.engine),
        ledger=LedgerStore(runtime.engine),
        evidence=EvidenceStore(runtime.engine),
        files=build_file_store(settings),
        solutions=ContentSolutions(
            runtime.channel(settings.content_internal_target),
            settings.internal_service_token.get_secret_value(),
        ),
        evaluations=runtime.evaluation_queue,
        decomposer=build_decomposer(settings),
        redis=runtime.redis,
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        tokens=token_signer(settings),
        passwords=Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
        ),
        access_lifetime=timedelta(seconds=settings.human_access_token_seconds),
        refresh_lifetime=timedelta(seconds=settings.human_refresh_token_seconds),
        claim_deadline=timedelta(days=settings.claim_deadline_days),
        assessor=build_assessor(runtime),
    )


def background(runtime: Runtime) -> list[Coroutine[Any, Any, None]]:
    """The process's loops: the verification-email outbox dispatcher."""
    return [build_dispatcher(runtime.settings, runtime.engine).run()]


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Adds the humans' (accounts and profiles) and operators' servicers."""
    deps = build_deps(runtime)
    mission_pb2_grpc.add_HumanAuthServiceServicer_to_server(HumanAuthServicer(deps), server)
    mission_pb2_grpc.add_HumanAdminServiceServicer_to_server(HumanAdminServicer(deps), server)
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(deps), server)
    missions_pb2_grpc.add_MissionServiceServicer_to_server(MissionServicer(deps), server)
    missions_pb2_grpc.add_MissionInternalServiceServicer_to_server(
        MissionInternalServicer(deps), server
    )
    dashboard_pb2_grpc.add_DashboardServiceServicer_to_server(DashboardServicer(deps), server)
    tokens_pb2_grpc.add_TokenServiceServicer_to_server(TokenServicer(deps), server)
    tokens_pb2_grpc.add_TokenAdminServiceServicer_to_server(TokenAdminServicer(deps), server)
    evidence_pb2_grpc.add_EvidenceServiceServicer_to_server(EvidenceServicer(deps), server)
    evidence_pb2_grpc.add_PeerReviewServiceServicer_to_server(PeerReviewServicer(deps), server)
    evidence_pb2_grpc.add_EvidenceAdminServiceServicer_to_server(
        EvidenceAdminServicer(deps), server
    )
    hub = ActivityHub(runtime.redis)
    runtime.on_close(hub.close)
    activity_pb2_grpc.add_ActivityServiceServicer_to_server(
        ActivityServicer(hub, runtime.stopping), server
    )
