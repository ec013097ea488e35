"""gRPC adapters of the content service: unpack the request, call one domain function, pack."""

from __future__ import annotations

from typing import Any

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from betterworld.content.v1 import content_pb2_grpc as pb_grpc
from google.api import httpbody_pb2

from services.content import convert, debates, decisions, problems, search, solutions
from services.content.commands import (
    NewDebate,
    NewProblem,
    NewSolution,
    ProblemChanges,
    ProblemQuery,
    SearchQuery,
    SolutionChanges,
    SolutionQuery,
)
from services.content.deps import ContentDeps
from services.content.model import (
    DataSource,
    Decision,
    EstimatedCost,
    ExpectedImpact,
    RiskMitigation,
    SelfAudit,
    SolutionScores,
)
from services.core.context import Principal, current_principal, set_response_header
from services.core.convert import domain_name, enum_name, page_meta
from services.core.pagination import Page

Context = grpc.aio.ServicerContext


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _impact(request: Any) -> ExpectedImpact | None:
    if not request.HasField("expected_impact"):
        return None
    impact = request.expected_impact
    return ExpectedImpact(impact.metric, impact.value, impact.timeframe)


def _cost(request: Any) -> EstimatedCost | None:
    if not request.HasField("estimated_cost"):
        return None
    return EstimatedCost(request.estimated_cost.amount, request.estimated_cost.currency)


def new_problem(request: pb.CreateProblemRequest) -> NewProblem:
    """The command of a CreateProblemRequest."""
    audit = None
    if request.HasField("self_audit"):
        audit = SelfAudit(
            request.self_audit.aligned,
            domain_name(request.self_audit.domain),
            request.self_audit.justification,
        )
    return NewProblem(
        title=request.title,
        description=request.description,
        domain=domain_name(request.domain),
        severity=enum_name(pb.Severity, request.severity),
        geographic_scope=enum_name(pb.GeographicScope, request.geographic_scope),
        affected_population_estimate=request.affected_population_estimate,
        location_name=request.location_name,
        latitude=_optional(request, "latitude"),
        longitude=_optional(request, "longitude"),
        data_sources=tuple(DataSource(s.type, s.url) for s in request.data_sources),
        evidence_links=tuple(request.evidence_links),
        existing_solutions=tuple(request.existing_solutions),
        self_audit=audit,
    )


def problem_changes(request: pb.UpdateProblemRequest) -> ProblemChanges:
    """The command of an UpdateProblemRequest (unset fields and enums change nothing)."""
    return ProblemChanges(
        title=_optional(request, "title"),
        description=_optional(request, "description"),
        domain=domain_name(request.domain) or None,
        severity=enum_name(pb.Severity, request.severity) or None,
        geographic_scope=enum_name(pb.GeographicScope, request.geographic_scope) or None,
        affected_population_estimate=_optional(request, "affected_population_estimate"),
        location_name=_optional(request, "location_name"),
        latitude=_optional(request, "latitude"),
        longitude=_optional(request, "longitude"),
    )


def new_solution(request: pb.CreateSolutionRequest) -> NewSolution:
    """The command of a CreateSolutionRequest."""
    return NewSolution(
        problem_id=request.problem_id,
        title=request.title,
        description=request.description,
        approach=request.approach,
        timeline_estimate=request.timeline_estimate,
        expected_impact=_impact(request),
        estimated_cost=_cost(request),
        risks_and_mitigations=tuple(
            RiskMitigation(r.risk, r.mitigation) for r in request.risks_and_mitigations
        ),
        required_skills=tuple(request.required_skills),
        required_locations=tuple(request.required_locations),
    )


def solution_changes(request: pb.UpdateSolutionRequest) -> SolutionChanges:
    """The command of an UpdateSolutionRequest."""
    return SolutionChanges(
        title=_optional(request, "title"),
        description=_optional(request, "description"),
        approach=_optional(request, "approach"),
        timeline_estimate=_optional(request, "timeline_estimate"),
        expected_impact=_impact(request),
        estimated_cost=_cost(request),
    )


def problem_query(request: pb.ListProblemsRequest) -> ProblemQuery:
    """The query of a ListProblemsRequest."""
    return ProblemQuery(
        domain=domain_name(request.domain) or None,
        severity=enum_name(pb.Severity, request.severity) or None,
        status=enum_name(pb.Problem.Status, request.status) or "ACTIVE",
        mine=request.mine,
        guardrail_status=enum_name(common_pb2.GuardrailStatus, request.guardrail_status) or None,
        sort={
            pb.ListProblemsRequest.UPVOTES: "upvotes",
            pb.ListProblemsRequest.SOLUTIONS: "solutions",
        }.get(request.sort, "recent"),
    )


