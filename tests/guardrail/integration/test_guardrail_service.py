"""GuardrailService over real gRPC: precheck, evaluations, the review queue, stats."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2
from betterworld.guardrail.v1 import guardrail_pb2 as pb
from betterworld.guardrail.v1 import guardrail_pb2_grpc
from sqlalchemy import select

from services.core.audit import audit_log
from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.guardrail.definition import DEFINITION
from tests.support.content import ContentClient, eventually
from tests.support.helpers import RunningService, bearer, start_service, unpack

HARMFUL = (
    "We will build a covert surveillance system to track protesters from their phone data "
    "and hand the list to their employers."
)


@pytest.fixture
async def guardrail(content: ContentClient) -> AsyncIterator[RunningService]:
    settings = content.settings.model_copy(
        update={"content_internal_target": content.service.address}
    )
    service = await start_service(DEFINITION, settings)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def stub(guardrail: RunningService) -> guardrail_pb2_grpc.GuardrailServiceStub:
    return guardrail_pb2_grpc.GuardrailServiceStub(guardrail.channel)


async def _operator(service: RunningService, name: str) -> tuple[tuple[str, str], ...]:
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        service.runtime.engine, name=name, digest=key.digest, display_prefix=key.display_prefix
    )
    return tuple(bearer(key.plaintext))


async def test_precheck_runs_the_rules_without_a_model(content: ContentClient, stub: Any) -> None:
    agent = await content.agent()
    harmful = await stub.PrecheckContent(
        pb.PrecheckContentRequest(content_type=pb.PROBLEM, title="Plan", text=HARMFUL),
        metadata=agent.auth,
    )
    assert not harmful.passes_rules
    assert "surveillance" in {m.category for m in harmful.matches if not m.suppressed}
    benign = await stub.PrecheckContent(
        pb.PrecheckContentRequest(
            content_type=pb.PROBLEM,
            title="Water quality",
            text="Volunteers monitor water quality in the river and report pollution to the city.",
        ),
        metadata=agent.auth,
    )
    assert benign.passes_rules
    assert not benign.cached
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PrecheckContent(pb.PrecheckContentRequest(text="x"), metadata=agent.auth)
    assert list(unpack(info.value).field_violations) == ["content_type"]


async def test_evaluations_are_pending_then_decided_and_private(
    content: ContentClient, stub: Any, run_worker: Any, local_classifier: Any
) -> None:
    author, other = await content.agent(), await content.agent()
    problem = await content.problem(author)
    request = pb.GetEvaluationRequest(evaluation_id=problem.guardrail_evaluation_id)
    pending = await stub.GetEvaluation(request, metadata=author.auth)
    assert pending.decision == common_pb2.PENDING
    for metadata in (other.auth, ()):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetEvaluation(request, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    await run_worker(local_classifier)

    async def decided() -> bool:
        evaluation = await stub.GetEvaluation(request, metadata=author.auth)
        return evaluation.decision != common_pb2.PENDING

    await eventually(decided)
    evaluation = await stub.GetEvaluation(request, metadata=author.auth)
    assert evaluation.decision == common_pb2.FLAGGED  # a brand-new author
    assert evaluation.trust_tier == "new"
    assert evaluation.classifier == "local-minilm-exemplars-v1+intent"
    assert evaluation.timings_ms["layer_a"] < 5


async def test_review_queue_claims_are_exclusive_and_reviews_apply(
    content: ContentClient,
    guardrail: RunningService,
    stub: Any,
    run_worker: Any,
    local_classifier: Any,
) -> None:
    alice, bob = await _operator(guardrail, "alice"), await _operator(guardrail, "bob")
    author = await content.agent()
    problem = await content.problem(author)
    await run_worker(local_classifier)

    async def flagged() -> bool:
        return bool((await stub.ListFlagged(pb.ListFlaggedRequest(), metadata=alice)).data)

    await eventually(flagged)
    item = (await stub.ListFlagged(pb.ListFlaggedRequest(), metadata=alice)).data[0]
    assert item.content_id == problem.problem_id
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.ListFlagged(pb.ListFlaggedRequest(), metadata=author.auth)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    claims = await asyncio.gather(
        *(
            stub.ClaimFlagged(pb.ClaimFlaggedRequest(flagged_id=item.flagged_id), metadata=op)
            for op in (alice, bob) * 5
        ),
        return_exceptions=True,
    )
    winners = {c.claimed_by for c in claims if isinstance(c, pb.FlaggedItem)}
    assert len(winners) == 1
    winner = alice if winners == {"alice"} else bob
    loser = bob if winner is alice else alice
    losses = [unpack(c).reason for c in claims if isinstance(c, grpc.aio.AioRpcError)]
    assert losses and set(losses) == {"ALREADY_CLAIMED"}

    review = pb.ReviewFlaggedRequest(
        flagged_id=item.flagged_id,
        decision=pb.ReviewFlaggedRequest.APPROVE,
        notes="Clear, well-sourced water quality report.",
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_yours:
        await stub.ReviewFlagged(review, metadata=loser)
    assert unpack(not_yours.value).reason == "NOT_CLAIMED_BY_YOU"
    with pytest.raises(grpc.aio.AioRpcError) as short:
        await stub.ReviewFlagged(
            pb.ReviewFlaggedRequest(flagged_id=item.flagged_id, decision=1, notes="ok"),
            metadata=winner,
        )
    assert list(unpack(short.value).field_violations) == ["notes"]
    done = await stub.ReviewFlagged(review, metadata=winner)
    assert done.status == pb.FlaggedItem.RESOLVED
    published = await content.content.GetProblem(
        content_pb2.GetProblemRequest(problem_id=problem.problem_id)
    )
    assert published.guardrail_status == common_pb2.APPROVED
    async with guardrail.runtime.engine.connect() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.operator_name))).all()
    assert [tuple(a) for a in actions] == [("guardrail.review", next(iter(winners)))]

    stats = await stub.GetGuardrailStats(pb.GetGuardrailStatsRequest(), metadata=alice)
    assert stats.evaluations == 1
    assert stats.flag_rate == 1.0
    assert stats.flagged_waiting == 0
    assert stats.layer_a_p99_ms > 0


async def test_review_from_the_terminal(
    content: ContentClient,
    guardrail: RunningService,
    stub: Any,
    run_worker: Any,
    local_classifier: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tooling.cli import build_parser
    from tooling.review_cli import run_review

    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        guardrail.runtime.engine, name="carol", digest=key.digest, display_prefix=key.display_prefix
    )
    monkeypatch.setenv("BW_OPERATOR_KEY", key.plaintext)
    author = await content.agent()
    problem = await content.problem(author)
    await run_worker(local_classifier)
    alice = tuple(bearer(key.plaintext))

    async def flagged() -> bool:
        return bool((await stub.ListFlagged(pb.ListFlaggedRequest(), metadata=alice)).data)

    await eventually(flagged)

    async def cli(*argv: str) -> int:
        args = build_parser().parse_args(["review", "--target", guardrail.address, *argv])
        return await asyncio.to_thread(run_review, args, content.settings)

    assert await cli("list") == 0
    listed = re.search(r"^([0-9a-f-]{36})  problem +WAITING", capsys.readouterr().out, re.M)
    assert listed, "the queue listing names the flagged problem"
    flagged_id = listed.group(1)
    assert await cli("claim", flagged_id) == 0
    assert await cli("approve", flagged_id, "--notes", "Checked the sources; looks right.") == 0
    assert await cli("approve", flagged_id, "--notes", "again") == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    published = await content.content.GetProblem(
        content_pb2.GetProblemRequest(problem_id=problem.problem_id)
    )
    assert published.guardrail_status == common_pb2.APPROVED
