"""gRPC adapters of MissionService, MissionInternalService and DashboardService."""

from __future__ import annotations

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.mission.v1 import dashboard_pb2, dashboard_pb2_grpc
from betterworld.mission.v1 import missions_pb2 as pb
from betterworld.mission.v1 import missions_pb2_grpc as pb_grpc

from services.core.context import caller, current_principal, set_response_header
from services.core.convert import (
    datetime_field,
    domain_value,
    enum_name,
    known_enum_name,
    page_meta,
    timestamp,
)
from services.mission import claims, dashboard, missions
from services.mission.decomposition import Suggestion
from services.mission.deps import MissionDeps
from services.mission.model import (
    ClaimEdit,
    ClaimRecord,
    ClaimStatus,
    EvidenceItem,
    MissionDraft,
    MissionEdit,
    MissionQuery,
    MissionRecord,
    MissionStatus,
    SolutionSource,
    Step,
)
from services.mission.servicer import human_message
from services.mission.token_servicer import balance_message

Context = grpc.aio.ServicerContext
_SORTS = {pb.NEWEST: "newest", pb.REWARD: "reward", pb.DISTANCE: "distance"}


def _lower(enum: object, value: int) -> str:
    return enum_name(enum, value).lower()


def _optional(message: object, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None  # type: ignore[attr-defined]


def _steps(items: object) -> tuple[Step, ...]:
    return tuple(Step(i.step, i.text, i.optional) for i in items)  # type: ignore[attr-defined]


def _evidence(items: object) -> tuple[EvidenceItem, ...]:
    return tuple(
        EvidenceItem(_lower(pb.EvidenceType, e.type), e.description, e.required)
        for e in items  # type: ignore[attr-defined]
    )


def _instruction_messages(steps: tuple[Step, ...]) -> list[pb.Instruction]:
    return [pb.Instruction(step=s.step, text=s.text, optional=s.optional) for s in steps]


def evidence_messages(items: tuple[EvidenceItem, ...]) -> list[pb.EvidenceRequirement]:
    """The proof a mission asks for."""
    return [
        pb.EvidenceRequirement(
            type=pb.EvidenceType.Value(e.type.upper()),
            description=e.description,
            required=e.required,
        )
        for e in items
    ]


def mission_message(mission: MissionRecord, *, exact: bool, author: bool) -> pb.Mission:
    """A mission as this caller may see it: exact coordinates for the author and claimers,
    rounded to 2 decimals (about 1 km) for everyone else; the guardrail's explanation for
    the author only."""
    fields = mission.fields
    message = pb.Mission(
        mission_id=mission.id,
        solution_id=mission.solution_id,
        problem_id=mission.problem_id,
        author_agent_id=mission.author_agent_id,
        title=fields.title,
        description=fields.description,
        instructions=_instruction_messages(fields.instructions),
        evidence_required=evidence_messages(fields.evidence_required),
        required_skills=list(fields.required_skills),
        location_name=fields.location_name,
        location_radius_km=fields.location_radius_km,
        estimated_duration_minutes=fields.estimated_duration_minutes,
        difficulty=pb.Difficulty.Value(fields.difficulty.upper()),
        token_reward=fields.token_reward,
        bonus_for_quality=fields.bonus_for_quality,
        max_claims=fields.max_claims,
        active_claims=mission.active_claims,
        status=pb.Mission.Status.Value(mission.status.value.upper()),
        domain=domain_value(mission.domain),
        guardrail_status=common_pb2.GuardrailStatus.Value(mission.guardrail_status.upper()),
        guardrail_explanation=mission.guardrail_explanation if author else "",
        expires_at=timestamp(fields.expires_at),
        created_at=timestamp(mission.created_at),
        updated_at=timestamp(mission.updated_at),
        version=mission.version,
    )
    if fields.latitude is not None and fields.longitude is not None:
        if exact:
            message.latitude, message.longitude = fields.latitude, fields.longitude
        else:
            message.latitude = round(fields.latitude, 2)
            message.longitude = round(fields.longitude, 2)
            message.location_approximate = True
    if mission.distance_m is not None:
        message.distance_km = round(mission.distance_m / 1000, 3)
    return message


def suggestion_message(suggestion: Suggestion, source: SolutionSource) -> pb.MissionSuggestion:
    """A suggested mission, placed where the solution's problem is."""
    message = pb.MissionSuggestion(
        title=suggestion.title,
        description=suggestion.description,
        instructions=_instruction_messages(suggestion.instructions),
        evidence_required=evidence_messages(suggestion.evidence_required),
        required_skills=list(suggestion.required_skills),
        estimated_duration_minutes=suggestion.estimated_duration_minutes,
        difficulty=pb.Difficulty.Value(suggestion.difficulty.upper()),
        token_reward=suggestion.token_reward,
        location_name=source.location_name,
    )
    if source.latitude is not None and source.longitude is not None:
        message.latitude, message.longitude = source.latitude, source.longitude
    return message


def claim_message(claim: ClaimRecord) -> pb.Claim:
    """A claim."""
    return pb.Claim(
        claim_id=claim.id,
        mission_id=claim.mission_id,
        human_id=claim.human_id,
        status=pb.Claim.Status.Value(claim.status.value.upper()),
        progress_percent=claim.progress_percent,
        notes=claim.notes,
        claimed_at=timestamp(claim.claimed_at),
        deadline_at=timestamp(claim.deadline_at),
        updated_at=timestamp(claim.updated_at),
        mission_title=claim.mission_title,
    )


def _public(page_items: list[MissionRecord]) -> list[pb.Mission]:
    principal = current_principal()
    return [
        mission_message(
            m,
            exact=principal is not None and principal.id == m.author_agent_id,
            author=principal is not None and principal.id == m.author_agent_id,
        )
        for m in page_items
    ]


class MissionServicer(pb_grpc.MissionServiceServicer):
    """MissionService: missions and claims."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def CreateMission(  # noqa: N802
        self, request: pb.CreateMissionRequest, context: Context
    ) -> pb.Mission:
        draft = MissionDraft(
            solution_id=request.solution_id,
            title=request.title,
            description=request.description,
            instructions=_steps(request.instructions),
            evidence_required=_evidence(request.evidence_required),
            required_skills=tuple(request.required_skills),
            latitude=_optional(request, "latitude"),
            longitude=_optional(request, "longitude"),
            location_name=request.location_name,
            location_radius_km=request.location_radius_km,
            estimated_duration_minutes=request.estimated_duration_minutes,
            difficulty=_lower(pb.Difficulty, request.difficulty),
            token_reward=request.token_reward,
            bonus_for_quality=request.bonus_for_quality,
            max_claims=request.max_claims,
            expires_at=datetime_field(request, "expires_at"),
        )
        mission = await missions.create_mission(self._deps, caller(), draft)
        set_response_header("x-http-status", "201")
        return mission_message(mission, exact=True, author=True)

    async def GetMission(  # noqa: N802
        self, request: pb.GetMissionRequest, context: Context
    ) -> pb.Mission:
        principal = current_principal()
        viewed = await missions.get_mission(self._deps, principal, request.mission_id)
        author = principal is not None and principal.id == viewed.mission.author_agent_id
        return mission_message(viewed.mission, exact=viewed.exact_location, author=author)

    async def ListMissions(  # noqa: N802
        self, request: pb.ListMissionsRequest, context: Context
    ) -> pb.ListMissionsResponse:
        status = MissionStatus(
            known_enum_name(pb.Mission.Status, request.status, "status") or "open"
        )
        known_enum_name(pb.MissionSort, request.sort, "sort")
        query = MissionQuery(
            status=status,
            domain=known_enum_name(common_pb2.Domain, request.domain, "domain") or None,
            skills=tuple(request.skills),
            difficulty=known_enum_name(pb.Difficulty, request.difficulty, "difficulty") or None,
            min_reward=request.min_reward,
            max_reward=request.max_reward,
            max_duration_minutes=request.max_duration_minutes,
            sort=_SORTS.get(request.sort, "newest"),
        )
        page = await missions.list_missions(
            self._deps,
            query,
            lat=_optional(request, "lat"),
            lng=_optional(request, "lng"),
            radius_km=request.radius_km,
            cursor=request.cursor,
            limit=request.limit,
        )
        return pb.ListMissionsResponse(data=_public(page.items), meta=page_meta(page))

    async def ListNearbyMissions(  # noqa: N802
        self, request: pb.ListNearbyMissionsRequest, context: Context
    ) -> pb.ListMissionsResponse:
        page = await missions.list_nearby(
            self._deps,
            lat=_optional(request, "lat"),
            lng=_optional(request, "lng"),
            radius_km=request.radius,
            cursor=request.cursor,
            limit=request.limit,
        )
        return pb.ListMissionsResponse(data=_public(page.items), meta=page_meta(page))

    async def ListAgentMissions(  # noqa: N802
        self, request: pb.ListAgentMissionsRequest, context: Context
    ) -> pb.ListMissionsResponse:
        page = await missions.list_agent_missions(
            self._deps, caller(), cursor=request.cursor, limit=request.limit
        )
        return pb.ListMissionsResponse(
            data=[mission_message(m, exact=True, author=True) for m in page.items],
            meta=page_meta(page),
        )

    async def UpdateMission(  # noqa: N802
        self, request: pb.UpdateMissionRequest, context: Context
    ) -> pb.Mission:
        def sent(name: str) -> object:
            return getattr(request, name) if request.HasField(name) else None  # type: ignore[arg-type]

        edit = MissionEdit(
            version=request.version,
            title=sent("title"),  # type: ignore[arg-type]
            description=sent("description"),  # type: ignore[arg-type]
            instructions=_steps(request.instructions),
            evidence_required=_evidence(request.evidence_required),
            required_skills=tuple(request.required_skills),
            estimated_duration_minutes=sent("estimated_duration_minutes"),  # type: ignore[arg-type]
            token_reward=sent("token_reward"),  # type: ignore[arg-type]
            max_claims=sent("max_claims"),  # type: ignore[arg-type]
            expires_at=datetime_field(request, "expires_at"),
        )
        mission = await missions.update_mission(self._deps, caller(), request.mission_id, edit)
        return mission_message(mission, exact=True, author=True)

    async def ArchiveMission(  # noqa: N802
        self, request: pb.ArchiveMissionRequest, context: Context
    ) -> pb.Mission:
        mission = await missions.archive_mission(self._deps, caller(), request.mission_id)
        return mission_message(mission, exact=True, author=True)

    async def DecomposeSolution(  # noqa: N802
        self, request: pb.DecomposeSolutionRequest, context: Context
    ) -> pb.DecomposeSolutionResponse:
        source, suggestions = await missions.decompose_solution(
            self._deps, caller(), request.solution_id
        )
        return pb.DecomposeSolutionResponse(
            suggestions=[suggestion_message(s, source) for s in suggestions],
            planner=self._deps.decomposer.name,
        )

    async def ClaimMission(  # noqa: N802
        self, request: pb.ClaimMissionRequest, context: Context
    ) -> pb.Claim:
        claim = await claims.claim_mission(self._deps, caller(), request.mission_id)
        set_response_header("x-http-status", "201")
        return claim_message(claim)

    async def UpdateClaim(  # noqa: N802
        self, request: pb.UpdateClaimRequest, context: Context
    ) -> pb.Claim:
        edit = ClaimEdit(
            progress_percent=(
                request.progress_percent if request.HasField("progress_percent") else None
            ),
            notes=request.notes if request.HasField("notes") else None,
            abandon=request.abandon,
        )
        claim = await claims.update_claim(
            self._deps, caller(), request.mission_id, request.claim_id, edit
        )
        return claim_message(claim)

    async def ListMyClaims(  # noqa: N802
        self, request: pb.ListMyClaimsRequest, context: Context
    ) -> pb.ListMyClaimsResponse:
        name = known_enum_name(pb.Claim.Status, request.status, "status")
        status = ClaimStatus(name) if name else None
        page = await claims.list_my_claims(
            self._deps, caller(), status=status, cursor=request.cursor, limit=request.limit
        )
        return pb.ListMyClaimsResponse(
            data=[claim_message(c) for c in page.items], meta=page_meta(page)
        )


class MissionInternalServicer(pb_grpc.MissionInternalServiceServicer):
    """MissionInternalService: the guardrail's decisions on missions."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def ApplyMissionDecision(  # noqa: N802
        self, request: pb.ApplyMissionDecisionRequest, context: Context
    ) -> pb.ApplyMissionDecisionResponse:
        stale = await missions.apply_decision(
            self._deps,
            mission_id=request.mission_id,
            evaluation_id=request.evaluation_id,
            status=_lower(common_pb2.GuardrailStatus, request.status),
            explanation=request.explanation,
        )
        return pb.ApplyMissionDecisionResponse(stale=stale)


class DashboardServicer(dashboard_pb2_grpc.DashboardServiceServicer):
    """DashboardService: a human's home page."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def GetDashboard(  # noqa: N802
        self, request: dashboard_pb2.GetDashboardRequest, context: Context
    ) -> dashboard_pb2.Dashboard:
        board = await dashboard.get_dashboard(self._deps, caller())
        return dashboard_pb2.Dashboard(
            user=human_message(board.human),
            has_profile=board.has_profile,
            profile_completeness=board.completeness,
            profile_suggestions=list(board.suggestions),
            active_claims=board.active_claims,
            completed_claims=board.completed_claims,
            current_claims=[claim_message(c) for c in board.current_claims],
            tokens=balance_message(board.tokens),
        )
