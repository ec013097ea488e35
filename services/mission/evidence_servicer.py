"""gRPC adapters of EvidenceService, PeerReviewService and EvidenceAdminService."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc
from betterworld.mission.v1 import evidence_pb2 as pb
from betterworld.mission.v1 import evidence_pb2_grpc as pb_grpc
from google.api import httpbody_pb2

from services.core import errors
from services.core.context import caller, current_principal, set_response_header
from services.core.convert import known_enum_name, page_meta, timestamp
from services.mission import evidence, review
from services.mission.deps import MissionDeps
from services.mission.evidence_model import (
    EvidenceMeta,
    EvidenceRecord,
    PairPosition,
    Progress,
    ReviewTask,
    VoteRecord,
)
from services.mission.evidence_validation import valid_evidence_meta
from services.mission.mission_servicer import evidence_messages

Context = grpc.aio.ServicerContext


def evidence_message(record: EvidenceRecord, *, anonymous: bool = False) -> pb.Evidence:
    """A piece of evidence; `anonymous` leaves out its submitter (for peer reviewers)."""
    meta, facts = record.meta, record.facts
    message = pb.Evidence(
        evidence_id=record.id,
        mission_id=record.mission_id,
        claim_id=record.claim_id,
        human_id="" if anonymous else record.human_id,
        status=pb.Evidence.Status.Value(record.status.value.upper()),
        media_type=facts.media_type,
        size_bytes=facts.size,
        sha256=facts.sha256,
        captured_at=timestamp(meta.captured_at),
        exif_taken_at=timestamp(facts.exif_taken_at),
        notes=meta.notes,
        pair_id=meta.pair_id,
        sequence=pb.EvidenceSequence.Value(meta.sequence.value.upper()),
        final_confidence=record.final_confidence or 0.0,
        decided_by=(
            pb.Evidence.Decider.Value(record.decided_by.value.upper())
            if record.decided_by
            else pb.Evidence.DECIDER_UNSPECIFIED
        ),
        decision_reason=record.decision_reason,
        reward=record.reward,
        appealed=record.appealed,
        width=facts.width,
        height=facts.height,
        submitted_at=timestamp(record.submitted_at),
        decided_at=timestamp(record.decided_at),
    )
    if meta.latitude is not None and meta.longitude is not None:
        message.latitude, message.longitude = meta.latitude, meta.longitude
    if facts.exif_latitude is not None and facts.exif_longitude is not None:
        message.exif_latitude, message.exif_longitude = facts.exif_latitude, facts.exif_longitude
    return message


def status_message(record: EvidenceRecord, progress: Progress) -> pb.EvidenceStatus:
    """Where a piece of evidence's verification stands."""
    full = evidence_message(record)
    return pb.EvidenceStatus(
        evidence_id=record.id,
        status=full.status,
        reviewers_assigned=progress.assigned,
        votes_cast=progress.cast,
        final_confidence=full.final_confidence,
        decided_by=full.decided_by,
        decided_at=full.decided_at if record.decided_at else None,
    )


def vote_message(vote: VoteRecord) -> pb.PeerVote:
    """A peer's vote."""
    return pb.PeerVote(
        evidence_id=vote.evidence_id,
        mission_id=vote.mission_id,
        mission_title=vote.mission_title,
        verdict=pb.APPROVE if vote.approve else pb.REJECT,
        confidence=vote.confidence,
        reasoning=vote.reasoning,
        voted_at=timestamp(vote.voted_at),
    )


def task_message(task: ReviewTask) -> pb.PeerReviewTask:
    """Evidence waiting for the caller's vote, with what the mission asked for."""
    fields = task.mission.fields
    message = pb.PeerReviewTask(
        evidence=evidence_message(task.evidence, anonymous=True),
        mission_title=fields.title,
        mission_description=fields.description,
        evidence_required=evidence_messages(fields.evidence_required),
        location_name=fields.location_name,
        assigned_at=timestamp(task.assigned_at),
    )
    if fields.latitude is not None and fields.longitude is not None:
        message.mission_latitude = round(fields.latitude, 2)
        message.mission_longitude = round(fields.longitude, 2)
    return message


def _meta(request: pb.SubmitEvidenceRequest, deps: MissionDeps) -> EvidenceMeta:
    sequence = known_enum_name(pb.EvidenceSequence, request.sequence, "sequence")
    return valid_evidence_meta(
        latitude=request.latitude if request.HasField("latitude") else None,
        longitude=request.longitude if request.HasField("longitude") else None,
        captured_at=request.captured_at,
        notes=request.notes,
        pair_id=request.pair_id,
        sequence=PairPosition(sequence.lower()) if sequence else PairPosition.STANDALONE,
        now=deps.clock(),
    )


def _verdict(value: int, field: str) -> bool:
    if value not in (pb.APPROVE, pb.REJECT):
        raise errors.InvalidArgument.one(field, "must be APPROVE or REJECT")
    return value == pb.APPROVE


async def _chunks(requests: AsyncIterator[object]) -> AsyncIterator[bytes]:
    async for part in requests:
        if not isinstance(part, pb.UploadEvidenceRequest) or part.WhichOneof("part") != "chunk":
            raise errors.InvalidArgument.one(
                "chunk", "after the first message (metadata), every message must be a chunk"
            )
        yield part.chunk


