"""Evidence over real gRPC on real PostgreSQL: a photo stored without its metadata, three peers
whose votes verify it, complete the claim and pay once, and the sweep of files no row names."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
from betterworld.mission.v1 import evidence_pb2 as pb
from betterworld.mission.v1 import tokens_pb2, tokens_pb2_grpc
from PIL import Image
from sqlalchemy import text

from tests.support.evidence import (
    EvidenceWorld,
    jpeg_with_gps,
)
from tests.support.helpers import refused


async def _balance(evidence_world: EvidenceWorld, human: tuple[tuple[str, str], ...]) -> int:
    stub = tokens_pb2_grpc.TokenServiceStub(evidence_world.world.service.channel)
    return (await stub.GetBalance(tokens_pb2.GetBalanceRequest(), metadata=human)).balance


async def _sql(
    evidence_world: EvidenceWorld, query: str, **params: object
) -> list[tuple[object, ...]]:
    async with evidence_world.world.service.runtime.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(query), params)).all()]


def _stored_files(evidence_world: EvidenceWorld) -> list[Path]:
    root = evidence_world.world.service.runtime.settings.data_dir / "evidence"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_photo_goes_to_three_peers_whose_votes_verify_it_and_pay_once(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed(token_reward=25)
    peers = [await evidence_world.world.human() for _ in range(4)]
    submitted = await evidence_world.submit(
        mission_id, human, jpeg_with_gps(), "image/jpeg", notes="done"
    )
    assert submitted.status == pb.Evidence.IN_REVIEW
    assert submitted.media_type == "image/jpeg" and submitted.notes == "done"
    assert (
        round(submitted.exif_latitude, 3) == 37.802
        and round(submitted.exif_longitude, 3) == -122.257
    )
    # The stored copy carries no EXIF at all, and that is what downloads return.
    chunks = [
        c
        async for c in evidence_world.evidence.DownloadEvidence(
            pb.DownloadEvidenceRequest(evidence_id=submitted.evidence_id), metadata=human
        )
    ]
    stored = b"".join(c.data for c in chunks)
    assert chunks[0].content_type == "image/jpeg"
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert b"Phone X" not in stored and len(stored) == submitted.size_bytes

    claims = await _sql(
        evidence_world, "SELECT status FROM mission_claims WHERE id = :c", c=submitted.claim_id
    )
    assert claims == [("submitted",)]
    assigned = [
        p
        for p in peers
        if any(
            t.evidence.evidence_id == submitted.evidence_id
            for t in (
                await evidence_world.reviews.ListPendingPeerReviews(
                    pb.ListPendingPeerReviewsRequest(), metadata=p
                )
            ).data
        )
    ]
    assert len(assigned) == 3
    task = (
        await evidence_world.reviews.ListPendingPeerReviews(
            pb.ListPendingPeerReviewsRequest(), metadata=assigned[0]
        )
    ).data[0]
    assert task.evidence.human_id == "" and task.mission_title.startswith("Sample the lake")

    own = await refused(evidence_world.vote(submitted.evidence_id, human))
    assert (own.code, own.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ASSIGNED")
    before = await _balance(evidence_world, human)
    for i, peer in enumerate(assigned):
        answer = await evidence_world.vote(submitted.evidence_id, peer)
        assert answer.reward == 2
        assert answer.evidence_status == (pb.Evidence.VERIFIED if i == 2 else pb.Evidence.IN_REVIEW)
    again = await refused(evidence_world.vote(submitted.evidence_id, assigned[0]))
    assert (again.code, again.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_VOTED")

    assert await _balance(evidence_world, human) - before == 22  # floor(25 x 0.9)
    assert [await _balance(evidence_world, p) for p in assigned] == [2, 2, 2]
    final = await evidence_world.evidence.GetEvidence(
        pb.GetEvidenceRequest(evidence_id=submitted.evidence_id), metadata=human
    )
    assert (final.status, final.reward, final.decided_by) == (
        pb.Evidence.VERIFIED,
        22,
        pb.Evidence.PEERS,
    )
    assert round(final.final_confidence, 4) == 0.9
    rows = await _sql(
        evidence_world,
        "SELECT c.status, m.active_claims, m.completed_claims, m.status FROM mission_claims c "
        "JOIN missions m ON m.id = c.mission_id WHERE c.id = :c",
        c=submitted.claim_id,
    )
    assert rows == [("completed", 0, 1, "completed")]
    history = await _sql(
        evidence_world,
        "SELECT action, actor_kind FROM evidence_history WHERE evidence_id = :e "
        "ORDER BY created_at",
        e=submitted.evidence_id,
    )
    assert [a for a, _ in history] == [
        "submitted",
        "assigned",
        "voted",
        "voted",
        "voted",
        "verified",
    ]
    status = await evidence_world.evidence.GetEvidenceStatus(
        pb.GetEvidenceStatusRequest(evidence_id=submitted.evidence_id), metadata=human
    )
    assert (status.reviewers_assigned, status.votes_cast) == (3, 3)
    history_of_peer = await evidence_world.reviews.ListMyPeerReviews(
        pb.ListMyPeerReviewsRequest(), metadata=assigned[0]
    )
    assert [v.evidence_id for v in history_of_peer.data] == [submitted.evidence_id]


async def test_the_orphan_sweep_removes_only_old_files_no_row_names(
    evidence_world: EvidenceWorld,
) -> None:
    from services.mission.jobs import sweep_orphans
    from services.mission.service import build_deps

    _, mission_id, human = await evidence_world.claimed()
    kept = await evidence_world.submit(mission_id, human)
    deps = build_deps(evidence_world.world.service.runtime)

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    orphan = await deps.files.put(
        one(b"%PDF-1.7 a file whose row never landed %%EOF"), max_bytes=1024
    )
    assert await sweep_orphans(deps) == 0  # within the grace: its row may be about to commit
    assert await sweep_orphans(deps, grace=timedelta(0)) == 1
    keys = [key async for key, _ in deps.files.stored()]
    assert keys == [kept.sha256] and orphan.key not in keys
