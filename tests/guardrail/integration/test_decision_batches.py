"""ApplyGuardrailDecisions (several decisions per call) and the worker's DecisionBatcher."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from prometheus_client import REGISTRY

from services.content.model import MAX_BATCH as CONTENT_MAX_BATCH
from services.core.metrics import GRPC_HANDLED
from services.core.queues import EvaluationJob
from services.guardrail.apply import MAX_BATCH, DecisionBatcher
from services.guardrail.decision import Verdict
from tests.support.content import ContentClient
from tests.support.helpers import unpack


def _decision(
    problem: pb.Problem, status: int, **extra: object
) -> pb.ApplyGuardrailDecisionRequest:
    return pb.ApplyGuardrailDecisionRequest(
        kind=pb.PROBLEM,
        content_id=str(extra.pop("content_id", problem.problem_id)),
        evaluation_id=problem.guardrail_evaluation_id,
        status=status,  # type: ignore[arg-type]
        alignment_score=0.9,
        **extra,  # type: ignore[arg-type]
    )


async def _status(content: ContentClient, problem: pb.Problem, author_auth: object) -> int:
    current = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem.problem_id), metadata=author_auth
    )
    return current.guardrail_status


async def test_a_batch_applies_each_decision_and_answers_in_order(content: ContentClient) -> None:
    author = await content.agent()
    first, second = await content.problem(author), await content.problem(author)
    response = await content.internal.ApplyGuardrailDecisions(
        pb.ApplyGuardrailDecisionsRequest(
            decisions=[
                _decision(first, common_pb2.APPROVED),
                _decision(second, common_pb2.REJECTED, explanation="off topic"),
                _decision(first, common_pb2.APPROVED),  # a repeat: not applied again
                _decision(first, common_pb2.APPROVED, content_id=uuid.uuid4()),  # unknown item
            ]
        ),
        metadata=content.internal_auth,
    )
    assert [(r.applied, r.stale) for r in response.results] == [
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]
    assert await _status(content, first, author.auth) == common_pb2.APPROVED
    assert await _status(content, second, author.auth) == common_pb2.REJECTED


async def test_one_invalid_decision_rejects_the_batch_and_none_is_applied(
    content: ContentClient,
) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.internal.ApplyGuardrailDecisions(
            pb.ApplyGuardrailDecisionsRequest(
                decisions=[
                    _decision(problem, common_pb2.APPROVED),
                    _decision(problem, common_pb2.APPROVED, content_id="not-a-uuid"),
                ]
            ),
            metadata=content.internal_auth,
        )
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.field_violations) == ["decisions[1].content_id"]
    assert await _status(content, problem, author.auth) == common_pb2.PENDING


@pytest.mark.parametrize("count", [0, 101])
async def test_a_batch_has_1_to_100_decisions(content: ContentClient, count: int) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.internal.ApplyGuardrailDecisions(
            pb.ApplyGuardrailDecisionsRequest(
                decisions=[_decision(problem, common_pb2.APPROVED)] * count
            ),
            metadata=content.internal_auth,
        )
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.field_violations) == ["decisions"]


async def test_batches_need_the_internal_credential(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await content.internal.ApplyGuardrailDecisions(
            pb.ApplyGuardrailDecisionsRequest(decisions=[_decision(problem, common_pb2.APPROVED)]),
            metadata=author.auth,
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await _status(content, problem, author.auth) == common_pb2.PENDING


def _job(problem: pb.Problem) -> EvaluationJob:
    return EvaluationJob(
        evaluation_id=problem.guardrail_evaluation_id,
        kind="problem",
        content_id=problem.problem_id,
        author_agent_id=problem.author_agent_id,
        title=problem.title,
        body=problem.description,
        claimed_domain="clean_water_sanitation",
    )


def _batch_calls() -> float:
    """ApplyGuardrailDecisions calls handled so far (any outcome)."""
    return sum(
        sample.value
        for metric in GRPC_HANDLED.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels["grpc_method"] == "ApplyGuardrailDecisions"
    )


def _observed_sizes() -> float:
    return REGISTRY.get_sample_value("guardrail_decision_batch_size_sum") or 0.0


def _batcher(
    content: ContentClient, *, linger_seconds: float, token: str | None = None
) -> DecisionBatcher:
    """A batcher calling the test's content service (with the internal credential unless
    `token` says otherwise)."""
    secret = content.settings.internal_service_token.get_secret_value()
    return DecisionBatcher(content.service.channel, token or secret, linger_seconds=linger_seconds)


async def test_the_batcher_sends_decisions_reached_together_in_one_call(
    content: ContentClient,
) -> None:
    author = await content.agent()
    problems = [await content.problem(author) for _ in range(5)]
    batcher = _batcher(content, linger_seconds=0.2)
    before, sizes_before = _batch_calls(), _observed_sizes()
    await asyncio.gather(
        *(batcher.apply(_job(p), Verdict("FLAGGED", "needs a human"), None) for p in problems)
    )
    assert _batch_calls() - before == 1
    assert _observed_sizes() - sizes_before == 5  # guardrail_decision_batch_size_sum
    for problem in problems:
        assert await _status(content, problem, author.auth) == common_pb2.FLAGGED
    await batcher.aclose()


async def test_a_failed_batch_fails_every_decision_in_it(content: ContentClient) -> None:
    author = await content.agent()
    problems = [await content.problem(author) for _ in range(3)]
    batcher = _batcher(content, linger_seconds=0.05, token="not-the-token")
    results = await asyncio.gather(
        *(batcher.apply(_job(p), Verdict("APPROVED", ""), None) for p in problems),
        return_exceptions=True,
    )
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
    for problem in problems:
        assert await _status(content, problem, author.auth) == common_pb2.PENDING
    await batcher.aclose()


async def test_the_batcher_never_sends_more_than_the_contract_allows(
    content: ContentClient,
) -> None:
    assert MAX_BATCH == CONTENT_MAX_BATCH
    author = await content.agent()
    problem = await content.problem(author)
    batcher = _batcher(content, linger_seconds=0.2)
    before = _batch_calls()
    # The same decision 150 times: 100 go at once, 50 when the linger ends; one applies.
    await asyncio.gather(
        *(
            batcher.apply(_job(problem), Verdict("FLAGGED", "needs a human"), None)
            for _ in range(150)
        )
    )
    assert _batch_calls() - before == 2
    assert await _status(content, problem, author.auth) == common_pb2.FLAGGED
    await batcher.aclose()
