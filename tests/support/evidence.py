"""Evidence for tests: real image bytes, stubs, and a human with a claim ready to submit."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from betterworld.mission.v1 import evidence_pb2 as pb
from betterworld.mission.v1 import evidence_pb2_grpc as pb_grpc
from betterworld.mission.v1 import missions_pb2
from google.api import httpbody_pb2
from PIL import Image

from tests.support.content import Agent
from tests.support.missions import MissionWorld

Auth = tuple[tuple[str, str], ...]


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG whose EXIF names a camera, a GPS position near Lake Merritt and a capture time."""
    image = Image.new("RGB", size, (30, 120, 200))
    exif = Image.Exif()
    exif[0x0110] = "Phone X (camera model)"
    exif[0x8825] = {1: "N", 2: (37.0, 48.0, 8.64), 3: "W", 4: (122.0, 15.0, 25.2)}
    exif.get_ifd(0x8769)[0x9003] = "2026:12:06 14:30:05"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48), *, noise: bool = False) -> bytes:
    """A PNG; with `noise`, random pixels (incompressible: its size is about w*h*3 bytes)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 80, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def now_text() -> str:
    """Now, RFC 3339."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def submit_request(
    mission_id: str, data: bytes, content_type: str = "image/png", **meta: Any
) -> pb.SubmitEvidenceRequest:
    """A SubmitEvidence request with the file and metadata."""
    values: dict[str, Any] = {"latitude": 37.8024, "longitude": -122.257, "captured_at": now_text()}
    values.update(meta)
    return pb.SubmitEvidenceRequest(
        mission_id=mission_id,
        file=httpbody_pb2.HttpBody(content_type=content_type, data=data),
        **values,
    )


@dataclass
class EvidenceWorld:
    """A mission world with evidence stubs and a claimed mission."""

    world: MissionWorld

    @property
    def evidence(self) -> pb_grpc.EvidenceServiceStub:
        return pb_grpc.EvidenceServiceStub(self.world.service.channel)

    @property
    def reviews(self) -> pb_grpc.PeerReviewServiceStub:
        return pb_grpc.PeerReviewServiceStub(self.world.service.channel)

    @property
    def admin(self) -> pb_grpc.EvidenceAdminServiceStub:
        return pb_grpc.EvidenceAdminServiceStub(self.world.service.channel)

    async def claimed(self, **fields: Any) -> tuple[Agent, str, Auth]:
        """An approved mission (lake fields, overridden) and a human holding a claim on it."""
        agent, solution_id = await self.world.agent_with_solution()
        mission = await self.world.approved(agent, solution_id, **fields)
        human = await self.world.human()
        await self.world.missions.ClaimMission(
            missions_pb2.ClaimMissionRequest(mission_id=mission.mission_id), metadata=human
        )
        return agent, mission.mission_id, human

    async def submit(
        self,
        mission_id: str,
        human: Auth,
        data: bytes | None = None,
        content_type: str = "image/png",
        **meta: Any,
    ) -> pb.Evidence:
        """Submits a file (a small PNG by default)."""
        return await self.evidence.SubmitEvidence(
            submit_request(mission_id, png() if data is None else data, content_type, **meta),
            metadata=human,
        )

    async def vote(
        self, evidence_id: str, reviewer: Auth, approve: bool = True, confidence: float = 0.9
    ) -> pb.VotePeerReviewResponse:
        """A vote with a valid reasoning."""
        return await self.reviews.VotePeerReview(
            pb.VotePeerReviewRequest(
                evidence_id=evidence_id,
                verdict=pb.APPROVE if approve else pb.REJECT,
                confidence=confidence,
                reasoning="The photo shows the labelled bottles at the marked point.",
            ),
            metadata=reviewer,
        )


async def operator_auth(world: MissionWorld, name: str = "ops-evidence") -> Auth:
    """A new operator's call metadata."""
    from services.core.credentials import store as credentials
    from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
    from tests.support.helpers import bearer

    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        world.service.runtime.engine,
        name=f"{name}-{key.display_prefix[-6:]}",
        digest=key.digest,
        display_prefix=key.display_prefix,
    )
    return tuple(bearer(key.plaintext))
