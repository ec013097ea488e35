"""Server-side authentication cost: `Authenticator.authenticate` timed on the bench's databases.

The bench process builds the same runtime a service process builds (`build_runtime`: SQLAlchemy
async engine over asyncpg, redis.asyncio client) and times the exact code the AuthInterceptor
runs, one call at a time on an idle stack:

- cached: the key's lookup is in Redis (the steady state; one Redis GET + JSON decode);
- uncached: the cache entry is deleted before each call (untimed), so each timed call is a Redis
  GET miss, two indexed PostgreSQL reads and a Redis SET.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from services.core.credentials.authenticator import _cache_key, _decode
from services.core.credentials.keys import digest_key
from services.core.runtime import build_runtime
from services.core.settings import Settings


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 4),
        "p50_ms": round(pct(50), 4),
        "p95_ms": round(pct(95), 4),
        "p99_ms": round(pct(99), 4),
        "max_ms": round(ms[-1], 4),
    }


async def _measure(settings: Settings, key: str, iterations: int) -> dict[str, object]:
    runtime = build_runtime(settings)
    auth = runtime.authenticator
    cache_key = _cache_key(digest_key(key))
    try:
        for _ in range(50):  # warm the pool, the cache and the code paths
            await auth.authenticate(key)
        cached: list[float] = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            await auth.authenticate(key)
            cached.append(time.perf_counter() - t0)
        uncached: list[float] = []
        for _ in range(iterations):
            await runtime.redis.delete(cache_key)
            t0 = time.perf_counter()
            await auth.authenticate(key)
            uncached.append(time.perf_counter() - t0)
        # The CPU-only part (digest + decode) without any round trip, for scale.
        raw = await runtime.redis.get(cache_key)
        assert isinstance(raw, bytes), "the lookup above cached the key"

        cpu: list[float] = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            digest_key(key)
            _decode(raw)
            cpu.append(time.perf_counter() - t0)
        return {
            "cached": _stats(cached),
            "uncached": _stats(uncached),
            "cpu_only_digest_and_decode": _stats(cpu),
        }
    finally:
        await runtime.close()


def measure_auth_cost(settings: Settings, key: str, iterations: int = 2000) -> dict[str, object]:
    """Timings in ms for cached and uncached lookups of `key` (an agent key)."""
    return asyncio.run(_measure(settings, key, iterations))


async def _versions(settings: Settings) -> dict[str, str]:
    runtime = build_runtime(settings)
    try:
        async with runtime.engine.connect() as conn:
            from sqlalchemy import text

            pg = (await conn.execute(text("SHOW server_version"))).scalar_one()
        info = await runtime.redis.info("server")
        valkey = str(info.get("valkey_version") or info.get("redis_version"))
        return {"postgresql": str(pg), "valkey": valkey}
    finally:
        await runtime.close()


def database_versions(settings: Settings) -> dict[str, str]:
    """PostgreSQL and Valkey server versions."""
    return asyncio.run(_versions(settings))
