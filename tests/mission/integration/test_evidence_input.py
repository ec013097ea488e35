"""Bad evidence, refused with the field named and nothing stored: bytes that are not an accepted
file, a type that is not the declared one, a zip renamed .jpg, a decompression bomb, truncated
images, 10 MiB + 1 byte (in one message and streamed), no claim, an overdue claim, a future
capture time, the hourly limit, and an object store that is down."""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator

import grpc
import pytest
from betterworld.mission.v1 import evidence_pb2 as pb
from betterworld.mission.v1 import evidence_pb2_grpc, missions_pb2
from sqlalchemy import text

from services.core.settings import Settings
from services.mission.definition import DEFINITION as MISSION
from services.mission.evidence_model import MAX_EVIDENCE_BYTES
from tests.support.evidence import EvidenceWorld, png, submit_request
from tests.support.helpers import refused, start_service
from tests.support.missions import MissionWorld


async def _rows(evidence_world: EvidenceWorld) -> int:
    async with evidence_world.world.service.runtime.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM evidence"))).scalar_one())


def _bomb() -> bytes:
    """A PNG whose header declares 100,000 x 100,000 pixels."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    ihdr = (
        struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    )
    data = zlib.compress(b"\x00" * 4096)
    idat = (
        struct.pack(">I", len(data))
        + b"IDAT"
        + data
        + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + ihdr
        + idat
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "content_type", "words"),
    [
        (b"this is not an image at all", "image/png", "none of these"),
        (_zip(), "image/jpeg", "none of these"),
        (png(), "image/jpeg", "not the image/jpeg"),
        (_bomb(), "image/png", "pixels"),
        (png((200, 200), noise=True)[:5000], "image/png", "image"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf", "truncated"),
        (b"", "image/png", "empty"),
    ],
    ids=["text", "zip-as-jpg", "png-as-jpeg", "bomb", "truncated-png", "truncated-pdf", "empty"],
)
async def test_files_that_are_not_what_they_must_be_are_refused(
    evidence_world: EvidenceWorld, data: bytes, content_type: str, words: str
) -> None:
    _, mission_id, human = await evidence_world.claimed()
    error = await refused(evidence_world.submit(mission_id, human, data, content_type))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert words in error.field_violations["file"]
    assert await _rows(evidence_world) == 0


async def test_ten_mebibytes_and_one_byte_is_too_large_in_one_message_or_streamed(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed()
    big = png() + b"\x00" * (MAX_EVIDENCE_BYTES + 1 - len(png()))
    error = await refused(evidence_world.submit(mission_id, human, big))
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE")
    assert error.retry_delay_seconds is None  # the same bytes will never fit

    sent: list[int] = []

    async def stream() -> AsyncIterator[pb.UploadEvidenceRequest]:
        meta = submit_request(mission_id, b"")
        meta.ClearField("file")
        yield pb.UploadEvidenceRequest(metadata=meta)
        for _ in range(12):  # 12 MiB offered; refused once past 10
            sent.append(1)
            yield pb.UploadEvidenceRequest(chunk=b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 - 8))

    streamed = await refused(evidence_world.evidence.UploadEvidence(stream(), metadata=human))
    assert (streamed.code, streamed.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE")
    assert await _rows(evidence_world) == 0


async def test_a_streamed_upload_is_stored_like_a_single_one(evidence_world: EvidenceWorld) -> None:
    _, mission_id, human = await evidence_world.claimed()
    data = png((300, 300), noise=True)

    async def stream() -> AsyncIterator[pb.UploadEvidenceRequest]:
        meta = submit_request(mission_id, b"", notes="streamed")
        meta.ClearField("file")
        yield pb.UploadEvidenceRequest(metadata=meta)
        for i in range(0, len(data), 64 * 1024):
            yield pb.UploadEvidenceRequest(chunk=data[i : i + 64 * 1024])

    evidence = await evidence_world.evidence.UploadEvidence(stream(), metadata=human)
    assert evidence.media_type == "image/png" and evidence.notes == "streamed"
    assert (evidence.width, evidence.height) == (300, 300)

    async def no_metadata() -> AsyncIterator[pb.UploadEvidenceRequest]:
        yield pb.UploadEvidenceRequest(chunk=data[:100])

    error = await refused(evidence_world.evidence.UploadEvidence(no_metadata(), metadata=human))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "metadata" in error.field_violations


async def test_evidence_needs_a_live_claim_in_time_and_sane_metadata(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed()
    stranger = await evidence_world.world.human()
    no_claim = await refused(evidence_world.submit(mission_id, stranger))
    assert (no_claim.code, no_claim.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_ACTIVE_CLAIM",
    )
    future = await refused(
        evidence_world.submit(mission_id, human, captured_at="2999-01-01T00:00:00Z")
    )
    assert "future" in future.field_violations["captured_at"]
    bad = await refused(
        evidence_world.submit(
            mission_id,
            human,
            latitude=91.0,
            captured_at="yesterday",
            notes="x" * 2001,
            sequence=pb.AFTER,
        )
    )
    assert set(bad.field_violations) == {"latitude", "captured_at", "notes", "pair_id"}
    async with evidence_world.world.service.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE mission_claims SET deadline_at = now() - interval '1 s'"))
    overdue = await refused(evidence_world.submit(mission_id, human))
    assert (overdue.code, overdue.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CLAIM_OVERDUE")
    assert await _rows(evidence_world) == 0


async def test_ten_submissions_an_hour_refused_ones_not_counted(
    evidence_world: EvidenceWorld,
) -> None:
    _, mission_id, human = await evidence_world.claimed()
    for _ in range(3):
        await refused(evidence_world.submit(mission_id, human, b"junk"))
    for _ in range(10):
        await evidence_world.submit(mission_id, human)
    limited = await refused(evidence_world.submit(mission_id, human))
    assert (limited.code, limited.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "EVIDENCE_LIMIT")
    assert limited.retry_delay_seconds is not None and limited.retry_delay_seconds > 3000
    assert await _rows(evidence_world) == 10


async def test_an_object_store_that_is_down_is_unavailable_and_nothing_is_written(
    mission_world: MissionWorld, mission_settings: Settings
) -> None:
    settings = mission_settings.model_copy(
        update={
            "content_internal_target": mission_world.content.service.address,
            "evidence_storage": "s3",
            "s3_endpoint_url": "http://127.0.0.1:9",  # nothing listens on the discard port
            "s3_bucket": "evidence",
        }
    )
    down = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        evidence_world = EvidenceWorld(mission_world)
        _, mission_id, human = await evidence_world.claimed()
        stub = evidence_pb2_grpc.EvidenceServiceStub(down.channel)
        error = await refused(
            stub.SubmitEvidence(submit_request(mission_id, png()), metadata=human)
        )
        assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
        assert await _rows(evidence_world) == 0
        claim = await evidence_world.world.missions.ListMyClaims(
            missions_pb2.ListMyClaimsRequest(), metadata=human
        )
        assert claim.data[0].status == missions_pb2.Claim.ACTIVE
    finally:
        await down.stop()
