"""ImpactTokens: balances, history, spending, the orientation reward, and the reconciliation
that watches the ledger (and never corrects money by itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Gauge

from services.core import errors
from services.core.context import Principal
from services.core.logging import get_logger
from services.core.pagination import Page, paginate
from services.mission.deps import MissionDeps
from services.mission.ledger_store import InsufficientBalance, KeyReused
from services.mission.model import (
    BalanceRecord,
    LedgerCheck,
    Movement,
    Posted,
    TransactionRecord,
)
from services.mission.validation import valid_spend

log = get_logger(__name__)
ORIENTATION_REWARD = 10
DRIFTING_BALANCES = Gauge(
    "ledger_drift_balances", "Balances that differ from the sum of their ledger rows"
)
DRIFT_TOKENS = Gauge(
    "ledger_drift_tokens", "Sum of |balance - ledger sum| over the drifting balances"
)


async def get_balance(deps: MissionDeps, principal: Principal) -> BalanceRecord:
    """The caller's balance."""
    return await deps.ledger.balance(principal.id)


async def list_transactions(
    deps: MissionDeps, principal: Principal, *, cursor: str, limit: int
) -> Page[TransactionRecord]:
    """The caller's ledger rows, newest first."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[TransactionRecord]:
        return await deps.ledger.page(principal.id, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"ledger:{principal.id}",
        cursor=cursor,
        limit=limit,
        key=lambda row: [row.created_at.isoformat(), row.id],
    )


async def post(deps: MissionDeps, movement: Movement) -> Posted:
    """Writes a movement once per key; the domain errors of a refused one."""
    try:
        posted = await deps.ledger.post(movement)
    except InsufficientBalance as exc:
        raise errors.Conflict(
            f"the balance is {exc.balance} tokens, less than {-movement.amount}",
            reason="INSUFFICIENT_BALANCE",
        ) from None
    except KeyReused:
        raise errors.AlreadyExists(
            "this idempotency key was used for a different request",
            reason="IDEMPOTENCY_KEY_REUSED",
        ) from None
    if not posted.replayed:
        log.info(
            "tokens_moved",
            human_id=movement.human_id,
            amount=movement.amount,
            type=movement.type,
            transaction_id=posted.transaction.id,
        )
    return posted


async def spend(
    deps: MissionDeps,
    principal: Principal,
    *,
    amount: int,
    type: str,
    reference_id: str,
    description: str,
    idempotency_key: str,
) -> Posted:
    """A spend of the caller's tokens, idempotent by key."""
    valid_spend(amount, type, reference_id, description, idempotency_key)
    return await post(
        deps,
        Movement(
            human_id=principal.id,
            amount=-amount,
            type=type,
            idempotency_key=f"spend:{idempotency_key}",
            reference_id=reference_id.strip(),
            description=description.strip(),
        ),
    )


async def claim_orientation_reward(deps: MissionDeps, principal: Principal) -> TransactionRecord:
    """Pays the orientation reward, once per human."""
    posted = await post(
        deps,
        Movement(
            human_id=principal.id,
            amount=ORIENTATION_REWARD,
            type="EARN_ORIENTATION",
            idempotency_key="orientation",
            description="Orientation completed",
        ),
    )
    if posted.replayed:
        raise errors.AlreadyExists(
            "the orientation reward was paid already", reason="ORIENTATION_REWARD_CLAIMED"
        )
    return posted.transaction


async def reconcile(deps: MissionDeps) -> LedgerCheck:
    """Checks every balance against its ledger and exports the drift. A drift is an error to
    investigate, so it is logged and shown, never adjusted here."""
    check = await deps.ledger.check()
    DRIFTING_BALANCES.set(len(check.drifts))
    DRIFT_TOKENS.set(sum(abs(d.balance - d.ledger_sum) for d in check.drifts))
    for drift in check.drifts:
        log.error(
            "ledger_drift", human_id=drift.human_id, balance=drift.balance, ledger=drift.ledger_sum
        )
    return check