def solution_query(request: pb.ListSolutionsRequest) -> SolutionQuery:
    """The query of a ListSolutionsRequest."""
    return SolutionQuery(
        problem_id=request.problem_id,
        status=enum_name(pb.Solution.Status, request.status) or None,
        mine=request.mine,
        by_score=request.sort == pb.ListSolutionsRequest.SCORE,
    )


class ContentServicer(pb_grpc.ContentServiceServicer):
    """betterworld.content.v1.ContentService."""

    def __init__(self, deps: ContentDeps) -> None:
        self._deps = deps

    async def CreateProblem(  # noqa: N802
        self, request: pb.CreateProblemRequest, context: Context
    ) -> pb.CreateProblemResponse:
        principal = current_principal()
        record, duplicates = await problems.create_problem(
            self._deps, principal, new_problem(request)
        )
        set_response_header("x-http-status", "201")
        return pb.CreateProblemResponse(
            problem=convert.problem(record, principal),
            possible_duplicates=[convert.similar(d) for d in duplicates],
        )

    async def GetProblem(self, request: pb.GetProblemRequest, context: Context) -> pb.Problem:  # noqa: N802
        principal = current_principal()
        record = await problems.get_problem(self._deps, principal, request.problem_id)
        return convert.problem(record, principal)

    async def ListProblems(  # noqa: N802
        self, request: pb.ListProblemsRequest, context: Context
    ) -> pb.ListProblemsResponse:
        principal = current_principal()
        page = await self._problem_page(request, principal)
        return convert.list_response(page, principal, convert.problem, pb.ListProblemsResponse)

    async def ListProblemsJson(  # noqa: N802
        self, request: pb.ListProblemsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        principal = current_principal()
        page = await self._problem_page(request, principal)
        return convert.list_json(page, principal, convert.problem, pb.ListProblemsResponse)

    async def _problem_page(
        self, request: pb.ListProblemsRequest, principal: Principal | None
    ) -> Page:
        return await problems.list_problems(
            self._deps,
            principal,
            problem_query(request),
            limit=request.limit,
            cursor=request.cursor,
        )

    async def UpdateProblem(  # noqa: N802
        self, request: pb.UpdateProblemRequest, context: Context
    ) -> pb.Problem:
        principal = current_principal()
        record = await problems.update_problem(
            self._deps, principal, request.problem_id, problem_changes(request)
        )
        return convert.problem(record, principal)

    async def ArchiveProblem(  # noqa: N802
        self, request: pb.ArchiveProblemRequest, context: Context
    ) -> pb.Problem:
        principal = current_principal()
        record = await problems.archive_problem(self._deps, principal, request.problem_id)
        return convert.problem(record, principal)

    async def ListSimilarProblems(  # noqa: N802
        self, request: pb.ListSimilarProblemsRequest, context: Context
    ) -> pb.ListSimilarProblemsResponse:
        items = await problems.similar_problems(
            self._deps, current_principal(), request.problem_id, request.limit
        )
        return pb.ListSimilarProblemsResponse(data=[convert.similar(i) for i in items])

    async def CreateSolution(  # noqa: N802
        self, request: pb.CreateSolutionRequest, context: Context
    ) -> pb.Solution:
        principal = current_principal()
        record = await solutions.create_solution(self._deps, principal, new_solution(request))
        set_response_header("x-http-status", "201")
        return convert.solution(record, principal)

    async def GetSolution(self, request: pb.GetSolutionRequest, context: Context) -> pb.Solution:  # noqa: N802
        principal = current_principal()
        record = await solutions.get_solution(self._deps, principal, request.solution_id)
        return convert.solution(record, principal)

    async def ListSolutions(  # noqa: N802
        self, request: pb.ListSolutionsRequest, context: Context
    ) -> pb.ListSolutionsResponse:
        principal = current_principal()
        page = await self._solution_page(request, principal)
        return convert.list_response(page, principal, convert.solution, pb.ListSolutionsResponse)

    async def ListSolutionsJson(  # noqa: N802
        self, request: pb.ListSolutionsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        principal = current_principal()
        page = await self._solution_page(request, principal)
        return convert.list_json(page, principal, convert.solution, pb.ListSolutionsResponse)

    async def _solution_page(
        self, request: pb.ListSolutionsRequest, principal: Principal | None
    ) -> Page:
        return await solutions.list_solutions(
            self._deps,
            principal,
            solution_query(request),
            limit=request.limit,
            cursor=request.cursor,
        )

    async def UpdateSolution(  # noqa: N802
        self, request: pb.UpdateSolutionRequest, context: Context
    ) -> pb.Solution:
        principal = current_principal()
        record = await solutions.update_solution(
            self._deps, principal, request.solution_id, solution_changes(request)
        )
        return convert.solution(record, principal)

    async def ArchiveSolution(  # noqa: N802
        self, request: pb.ArchiveSolutionRequest, context: Context
    ) -> pb.Solution:
        principal = current_principal()
        record = await solutions.archive_solution(self._deps, principal, request.solution_id)
        return convert.solution(record, principal)

    async def CreateDebate(  # noqa: N802
        self, request: pb.CreateDebateRequest, context: Context
    ) -> pb.Debate:
        record = await debates.create_debate(
            self._deps,
            current_principal(),
            NewDebate(
                solution_id=request.solution_id,
                stance=enum_name(pb.Debate.Stance, request.stance),
                content=request.content,
                parent_debate_id=request.parent_debate_id,
                evidence_links=tuple(request.evidence_links),
            ),
        )
        set_response_header("x-http-status", "201")
        return convert.debate(record)

    async def ListDebates(  # noqa: N802
        self, request: pb.ListDebatesRequest, context: Context
    ) -> pb.ListDebatesResponse:
        page = await debates.list_debates(
            self._deps,
            current_principal(),
            request.solution_id,
            limit=request.limit,
            cursor=request.cursor,
        )
        return pb.ListDebatesResponse(
            data=[convert.debate(r) for r in page.items], meta=page_meta(page)
        )

    async def SearchContent(  # noqa: N802
        self, request: pb.SearchContentRequest, context: Context
    ) -> pb.SearchContentResponse:
        hits = await search.search_content(
            self._deps,
            SearchQuery(
                text=request.q,
                kind=convert.kind(request.kind),
                domain=domain_name(request.domain) or None,
                limit=request.limit,
            ),
        )
        return pb.SearchContentResponse(data=[convert.hit(h) for h in hits])


class ContentInternalServicer(pb_grpc.ContentInternalServiceServicer):
    """betterworld.content.v1.ContentInternalService (internal credential only)."""

    def __init__(self, deps: ContentDeps) -> None:
        self._deps = deps

    async def ApplyGuardrailDecision(  # noqa: N802
        self, request: pb.ApplyGuardrailDecisionRequest, context: Context
    ) -> pb.ApplyGuardrailDecisionResponse:
        outcome = await decisions.apply_decision(self._deps, _decision(request))
        return pb.ApplyGuardrailDecisionResponse(applied=outcome.applied, stale=outcome.stale)

    async def ApplyGuardrailDecisions(  # noqa: N802
        self, request: pb.ApplyGuardrailDecisionsRequest, context: Context
    ) -> pb.ApplyGuardrailDecisionsResponse:
        results = await decisions.apply_decisions(
            self._deps, [_decision(item) for item in request.decisions]
        )
        return pb.ApplyGuardrailDecisionsResponse(
            results=[
                pb.ApplyGuardrailDecisionResponse(applied=outcome.applied, stale=outcome.stale)
                for outcome in results
            ]
        )

    async def GetAuthorStanding(  # noqa: N802
        self, request: pb.GetAuthorStandingRequest, context: Context
    ) -> pb.GetAuthorStandingResponse:
        count = await decisions.author_standing(
            self._deps, request.author_agent_id, at_most=request.at_most
        )
        return pb.GetAuthorStandingResponse(approved_items=count)


def _decision(request: pb.ApplyGuardrailDecisionRequest) -> Decision:
    scores = None
    if request.HasField("scores"):
        s = request.scores
        scores = SolutionScores(s.impact, s.feasibility, s.cost_efficiency, s.composite)
    return Decision(
        kind=convert.kind(request.kind),
        content_id=request.content_id,
        evaluation_id=request.evaluation_id,
        status=enum_name(common_pb2.GuardrailStatus, request.status),
        alignment_score=request.alignment_score,
        aligned_domain=domain_name(request.aligned_domain) or None,
        explanation=request.explanation,
        scores=scores,
    )
