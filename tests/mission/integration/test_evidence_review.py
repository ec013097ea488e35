"""Verification beyond the happy path: split or doubtful votes go to an operator, whose decision
is final; a rejection is appealed once; the automatic check decides by its bands and a check
applied twice (a retried job, a worker killed between assessing and recording) pays once; and
evidence is visible only to its submitter, the mission's author, operators and its reviewers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import grpc
import pytest
from betterworld.mission.v1 import evidence_pb2 as pb
from betterworld.mission.v1 import missions_pb2, tokens_pb2, tokens_pb2_grpc
from pydantic import SecretStr
from sqlalchemy import text

from services.core.context import Principal, PrincipalKind
from services.core.settings import Settings
from services.mission.claude_vision import TOOL_NAME as VISION_TOOL
from services.mission.definition import DEFINITION as MISSION
from services.mission.deps import MissionDeps
from services.mission.evidence import submit_evidence
from services.mission.evidence_model import EvidenceStatus, PairPosition
from services.mission.evidence_validation import valid_evidence_meta
from services.mission.review import check_round
from services.mission.service import build_deps
from services.mission.vision import Assessment, AssessmentUnavailable, EvidenceCheck
from tests.fakes.anthropic_api import FakeAnthropicAPI, tool_use
from tests.support.content import ContentClient
from tests.support.evidence import Auth, EvidenceWorld, operator_auth, png
from tests.support.helpers import refused, start_service
from tests.support.humans import Humans
from tests.support.missions import MissionWorld

REASON = "The photo does not show the sampling point the mission names."


async def _balance(evidence_world: EvidenceWorld, human: Auth) -> int:
    stub = tokens_pb2_grpc.TokenServiceStub(evidence_world.world.service.channel)
    return (await stub.GetBalance(tokens_pb2.GetBalanceRequest(), metadata=human)).balance


async def _assigned(
    evidence_world: EvidenceWorld, evidence_id: str, peers: list[Auth]
) -> list[Auth]:
    found = []
    for peer in peers:
        tasks = await evidence_world.reviews.ListPendingPeerReviews(
            pb.ListPendingPeerReviewsRequest(), metadata=peer
        )
        mine = [t for t in tasks.data if t.evidence.evidence_id == evidence_id]
        if mine:
            assert mine[0].mission_title  # each task carries its mission
            found.append(peer)
    return found


async def test_split_votes_go_to_an_operator_whose_approval_pays_the_full_reward(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed(token_reward=30)
    peers = [await evidence_world.world.human() for _ in range(3)]
    evidence = await evidence_world.submit(mission_id, human)
    assigned = await _assigned(evidence_world, evidence.evidence_id, peers)
    await evidence_world.vote(evidence.evidence_id, assigned[0], approve=True, confidence=0.9)
    await evidence_world.vote(evidence.evidence_id, assigned[1], approve=False, confidence=0.8)
    last = await evidence_world.vote(
        evidence.evidence_id, assigned[2], approve=True, confidence=0.4
    )
    assert last.evidence_status == pb.Evidence.DISPUTED  # (0.9 - 0.8 + 0.4) / 3 = 0.17
    operator = await operator_auth(evidence_world.world)
    disputes = await evidence_world.admin.ListDisputes(pb.ListDisputesRequest(), metadata=operator)
    (dispute,) = [d for d in disputes.data if d.evidence.evidence_id == evidence.evidence_id]
    assert dispute.reason == "LOW_CONFIDENCE" and len(dispute.votes) == 3
    # Its own votes, in the order they were cast.
    assert {v.evidence_id for v in dispute.votes} == {evidence.evidence_id}
    assert [v.confidence for v in dispute.votes] == pytest.approx([0.9, 0.8, 0.4])
    denied = await refused(
        evidence_world.admin.ListDisputes(pb.ListDisputesRequest(), metadata=human)
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED

    before = await _balance(evidence_world, human)
    resolved = await evidence_world.admin.ResolveDispute(
        pb.ResolveDisputeRequest(
            evidence_id=evidence.evidence_id, decision=pb.APPROVE, reasoning=REASON
        ),
        metadata=operator,
    )
    assert (resolved.status, resolved.decided_by, resolved.reward) == (
        pb.Evidence.VERIFIED,
        pb.Evidence.OPERATOR,
        30,
    )
    assert await _balance(evidence_world, human) - before == 30
    final = await refused(
        evidence_world.admin.ResolveDispute(
            pb.ResolveDisputeRequest(
                evidence_id=evidence.evidence_id, decision=pb.REJECT, reasoning=REASON
            ),
            metadata=operator,
        )
    )
    assert (final.code, final.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ALREADY_DECIDED")
    short = await refused(
        evidence_world.admin.ResolveDispute(
            pb.ResolveDisputeRequest(evidence_id=evidence.evidence_id, reasoning="short"),
            metadata=operator,
        )
    )
    assert set(short.field_violations) == {"reasoning"} or set(short.field_violations) == {
        "decision"
    }
    async with evidence_world.world.service.runtime.engine.connect() as conn:
        audit = (
            await conn.execute(
                text("SELECT action FROM audit_log WHERE target_id = :e"),
                {"e": evidence.evidence_id},
            )
        ).all()
    assert [a for (a,) in audit] == ["evidence.resolve"]


async def test_a_rejection_is_appealed_once_and_the_claim_waits_again(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed()
    peers = [await evidence_world.world.human() for _ in range(3)]
    evidence = await evidence_world.submit(mission_id, human)
    for peer in await _assigned(evidence_world, evidence.evidence_id, peers):
        answer = await evidence_world.vote(
            evidence.evidence_id, peer, approve=False, confidence=0.95
        )
    assert answer.evidence_status == pb.Evidence.REJECTED
    # The claim is active again: the human may send better evidence while it lasts.
    again = await evidence_world.submit(mission_id, human)
    assert again.status == pb.Evidence.IN_REVIEW

    short = await refused(
        evidence_world.evidence.AppealEvidence(
            pb.AppealEvidenceRequest(evidence_id=evidence.evidence_id, reason="no"),
            metadata=human,
        )
    )
    assert "reason" in short.field_violations
    appealed = await evidence_world.evidence.AppealEvidence(
        pb.AppealEvidenceRequest(evidence_id=evidence.evidence_id, reason=REASON), metadata=human
    )
    assert appealed.status == pb.Evidence.APPEALED and appealed.appealed
    twice = await refused(
        evidence_world.evidence.AppealEvidence(
            pb.AppealEvidenceRequest(evidence_id=evidence.evidence_id, reason=REASON),
            metadata=human,
        )
    )
    assert (twice.code, twice.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_REJECTED")
    operator = await operator_auth(evidence_world.world)
    disputes = await evidence_world.admin.ListDisputes(pb.ListDisputesRequest(), metadata=operator)
    assert [d.reason for d in disputes.data if d.evidence.evidence_id == evidence.evidence_id] == [
        "APPEAL"
    ]
    rejected = await evidence_world.admin.ResolveDispute(
        pb.ResolveDisputeRequest(
            evidence_id=evidence.evidence_id, decision=pb.REJECT, reasoning=REASON
        ),
        metadata=operator,
    )
    assert rejected.status == pb.Evidence.REJECTED and rejected.appealed
    final = await refused(
        evidence_world.evidence.AppealEvidence(
            pb.AppealEvidenceRequest(evidence_id=evidence.evidence_id, reason=REASON),
            metadata=human,
        )
    )
    assert final.reason == "ALREADY_APPEALED"


async def test_evidence_is_seen_only_by_its_submitter_author_operators_and_reviewers(
    evidence_world: EvidenceWorld,
) -> None:
    agent, mission_id, human = await evidence_world.claimed()
    peers = [await evidence_world.world.human() for _ in range(3)]
    evidence = await evidence_world.submit(mission_id, human)
    stranger = await evidence_world.world.human()
    other_agent = await evidence_world.world.content.agent()
    request = pb.GetEvidenceRequest(evidence_id=evidence.evidence_id)
    for caller in (stranger, other_agent.auth):
        hidden = await refused(evidence_world.evidence.GetEvidence(request, metadata=caller))
        assert hidden.code == grpc.StatusCode.NOT_FOUND
    anonymous = await refused(evidence_world.evidence.GetEvidence(request))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    assert (await evidence_world.evidence.GetEvidence(request, metadata=agent.auth)).human_id
    listing = pb.ListEvidenceRequest(mission_id=mission_id)
    assert len((await evidence_world.evidence.ListEvidence(listing, metadata=agent.auth)).data) == 1
    assert (await evidence_world.evidence.ListEvidence(listing, metadata=stranger)).data == []
    denied = await refused(evidence_world.evidence.ListEvidence(listing, metadata=other_agent.auth))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    reviewer = (await _assigned(evidence_world, evidence.evidence_id, peers))[0]
    download = pb.DownloadEvidenceRequest(evidence_id=evidence.evidence_id)
    chunks = [
        c async for c in evidence_world.evidence.DownloadEvidence(download, metadata=reviewer)
    ]
    assert b"".join(c.data for c in chunks)[:4] == b"\x89PNG"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        _ = [c async for c in evidence_world.evidence.DownloadEvidence(download, metadata=stranger)]
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


class _Scripted:
    """An assessor answering from a list (the protocol's double; Claude's own tests use the
    real client against the fake Messages API)."""

    def __init__(self, *answers: Assessment | Exception | None) -> None:
        self.answers = list(answers)
        self.checked: list[EvidenceCheck] = []

    async def assess(self, check: EvidenceCheck) -> Assessment | None:
        self.checked.append(check)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _submit_with(
    deps: MissionDeps, evidence_world: EvidenceWorld, **fields: object
) -> tuple[str, Auth]:
    """Evidence submitted through the domain with `deps` (an automatic check configured)."""
    _, mission_id, human = await evidence_world.claimed(**fields)
    claims = await evidence_world.world.missions.ListMyClaims(
        missions_pb2.ListMyClaimsRequest(), metadata=human
    )
    principal = Principal(kind=PrincipalKind.HUMAN, id=claims.data[0].human_id, name="h")
    meta = valid_evidence_meta(
        latitude=None,
        longitude=None,
        captured_at="",
        notes="",
        pair_id="",
        sequence=PairPosition.STANDALONE,
        now=deps.clock(),
    )

    async def one() -> AsyncIterator[bytes]:
        yield png()

    record = await submit_evidence(
        deps, principal, mission_id, meta, content_type="image/png", chunks=one()
    )
    assert record.status is EvidenceStatus.PENDING  # waits for the check
    return record.id, human


async def _status(evidence_world: EvidenceWorld, evidence_id: str) -> tuple[str, float | None, str]:
    async with evidence_world.world.service.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, final_confidence, decided_by FROM evidence WHERE id = :e"),
                {"e": evidence_id},
            )
        ).one()
    return row[0], row[1], row[2]


async def test_the_automatic_check_decides_by_its_bands_and_pays_once_when_run_twice(
    evidence_world: EvidenceWorld,
) -> None:
    await evidence_world.world.human()  # someone to review the middle band
    checker = _Scripted(
        Assessment(0.93, "The bottles are at the point."),
        Assessment(0.65, "Bottles, but the place is unclear."),
        Assessment(0.2, "A photo of a cat."),
    )
    deps = dataclasses.replace(build_deps(evidence_world.world.service.runtime), assessor=checker)
    sure, human = await _submit_with(deps, evidence_world, token_reward=40)
    before = await _balance(evidence_world, human)
    # Two workers at once, then a retry: one verdict, one payment.
    moved = await asyncio.gather(check_round(deps), check_round(deps))
    assert sorted(moved) == [0, 1] and await check_round(deps) == 0
    assert await _balance(evidence_world, human) - before == 37  # floor(40 x 0.93)
    assert await _status(evidence_world, sure) == ("verified", 0.93, "automatic")
    async with evidence_world.world.service.runtime.engine.connect() as conn:
        paid = (
            await conn.execute(
                text("SELECT count(*) FROM token_ledger WHERE idempotency_key = :k"),
                {"k": f"evidence:{sure}"},
            )
        ).scalar_one()
    assert paid == 1
    assert checker.checked[0].mission_title.startswith("Sample the lake")

    middle, _ = await _submit_with(deps, evidence_world)
    await check_round(deps)
    assert (await _status(evidence_world, middle))[0] == "in_review"
    doubtful, _ = await _submit_with(deps, evidence_world)
    await check_round(deps)
    assert await _status(evidence_world, doubtful) == ("rejected", 0.2, "automatic")


async def test_a_check_that_keeps_failing_hands_the_evidence_to_peers(
    evidence_world: EvidenceWorld,
) -> None:
    await evidence_world.world.human()
    checker = _Scripted(*[AssessmentUnavailable("overloaded")] * 3)
    deps = dataclasses.replace(build_deps(evidence_world.world.service.runtime), assessor=checker)
    evidence_id, _ = await _submit_with(deps, evidence_world)
    for _ in range(2):
        assert await check_round(deps, lease_seconds=0) == 0
        assert (await _status(evidence_world, evidence_id))[0] == "pending"
    # The third failure was the last attempt: peers take it over in the same round.
    assert await check_round(deps, lease_seconds=0) == 1
    assert (await _status(evidence_world, evidence_id))[0] == "in_review"
    assert len(checker.checked) == 3


async def test_with_a_key_claude_checks_new_evidence_and_its_verdict_pays(
    content: ContentClient, mission_settings: Settings
) -> None:
    """The whole automatic path through the real `anthropic` client and the fake Messages API:
    submitted evidence waits, the worker's round asks Claude once, and the answer decides."""
    async with FakeAnthropicAPI(api_key="test-key") as fake:
        settings = mission_settings.model_copy(
            update={
                "content_internal_target": content.service.address,
                "anthropic_api_key": SecretStr("test-key"),
                "anthropic_base_url": fake.base_url,
            }
        )
        service = await start_service(dataclasses.replace(MISSION, background=None), settings)
        try:
            evidence_world = EvidenceWorld(MissionWorld(content, service, Humans(service)))
            _, mission_id, human = await evidence_world.claimed(token_reward=50)
            evidence = await evidence_world.submit(mission_id, human)
            assert evidence.status == pb.Evidence.PENDING
            fake.script(
                tool_use(
                    {
                        "confidence": 0.86,
                        "matches_required_evidence": True,
                        "location_plausible": True,
                        "reasoning": "Two labelled bottles at a lake shore, as required.",
                    },
                    name=VISION_TOOL,
                )
            )
            deps = build_deps(service.runtime)
            assert await check_round(deps) == 1
            assert await _status(evidence_world, evidence.evidence_id) == (
                "verified",
                0.86,
                "automatic",
            )
            assert await _balance(evidence_world, human) == 43  # floor(50 x 0.86)
            (request,) = fake.requests
            assert request.body["tool_choice"]["name"] == VISION_TOOL
            assert [image["media_type"] for image in request.images] == ["image/png"]
        finally:
            await service.stop()
