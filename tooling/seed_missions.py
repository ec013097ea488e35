"""Demo humans and missions for a new local database: the product's two dev humans (verified,
with profiles) and approved missions decomposed from the Lake Merritt solution, so that
`/api/v1/missions/nearby?lat=37.7749&lng=-122.4194&radius=50` answers on a new stack."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.core.runtime import Runtime
from services.mission.ledger_store import LedgerStore
from services.mission.mission_store import MissionStore
from services.mission.model import (
    Availability,
    EvidenceItem,
    MissionFields,
    Movement,
    NewHuman,
    NewProfile,
    SolutionSource,
    Step,
)
from services.mission.passwords import Passwords
from services.mission.profile_store import ProfileStore
from services.mission.store import HumanStore

# The product's starting balances of its dev humans, as ledger rows.
DEMO_BALANCES = {"dev@betterworld.ai": 100, "tester@betterworld.ai": 50}
DEMO_HUMANS: tuple[tuple[NewHuman, NewProfile], ...] = (
    (
        NewHuman(email="dev@betterworld.ai", password="", display_name="Dev User"),
        NewProfile(
            skills=("photography", "documentation", "community_organizing"),
            languages=("en",),
            city="San Francisco",
            country="US",
            latitude=37.7749295,
            longitude=-122.4194155,
            service_radius_km=50,
            availability=Availability(True, True, "America/Los_Angeles"),
        ),
    ),
    (
        NewHuman(email="tester@betterworld.ai", password="", display_name="Test Participant"),
        NewProfile(
            skills=("translation", "research", "data_collection"),
            languages=("en", "es"),
            city="New York",
            country="US",
            latitude=40.7127753,
            longitude=-74.0059728,
            service_radius_km=30,
            availability=Availability(False, True, "America/New_York"),
        ),
    ),
)

# (title, description, steps, evidence, skills, latitude, longitude, place, minutes, reward)
_LAKE_MISSIONS = (
    (
        "Sample dissolved oxygen at the north shore",
        "Measure dissolved oxygen and temperature at the north shore sampling point and log "
        "the readings for the open water-quality dashboard.",
        (
            "Collect the meter from the boathouse.",
            "Take three readings at the marked point.",
            "Enter the readings in the shared log.",
        ),
        ("A photo of the meter's display at the site",),
        ("data_collection",),
        37.8083,
        -122.2530,
        "Lake Merritt north shore",
        60,
        25,
    ),
    (
        "Photograph storm-drain outfalls on the west shore",
        "Walk the west shore and photograph each storm-drain outfall with trash or foam, so "
        "public works can target cleanups before the rainy season.",
        (
            "Start at the pergola and walk south along the shore path.",
            "Photograph each outfall and note its marker number.",
        ),
        ("Photos of every outfall with its marker number",),
        ("photography", "documentation"),
        37.8010,
        -122.2640,
        "Lake Merritt west shore",
        90,
        30,
    ),
    (
        "Help install a sensor station at the boathouse",
        "Join the crew installing one of the eight low-cost sensor stations and check that it "
        "reports its first readings.",
        (
            "Meet the crew at the boathouse dock.",
            "Mount the station and connect its battery.",
            "Confirm the first reading on the dashboard.",
        ),
        ("A photo of the mounted station", "A screenshot of its first reading"),
        ("community_organizing",),
        37.8044,
        -122.2590,
        "Lake Merritt boathouse",
        120,
        50,
    ),
)


@dataclass(frozen=True)
class SeededHuman:
    """A demo human and their password (shown once)."""

    email: str
    password: str


def _password() -> str:
    # Random, and with the lower-case letter, upper-case letter and digit every password needs.
    return f"{secrets.token_urlsafe(12)}Aa1"


async def seed_humans(runtime: Runtime) -> list[SeededHuman]:
    """Creates the verified demo humans with their profiles; returns their passwords."""
    settings = runtime.settings
    passwords = Passwords(
        time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
    )
    humans, profiles = HumanStore(runtime.engine), ProfileStore(runtime.engine)
    ledger = LedgerStore(runtime.engine)
    seeded = []
    for new, profile in DEMO_HUMANS:
        password = _password()
        human = await humans.insert(new, password_hash=await passwords.hash(password))
        await humans.mark_verified(human.id)
        await profiles.insert(human.id, profile)
        await ledger.post(
            Movement(
                human_id=human.id,
                amount=DEMO_BALANCES[new.email],
                type="EARN_GRANT",
                idempotency_key="demo-balance",
                description="Demo starting balance",
            )
        )
        seeded.append(SeededHuman(new.email, password))
    return seeded


async def seed_missions(runtime: Runtime, source: SolutionSource) -> int:
    """Creates the Lake Merritt missions, approved (curated data needs no evaluation)."""
    store = MissionStore(runtime.engine)
    expires = datetime.now(UTC) + timedelta(days=30)
    for title, text, steps, proof, skills, lat, lng, place, minutes, reward in _LAKE_MISSIONS:
        evaluation_id = str(uuid.uuid4())
        mission = await store.insert(
            MissionFields(
                title=title,
                description=text,
                instructions=tuple(Step(i + 1, s) for i, s in enumerate(steps)),
                evidence_required=tuple(EvidenceItem("photo", p) for p in proof),
                required_skills=skills,
                latitude=lat,
                longitude=lng,
                location_name=place,
                location_radius_km=2,
                estimated_duration_minutes=minutes,
                difficulty="beginner",
                token_reward=reward,
                bonus_for_quality=5,
                max_claims=3,
                expires_at=expires,
            ),
            source,
            evaluation_id=evaluation_id,
        )
        await store.apply_decision(mission.id, evaluation_id, "approved", "")
    return len(_LAKE_MISSIONS)
