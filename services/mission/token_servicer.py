"""gRPC adapters of TokenService and TokenAdminService."""

from __future__ import annotations

import grpc
from betterworld.mission.v1 import tokens_pb2 as pb
from betterworld.mission.v1 import tokens_pb2_grpc as pb_grpc

from services.core.context import caller, set_response_header
from services.core.convert import known_enum_name, page_meta, timestamp
from services.mission import tokens
from services.mission.deps import MissionDeps
from services.mission.model import BalanceRecord, TransactionRecord

Context = grpc.aio.ServicerContext


def balance_message(balance: BalanceRecord) -> pb.Balance:
    """A balance."""
    return pb.Balance(
        balance=balance.balance,
        total_earned=balance.total_earned,
        total_spent=balance.total_spent,
    )


def transaction_message(row: TransactionRecord) -> pb.Transaction:
    """A ledger row."""
    return pb.Transaction(
        transaction_id=row.id,
        amount=row.amount,
        balance_before=row.balance_before,
        balance_after=row.balance_after,
        type=pb.TransactionType.Value(row.type),
        reference_id=row.reference_id,
        description=row.description,
        created_at=timestamp(row.created_at),
    )


class TokenServicer(pb_grpc.TokenServiceServicer):
    """TokenService: a human's ImpactTokens."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def GetBalance(  # noqa: N802
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.Balance:
        return balance_message(await tokens.get_balance(self._deps, caller()))

    async def ListTransactions(  # noqa: N802
        self, request: pb.ListTransactionsRequest, context: Context
    ) -> pb.ListTransactionsResponse:
        page = await tokens.list_transactions(
            self._deps, caller(), cursor=request.cursor, limit=request.limit
        )
        return pb.ListTransactionsResponse(
            data=[transaction_message(t) for t in page.items], meta=page_meta(page)
        )

    async def SpendTokens(  # noqa: N802
        self, request: pb.SpendTokensRequest, context: Context
    ) -> pb.SpendTokensResponse:
        kind = known_enum_name(pb.TransactionType, request.type, "type").upper()
        posted = await tokens.spend(
            self._deps,
            caller(),
            amount=request.amount,
            type=kind,
            reference_id=request.reference_id,
            description=request.description,
            idempotency_key=request.idempotency_key,
        )
        if not posted.replayed:
            set_response_header("x-http-status", "201")
        return pb.SpendTokensResponse(
            transaction=transaction_message(posted.transaction),
            balance=balance_message(posted.balance),
            replayed=posted.replayed,
        )

    async def ClaimOrientationReward(  # noqa: N802
        self, request: pb.ClaimOrientationRewardRequest, context: Context
    ) -> pb.Transaction:
        row = await tokens.claim_orientation_reward(self._deps, caller())
        set_response_header("x-http-status", "201")
        return transaction_message(row)


class TokenAdminServicer(pb_grpc.TokenAdminServiceServicer):
    """TokenAdminService: the ledger's health."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def GetLedgerHealth(  # noqa: N802
        self, request: pb.GetLedgerHealthRequest, context: Context
    ) -> pb.LedgerHealth:
        check = await tokens.reconcile(self._deps)
        return pb.LedgerHealth(
            healthy=not check.drifts,
            balances=check.balances,
            transactions=check.transactions,
            tokens_outstanding=check.tokens_outstanding,
            drifts=[
                pb.BalanceDrift(human_id=d.human_id, balance=d.balance, ledger_sum=d.ledger_sum)
                for d in check.drifts
            ],
            checked_at=timestamp(check.checked_at),
        )
