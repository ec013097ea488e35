"""The guardrail's store: evaluations and the review queue in PostgreSQL, as frozen records.

Outside a transaction each call commits on its own; `transaction()` yields the store bound to
one transaction, for what must commit together (a review, its audit entry and its effect).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from services.core.ids import parse_uuid
from services.core.store import SqlStore
from services.guardrail.records import (
    EvaluationCounts,
    EvaluationRecord,
    FlaggedRecord,
    NewEvaluation,
    RuleHit,
)
from services.guardrail.tables import evaluations, flagged


@functools.cache
def _upsert_evaluation(columns: frozenset[str]) -> Any:
    # One statement per set of columns (an evaluation and a dead letter send different ones),
    # built once: composing the upsert per job cost more than running it. A retried job
    # replaces exactly the columns it sends.
    statement = insert(evaluations)
    return statement.on_conflict_do_update(
        index_elements=[evaluations.c.id],
        set_={name: statement.excluded[name] for name in sorted(columns) if name != "id"},
    )


_FLAG = insert(flagged).on_conflict_do_nothing(index_elements=[flagged.c.evaluation_id])
_EVALUATION = select(evaluations).where(evaluations.c.id == bindparam("id"))
_FLAGGED = select(flagged).where(flagged.c.id == bindparam("id"))


def _columns(new: NewEvaluation) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": uuid.UUID(new.id),
        "content_kind": new.content_kind,
        "content_id": uuid.UUID(new.content_id),
        "author_agent_id": uuid.UUID(new.author_agent_id),
        "decision": new.decision,
        "explanation": new.explanation,
        "trust_tier": new.trust_tier,
        "timings_ms": new.timings_ms,
        "attempts": new.attempts,
    }
    if new.dead_letter:
        return {**values, "layer_a": {}}
    return {
        **values,
        "alignment_score": new.alignment_score,
        "aligned_domain": new.aligned_domain,
        "harm_risk": new.harm_risk,
        "layer_a": {
            "rejected": new.rules_rejected,
            "ruleset": new.ruleset,
            "matches": [
                {"category": h.category, "rule": h.rule, "suppressed": h.suppressed}
                for h in new.rule_hits
            ],
        },
        "layer_b": new.classification,
        "classifier": new.classifier,
        "cache_hit": "true" if new.cache_hit else "false",
    }


def _evaluation(row: Row[Any]) -> EvaluationRecord:
    layer_a = row.layer_a or {}
    return EvaluationRecord(
        id=str(row.id),
        content_kind=row.content_kind,
        content_id=str(row.content_id),
        author_agent_id=str(row.author_agent_id),
        decision=row.decision,
        explanation=row.explanation,
        alignment_score=row.alignment_score,
        aligned_domain=row.aligned_domain,
        harm_risk=row.harm_risk,
        trust_tier=row.trust_tier,
        rules_rejected=bool(layer_a.get("rejected", False)),
        rule_hits=tuple(
            RuleHit(m["category"], m["rule"], m["suppressed"]) for m in layer_a.get("matches", [])
        ),
        classifier=row.classifier,
        cache_hit=row.cache_hit == "true",
        timings_ms={k: float(v) for k, v in row.timings_ms.items()},
        attempts=row.attempts,
        created_at=row.created_at,
    )


def _flagged(row: Row[Any]) -> FlaggedRecord:
    return FlaggedRecord(
        id=str(row.id),
        evaluation_id=str(row.evaluation_id),
        content_kind=row.content_kind,
        content_id=str(row.content_id),
        reason=row.reason,
        status=row.status,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        review_decision=row.review_decision,
        review_notes=row.review_notes,
        reviewed_at=row.reviewed_at,
        created_at=row.created_at,
    )


class GuardrailStore(SqlStore):
    """Evaluations and the review queue."""

    async def record(self, new: NewEvaluation) -> None:
        """Stores (or, on a retried job, replaces) an evaluation; FLAGGED ones enter the review
        queue with the explanation as their reason."""
        values = _columns(new)
        async with self._db.atomic() as conn:
            await conn.execute(_upsert_evaluation(frozenset(values)), values)
            if new.decision == "FLAGGED":
                await conn.execute(
                    _FLAG,
                    {
                        "evaluation_id": values["id"],
                        "content_kind": new.content_kind,
                        "content_id": values["content_id"],
                        "reason": new.explanation,
                    },
                )

    async def evaluation(self, evaluation_id: str) -> EvaluationRecord | None:
        """One evaluation, or None."""
        parsed = parse_uuid(evaluation_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_EVALUATION, {"id": parsed})).first()
        return _evaluation(row) if row else None

    async def flagged_item(self, flagged_id: str) -> FlaggedRecord | None:
        """One review-queue item, or None."""
        parsed = parse_uuid(flagged_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_FLAGGED, {"id": parsed})).first()
        return _flagged(row) if row else None

    async def list_flagged(
        self,
        *,
        statuses: tuple[str, ...],
        kind: str | None,
        after: list[Any] | None,
        limit: int,
    ) -> list[FlaggedRecord]:
        """Review-queue items after the key `[created_at ISO, id]`, oldest first."""
        query = select(flagged).where(flagged.c.status.in_(statuses))
        if kind:
            query = query.where(flagged.c.content_kind == kind)
        if after is not None:
            created, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
            query = query.where(
                (flagged.c.created_at > created)
                | ((flagged.c.created_at == created) & (flagged.c.id > last))
            )
        query = query.order_by(flagged.c.created_at, flagged.c.id).limit(limit)
        async with self._db.connect() as conn:
            return [_flagged(row) for row in (await conn.execute(query)).all()]

    async def claim(self, flagged_id: str, operator: str) -> FlaggedRecord | None:
        """Claims a WAITING item (or re-claims one's own) atomically; None when someone else
        has it, or it is reviewed already, or there is no such item."""
        parsed = parse_uuid(flagged_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    update(flagged)
                    .where(flagged.c.id == parsed)
                    .where(
                        (flagged.c.status == "WAITING")
                        | ((flagged.c.status == "CLAIMED") & (flagged.c.claimed_by == operator))
                    )
                    .values(status="CLAIMED", claimed_by=operator, claimed_at=func.now())
                    .returning(*flagged.c)
                )
            ).first()
        return _flagged(row) if row else None

    async def resolve(
        self, flagged_id: str, *, operator: str, decision: str, notes: str
    ) -> FlaggedRecord | None:
        """Marks a claimed item reviewed by its claimer; None when not claimed by `operator`."""
        parsed = parse_uuid(flagged_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    update(flagged)
                    .where(flagged.c.id == parsed)
                    .where(flagged.c.status == "CLAIMED")
                    .where(flagged.c.claimed_by == operator)
                    .values(
                        status="RESOLVED",
                        review_decision=decision,
                        review_notes=notes,
                        reviewed_at=func.now(),
                    )
                    .returning(*flagged.c)
                )
            ).first()
        return _flagged(row) if row else None

    async def approvals_since(self, since: datetime) -> tuple[int, int]:
        """(approved, all) evaluations made at or after `since`."""
        statement = select(
            func.count().filter(evaluations.c.decision == "APPROVED"), func.count()
        ).where(evaluations.c.created_at >= since)
        async with self._db.connect() as conn:
            approved, total = (await conn.execute(statement)).one()
        return int(approved), int(total)

    async def counts(self, since: datetime) -> EvaluationCounts:
        """Decision counts, cache hits and layer latency percentiles since `since`, and the
        review queue's waiting items."""
        layer_a = evaluations.c.timings_ms["layer_a"].as_float()
        layer_b = evaluations.c.timings_ms["layer_b"].as_float()
        query = select(
            func.count().label("total"),
            func.count().filter(evaluations.c.decision == "APPROVED").label("approved"),
            func.count().filter(evaluations.c.decision == "FLAGGED").label("flagged"),
            func.count().filter(evaluations.c.decision == "REJECTED").label("rejected"),
            func.count().filter(evaluations.c.layer_b.is_not(None)).label("layer_b_runs"),
            func.count().filter(evaluations.c.cache_hit == "true").label("cache_hits"),
            func.percentile_cont(0.5).within_group(layer_a).label("a50"),
            func.percentile_cont(0.99).within_group(layer_a).label("a99"),
            func.percentile_cont(0.5).within_group(layer_b).label("b50"),
            func.percentile_cont(0.99).within_group(layer_b).label("b99"),
        ).where(evaluations.c.created_at >= since)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).one()
            waiting = (
                await conn.execute(
                    select(func.count()).select_from(flagged).where(flagged.c.status == "WAITING")
                )
            ).scalar_one()
        return EvaluationCounts(
            total=row.total or 0,
            approved=row.approved or 0,
            flagged=row.flagged or 0,
            rejected=row.rejected or 0,
            layer_b_runs=row.layer_b_runs or 0,
            cache_hits=row.cache_hits or 0,
            layer_a_ms=(float(row.a50 or 0), float(row.a99 or 0)),
            layer_b_ms=(float(row.b50 or 0), float(row.b99 or 0)),
            flagged_waiting=int(waiting),
        )