class EvidenceServicer(pb_grpc.EvidenceServiceServicer):
    """EvidenceService: submissions, reads, downloads, appeals."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def SubmitEvidence(  # noqa: N802
        self, request: pb.SubmitEvidenceRequest, context: Context
    ) -> pb.Evidence:
        meta = _meta(request, self._deps)
        record = await evidence.submit_evidence(
            self._deps,
            caller(),
            request.mission_id,
            meta,
            content_type=request.file.content_type,
            chunks=evidence.single_chunk(request.file.data),
        )
        set_response_header("x-http-status", "201")
        return evidence_message(record)

    async def UploadEvidence(  # noqa: N802
        self, request_iterator: AsyncIterable[pb.UploadEvidenceRequest], context: Context
    ) -> pb.Evidence:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if not isinstance(first, pb.UploadEvidenceRequest) or not first.HasField("metadata"):
            raise errors.InvalidArgument.one(
                "metadata", "the first message must carry the metadata"
            )
        meta = _meta(first.metadata, self._deps)
        record = await evidence.submit_evidence(
            self._deps,
            caller(),
            first.metadata.mission_id,
            meta,
            content_type=first.metadata.file.content_type,
            chunks=_chunks(requests),
        )
        return evidence_message(record)

    async def ListEvidence(  # noqa: N802
        self, request: pb.ListEvidenceRequest, context: Context
    ) -> pb.ListEvidenceResponse:
        page = await evidence.list_evidence(
            self._deps,
            current_principal(),
            request.mission_id,
            cursor=request.cursor,
            limit=request.limit,
        )
        return pb.ListEvidenceResponse(
            data=[evidence_message(e) for e in page.items], meta=page_meta(page)
        )

    async def GetEvidence(  # noqa: N802
        self, request: pb.GetEvidenceRequest, context: Context
    ) -> pb.Evidence:
        record = await evidence.visible_evidence(
            self._deps, current_principal(), request.evidence_id
        )
        return evidence_message(record)

    async def GetEvidenceStatus(  # noqa: N802
        self, request: pb.GetEvidenceStatusRequest, context: Context
    ) -> pb.EvidenceStatus:
        record, progress = await evidence.evidence_status(
            self._deps, current_principal(), request.evidence_id
        )
        return status_message(record, progress)

    async def DownloadEvidence(  # noqa: N802
        self, request: pb.DownloadEvidenceRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        record, chunks = await evidence.download(
            self._deps, current_principal(), request.evidence_id
        )
        set_response_header("content-disposition", f'inline; filename="{record.id}"')
        async for chunk in chunks:
            yield httpbody_pb2.HttpBody(content_type=record.facts.media_type, data=chunk)

    async def AppealEvidence(  # noqa: N802
        self, request: pb.AppealEvidenceRequest, context: Context
    ) -> pb.Evidence:
        record = await evidence.appeal(self._deps, caller(), request.evidence_id, request.reason)
        set_response_header("x-http-status", "201")
        return evidence_message(record)


class PeerReviewServicer(pb_grpc.PeerReviewServiceServicer):
    """PeerReviewService: a human's review tasks, votes and history."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def ListPendingPeerReviews(  # noqa: N802
        self, request: pb.ListPendingPeerReviewsRequest, context: Context
    ) -> pb.ListPendingPeerReviewsResponse:
        page = await review.pending_reviews(
            self._deps, caller(), cursor=request.cursor, limit=request.limit
        )
        return pb.ListPendingPeerReviewsResponse(
            data=[task_message(t) for t in page.items], meta=page_meta(page)
        )

    async def ListMyPeerReviews(  # noqa: N802
        self, request: pb.ListMyPeerReviewsRequest, context: Context
    ) -> pb.ListMyPeerReviewsResponse:
        page = await review.review_history(
            self._deps, caller(), cursor=request.cursor, limit=request.limit
        )
        return pb.ListMyPeerReviewsResponse(
            data=[vote_message(v) for v in page.items], meta=page_meta(page)
        )

    async def VotePeerReview(  # noqa: N802
        self, request: pb.VotePeerReviewRequest, context: Context
    ) -> pb.VotePeerReviewResponse:
        vote, record = await review.vote(
            self._deps,
            caller(),
            request.evidence_id,
            approve=_verdict(request.verdict, "verdict"),
            confidence=request.confidence,
            reasoning=request.reasoning,
        )
        set_response_header("x-http-status", "201")
        return pb.VotePeerReviewResponse(
            vote=vote_message(vote),
            evidence_status=pb.Evidence.Status.Value(record.status.value.upper()),
            reward=review.VOTE_REWARD,
        )


class EvidenceAdminServicer(pb_grpc.EvidenceAdminServiceServicer):
    """EvidenceAdminService: operators settle disputes and appeals."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def ListDisputes(  # noqa: N802
        self, request: pb.ListDisputesRequest, context: Context
    ) -> pb.ListDisputesResponse:
        page = await review.list_disputes(self._deps, cursor=request.cursor, limit=request.limit)
        return pb.ListDisputesResponse(
            data=[
                pb.Dispute(
                    evidence=evidence_message(d.evidence),
                    reason=d.evidence.dispute_reason,
                    appeal_reason=d.evidence.appeal_reason,
                    votes=[vote_message(v) for v in d.votes],
                )
                for d in page.items
            ],
            meta=page_meta(page),
        )

    async def ResolveDispute(  # noqa: N802
        self, request: pb.ResolveDisputeRequest, context: Context
    ) -> pb.Evidence:
        record = await review.resolve_dispute(
            self._deps,
            caller(),
            request.evidence_id,
            approve=_verdict(request.decision, "decision"),
            reasoning=request.reasoning,
        )
        return evidence_message(record)
