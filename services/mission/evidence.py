"""Evidence: humans submit files that prove their claims; submitters, the mission's author and
operators read them; a rejection may be appealed once.

A submission is checked before its bytes are read (the claim, the metadata, the hourly quota),
read with the size limit enforced as the bytes arrive, typed from its bytes, cleaned of
metadata (images), stored, and only then recorded, in one transaction with the claim's new
status and the start of its verification. A failure after storing leaves a file no row names:
the orphan sweep removes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

from services.core import errors, quota
from services.core.context import Principal, PrincipalKind
from services.core.ids import parse_uuid
from services.core.logging import get_logger
from services.core.pagination import Page, paginate
from services.mission.deps import MissionDeps
from services.mission.evidence_files import IMAGES, PDF, BadFile, inspect_image, sniff
from services.mission.evidence_model import (
    MAX_EVIDENCE_BYTES,
    EvidenceMeta,
    EvidenceRecord,
    EvidenceStatus,
    Progress,
    StoredFacts,
)
from services.mission.evidence_store import EvidenceStore
from services.mission.evidence_validation import valid_long_reason
from services.mission.files import FileMissing, FileTooLarge, StorageUnavailable
from services.mission.mission_store import MissionStore
from services.mission.model import ClaimStatus, MissionStatus
from services.mission.review import start_verification

log = get_logger(__name__)
SUBMISSIONS_PER_HOUR = 10
APPEALS_PER_DAY = 3
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/heif": "image/heic"}
_UNSPECIFIED = {"", "application/octet-stream", "binary/octet-stream"}
_NAMES = "a JPEG, PNG, HEIC, PDF, MP4 or QuickTime file"


def _not_found(evidence_id: str) -> errors.NotFound:
    return errors.NotFound("evidence", evidence_id, reason="EVIDENCE_NOT_FOUND")


def _bad_file(description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.one("file", description)


async def _read(chunks: AsyncIterable[bytes]) -> bytes:
    """The whole file, refused as soon as it passes the limit."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_EVIDENCE_BYTES:
            raise errors.TooLarge(f"a file may have at most {MAX_EVIDENCE_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _declared(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(kind, kind)


async def _prepare(deps: MissionDeps, data: bytes, content_type: str) -> tuple[bytes, StoredFacts]:
    """The bytes to store and what they are; INVALID_ARGUMENT (field `file`) for anything
    that is not a sound file of an accepted type, or not the type its header claims."""
    if not data:
        raise _bad_file("is empty")
    media = sniff(data[:64])
    if media is None:
        raise _bad_file(f"must be {_NAMES} (its bytes are none of these)")
    declared = _declared(content_type)
    if declared not in _UNSPECIFIED and declared != media:
        raise _bad_file(f"the bytes are {media}, not the {declared} the content type says")
    if media in IMAGES:
        async with deps.image_slots:
            try:
                image = await asyncio.to_thread(inspect_image, data, media)
            except BadFile as exc:
                raise _bad_file(str(exc)) from None
        return image.cleaned, StoredFacts(
            sha256="",
            size=len(image.cleaned),
            media_type=media,
            width=image.width,
            height=image.height,
            exif_latitude=image.latitude,
            exif_longitude=image.longitude,
            exif_taken_at=image.taken_at,
        )
    if media == PDF and b"%%EOF" not in data[-1024:]:
        raise _bad_file("is a truncated PDF")
    return data, StoredFacts(sha256="", size=len(data), media_type=media)


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    """Bytes already in memory as the chunk stream that submissions and the file store take."""
    yield data


async def _store(deps: MissionDeps, data: bytes, facts: StoredFacts) -> StoredFacts:
    try:
        stored = await deps.files.put(single_chunk(data), max_bytes=MAX_EVIDENCE_BYTES)
    except StorageUnavailable:
        raise errors.Unavailable(
            "the evidence store is unavailable; nothing was saved, send the file again shortly",
            reason="STORAGE_UNAVAILABLE",
            retry_after_seconds=5,
        ) from None
    except FileTooLarge:  # a cleaned image larger than the original: still refused
        raise errors.TooLarge(f"a file may have at most {MAX_EVIDENCE_BYTES} bytes") from None
    return StoredFacts(
        sha256=stored.key,
        size=stored.size,
        media_type=facts.media_type,
        width=facts.width,
        height=facts.height,
        exif_latitude=facts.exif_latitude,
        exif_longitude=facts.exif_longitude,
        exif_taken_at=facts.exif_taken_at,
    )


async def _check_claim(deps: MissionDeps, principal: Principal, mission_id: str) -> None:
    """The claim and mission allow a submission now (checked again when recording)."""
    if parse_uuid(mission_id) is None:
        raise errors.InvalidArgument.one("mission_id", "must be a mission id (UUID)")
    claim = await deps.missions.live_claim(mission_id, principal.id)
    if claim is None:
        raise errors.PermissionDenied(
            "only a human holding an active claim on this mission submits its evidence",
            reason="NO_ACTIVE_CLAIM",
        )
    now = deps.clock()
    if claim.deadline_at <= now:
        raise errors.FailedPrecondition("your claim is past its deadline", reason="CLAIM_OVERDUE")
    mission = await deps.missions.get(mission_id)
    if (
        mission is None
        or mission.status is MissionStatus.EXPIRED
        or mission.fields.expires_at <= now
    ):
        raise errors.FailedPrecondition("the mission has expired", reason="MISSION_EXPIRED")


async def submit_evidence(
    deps: MissionDeps,
    principal: Principal,
    mission_id: str,
    meta: EvidenceMeta,
    *,
    content_type: str,
    chunks: AsyncIterable[bytes],
) -> EvidenceRecord:
    """Stores a file for the caller's live claim on the mission and starts its verification."""
    await _check_claim(deps, principal, mission_id)
    key = f"bw:evidence:{principal.id}"
    await quota.require(
        deps.redis,
        key,
        limit=SUBMISSIONS_PER_HOUR,
        window_seconds=3600,
        what="evidence submissions an hour",
        reason="EVIDENCE_LIMIT",
    )
    try:
        data = await _read(chunks)
        cleaned, facts = await _prepare(deps, data, content_type)
        del data
        facts = await _store(deps, cleaned, facts)
        record = await _record(deps, principal, mission_id, meta, facts)
    except BaseException:
        await quota.refund(deps.redis, key)  # only accepted submissions count
        raise
    log.info(
        "evidence_submitted",
        evidence_id=record.id,
        mission_id=mission_id,
        media_type=facts.media_type,
        size=facts.size,
        status=record.status.value,
    )
    return record


async def _record(
    deps: MissionDeps,
    principal: Principal,
    mission_id: str,
    meta: EvidenceMeta,
    facts: StoredFacts,
) -> EvidenceRecord:
    async with deps.evidence.transaction() as tx:
        missions = tx.bound(MissionStore)
        live = await missions.live_claim(mission_id, principal.id)
        claim = await missions.get_claim(live.id, lock=True) if live else None
        if claim is None or claim.status not in (ClaimStatus.ACTIVE, ClaimStatus.SUBMITTED):
            raise errors.PermissionDenied(
                "only a human holding an active claim on this mission submits its evidence",
                reason="NO_ACTIVE_CLAIM",
            )
        if claim.deadline_at <= deps.clock():
            raise errors.FailedPrecondition(
                "your claim is past its deadline", reason="CLAIM_OVERDUE"
            )
        record = await tx.insert(
            claim_id=claim.id,
            mission_id=mission_id,
            human_id=principal.id,
            meta=meta,
            facts=facts,
            status=EvidenceStatus.PENDING,
        )
        if claim.status is ClaimStatus.ACTIVE:
            await missions.update_claim(claim.id, status=ClaimStatus.SUBMITTED)
        await tx.record(
            record.id,
            actor_kind="human",
            actor_id=principal.id,
            action="submitted",
            details={"sha256": facts.sha256, "media_type": facts.media_type, "size": facts.size},
        )
        return await start_verification(deps, tx, record)


def _may_see(principal: Principal, record: EvidenceRecord, author_agent_id: str | None) -> bool:
    if principal.kind is PrincipalKind.OPERATOR:
        return True
    if principal.kind is PrincipalKind.HUMAN:
        return principal.id == record.human_id
    return principal.kind is PrincipalKind.AGENT and principal.id == author_agent_id


def _require_caller(principal: Principal | None) -> Principal:
    if principal is None:
        raise errors.Unauthenticated(
            "send 'authorization: Bearer <token or API key>'", reason="CREDENTIAL_MISSING"
        )
    return principal


async def visible_evidence(
    deps: MissionDeps,
    principal: Principal | None,
    evidence_id: str,
    *,
    reviewers: bool = False,
) -> EvidenceRecord:
    """The evidence if the caller may see it (submitter, mission author, operator, and with
    `reviewers` its assigned peers); NOT_FOUND to anyone else."""
    caller = _require_caller(principal)
    record = await deps.evidence.get(evidence_id)
    if record is None:
        raise _not_found(evidence_id)
    author = None
    if caller.kind is PrincipalKind.AGENT:
        mission = await deps.missions.get(record.mission_id)
        author = mission.author_agent_id if mission else None
    if _may_see(caller, record, author):
        return record
    if (
        reviewers
        and caller.kind is PrincipalKind.HUMAN
        and await deps.evidence.assignment(record.id, caller.id) is not None
    ):
        return record
    raise _not_found(evidence_id)


async def evidence_status(
    deps: MissionDeps, principal: Principal | None, evidence_id: str
) -> tuple[EvidenceRecord, Progress]:
    """The evidence and its review's progress."""
    record = await visible_evidence(deps, principal, evidence_id)
    return record, await deps.evidence.progress(record.id)


async def list_evidence(
    deps: MissionDeps,
    principal: Principal | None,
    mission_id: str,
    *,
    cursor: str,
    limit: int,
) -> Page[EvidenceRecord]:
    """The mission's evidence the caller may see: a human their own; the author and operators
    all of it."""
    caller = _require_caller(principal)
    mission = await deps.missions.get(mission_id)
    if mission is None:
        raise errors.NotFound("mission", mission_id, reason="MISSION_NOT_FOUND")
    only: str | None
    if caller.kind is PrincipalKind.HUMAN:
        only = caller.id
    elif caller.kind is PrincipalKind.OPERATOR or caller.id == mission.author_agent_id:
        only = None
    else:
        raise errors.PermissionDenied(
            "only the mission's author sees its evidence", reason="NOT_MISSION_AUTHOR"
        )

    async def fetch(after: list[Any] | None, count: int) -> Sequence[EvidenceRecord]:
        return await deps.evidence.mission_page(mission.id, only, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"evidence:{mission.id}:{only}",
        cursor=cursor,
        limit=limit,
        key=lambda e: [e.submitted_at.isoformat(), e.id],
    )


async def download(
    deps: MissionDeps, principal: Principal | None, evidence_id: str
) -> tuple[EvidenceRecord, AsyncIterator[bytes]]:
    """The evidence and its stored file's chunks (submitter, author, operators, reviewers)."""
    record = await visible_evidence(deps, principal, evidence_id, reviewers=True)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in deps.files.open(record.facts.sha256):
                yield chunk
        except FileMissing:
            log.error("evidence_file_missing", evidence_id=record.id, key=record.facts.sha256)
            raise errors.Unavailable(
                "the evidence file cannot be read now", reason="FILE_UNAVAILABLE"
            ) from None
        except StorageUnavailable:
            raise errors.Unavailable(
                "the evidence store is unavailable; retry shortly",
                reason="STORAGE_UNAVAILABLE",
                retry_after_seconds=5,
            ) from None

    return record, chunks()


async def appeal(
    deps: MissionDeps, principal: Principal, evidence_id: str, reason: str
) -> EvidenceRecord:
    """The submitter appeals a rejection, once: an operator decides."""
    reason = valid_long_reason(reason, "reason")
    key = f"bw:appeal:{principal.id}:{deps.clock().date().isoformat()}"
    await quota.require(
        deps.redis,
        key,
        limit=APPEALS_PER_DAY,
        window_seconds=86400,
        what="appeals a day",
        reason="APPEAL_LIMIT",
    )
    try:
        async with deps.evidence.transaction() as tx:
            record = await tx.get(evidence_id, lock=True)
            if record is None or record.human_id != principal.id:
                raise _not_found(evidence_id)
            if record.status is not EvidenceStatus.REJECTED:
                raise errors.Conflict(
                    f"only rejected evidence can be appealed (this is {record.status.value})",
                    reason="NOT_REJECTED",
                )
            if record.appealed:
                raise errors.Conflict(
                    "this evidence was appealed already; the operator's decision is final",
                    reason="ALREADY_APPEALED",
                )
            appealed = await tx.appeal(record.id, reason)
            await _reopen_claim(deps, tx, record)
            await tx.record(record.id, actor_kind="human", actor_id=principal.id, action="appealed")
    except BaseException:
        await quota.refund(deps.redis, key)
        raise
    log.info("evidence_appealed", evidence_id=record.id)
    return appealed


async def _reopen_claim(deps: MissionDeps, tx: EvidenceStore, record: EvidenceRecord) -> None:
    """An appeal makes the claim wait for the outcome again (SUBMITTED), if it is live."""
    missions = tx.bound(MissionStore)
    claim = await missions.get_claim(record.claim_id, lock=True)
    if claim is not None and claim.status is ClaimStatus.ACTIVE:
        await missions.update_claim(claim.id, status=ClaimStatus.SUBMITTED)
