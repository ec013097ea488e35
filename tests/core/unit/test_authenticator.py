"""Authenticator with fakes: every credential outcome, and the Redis cache in front of SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.core import errors
from services.core.context import PrincipalKind
from services.core.credentials import authenticator as auth_module
from services.core.credentials import store
from services.core.credentials.authenticator import Authenticator
from services.core.credentials.keys import AGENT_KEY_PREFIX, generate_key

KEY = generate_key(AGENT_KEY_PREFIX)


class FakeRedis:
    """The three commands the authenticator uses, in a dict; can be made unreachable."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise RedisConnectionError("down")

    async def get(self, key: str) -> bytes | None:
        self._check()
        return self.data.get(key)

    async def set(self, key: str, value: bytes, ex: int) -> None:
        self._check()
        assert ex > 0
        self.data[key] = value


def _owner(**overrides: Any) -> store.KeyOwner:
    fields: dict[str, Any] = {
        "key_id": "k1",
        "owner_kind": "agent",
        "owner_id": "a1",
        "name": "agent-one",
        "expires_at": None,
        "revoked": False,
        "active": True,
        "verified": False,
        "rate_limit_override": None,
    }
    return store.KeyOwner(**{**fields, **overrides})


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"owner": _owner(), "calls": 0}

    async def fake_find(engine: object, digest: bytes) -> store.KeyOwner | None:
        state["calls"] += 1
        return state["owner"] if digest == KEY.digest else None

    monkeypatch.setattr(store, "find_key_owner", fake_find)
    return state


def _authenticator(redis: FakeRedis) -> Authenticator:
    return Authenticator(
        engine=None,  # type: ignore[arg-type]
        redis=redis,  # type: ignore[arg-type]
        internal_token="internal-secret",
        cache_ttl_seconds=60,
        agent_limits=(30, 60),
    )


async def test_cached_lookups_skip_the_database(lookups: dict[str, Any]) -> None:
    redis = FakeRedis()
    authenticator = _authenticator(redis)
    first = await authenticator.authenticate(KEY.plaintext)
    second = await authenticator.authenticate(KEY.plaintext)
    assert first == second
    assert first.kind is PrincipalKind.AGENT and first.rate_limit_per_minute == 30
    assert lookups["calls"] == 1


async def test_redis_down_falls_back_to_the_database(lookups: dict[str, Any]) -> None:
    redis = FakeRedis()
    redis.down = True
    principal = await _authenticator(redis).authenticate(KEY.plaintext)
    assert principal.name == "agent-one"


@pytest.mark.parametrize(
    ("owner", "error", "reason"),
    [
        (_owner(revoked=True), errors.Unauthenticated, "API_KEY_INVALID"),
        (
            _owner(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
            errors.Unauthenticated,
            "API_KEY_EXPIRED",
        ),
        (_owner(active=False), errors.PermissionDenied, "AGENT_DEACTIVATED"),
    ],
)
async def test_unusable_keys_are_refused(
    lookups: dict[str, Any], owner: store.KeyOwner, error: type[Exception], reason: str
) -> None:
    lookups["owner"] = owner
    with pytest.raises(error) as info:
        await _authenticator(FakeRedis()).authenticate(KEY.plaintext)
    assert info.value.reason == reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["", "bw_agent_short", "something-else-entirely-long", "bw_op_"])
async def test_malformed_tokens_never_reach_the_database(
    lookups: dict[str, Any], token: str
) -> None:
    with pytest.raises(errors.Unauthenticated):
        await _authenticator(FakeRedis()).authenticate(token)
    assert lookups["calls"] == 0


async def test_tiers_overrides_operators_internal_and_deprecation(
    lookups: dict[str, Any],
) -> None:
    authenticator = _authenticator(FakeRedis())
    lookups["owner"] = _owner(verified=True)
    assert (await authenticator.authenticate(KEY.plaintext)).rate_limit_per_minute == 60
    authenticator = _authenticator(FakeRedis())
    lookups["owner"] = _owner(rate_limit_override=500)
    assert (await authenticator.authenticate(KEY.plaintext)).rate_limit_per_minute == 500
    authenticator = _authenticator(FakeRedis())
    lookups["owner"] = _owner(expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert (await authenticator.authenticate(KEY.plaintext)).key_deprecated
    authenticator = _authenticator(FakeRedis())
    lookups["owner"] = _owner(owner_kind="operator", name="alice")
    operator = await authenticator.authenticate(KEY.plaintext)
    assert (operator.kind, operator.name) == (PrincipalKind.OPERATOR, "alice")
    internal = await authenticator.authenticate("internal-secret")
    assert internal.kind is PrincipalKind.INTERNAL


def test_cache_format_round_trips() -> None:
    owner = _owner(expires_at=datetime(2026, 1, 1, tzinfo=UTC), rate_limit_override=7)
    assert auth_module._decode(auth_module._encode(owner)) == owner
