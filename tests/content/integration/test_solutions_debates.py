"""Solutions and debates: creation rules, counters under concurrency, threads, status moves."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb

from tests.support.content import Agent, ContentClient
from tests.support.helpers import unpack

APPROACH = (
    "Train volunteers to sample the lake weekly with low-cost sensors, publish the data openly "
    "and share alerts with the city's public works department."
)


@pytest.fixture
def content_settings(content_settings):  # type: ignore[no-untyped-def]
    return content_settings.model_copy(update={"rate_limit_content_per_agent": 10_000})


async def _solution(
    content: ContentClient, author: Agent, problem_id: str, **fields: object
) -> pb.Solution:
    return await content.content.CreateSolution(
        pb.CreateSolutionRequest(
            problem_id=problem_id,
            title=str(fields.pop("title", "Community water quality monitoring network")),
            description=str(
                fields.pop(
                    "description",
                    "A network of trained residents who measure water quality and report it.",
                )
            ),
            approach=APPROACH,
            **fields,  # type: ignore[arg-type]
        ),
        metadata=author.auth,
    )


async def _approve(
    content: ContentClient, kind: int, item: object, status: int = common_pb2.APPROVED
) -> None:
    content_id = getattr(item, {pb.SOLUTION: "solution_id", pb.DEBATE: "debate_id"}[kind])
    await content.decide(kind, content_id, item.guardrail_evaluation_id, status)  # type: ignore[attr-defined]


async def test_solution_rules_and_scores(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    solution = await _solution(
        content,
        author,
        problem.problem_id,
        expected_impact=pb.ExpectedImpact(
            metric="sites sampled weekly", value=12, timeframe="6 months"
        ),
        estimated_cost=pb.EstimatedCost(amount=15000, currency="usd"),
        risks_and_mitigations=[pb.RiskMitigation(risk="volunteer churn", mitigation="stipends")],
    )
    assert solution.guardrail_status == common_pb2.PENDING
    assert solution.estimated_cost.currency == "USD"
    await content.decide(
        pb.SOLUTION,
        solution.solution_id,
        solution.guardrail_evaluation_id,
        common_pb2.APPROVED,
        scores=pb.SolutionScores(impact=80, feasibility=70, cost_efficiency=60, composite=71.5),
    )
    public = await content.content.GetSolution(
        pb.GetSolutionRequest(solution_id=solution.solution_id)
    )
    assert public.scores.composite == pytest.approx(71.5)
    by_score = await content.content.ListSolutions(
        pb.ListSolutionsRequest(problem_id=problem.problem_id, sort=pb.ListSolutionsRequest.SCORE)
    )
    assert [s.solution_id for s in by_score.data] == [solution.solution_id]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"title": "tiny"}, "title"),
        ({"estimated_cost": pb.EstimatedCost(amount=-1, currency="USD")}, "estimated_cost.amount"),
        (
            {"estimated_cost": pb.EstimatedCost(amount=1, currency="dollars")},
            "estimated_cost.currency",
        ),
        ({"required_skills": ["x"] * 21}, "required_skills"),
        (
            {"risks_and_mitigations": [pb.RiskMitigation(risk="r", mitigation="m")] * 11},
            "risks_and_mitigations",
        ),
        ({"timeline_estimate": "t" * 101}, "timeline_estimate"),
    ],
)
async def test_solution_validation_names_the_field(
    content: ContentClient, fields: dict[str, object], bad: str
) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _solution(content, author, problem.problem_id, **fields)
    assert list(unpack(info.value).field_violations) == [bad]


async def test_solutions_need_a_visible_open_problem(content: ContentClient) -> None:
    author, other = await content.agent(), await content.agent()
    hidden = await content.problem(author)  # still pending: invisible to others
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _solution(content, other, hidden.problem_id)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    open_problem = await content.approved_problem(author)
    await content.content.ArchiveProblem(
        pb.ArchiveProblemRequest(problem_id=open_problem.problem_id), metadata=author.auth
    )
    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await _solution(content, other, open_problem.problem_id)
    error = unpack(closed.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PROBLEM_ARCHIVED")


async def test_solution_count_is_exact_under_concurrent_decisions(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    created = await asyncio.gather(
        *(
            _solution(content, author, problem.problem_id, title=f"Solution variant number {i}")
            for i in range(10)
        )
    )
    # Every decision twice, concurrently: each solution must count once.
    await asyncio.gather(*(_approve(content, pb.SOLUTION, s) for s in created * 2))
    counted = await content.content.GetProblem(pb.GetProblemRequest(problem_id=problem.problem_id))
    assert counted.solution_count == 10
    await content.content.ArchiveSolution(
        pb.ArchiveSolutionRequest(solution_id=created[0].solution_id), metadata=author.auth
    )
    await content.content.UpdateSolution(
        pb.UpdateSolutionRequest(
            solution_id=created[1].solution_id, title="An edited solution title"
        ),
        metadata=author.auth,
    )
    recounted = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem.problem_id)
    )
    assert recounted.solution_count == 8


async def test_debates_thread_count_and_move_the_solution_to_debating(
    content: ContentClient,
) -> None:
    author, debater = await content.agent(), await content.agent()
    problem = await content.approved_problem(author)
    solution = await _solution(content, author, problem.problem_id)
    await _approve(content, pb.SOLUTION, solution)
    text = "I support this; weekly sampling caught a similar algae bloom early in Madison."
    parent = ""
    thread = []
    for _ in range(6):
        debate = await content.content.CreateDebate(
            pb.CreateDebateRequest(
                solution_id=solution.solution_id,
                stance=pb.Debate.SUPPORT,
                content=text,
                parent_debate_id=parent,
            ),
            metadata=debater.auth,
        )
        thread.append(debate)
        parent = debate.debate_id
    assert [d.depth for d in thread] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.content.CreateDebate(
            pb.CreateDebateRequest(
                solution_id=solution.solution_id,
                stance=pb.Debate.QUESTION,
                content=text,
                parent_debate_id=parent,
            ),
            metadata=debater.auth,
        )
    assert list(unpack(info.value).field_violations) == ["parent_debate_id"]

    before = await content.content.GetSolution(
        pb.GetSolutionRequest(solution_id=solution.solution_id)
    )
    assert before.status == pb.Solution.PROPOSED
    await _approve(content, pb.DEBATE, thread[0])
    await _approve(content, pb.DEBATE, thread[1])
    await _approve(content, pb.DEBATE, thread[2], common_pb2.REJECTED)
    after = await content.content.GetSolution(
        pb.GetSolutionRequest(solution_id=solution.solution_id)
    )
    assert after.status == pb.Solution.DEBATING
    assert after.debate_count == 2
    listed = await content.content.ListDebates(
        pb.ListDebatesRequest(solution_id=solution.solution_id)
    )
    assert [d.debate_id for d in listed.data] == [thread[0].debate_id, thread[1].debate_id]


async def test_debate_parent_must_belong_to_the_same_solution(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    first, second = [await _solution(content, author, problem.problem_id) for _ in range(2)]
    for s in (first, second):
        await _approve(content, pb.SOLUTION, s)
    text = "A question about the sampling frequency and how volunteers are trained for it."
    elsewhere = await content.content.CreateDebate(
        pb.CreateDebateRequest(
            solution_id=first.solution_id, stance=pb.Debate.QUESTION, content=text
        ),
        metadata=author.auth,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.content.CreateDebate(
            pb.CreateDebateRequest(
                solution_id=second.solution_id,
                stance=pb.Debate.MODIFY,
                content=text,
                parent_debate_id=elsewhere.debate_id,
            ),
            metadata=author.auth,
        )
    assert list(unpack(info.value).field_violations) == ["parent_debate_id"]
