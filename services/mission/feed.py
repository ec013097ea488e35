"""What the mission service tells the activity feed, once the change it reports committed:
public events carry public data only (never a human's id or exact position); a human's own
events (their verified evidence, their tokens) go to that human alone."""

from __future__ import annotations

from services.core.activity import publish
from services.mission.deps import MissionDeps
from services.mission.evidence_model import EvidenceRecord
from services.mission.model import MissionRecord


def _place(mission: MissionRecord) -> dict[str, float]:
    fields = mission.fields
    if fields.latitude is None or fields.longitude is None:
        return {}
    # The same 2 decimals (about 1 km) the public mission shows.
    return {"latitude": round(fields.latitude, 2), "longitude": round(fields.longitude, 2)}


async def mission_published(deps: MissionDeps, mission: MissionRecord) -> None:
    """A mission passed the guardrail."""
    await publish(
        deps.redis,
        "MISSION_PUBLISHED",
        {
            "missionId": mission.id,
            "title": mission.fields.title,
            "domain": mission.domain,
            "tokenReward": mission.fields.token_reward,
            **_place(mission),
        },
    )


async def mission_claimed(deps: MissionDeps, mission: MissionRecord) -> None:
    """Someone (not named) claimed a slot of the mission."""
    taken = mission.active_claims + mission.completed_claims
    await publish(
        deps.redis,
        "MISSION_CLAIMED",
        {
            "missionId": mission.id,
            "title": mission.fields.title,
            "slotsLeft": max(0, mission.fields.max_claims - taken),
        },
    )


async def evidence_verified(deps: MissionDeps, record: EvidenceRecord) -> None:
    """Evidence was verified: publicly for the mission, privately with the reward."""
    await publish(deps.redis, "EVIDENCE_VERIFIED", {"missionId": record.mission_id})
    await publish(
        deps.redis,
        "EVIDENCE_VERIFIED",
        {"missionId": record.mission_id, "evidenceId": record.id, "reward": record.reward},
        audience=record.human_id,
    )
    if record.reward:
        await tokens_earned(deps, record.human_id, record.reward, "EARN_MISSION", record.id)


async def tokens_earned(
    deps: MissionDeps, human_id: str, amount: int, type: str, reference_id: str
) -> None:
    """The human earned tokens (to that human only)."""
    await publish(
        deps.redis,
        "TOKENS_EARNED",
        {"amount": amount, "type": type, "referenceId": reference_id},
        audience=human_id,
    )
