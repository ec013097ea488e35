"""ContentService problems over real gRPC: create, visibility, moderation hand-off, lists."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from bullmq import Queue

from services.content.deps import ContentDeps
from services.content.sql.problems import SqlProblems
from services.core.queues import GUARDRAIL_QUEUE
from tests.support.content import LAKE_PROBLEM, ContentClient
from tests.support.helpers import unpack


@pytest.fixture
def content_settings(content_settings):  # type: ignore[no-untyped-def]
    return content_settings.model_copy(update={"rate_limit_content_per_agent": 10_000})


async def test_created_problem_is_pending_queued_and_visible_only_to_its_author(
    content: ContentClient,
) -> None:
    author, other = await content.agent(), await content.agent()
    response = await content.content.CreateProblem(
        pb.CreateProblemRequest(
            **LAKE_PROBLEM,
            domain=common_pb2.CLEAN_WATER_SANITATION,
            severity=pb.HIGH,
            geographic_scope=pb.LOCAL,
            location_name="Oakland, CA",
            latitude=37.8021,
            longitude=-122.2585,
            evidence_links=["https://example.org/lake-report"],
        ),
        metadata=author.auth,
    )
    problem = response.problem
    assert problem.guardrail_status == common_pb2.PENDING
    assert problem.guardrail.evaluation_id == problem.guardrail_evaluation_id
    assert problem.location.latitude == pytest.approx(37.8021)

    queue = Queue(GUARDRAIL_QUEUE, {"connection": content.settings.redis_url})
    job = await queue.getJob(problem.guardrail_evaluation_id)
    await queue.close()
    assert job is not None
    assert job.data["content_id"] == problem.problem_id
    assert job.data["kind"] == "problem"
    assert job.data["title"] == LAKE_PROBLEM["title"]
    assert job.opts["attempts"] == 3

    request = pb.GetProblemRequest(problem_id=problem.problem_id)
    own = await content.content.GetProblem(request, metadata=author.auth)
    assert own.guardrail.status == common_pb2.PENDING
    for metadata in (other.auth, ()):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await content.content.GetProblem(request, metadata=metadata)
        assert unpack(info.value).reason == "PROBLEM_NOT_FOUND"

    await content.decide(
        pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, common_pb2.APPROVED
    )
    public = await content.content.GetProblem(request)
    assert public.guardrail_status == common_pb2.APPROVED
    assert not public.HasField("guardrail")  # the outcome is the author's business


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"title": "short"}, "title"),
        ({"description": "too short to describe anything"}, "description"),
        ({"domain": common_pb2.DOMAIN_UNSPECIFIED}, "domain"),
        ({"severity": pb.SEVERITY_UNSPECIFIED}, "severity"),
        ({"geographic_scope": 42}, "geographic_scope"),
        ({"latitude": 10.0}, "longitude"),
        ({"latitude": 91.0, "longitude": 0.0}, "latitude"),
        ({"latitude": 0.0, "longitude": -181.0}, "longitude"),
        ({"evidence_links": ["ftp://example.org/x"]}, "evidence_links[0]"),
        ({"evidence_links": ["https://e.org/"] * 21}, "evidence_links"),
        ({"affected_population_estimate": "x" * 101}, "affected_population_estimate"),
        ({"data_sources": [pb.DataSource(type="news", url="not a url")]}, "data_sources[0].url"),
    ],
)
async def test_create_problem_names_each_bad_field(
    content: ContentClient, fields: dict[str, object], bad: str
) -> None:
    author = await content.agent()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.problem(author, **fields)
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.field_violations) == [bad]


async def test_decisions_are_idempotent_and_stale_after_an_edit(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    first = await content.decide(
        pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, common_pb2.APPROVED
    )
    again = await content.decide(
        pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, common_pb2.APPROVED
    )
    assert (first.applied, first.stale) == (True, False)
    assert (again.applied, again.stale) == (False, False)

    edited = await content.content.UpdateProblem(
        pb.UpdateProblemRequest(problem_id=problem.problem_id, title="Lake Merritt algae crisis"),
        metadata=author.auth,
    )
    assert edited.guardrail_status == common_pb2.PENDING
    assert edited.guardrail_evaluation_id != problem.guardrail_evaluation_id
    assert edited.description == problem.description
    late = await content.decide(
        pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, common_pb2.REJECTED
    )
    assert late.stale
    current = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem.problem_id), metadata=author.auth
    )
    assert current.guardrail_status == common_pb2.PENDING


async def test_racing_decisions_apply_once_and_unknown_items_are_stale(
    content: ContentClient,
) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    statuses = [common_pb2.APPROVED, common_pb2.REJECTED] * 4
    results = await asyncio.gather(
        *(
            content.decide(pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, s)
            for s in statuses
        )
    )
    winners = [s for s, r in zip(statuses, results, strict=True) if r.applied]
    assert len(winners) == 1
    assert not any(r.stale for r in results)
    current = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem.problem_id), metadata=author.auth
    )
    assert current.guardrail_status == winners[0]

    unknown = await content.decide(
        pb.PROBLEM, str(uuid.uuid4()), problem.guardrail_evaluation_id, common_pb2.APPROVED
    )
    assert (unknown.applied, unknown.stale) == (False, True)


async def test_only_the_internal_credential_applies_decisions(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.internal.ApplyGuardrailDecision(
            pb.ApplyGuardrailDecisionRequest(
                kind=pb.PROBLEM,
                content_id=problem.problem_id,
                evaluation_id=problem.guardrail_evaluation_id,
                status=common_pb2.APPROVED,
            ),
            metadata=author.auth,
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_rejected_problems_show_the_explanation_to_the_author_only(
    content: ContentClient,
) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    await content.decide(
        pb.PROBLEM,
        problem.problem_id,
        problem.guardrail_evaluation_id,
        common_pb2.REJECTED,
        explanation="matches forbidden category: surveillance",
    )
    mine = await content.content.ListProblems(
        pb.ListProblemsRequest(mine=True), metadata=author.auth
    )
    assert [p.guardrail.explanation for p in mine.data] == [
        "matches forbidden category: surveillance"
    ]
    public = await content.content.ListProblems(pb.ListProblemsRequest())
    assert list(public.data) == []


async def test_lists_show_approved_problems_filtered_and_paginated_stably(
    content: ContentClient,
) -> None:
    author = await content.agent()
    for i in range(5):
        await content.approved_problem(
            author,
            title=f"Problem number {i} about water",
            domain=common_pb2.CLEAN_WATER_SANITATION if i % 2 else common_pb2.FOOD_SECURITY,
        )
    await content.problem(author, title="Still pending problem here")
    first = await content.content.ListProblems(pb.ListProblemsRequest(limit=2))
    await content.approved_problem(author, title="A newcomer problem arrives")
    rest = await content.content.ListProblems(
        pb.ListProblemsRequest(limit=10, cursor=first.meta.next_cursor)
    )
    titles = [p.title for p in (*first.data, *rest.data)]
    assert titles == [f"Problem number {i} about water" for i in reversed(range(5))]
    water = await content.content.ListProblems(
        pb.ListProblemsRequest(domain=common_pb2.CLEAN_WATER_SANITATION)
    )
    assert {p.title for p in water.data} == {
        "A newcomer problem arrives",
        "Problem number 1 about water",
        "Problem number 3 about water",
    }


async def test_only_the_author_edits_and_archived_problems_do_not_change(
    content: ContentClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    author, other = await content.agent(), await content.agent()
    problem = await content.approved_problem(author)
    embedded: list[str] = []
    embed_title = ContentDeps.embed_title

    async def counting(self: ContentDeps, title: str) -> list[float]:
        embedded.append(title)
        return await embed_title(self, title)

    monkeypatch.setattr(ContentDeps, "embed_title", counting)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.content.UpdateProblem(
            pb.UpdateProblemRequest(problem_id=problem.problem_id, title="Hijacked title here"),
            metadata=other.auth,
        )
    assert unpack(info.value).reason == "NOT_AUTHOR"
    assert embedded == []  # a refused edit costs no embedding
    archived = await content.content.ArchiveProblem(
        pb.ArchiveProblemRequest(problem_id=problem.problem_id), metadata=author.auth
    )
    assert archived.status == pb.Problem.ARCHIVED
    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await content.content.UpdateProblem(
            pb.UpdateProblemRequest(problem_id=problem.problem_id, title="Too late to edit it"),
            metadata=author.auth,
        )
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# A rewording of the seeded Lake Merritt problem: its duplicate by title.
LAKE_REWORDING = pb.CreateProblemRequest(
    title="Lake Merritt water quality is declining",
    description="Algae blooms and low oxygen in Lake Merritt, Oakland are killing fish "
    "after every storm and worry residents who use the lake.",
    domain=common_pb2.CLEAN_WATER_SANITATION,
    severity=pb.HIGH,
    geographic_scope=pb.LOCAL,
)


async def test_similar_problems_and_duplicates_come_from_embeddings(
    content: ContentClient,
) -> None:
    author = await content.agent()
    lake = await content.approved_problem(author)
    await content.approved_problem(
        author,
        title="Youth unemployment in rural towns",
        description="Young people in rural towns cannot find apprenticeships or jobs, so many "
        "leave and local businesses struggle to hire.",
        domain=common_pb2.POVERTY_REDUCTION,
    )
    response = await content.content.CreateProblem(
        LAKE_REWORDING,
        metadata=author.auth,
    )
    assert [d.problem_id for d in response.possible_duplicates] == [lake.problem_id]
    similar = await content.content.ListSimilarProblems(
        pb.ListSimilarProblemsRequest(problem_id=lake.problem_id)
    )
    assert similar.data[0].title == "Youth unemployment in rural towns"  # the only other approved
    results = await content.content.SearchContent(pb.SearchContentRequest(q="fish dying in a lake"))
    assert results.data[0].id == lake.problem_id
    assert 0 < results.data[0].similarity <= 1


async def test_a_failed_duplicate_check_still_returns_the_stored_problem(
    content: ContentClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = await content.agent()
    await content.approved_problem(author)

    async def failing(*args: object, **kwargs: object) -> list[object]:
        raise ConnectionResetError("the duplicate query's connection dropped")

    monkeypatch.setattr(SqlProblems, "similar", failing)
    response = await content.content.CreateProblem(
        LAKE_REWORDING,
        metadata=author.auth,
    )
    assert list(response.possible_duplicates) == []  # advisory: the create does not fail
    mine = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=response.problem.problem_id), metadata=author.auth
    )
    assert mine.guardrail_status == common_pb2.PENDING


async def test_creations_are_limited_per_agent(
    content_settings,
    clean_state: None,  # type: ignore[no-untyped-def]
) -> None:
    from services.content.definition import DEFINITION
    from tests.support.content import ContentClient as Client
    from tests.support.helpers import start_service

    limited = content_settings.model_copy(update={"rate_limit_content_per_agent": 3})
    service = await start_service(DEFINITION, limited)
    try:
        client = Client(service, limited)
        author = await client.agent()
        for _ in range(3):
            await client.problem(author)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.problem(author)
        error = unpack(info.value)
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "content creations" in error.message
    finally:
        await service.stop()


async def test_a_redis_outage_never_loses_a_created_problem(
    content_settings,
    clean_state: None,  # type: ignore[no-untyped-def]
) -> None:
    from services.content.definition import DEFINITION
    from tests.support.content import ContentClient as Client
    from tests.support.helpers import start_service

    broken = content_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    service = await start_service(DEFINITION, broken)
    try:
        client = Client(service, broken)
        author = await client.agent()
        problem = await asyncio.wait_for(client.problem(author), 30)
        assert problem.guardrail_status == common_pb2.PENDING
    finally:
        await service.stop()


async def test_final_decisions_are_not_overturned_but_flagged_ones_are_reviewed(
    content: ContentClient,
) -> None:
    author = await content.agent()
    approved = await content.approved_problem(author)
    late = await content.decide(
        pb.PROBLEM, approved.problem_id, approved.guardrail_evaluation_id, common_pb2.FLAGGED
    )
    assert (late.applied, late.stale) == (False, False)
    flagged = await content.problem(author)
    await content.decide(
        pb.PROBLEM, flagged.problem_id, flagged.guardrail_evaluation_id, common_pb2.FLAGGED
    )
    reviewed = await content.decide(
        pb.PROBLEM, flagged.problem_id, flagged.guardrail_evaluation_id, common_pb2.APPROVED
    )
    assert reviewed.applied
