"""Round trips the agent service makes per request: PostgreSQL transactions and Valkey commands.

Exact counters from the servers themselves (pg_stat_database, INFO commandstats), so they do not
depend on sampling or CPU contention. The service's periodic health probes add about one
PostgreSQL transaction and one Redis PING a second, negligible at hundreds of requests a second.
"""

from __future__ import annotations

import asyncio

import asyncpg
import redis


async def _pg_counters(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        # Statistics are flushed by backends about once a second; ask for fresh numbers.
        await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await conn.fetchrow(
            "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, "
            "tup_updated FROM pg_stat_database WHERE datname = current_database()"
        )
        assert row is not None
        return {key: int(value) for key, value in dict(row).items()}
    finally:
        await conn.close()


def pg_counters(dsn: str) -> dict[str, int]:
    """Cumulative transaction and tuple counters of the bench database."""
    return asyncio.run(_pg_counters(dsn))


def valkey_commands(url: str) -> dict[str, int]:
    """Cumulative calls per command (INFO commandstats), e.g. {"get": 10, "evalsha": 10}."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    out: dict[str, int] = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        if isinstance(value, dict):
            out[name] = int(value.get("calls", 0))
    return out


def per_request(
    before: dict[str, int], after: dict[str, int], requests: int, skip: tuple[str, ...] = ()
) -> dict[str, float]:
    """Counter deltas divided by the requests served (zero deltas left out)."""
    out = {}
    for key, value in after.items():
        if key in skip:
            continue
        delta = value - before.get(key, 0)
        if delta:
            out[key] = round(delta / max(1, requests), 2)
    return out
