"""The missions store: missions and their claims, as frozen records (`MissionStore`).

Claims change a mission's `active_claims` under the mission's row lock; rows are locked in
one order everywhere (a human, then a claim, then its mission), so concurrent claims,
abandons, archives and the expiry sweep never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from services.core.ids import parse_uuid
from services.core.store import SqlStore
from services.mission.model import (
    APPROVED,
    LIVE_CLAIMS,
    ClaimRecord,
    ClaimStatus,
    EvidenceItem,
    MissionFields,
    MissionQuery,
    MissionRecord,
    MissionStatus,
    SolutionSource,
    Step,
)
from services.mission.tables import humans, mission_claims, missions

LIVE_CLAIM_INDEX = "uq_mission_claims_live"


class AlreadyClaimed(Exception):
    """The human holds a live claim on this mission already."""


def _fields(row: Row[Any]) -> MissionFields:
    return MissionFields(
        title=row.title,
        description=row.description,
        instructions=tuple(
            Step(int(s["step"]), s["text"], bool(s.get("optional"))) for s in row.instructions
        ),
        evidence_required=tuple(
            EvidenceItem(e["type"], e["description"], bool(e.get("required", True)))
            for e in row.evidence_required
        ),
        required_skills=tuple(row.required_skills),
        latitude=row.latitude,
        longitude=row.longitude,
        location_name=row.location_name,
        location_radius_km=row.location_radius_km,
        estimated_duration_minutes=row.estimated_duration_minutes,
        difficulty=row.difficulty,
        token_reward=row.token_reward,
        bonus_for_quality=row.bonus_for_quality,
        max_claims=row.max_claims,
        expires_at=row.expires_at,
    )


def _record(row: Row[Any]) -> MissionRecord:
    meters, key = getattr(row, "distance_m", None), getattr(row, "distance_key", None)
    return MissionRecord(
        id=str(row.id),
        solution_id=str(row.solution_id),
        problem_id=str(row.problem_id),
        author_agent_id=str(row.author_agent_id),
        fields=_fields(row),
        active_claims=row.active_claims,
        completed_claims=row.completed_claims,
        status=MissionStatus(row.status),
        domain=row.domain,
        guardrail_status=row.guardrail_status,
        guardrail_evaluation_id=str(row.guardrail_evaluation_id),
        guardrail_explanation=row.guardrail_explanation,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        distance_m=meters,
        distance_key=key,
    )


def _claim(row: Row[Any]) -> ClaimRecord:
    return ClaimRecord(
        id=str(row.id),
        mission_id=str(row.mission_id),
        human_id=str(row.human_id),
        status=ClaimStatus(row.status),
        progress_percent=row.progress_percent,
        notes=row.notes,
        claimed_at=row.claimed_at,
        deadline_at=row.deadline_at,
        updated_at=row.updated_at,
        mission_title=getattr(row, "title", "") or "",
    )


def _values(fields: MissionFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "description": fields.description,
        "instructions": [
            {"step": s.step, "text": s.text, "optional": s.optional} for s in fields.instructions
        ],
        "evidence_required": [
            {"type": e.type, "description": e.description, "required": e.required}
            for e in fields.evidence_required
        ],
        "required_skills": list(fields.required_skills),
        "latitude": fields.latitude,
        "longitude": fields.longitude,
        "location_name": fields.location_name,
        "location_radius_km": fields.location_radius_km,
        "estimated_duration_minutes": fields.estimated_duration_minutes,
        "difficulty": fields.difficulty,
        "token_reward": fields.token_reward,
        "bonus_for_quality": fields.bonus_for_quality,
        "max_claims": fields.max_claims,
        "expires_at": fields.expires_at,
    }


def _earth(latitude: Any, longitude: Any) -> ColumnElement[Any]:
    return func.ll_to_earth(latitude, longitude)


def _open_now() -> ColumnElement[bool]:
    # Approved-only comes with the geo filter, which the partial GiST index needs anyway.
    return and_(
        missions.c.status == MissionStatus.OPEN.value,
        missions.c.expires_at > func.now(),
    )


def _status_after(claims: ColumnElement[Any]) -> ColumnElement[Any]:
    """The status once `active_claims` becomes `claims`: FULL when active and completed claims
    take every slot, OPEN again below that (other states stay)."""
    return case(
        (
            and_(
                missions.c.status.in_([MissionStatus.OPEN.value, MissionStatus.FULL.value]),
                claims + missions.c.completed_claims >= missions.c.max_claims,
            ),
            MissionStatus.FULL.value,
        ),
        (missions.c.status == MissionStatus.FULL.value, MissionStatus.OPEN.value),
        else_=missions.c.status,
    )


class MissionStore(SqlStore):
    """Missions and their claims. Ids are strings; a malformed one finds nothing."""

    async def insert(
        self, fields: MissionFields, source: SolutionSource, *, evaluation_id: str
    ) -> MissionRecord:
        """A new PENDING mission."""
        statement = (
            insert(missions)
            .values(
                **_values(fields),
                solution_id=uuid.UUID(source.solution_id),
                problem_id=uuid.UUID(source.problem_id),
                author_agent_id=uuid.UUID(source.author_agent_id),
                domain=source.domain,
                guardrail_evaluation_id=uuid.UUID(evaluation_id),
            )
            .returning(missions)
        )
        async with self._db.connect() as conn:
            return _record((await conn.execute(statement)).one())

    async def get(self, mission_id: str, *, lock: bool = False) -> MissionRecord | None:
        """One mission, or None; `lock` holds its row until the transaction ends."""
        parsed = parse_uuid(mission_id)
        if parsed is None:
            return None
        query = select(missions).where(missions.c.id == parsed)
        if lock:
            query = query.with_for_update()
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    async def get_many(self, mission_ids: Collection[str]) -> dict[str, MissionRecord]:
        """The missions with these ids, by id, in one query (unknown ids are left out)."""
        parsed = {p for i in mission_ids if (p := parse_uuid(i)) is not None}
        if not parsed:
            return {}
        query = select(missions).where(missions.c.id.in_(parsed))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {record.id: record for record in map(_record, rows)}

    async def replace_fields(
        self, mission_id: str, fields: MissionFields, *, evaluation_id: str
    ) -> MissionRecord:
        """An edit: new fields, the next version, and a new evaluation (PENDING again)."""
        statement = (
            update(missions)
            .where(missions.c.id == uuid.UUID(mission_id))
            .values(
                **_values(fields),
                guardrail_status="pending",
                guardrail_evaluation_id=uuid.UUID(evaluation_id),
                guardrail_explanation="",
                version=missions.c.version + 1,
                updated_at=func.now(),
            )
            .returning(missions)
        )
        async with self._db.connect() as conn:
            return _record((await conn.execute(statement)).one())

    async def set_status(self, mission_id: str, status: MissionStatus) -> MissionRecord:
        """Sets the status (archive)."""
        statement = (
            update(missions)
            .where(missions.c.id == uuid.UUID(mission_id))
            .values(status=status.value, version=missions.c.version + 1, updated_at=func.now())
            .returning(missions)
        )
        async with self._db.connect() as conn:
            return _record((await conn.execute(statement)).one())

    async def apply_decision(
        self, mission_id: str, evaluation_id: str, status: str, explanation: str
    ) -> bool:
        """Records a guardrail decision if `evaluation_id` is the mission's current one;
        False (stale) otherwise. Applying it twice changes nothing more."""
        parsed, evaluation = parse_uuid(mission_id), parse_uuid(evaluation_id)
        if parsed is None or evaluation is None:
            return False
        statement = (
            update(missions)
            .where(missions.c.id == parsed)
            .where(missions.c.guardrail_evaluation_id == evaluation)
            .values(guardrail_status=status, guardrail_explanation=explanation)
            .returning(missions.c.id)
        )
        async with self._db.connect() as conn:
            return (await conn.execute(statement)).first() is not None

    async def pending_since(self, before: datetime, *, limit: int) -> list[MissionRecord]:
        """PENDING missions last changed before `before`, oldest first (the sweep's input)."""
        query = (
            select(missions)
            .where(missions.c.guardrail_status == "pending")
            .where(missions.c.updated_at < before)
            .order_by(missions.c.updated_at)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]

    async def page(
        self, query: MissionQuery, *, after: list[Any] | None, count: int
    ) -> list[MissionRecord]:
        """Up to `count` missions matching `query` after the sort key `after`, in the
        query's order: newest ([created_at ISO, id]), reward ([reward, id]) or distance
        ([metres, id])."""
        distance: ColumnElement[Any] | None = None
        statement = select(missions)
        if query.author_agent_id is not None:
            statement = statement.where(
                missions.c.author_agent_id == uuid.UUID(query.author_agent_id)
            )
        else:
            statement = statement.where(missions.c.guardrail_status == APPROVED)
            if query.status is not None:
                statement = statement.where(missions.c.status == query.status.value)
            if query.status in (MissionStatus.OPEN, MissionStatus.FULL):
                statement = statement.where(missions.c.expires_at > func.now())
        if query.domain:
            statement = statement.where(missions.c.domain == query.domain)
        if query.skills:
            statement = statement.where(
                missions.c.required_skills.overlap(
                    cast(list(query.skills), missions.c.required_skills.type)
                )
            )
        if query.difficulty:
            statement = statement.where(missions.c.difficulty == query.difficulty)
        if query.min_reward:
            statement = statement.where(missions.c.token_reward >= query.min_reward)
        if query.max_reward:
            statement = statement.where(missions.c.token_reward <= query.max_reward)
        if query.max_duration_minutes:
            statement = statement.where(
                missions.c.estimated_duration_minutes <= query.max_duration_minutes
            )
        if query.near is not None:
            lat, lng, radius_km = query.near
            geo = _geo(lat, lng, radius_km)
            distance = geo.key
            statement = statement.add_columns(
                geo.metres.label("distance_m"), geo.key.label("distance_key")
            ).where(geo.within)
        if query.sort == "distance" and distance is not None:
            keys: tuple[ColumnElement[Any], ...] = (distance, missions.c.id)
            statement = statement.order_by(distance, missions.c.id)
            if after is not None:
                statement = statement.where(
                    tuple_(*keys) > tuple_(literal(float(after[0]), Float), uuid.UUID(after[1]))
                )
        elif query.sort == "reward":
            statement = statement.order_by(missions.c.token_reward.desc(), missions.c.id.desc())
            if after is not None:
                statement = statement.where(
                    tuple_(missions.c.token_reward, missions.c.id)
                    < tuple_(literal(int(after[0])), uuid.UUID(after[1]))
                )
        else:
            statement = statement.order_by(missions.c.created_at.desc(), missions.c.id.desc())
            if after is not None:
                created = datetime.fromisoformat(after[0])
                statement = statement.where(
                    or_(
                        missions.c.created_at < created,
                        and_(
                            missions.c.created_at == created,
                            missions.c.id < uuid.UUID(after[1]),
                        ),
                    )
                )
        async with self._db.connect() as conn:
            rows = (await conn.execute(statement.limit(count))).all()
        return [_record(row) for row in rows]

    async def nearby(
        self, lat: float, lng: float, radius_km: float, *, after: list[Any] | None, count: int
    ) -> list[MissionRecord]:
        """Approved, OPEN, unexpired missions within `radius_km`, nearest first (keyset on
        [metres, id])."""
        geo = _geo(lat, lng, radius_km)
        statement = (
            select(missions, geo.metres.label("distance_m"), geo.key.label("distance_key"))
            .where(_open_now())
            .where(geo.within)
            .order_by(geo.key, missions.c.id)
            .limit(count)
        )
        if after is not None:
            statement = statement.where(
                tuple_(geo.key, missions.c.id)
                > tuple_(literal(float(after[0]), Float), uuid.UUID(after[1]))
            )
        async with self._db.connect() as conn:
            return [_record(row) for row in (await conn.execute(statement)).all()]

    # Claims ---------------------------------------------------------------------------

    async def lock_human(self, human_id: str) -> bool:
        """Locks the human's row (their claims change one at a time); False when unknown."""
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    # NO KEY UPDATE: serializes the human's claims without blocking the
                    # foreign-key checks of rows that merely name the human (ledger, votes).
                    select(humans.c.id)
                    .where(humans.c.id == uuid.UUID(human_id))
                    .with_for_update(key_share=True)
                )
            ).first()
        return row is not None

    async def live_claims_of(self, human_id: str) -> int:
        """Claims the human holds now."""
        async with self._db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(mission_claims)
                        .where(mission_claims.c.human_id == uuid.UUID(human_id))
                        .where(mission_claims.c.status.in_([s.value for s in LIVE_CLAIMS]))
                    )
                ).scalar_one()
            )

    async def holds_live_claim(self, mission_id: str, human_id: str) -> bool:
        """Whether the human holds a live claim on the mission."""
        parsed, human = parse_uuid(mission_id), parse_uuid(human_id)
        if parsed is None or human is None:
            return False
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(mission_claims.c.id)
                    .where(mission_claims.c.mission_id == parsed)
                    .where(mission_claims.c.human_id == human)
                    .where(mission_claims.c.status.in_([s.value for s in LIVE_CLAIMS]))
                    .limit(1)
                )
            ).first()
        return row is not None

    async def live_claim(self, mission_id: str, human_id: str) -> ClaimRecord | None:
        """The human's live claim on the mission, or None."""
        parsed = parse_uuid(mission_id)
        if parsed is None:
            return None
        query = (
            select(mission_claims)
            .where(mission_claims.c.mission_id == parsed)
            .where(mission_claims.c.human_id == uuid.UUID(human_id))
            .where(mission_claims.c.status.in_([s.value for s in LIVE_CLAIMS]))
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _claim(row) if row else None

    async def add_claim(self, mission_id: str, human_id: str, deadline: datetime) -> ClaimRecord:
        """A new active claim and one more active claim on the mission (its row must be
        locked by the caller); AlreadyClaimed when the human holds one on it already."""
        try:
            async with self._db.connect() as conn:
                row = (
                    await conn.execute(
                        insert(mission_claims)
                        .values(
                            mission_id=uuid.UUID(mission_id),
                            human_id=uuid.UUID(human_id),
                            deadline_at=deadline,
                        )
                        .returning(mission_claims)
                    )
                ).one()
                await self._count_claims(conn, mission_id, +1)
        except IntegrityError as exc:
            if LIVE_CLAIM_INDEX in str(exc.orig):
                raise AlreadyClaimed(mission_id) from None
            raise
        return _claim(row)

    async def get_claim(self, claim_id: str, *, lock: bool = False) -> ClaimRecord | None:
        """One claim, or None; `lock` holds its row."""
        parsed = parse_uuid(claim_id)
        if parsed is None:
            return None
        query = select(mission_claims).where(mission_claims.c.id == parsed)
        if lock:
            query = query.with_for_update()
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _claim(row) if row else None

    async def update_claim(
        self,
        claim_id: str,
        *,
        status: ClaimStatus | None = None,
        progress_percent: int | None = None,
        notes: str | None = None,
    ) -> ClaimRecord:
        """Changes a claim; a claim leaving the live states frees its slot (the mission's
        row must be locked by the caller)."""
        values: dict[str, Any] = {"updated_at": func.now()}
        if status is not None:
            values["status"] = status.value
        if progress_percent is not None:
            values["progress_percent"] = progress_percent
        if notes is not None:
            values["notes"] = notes
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    update(mission_claims)
                    .where(mission_claims.c.id == uuid.UUID(claim_id))
                    .values(**values)
                    .returning(mission_claims)
                )
            ).one()
            if status is not None and status not in LIVE_CLAIMS:
                await self._count_claims(conn, str(row.mission_id), -1)
        return _claim(row)

    async def complete_claim(self, claim_id: str) -> ClaimRecord:
        """The claim is COMPLETED: its slot stays taken, as a completed one, and the mission is
        COMPLETED once every slot is (the mission's row must be locked by the caller)."""
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    update(mission_claims)
                    .where(mission_claims.c.id == uuid.UUID(claim_id))
                    .values(status=ClaimStatus.COMPLETED.value, updated_at=func.now())
                    .returning(mission_claims)
                )
            ).one()
            done = missions.c.completed_claims + 1
            await conn.execute(
                update(missions)
                .where(missions.c.id == row.mission_id)
                .values(
                    active_claims=missions.c.active_claims - 1,
                    completed_claims=done,
                    status=case(
                        (
                            and_(
                                missions.c.status.in_(
                                    [MissionStatus.OPEN.value, MissionStatus.FULL.value]
                                ),
                                done >= missions.c.max_claims,
                            ),
                            MissionStatus.COMPLETED.value,
                        ),
                        else_=missions.c.status,
                    ),
                    updated_at=func.now(),
                )
            )
        return _claim(row)

    async def claims_page(
        self, human_id: str, status: ClaimStatus | None, *, after: list[Any] | None, count: int
    ) -> list[ClaimRecord]:
        """The human's claims, newest first (keyset [claimed_at ISO, id])."""
        query = (
            select(mission_claims, missions.c.title)
            .join(missions, missions.c.id == mission_claims.c.mission_id)
            .where(mission_claims.c.human_id == uuid.UUID(human_id))
        )
        if status is not None:
            query = query.where(mission_claims.c.status == status.value)
        if after is not None:
            claimed = datetime.fromisoformat(after[0])
            query = query.where(
                or_(
                    mission_claims.c.claimed_at < claimed,
                    and_(
                        mission_claims.c.claimed_at == claimed,
                        mission_claims.c.id < uuid.UUID(after[1]),
                    ),
                )
            )
        query = query.order_by(
            mission_claims.c.claimed_at.desc(), mission_claims.c.id.desc()
        ).limit(count)
        async with self._db.connect() as conn:
            return [_claim(row) for row in (await conn.execute(query)).all()]

    async def live_claims(self, human_id: str, *, limit: int) -> list[ClaimRecord]:
        """The human's live claims, newest first."""
        query = (
            select(mission_claims, missions.c.title)
            .join(missions, missions.c.id == mission_claims.c.mission_id)
            .where(mission_claims.c.human_id == uuid.UUID(human_id))
            .where(mission_claims.c.status.in_([s.value for s in LIVE_CLAIMS]))
            .order_by(mission_claims.c.claimed_at.desc(), mission_claims.c.id.desc())
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return [_claim(row) for row in (await conn.execute(query)).all()]

    async def claim_counts(self, human_id: str) -> dict[ClaimStatus, int]:
        """The human's claims per status."""
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(mission_claims.c.status, func.count())
                    .where(mission_claims.c.human_id == uuid.UUID(human_id))
                    .group_by(mission_claims.c.status)
                )
            ).all()
        return {ClaimStatus(status): int(n) for status, n in rows}

    async def expire_overdue_claims(self, *, limit: int) -> int:
        """Active claims past their deadline become EXPIRED and free their slots; returns
        how many. Claims locked by a request are left for the next round."""
        statement = text(
            """
            WITH overdue AS (
                SELECT id FROM mission_claims
                WHERE status = 'active' AND deadline_at < now()
                ORDER BY deadline_at LIMIT :limit
                FOR UPDATE SKIP LOCKED
            ), expired AS (
                UPDATE mission_claims c SET status = 'expired', updated_at = now()
                FROM overdue WHERE c.id = overdue.id
                RETURNING c.mission_id
            ), freed AS (
                SELECT mission_id, count(*) AS n FROM expired GROUP BY mission_id
            ), missions_changed AS (
                UPDATE missions m
                SET active_claims = m.active_claims - freed.n,
                    status = CASE WHEN m.status = 'full' THEN 'open' ELSE m.status END,
                    updated_at = now()
                FROM freed WHERE m.id = freed.mission_id
                RETURNING m.id
            )
            SELECT (SELECT count(*) FROM expired)
            """
        ).bindparams(bindparam("limit", limit))
        async with self._db.atomic() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def expire_missions(self) -> int:
        """OPEN or FULL missions past `expires_at` become EXPIRED; returns how many."""
        statement = (
            update(missions)
            .where(missions.c.status.in_([MissionStatus.OPEN.value, MissionStatus.FULL.value]))
            .where(missions.c.expires_at <= func.now())
            .values(status=MissionStatus.EXPIRED.value, updated_at=func.now())
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def claims_completed_since(self, since: datetime) -> int:
        """Claims completed at or after `since` (a completed claim changes no more, so its
        `updated_at` is when it was completed)."""
        statement = (
            select(func.count())
            .select_from(mission_claims)
            .where(mission_claims.c.status == ClaimStatus.COMPLETED.value)
            .where(mission_claims.c.updated_at >= since)
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def _count_claims(self, conn: Any, mission_id: str, delta: int) -> None:
        claims = missions.c.active_claims + delta
        await conn.execute(
            update(missions)
            .where(missions.c.id == uuid.UUID(mission_id))
            .values(active_claims=claims, status=_status_after(claims), updated_at=func.now())
        )


@dataclass(frozen=True)
class _Geo:
    key: ColumnElement[Any]
    """The straight-line (chord) distance `<->`: it orders like the distance on the sphere,
    and the GiST index answers ORDER BY it nearest first (KNN), so a page reads only the rows
    it returns instead of every row within the radius."""
    metres: ColumnElement[Any]
    """The distance on the sphere (`earth_distance`), shown to clients."""
    within: ColumnElement[bool]
    """An `earth_box` prefilter the index answers, then the exact distance."""


def _geo(lat: float, lng: float, radius_km: float) -> _Geo:
    center = _earth(literal(lat, Float), literal(lng, Float))
    point = _earth(missions.c.latitude, missions.c.longitude)
    metres = radius_km * 1000
    distance = func.earth_distance(center, point)
    return _Geo(
        key=point.op("<->", return_type=Float)(center),
        metres=distance,
        within=and_(
            missions.c.guardrail_status == APPROVED,
            missions.c.latitude.is_not(None),
            func.earth_box(center, literal(metres, Float)).op("@>")(point),
            distance <= metres,
        ),
    )
