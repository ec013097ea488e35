"""Public list pages served from memory: how fresh they are, and who sees what in them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from prometheus_client import REGISTRY
from sqlalchemy import update

from services.content.tables import problems
from services.core.settings import Settings
from tests.support.content import ContentClient, eventually

TTL = 0.5


@pytest.fixture
def content_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_agent_verified": 10_000,
            "rate_limit_public_per_ip": 10_000,
            "list_cache_seconds": TTL,
        }
    )


def _hits() -> float:
    return REGISTRY.get_sample_value("content_list_cache_total", {"result": "hit"}) or 0.0


async def _ids_are(content: ContentClient, expected: list[str]) -> bool:
    return await _public_ids(content) == expected


async def _public_ids(content: ContentClient, **request: object) -> list[str]:
    page = await content.content.ListProblems(pb.ListProblemsRequest(**request))  # type: ignore[arg-type]
    return [p.problem_id for p in page.data]


async def test_a_public_page_is_reused_until_it_expires(content: ContentClient) -> None:
    author = await content.agent()
    first = await content.approved_problem(author, title="Flooded basements in Riverside")
    second = await content.problem(author, title="Dry wells in the Central Valley farms")
    loop = asyncio.get_running_loop()
    loaded = loop.time()
    assert await _public_ids(content) == [first.problem_id]

    # Approved by another process (a direct write): this one serves its page until it expires.
    async with content.service.runtime.engine.begin() as conn:
        await conn.execute(
            update(problems)
            .where(problems.c.id == uuid.UUID(second.problem_id))
            .values(guardrail_status="APPROVED")
        )
    hits = _hits()
    assert await _public_ids(content) == [first.problem_id]
    assert _hits() == hits + 1
    # Expired (at most TTL after it was loaded), and served while it reloads: the next reader
    # still gets the old page (no reader waits for a query), the later ones the new page.
    await asyncio.sleep(max(0.0, loaded + TTL + 0.05 - loop.time()))
    assert await _public_ids(content) == [first.problem_id]
    await eventually(lambda: _ids_are(content, [second.problem_id, first.problem_id]), timeout=5)


async def test_writes_of_this_process_show_at_once(content: ContentClient) -> None:
    author = await content.agent()
    first = await content.approved_problem(author, title="Flooded basements in Riverside")
    assert await _public_ids(content) == [first.problem_id]

    second = await content.approved_problem(author, title="Dry wells in the Central Valley farms")
    assert await _public_ids(content) == [second.problem_id, first.problem_id]

    await content.content.ArchiveProblem(
        pb.ArchiveProblemRequest(problem_id=second.problem_id), metadata=author.auth
    )
    assert await _public_ids(content) == [first.problem_id]

    await content.content.UpdateProblem(
        pb.UpdateProblemRequest(problem_id=first.problem_id, title="Flooded basements, again"),
        metadata=author.auth,
    )
    assert await _public_ids(content) == []  # back in moderation


async def test_a_shared_page_shows_the_guardrail_outcome_to_the_author_only(
    content: ContentClient,
) -> None:
    author, other = await content.agent(), await content.agent()
    problem = await content.approved_problem(author)
    hits = _hits()
    anonymous = await content.content.ListProblems(pb.ListProblemsRequest())
    as_other = await content.content.ListProblems(pb.ListProblemsRequest(), metadata=other.auth)
    as_author = await content.content.ListProblems(pb.ListProblemsRequest(), metadata=author.auth)
    assert _hits() == hits + 2  # one page, loaded once
    assert not anonymous.data[0].HasField("guardrail")
    assert not as_other.data[0].HasField("guardrail")
    assert as_author.data[0].problem_id == problem.problem_id
    assert as_author.data[0].guardrail.status == common_pb2.APPROVED


async def test_the_callers_own_list_is_never_cached(content: ContentClient) -> None:
    author = await content.agent()
    first = await content.problem(author, title="Flooded basements in Riverside")

    async def mine() -> list[str]:
        page = await content.content.ListProblems(
            pb.ListProblemsRequest(mine=True), metadata=author.auth
        )
        return [p.problem_id for p in page.data]

    assert await mine() == [first.problem_id]
    second = await content.problem(author, title="Dry wells in the Central Valley farms")
    assert await mine() == [second.problem_id, first.problem_id]
