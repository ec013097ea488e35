"""The guardrail worker end to end: queue → Layer A/B → decision → content, and failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from sqlalchemy import select

from services.content.sql import SqlContentStore
from services.guardrail.classifier.base import Classification, ClassifierError, ContentItem
from services.guardrail.classifier.local import LocalClassifier
from services.guardrail.tables import evaluations, flagged
from tests.support.content import LAKE_PROBLEM, ContentClient, eventually

Eventually = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


class BrokenModel:
    """Stands in for an unreachable model API: every call fails (retryable)."""

    name = "broken-model"

    def __init__(self) -> None:
        self.calls = 0

    async def classify(self, item: ContentItem) -> Classification:
        self.calls += 1
        raise ClassifierError("model unavailable", retryable=True)


async def _status(content: ContentClient, author: Any, problem_id: str) -> pb.Problem:
    return await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem_id), metadata=author.auth
    )


async def test_aligned_content_from_a_trusted_author_is_approved(
    content: ContentClient, run_worker: Any, local_classifier: LocalClassifier
) -> None:
    await run_worker(
        local_classifier, guardrail_new_account_days=0, guardrail_new_account_min_approved=0
    )
    author = await content.agent()
    problem = await content.problem(author)

    async def decided() -> bool:
        current = await _status(content, author, problem.problem_id)
        return current.guardrail_status != common_pb2.PENDING

    await eventually(decided)
    current = await _status(content, author, problem.problem_id)
    assert current.guardrail_status == common_pb2.APPROVED, current.guardrail.explanation
    assert current.guardrail.alignment_score >= 0.7
    async with content.service.runtime.engine.connect() as conn:
        row = (await conn.execute(select(evaluations))).one()
    assert str(row.id) == problem.guardrail_evaluation_id
    assert row.layer_a["rejected"] is False
    assert row.classifier == "local-minilm-exemplars-v1+intent"


async def test_the_trust_count_stops_at_the_threshold(content: ContentClient) -> None:
    author, newcomer = await content.agent(), await content.agent()
    first = await content.approved_problem(author)
    for title in ("Dry wells in the Central Valley", "Flooded basements in Riverside"):
        await content.approved_problem(author, title=title)
    await content.problem(author, title="A pending problem does not count")
    solution = await content.solution(author, first.problem_id)
    await content.decide(
        pb.SOLUTION, solution.solution_id, solution.guardrail_evaluation_id, common_pb2.APPROVED
    )
    standing = SqlContentStore(content.service.runtime.engine).moderation
    assert await standing.approved_items(author.agent_id, at_most=10) == 4
    assert await standing.approved_items(author.agent_id, at_most=3) == 3
    assert await standing.approved_items(author.agent_id, at_most=0) == 0
    assert await standing.approved_items(newcomer.agent_id, at_most=3) == 0


async def test_new_authors_are_flagged_and_harmful_text_rejected_without_a_model(
    content: ContentClient, run_worker: Any, local_classifier: LocalClassifier
) -> None:
    await run_worker(local_classifier)
    author = await content.agent()
    fine = await content.problem(author)
    harmful = await content.problem(
        author,
        title="Tracking protesters for the authorities",
        description="We plan to build a covert surveillance system to track protesters and "
        "identify them from phone data, then share the list with their employers.",
    )

    async def both_decided() -> bool:
        states = [await _status(content, author, p.problem_id) for p in (fine, harmful)]
        return all(s.guardrail_status != common_pb2.PENDING for s in states)

    await eventually(both_decided)
    assert (await _status(content, author, fine.problem_id)).guardrail_status == common_pb2.FLAGGED
    rejected = await _status(content, author, harmful.problem_id)
    assert rejected.guardrail_status == common_pb2.REJECTED
    assert "surveillance" in rejected.guardrail.explanation
    async with content.service.runtime.engine.connect() as conn:
        queue = (await conn.execute(select(flagged.c.content_id))).scalars().all()
    assert [str(c) for c in queue] == [fine.problem_id]


async def test_a_model_that_keeps_failing_leaves_the_item_flagged_not_pending(
    content: ContentClient, run_worker: Any
) -> None:
    model = BrokenModel()
    await run_worker(model)
    author = await content.agent()
    problem = await content.problem(author, **LAKE_PROBLEM)

    async def decided() -> bool:
        current = await _status(content, author, problem.problem_id)
        return current.guardrail_status != common_pb2.PENDING

    # 3 attempts with 1 s and 2 s backoff, delayed jobs promoted with ~1 s granularity.
    await eventually(decided, timeout=40)
    current = await _status(content, author, problem.problem_id)
    assert current.guardrail_status == common_pb2.FLAGGED
    assert "automatic evaluation failed" in current.guardrail.explanation
    assert model.calls == 3


async def test_with_an_api_key_the_worker_asks_claude_once_per_content(
    content: ContentClient, run_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    from tests.fakes.anthropic_api import FakeAnthropicAPI, plausible_evaluation

    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    async with FakeAnthropicAPI(api_key="sk-test", default=plausible_evaluation()) as fake:
        # No classifier passed: the worker builds the Claude one from settings, as in production.
        await run_worker(
            None,
            anthropic_api_key=SecretStr("sk-test"),
            anthropic_base_url=fake.base_url,
            guardrail_new_account_days=0,
            guardrail_new_account_min_approved=0,
        )
        author = await content.agent()
        first = await content.problem(author)
        await eventually(lambda: _decided(content, author, first.problem_id))
        again = await content.problem(author)  # identical text: served from the cache
        await eventually(lambda: _decided(content, author, again.problem_id))
        statuses = [
            (await _status(content, author, p.problem_id)).guardrail.alignment_score
            for p in (first, again)
        ]
        assert statuses == [pytest.approx(0.82), pytest.approx(0.82)]
        assert len(fake.requests) == 1
        request = fake.requests[0]
        assert (request.body or {})["tool_choice"]["type"] == "tool"


async def _decided(content: ContentClient, author: Any, problem_id: str) -> bool:
    current = await _status(content, author, problem_id)
    return current.guardrail_status == common_pb2.APPROVED  # type: ignore[no-any-return]
