"""ImpactTokens over real gRPC on real PostgreSQL: money is never created, lost or spent twice,
whatever the concurrency; the ledger is append-only; drift is found, never hidden."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from betterworld.mission.v1 import dashboard_pb2, dashboard_pb2_grpc, tokens_pb2_grpc
from betterworld.mission.v1 import tokens_pb2 as pb
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.mission.ledger_store import LedgerStore
from services.mission.model import Movement
from services.mission.service import build_deps
from services.mission.tokens import DRIFTING_BALANCES, reconcile
from tests.support.helpers import RunningService, bearer, unpack
from tests.support.humans import Humans


@pytest.fixture
def humans(mission_service: RunningService) -> Humans:
    return Humans(mission_service)


@pytest.fixture
def stub(mission_service: RunningService) -> tokens_pb2_grpc.TokenServiceStub:
    return tokens_pb2_grpc.TokenServiceStub(mission_service.channel)


async def _human(
    humans: Humans, email: str, grant: int = 0
) -> tuple[str, tuple[tuple[str, str], ...]]:
    tokens = await humans.verified(email)
    if grant:
        await LedgerStore(humans.service.runtime.engine).post(
            Movement(tokens.user.human_id, grant, "EARN_GRANT", "test-grant")
        )
    return tokens.user.human_id, tuple(bearer(tokens.access_token))


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def _spend(amount: int, key: str, **extra: object) -> pb.SpendTokensRequest:
    return pb.SpendTokensRequest(amount=amount, type=pb.SPEND_VOTE, idempotency_key=key, **extra)  # type: ignore[arg-type]


async def _ledger_sum(service: RunningService, human_id: str) -> tuple[int, int, int]:
    async with service.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT b.balance, (SELECT coalesce(sum(amount), 0) FROM token_ledger l "
                    "WHERE l.human_id = b.human_id), (SELECT count(*) FROM token_ledger l "
                    "WHERE l.human_id = b.human_id) FROM token_balances b WHERE b.human_id = :h"
                ),
                {"h": human_id},
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_spend_replay_and_refusals(
    humans: Humans, stub: tokens_pb2_grpc.TokenServiceStub
) -> None:
    human_id, auth = await _human(humans, "spender@example.org", grant=100)
    spent = await stub.SpendTokens(_spend(30, "vote-1", reference_id="problem-9"), metadata=auth)
    assert (spent.transaction.amount, spent.transaction.balance_before) == (-30, 100)
    assert spent.transaction.balance_after == 70 and spent.balance.balance == 70
    assert not spent.replayed
    again = await stub.SpendTokens(_spend(30, "vote-1", reference_id="problem-9"), metadata=auth)
    assert again.replayed and again.transaction.transaction_id == spent.transaction.transaction_id
    reused = unpack(await _error(stub.SpendTokens(_spend(31, "vote-1"), metadata=auth)))
    assert (reused.code, reused.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    too_much = unpack(await _error(stub.SpendTokens(_spend(71, "vote-2"), metadata=auth)))
    assert (too_much.code, too_much.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
    )
    for request, field in (
        (_spend(0, "k"), "amount"),
        (_spend(-5, "k"), "amount"),
        (_spend(1, "x" * 65), "idempotency_key"),
        (_spend(1, ""), "idempotency_key"),
        (pb.SpendTokensRequest(amount=1, type=pb.EARN_GRANT, idempotency_key="k"), "type"),
    ):
        bad = unpack(await _error(stub.SpendTokens(request, metadata=auth)))
        assert field in bad.field_violations
    assert await _ledger_sum(humans.service, human_id) == (70, 70, 2)  # nothing else written
    balance = await stub.GetBalance(pb.GetBalanceRequest(), metadata=auth)
    assert (balance.balance, balance.total_earned, balance.total_spent) == (70, 100, 30)
    history = await stub.ListTransactions(pb.ListTransactionsRequest(limit=1), metadata=auth)
    assert [t.amount for t in history.data] == [-30] and history.meta.has_more
    rest = await stub.ListTransactions(
        pb.ListTransactionsRequest(limit=1, cursor=history.meta.next_cursor), metadata=auth
    )
    assert [t.type for t in rest.data] == [pb.EARN_GRANT] and not rest.meta.has_more


async def test_two_hundred_concurrent_spends_never_overdraw(
    humans: Humans, stub: tokens_pb2_grpc.TokenServiceStub
) -> None:
    human_id, auth = await _human(humans, "racer@example.org", grant=1000)
    results = await asyncio.gather(
        *(stub.SpendTokens(_spend(7, f"race-{n}"), metadata=auth) for n in range(200)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.SpendTokensResponse)]
    refused = {unpack(r).reason for r in results if isinstance(r, grpc.aio.AioRpcError)}
    assert len(won) == 1000 // 7 and refused == {"INSUFFICIENT_BALANCE"}
    balance, ledger, rows = await _ledger_sum(humans.service, human_id)
    assert balance == ledger == 1000 - 7 * len(won) and rows == 1 + len(won)


async def test_one_key_sent_fifty_times_at_once_debits_once(
    humans: Humans, stub: tokens_pb2_grpc.TokenServiceStub
) -> None:
    human_id, auth = await _human(humans, "retrier@example.org", grant=50)
    results = await asyncio.gather(
        *(stub.SpendTokens(_spend(20, "same-key"), metadata=auth) for _ in range(50))
    )
    assert len({r.transaction.transaction_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await _ledger_sum(humans.service, human_id) == (30, 30, 2)


async def test_rewards_pay_once_and_the_orientation_reward_once_per_human(
    humans: Humans, stub: tokens_pb2_grpc.TokenServiceStub
) -> None:
    human_id, auth = await _human(humans, "newcomer@example.org")
    paid = await stub.ClaimOrientationReward(pb.ClaimOrientationRewardRequest(), metadata=auth)
    assert (paid.amount, paid.type) == (10, pb.EARN_ORIENTATION)
    twice = unpack(
        await _error(stub.ClaimOrientationReward(pb.ClaimOrientationRewardRequest(), metadata=auth))
    )
    assert twice.reason == "ORIENTATION_REWARD_CLAIMED"
    # A reward posted twice (a retried job, a worker killed after the commit) pays once.
    ledger = LedgerStore(humans.service.runtime.engine)
    reward = Movement(human_id, 25, "EARN_MISSION", "evidence:abc", reference_id="abc")
    first, second = await asyncio.gather(ledger.post(reward), ledger.post(reward))
    assert first.transaction.id == second.transaction.id
    assert await _ledger_sum(humans.service, human_id) == (35, 35, 2)
    boards = dashboard_pb2_grpc.DashboardServiceStub(humans.service.channel)
    board = await boards.GetDashboard(dashboard_pb2.GetDashboardRequest(), metadata=auth)
    assert (board.tokens.balance, board.tokens.total_earned) == (35, 35)


async def test_the_ledger_is_append_only_and_drift_is_reported(
    humans: Humans, mission_service: RunningService
) -> None:
    human_id, auth = await _human(humans, "audited@example.org", grant=40)
    engine = mission_service.runtime.engine
    for statement in ("UPDATE token_ledger SET amount = 1000", "DELETE FROM token_ledger"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="ck_token_ledger"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO token_ledger (human_id, amount, balance_before, balance_after, "
                    "type, idempotency_key, request_digest) VALUES (:h, -50, 40, -10, "
                    "'SPEND_VOTE', 'sneaky', '\\x00')"
                ),
                {"h": human_id},
            )
    deps = build_deps(mission_service.runtime)
    assert not (await reconcile(deps)).drifts and DRIFTING_BALANCES._value.get() == 0
    # Someone changes a cached balance behind the ledger's back (keeping the row consistent).
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE token_balances SET balance = 90, total_earned = 90 WHERE human_id = :h"),
            {"h": human_id},
        )
    check = await reconcile(deps)
    assert [(d.human_id, d.balance, d.ledger_sum) for d in check.drifts] == [(human_id, 90, 40)]
    assert DRIFTING_BALANCES._value.get() == 1
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        engine, name="ops-ledger", digest=key.digest, display_prefix=key.display_prefix
    )
    admin = tokens_pb2_grpc.TokenAdminServiceStub(mission_service.channel)
    health = await admin.GetLedgerHealth(
        pb.GetLedgerHealthRequest(), metadata=bearer(key.plaintext)
    )
    assert not health.healthy and health.drifts[0].ledger_sum == 40
    assert (health.balances, health.transactions, health.tokens_outstanding) == (1, 1, 90)
    denied = unpack(await _error(admin.GetLedgerHealth(pb.GetLedgerHealthRequest(), metadata=auth)))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
