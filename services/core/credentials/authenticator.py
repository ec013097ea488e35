"""Turns a bearer token into a Principal: an API key (Redis-cached digest lookup, falling back to
PostgreSQL), a human's access token (a JWT whose session state is checked, cached, on every
request) or the internal service credential."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core import errors
from services.core.context import Principal, PrincipalKind
from services.core.credentials import sessions, store
from services.core.credentials.keys import digest_key, looks_like_key
from services.core.credentials.sessions import SessionState
from services.core.credentials.tokens import TokenSigner, TokenType, looks_like_jwt
from services.core.logging import get_logger

_CACHE_PREFIX = "bw:auth:"
log = get_logger(__name__)


def _cache_key(digest: bytes) -> str:
    return _CACHE_PREFIX + digest.hex()


def _encode(owner: store.KeyOwner) -> bytes:
    return json.dumps(
        {
            "key_id": owner.key_id,
            "owner_kind": owner.owner_kind,
            "owner_id": owner.owner_id,
            "name": owner.name,
            "expires_at": owner.expires_at.isoformat() if owner.expires_at else None,
            "revoked": owner.revoked,
            "active": owner.active,
            "verified": owner.verified,
            "rate_limit_override": owner.rate_limit_override,
            "created_at": owner.created_at.isoformat() if owner.created_at else None,
        }
    ).encode()


def _decode(raw: bytes) -> store.KeyOwner:
    data = json.loads(raw)
    expires = data["expires_at"]
    return store.KeyOwner(
        key_id=data["key_id"],
        owner_kind=data["owner_kind"],
        owner_id=data["owner_id"],
        name=data["name"],
        expires_at=datetime.fromisoformat(expires) if expires else None,
        revoked=data["revoked"],
        active=data["active"],
        verified=data["verified"],
        rate_limit_override=data["rate_limit_override"],
        created_at=datetime.fromisoformat(data["created_at"]) if data.get("created_at") else None,
    )


class Authenticator:
    """Resolves API keys, humans' access tokens and the internal service credential."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        redis: Redis,
        internal_token: str,
        cache_ttl_seconds: int,
        agent_limits: tuple[int, int],
        tokens: TokenSigner | None = None,
        human_limit: int = 120,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._internal_token = internal_token.encode()
        self._ttl = cache_ttl_seconds
        self._pending_limit, self._verified_limit = agent_limits
        self._tokens = tokens
        self._human_limit = human_limit

    async def authenticate(self, token: str) -> Principal:
        """The principal for a bearer token; raises Unauthenticated or PermissionDenied."""
        if hmac.compare_digest(token.encode(), self._internal_token):
            return Principal(kind=PrincipalKind.INTERNAL, id="internal", name="internal")
        if self._tokens is not None and looks_like_jwt(token):
            return await self._human(self._tokens, token)
        if not looks_like_key(token):
            raise errors.Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")
        digest = digest_key(token)
        owner = await self._lookup(digest)
        if owner is None or owner.revoked:
            raise errors.Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")
        now = datetime.now(UTC)
        if owner.expires_at is not None and owner.expires_at <= now:
            raise errors.Unauthenticated(
                "the API key was rotated out and has expired", reason="API_KEY_EXPIRED"
            )
        if not owner.active:
            raise errors.PermissionDenied("the agent is deactivated", reason="AGENT_DEACTIVATED")
        if owner.owner_kind == "operator":
            return Principal(
                kind=PrincipalKind.OPERATOR, id=owner.owner_id, name=owner.name, key_id=owner.key_id
            )
        limit = owner.rate_limit_override or (
            self._verified_limit if owner.verified else self._pending_limit
        )
        return Principal(
            kind=PrincipalKind.AGENT,
            id=owner.owner_id,
            name=owner.name,
            verified=owner.verified,
            rate_limit_per_minute=limit,
            key_id=owner.key_id,
            key_deprecated=owner.expires_at is not None,
            created_at=owner.created_at,
        )

    async def _human(self, tokens: TokenSigner, token: str) -> Principal:
        claims = tokens.verify(token, TokenType.ACCESS)
        state = await self._session_state(claims.session_id)
        if state is SessionState.REVOKED:
            raise errors.Unauthenticated(
                "the session has ended: log in again", reason="SESSION_REVOKED"
            )
        if state is SessionState.OWNER_INACTIVE:
            raise errors.PermissionDenied("the account is deactivated", reason="HUMAN_DEACTIVATED")
        return Principal(
            kind=PrincipalKind.HUMAN,
            id=claims.human_id,
            name=claims.human_id,
            rate_limit_per_minute=self._human_limit,
            session_id=claims.session_id,
        )

    async def _session_state(self, session_id: str) -> SessionState:
        """One Redis GET on the hot path; PostgreSQL on a miss (and whenever Redis is down)."""
        key = sessions.cache_key(session_id)
        try:
            cached = await self._redis.get(key)
        except (RedisError, OSError):
            log.warning("auth_cache_unavailable")
            cached = None
        if cached is not None:
            return SessionState(bytes(cached).decode())  # type: ignore[arg-type]
        state = await sessions.state(self._engine, session_id)
        if self._ttl > 0:
            try:
                await self._redis.set(key, state.value, ex=self._ttl)
            except (RedisError, OSError):
                log.warning("auth_cache_unavailable")
        return state

    async def _lookup(self, digest: bytes) -> store.KeyOwner | None:
        cache_key = _cache_key(digest)
        try:
            cached = await self._redis.get(cache_key)
        except (RedisError, OSError):
            log.warning("auth_cache_unavailable")
            cached = None
        if cached is not None:
            return _decode(bytes(cached))  # type: ignore[arg-type]
        owner = await store.find_key_owner(self._engine, digest)
        if owner is not None and self._ttl > 0:
            ttl = self._ttl
            if owner.expires_at is not None:
                remaining = int((owner.expires_at - datetime.now(UTC)).total_seconds())
                ttl = max(1, min(ttl, remaining))
            try:
                await self._redis.set(cache_key, _encode(owner), ex=ttl)
            except (RedisError, OSError):
                log.warning("auth_cache_unavailable")
        return owner


async def invalidate_cached_keys(redis: Redis, digests: Iterable[bytes]) -> None:
    """Drops cached lookups after rotation, deactivation or a tier change.

    Best effort: when Redis is unreachable the committed change still stands and a stale
    cached lookup lives at most `auth_cache_ttl_seconds` (60 s by default).
    """
    keys = [_cache_key(d) for d in digests]
    if not keys:
        return
    try:
        await redis.delete(*keys)
    except (RedisError, OSError):
        log.error("auth_cache_invalidation_failed", keys=len(keys))
