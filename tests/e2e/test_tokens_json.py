"""ImpactTokens over JSON through real Envoy: 201 for a new spend, 200 for its replay, 409 for a
spend above the balance or a key reused with another body."""

from __future__ import annotations

import httpx
import pytest

from services.mission.ledger_store import LedgerStore
from services.mission.model import Movement
from tests.support.e2e_http import json_error
from tests.support.helpers import RunningService
from tests.support.humans import Humans

pytestmark = pytest.mark.e2e


async def test_spend_over_json(mission_edge: tuple[RunningService, httpx.AsyncClient]) -> None:
    service, http = mission_edge
    tokens = await Humans(service).verified("json.spender@example.org")
    await LedgerStore(service.runtime.engine).post(
        Movement(tokens.user.human_id, 40, "EARN_GRANT", "grant")
    )
    auth = {"authorization": f"Bearer {tokens.access_token}"}
    body = {"amount": 15, "type": "SPEND_VOTE", "idempotencyKey": "vote-77", "referenceId": "p-77"}
    first = await http.post("/api/v1/tokens/spend", json=body, headers=auth)
    assert first.status_code == 201, first.text
    spent = first.json()
    assert spent["transaction"]["amount"] == "-15"  # int64 is a string in proto3 JSON
    assert spent["balance"]["balance"] == "25"
    replay = await http.post("/api/v1/tokens/spend", json=body, headers=auth)
    assert replay.status_code == 200 and replay.json()["replayed"] is True
    assert replay.json()["transaction"]["transactionId"] == spent["transaction"]["transactionId"]
    other = await http.post("/api/v1/tokens/spend", json={**body, "amount": 16}, headers=auth)
    assert json_error(other, 409).reason == "IDEMPOTENCY_KEY_REUSED"
    broke = await http.post(
        "/api/v1/tokens/spend", json={**body, "amount": 26, "idempotencyKey": "k2"}, headers=auth
    )
    assert json_error(broke, 409).reason == "INSUFFICIENT_BALANCE"
    balance = await http.get("/api/v1/tokens/balance", headers=auth)
    assert balance.json() == {"balance": "25", "totalEarned": "40", "totalSpent": "15"}
    history = await http.get("/api/v1/tokens/transactions?limit=5", headers=auth)
    assert [t["type"] for t in history.json()["data"]] == ["SPEND_VOTE", "EARN_GRANT"]
    reward = await http.post("/api/v1/tokens/orientation-reward", json={}, headers=auth)
    assert reward.status_code == 201 and reward.json()["amount"] == "10"
