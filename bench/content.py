"""Issue-3 bench: content and guardrail (`python -m bench.content`).

Reuses bench.run's private stack (free ports, temp data dir, everything stopped by PID), with the
worker's Layer B pointed at the local fake Anthropic API (a subprocess started here, 0.5 s per
answer), and measures:

1. Data load: 100k APPROVED problems via PostgreSQL COPY (binary, asyncpg), timed with the HNSW
   index in place for the first chunk, then "COPY first, build HNSW after" for the rest.
2. k6 through Envoy (JSON): ListProblems, SearchContent, CreateProblem (constant arrival rate).
3. Queue flood: 1,000 problems created through the API (each enqueues one evaluation); time to
   enqueue all, and time until the worker has decided all (guardrail_evaluations rows); and
   1,000 jobs added straight to the guardrail queue for COPYed PENDING problems (the worker alone).
4. Layer A: RuleSet.evaluate timed in-process over the eval set texts and a 2000-char text.

Results: bench/results/content-report.md and content-report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from bench import procstats
from bench.run import (
    RESULTS,
    ROOT,
    Bench,
    Interrupted,
    Scenario,
    _k6_version,
    _on_signal,
    _register_agents,
    _scenario_result,
    _scrape,
    _server_side,
    _stop_child,
)
from services.content.queue import EMBEDDING_QUEUE
from services.core.domains import DOMAINS
from services.core.settings import Settings
from tooling.devstack import free_port

FAKE_KEY = "bench-fake-anthropic-key"
_HNSW_INDEXES = ("ix_problems_embedding", "ix_problems_title_embedding")
CONTENT_LIMIT = 1_000_000

SCENARIOS = {
    "list_problems": Scenario(
        "list_problems",
        "ListProblems ?limit=20&domain=<random>",
        "list_problems.js",
        500,
        25,
        60,
        400,
        # GET /api/v1/problems is ListProblems' HTTP binding (JSON rendered by the service).
        "ListProblemsJson",
        25.0,
    ),
    "search": Scenario(
        "search",
        "SearchContent ?q=<200 distinct queries>",
        "search.js",
        50,
        25,
        20,
        200,
        "SearchContent",
        None,
    ),
    "create_problem": Scenario(
        "create_problem",
        "CreateProblem, authenticated, unique text",
        "create_problem.js",
        50,
        20,
        20,
        200,
        "CreateProblem",
        30.0,
    ),
}
SEARCH_P95_TARGET_MS = 30.0

# -- synthetic problems ----------------------------------------------------------------------

_SUBJECTS: dict[str, list[str]] = {
    "poverty_reduction": [
        "informal debt traps",
        "no savings buffer for day labourers",
        "evictions after rent increases",
        "unbanked market vendors",
    ],
    "education_access": [
        "girls leaving school early",
        "no textbooks in rural schools",
        "teacher shortages in remote villages",
        "long walks to secondary school",
    ],
    "healthcare_improvement": [
        "clinics without nurses",
        "expired medicines at health posts",
        "no ambulance for maternity emergencies",
        "untreated diabetes",
    ],
    "environmental_protection": [
        "plastic waste in rivers",
        "air pollution from brick kilns",
        "illegal dumping near homes",
        "soil erosion on hillsides",
    ],
    "food_security": [
        "crop failure after drought",
        "rising food prices for families",
        "post-harvest grain losses",
        "child malnutrition in lean season",
    ],
    "mental_health_wellbeing": [
        "depression among farmers",
        "no counsellors for teenagers",
        "stigma around mental illness",
        "burnout of health workers",
    ],
    "community_building": [
        "no safe public spaces",
        "isolated newcomers",
        "closed community centres",
        "tension between neighbourhoods",
    ],
    "disaster_response": [
        "flooding of informal settlements",
        "no early warning for cyclones",
        "unsafe housing after earthquakes",
        "slow relief after landslides",
    ],
    "digital_inclusion": [
        "no internet in rural schools",
        "elders locked out of e-services",
        "costly mobile data",
        "no digital skills training for women",
    ],
    "human_rights": [
        "undocumented children without schooling",
        "detention without trial",
        "forced evictions",
        "barriers to legal aid",
    ],
    "clean_water_sanitation": [
        "contaminated drinking water",
        "broken hand pumps",
        "no latrines in camps",
        "arsenic in well water",
    ],
    "sustainable_energy": [
        "power cuts in hospitals",
        "kerosene lamps in homes",
        "unmaintained solar mini grids",
        "smoke from cooking fires",
    ],
    "gender_equality": [
        "unequal pay for women",
        "no childcare for working mothers",
        "full shelters for survivors",
        "girls married before eighteen",
    ],
    "biodiversity_conservation": [
        "coral reef bleaching",
        "decline of wetland birds",
        "deforestation near villages",
        "overfishing of reefs",
    ],
    "elder_care": [
        "isolated elderly people",
        "no home care for the frail",
        "elders without pensions",
        "dementia care shortages",
    ],
}
_PLACES = [
    "Kisumu",
    "Dhaka",
    "Lima",
    "Cebu",
    "Accra",
    "Tucson",
    "Quetta",
    "Recife",
    "Lagos",
    "Nairobi",
    "Chennai",
    "Manila",
    "Oaxaca",
    "Sana'a",
    "Kathmandu",
    "Medellin",
    "Hanoi",
    "Kampala",
    "Tijuana",
    "Harare",
    "Lusaka",
    "Mosul",
    "Jakarta",
    "Cusco",
    "Goma",
]
_TITLES = ["{s} in {p}", "{p}: {s}", "Growing problem of {s} in {p}", "{s} across {p} district"]
_DESCRIPTIONS = [
    "Local groups in {p} report {s}; the problem has worsened over the past two years and "
    "affects the poorest households most, with no coordinated response so far.",
    "In {p}, {s} is now a daily reality for thousands of people. Surveys by community workers "
    "show that existing programmes reach fewer than a third of those affected.",
    "Residents of {p} describe {s} as their most urgent concern. Data from local NGOs suggests "
    "the situation is getting worse each season without targeted support.",
]
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
SCOPES = ("LOCAL", "REGIONAL", "NATIONAL", "GLOBAL")


def distinct_texts(n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """n distinct (domain, title, description) triples from the templates."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(out) < n:
        domain = DOMAINS[len(out) % len(DOMAINS)]
        s, p = rng.choice(_SUBJECTS[domain]), rng.choice(_PLACES)
        title = rng.choice(_TITLES).format(s=s, p=p)
        title = title[0].upper() + title[1:]
        if title in seen:
            # Make it distinct with a neighbourhood number (still a plausible title).
            title = f"{title} (ward {len(out)})"
        seen.add(title)
        out.append((domain, title, rng.choice(_DESCRIPTIONS).format(s=s, p=p)))
    return out


async def load_problems(
    dsn: str, author_ids: list[uuid.UUID], total: int, distinct: int, indexed_chunk: int
) -> dict[str, Any]:
    """COPY `total` APPROVED problems; returns the timings."""
    import asyncpg
    from pgvector.asyncpg import register_vector

    from services.core.embeddings.factory import build_provider

    rng = random.Random(42)  # noqa: S311 (reproducible test data)
    nrng = np.random.default_rng(42)
    out: dict[str, Any] = {"rows": total, "distinct_texts_embedded": distinct}
    t0 = time.monotonic()
    provider = build_provider("local", threads=2)
    texts = distinct_texts(distinct, rng)
    base = np.vstack(
        [
            provider.embed([f"{t}\n{d}" for _, t, d in texts[i : i + 64]])
            for i in range(0, distinct, 64)
        ]
    ).astype(np.float32)
    # Title vectors (the create's duplicate check searches them), from the same local model.
    title_base = np.vstack(
        [provider.embed([t for _, t, _ in texts[i : i + 64]]) for i in range(0, distinct, 64)]
    ).astype(np.float32)
    out["embed_s"] = round(time.monotonic() - t0, 1)
    out["embedding_model"] = provider.model_id
    now = datetime.now(UTC)
    columns = [
        "id",
        "author_agent_id",
        "title",
        "description",
        "domain",
        "severity",
        "geographic_scope",
        "location_name",
        "status",
        "guardrail_status",
        "guardrail_evaluation_id",
        "alignment_score",
        "aligned_domain",
        "guardrail_decided_at",
        "embedding",
        "embedding_model",
        "title_embedding",
        "title_embedding_model",
        "created_at",
        "updated_at",
    ]

    def noisy(vectors: Any, idx: Any) -> Any:
        out = vectors[idx] + nrng.normal(0.0, 0.02, size=(len(idx), vectors.shape[1])).astype(
            np.float32
        )
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def rows(start: int, stop: int) -> list[tuple[Any, ...]]:
        idx = np.arange(start, stop) % distinct
        vecs = noisy(base, idx)
        title_vecs = noisy(title_base, idx)
        batch = []
        for j, i in enumerate(range(start, stop)):
            domain, title, desc = texts[i % distinct]
            created = now - timedelta(seconds=(total - i) * 30)
            batch.append(
                (
                    uuid.uuid4(),
                    author_ids[i % len(author_ids)],
                    title if i < distinct else f"{title} #{i // distinct}",
                    desc,
                    domain,
                    SEVERITIES[i % 4],
                    SCOPES[(i // 4) % 4],
                    "",
                    "ACTIVE",
                    "APPROVED",
                    uuid.uuid4(),
                    round(0.7 + 0.3 * rng.random(), 3),
                    domain,
                    created,
                    vecs[j],
                    provider.model_id,
                    title_vecs[j],
                    provider.model_id,
                    created,
                    created,
                )
            )
        return batch

    conn = await asyncpg.connect(dsn)
    try:
        await register_vector(conn)
        # 1. With the migration's HNSW index in place: row-by-row index inserts.
        t = time.monotonic()
        await conn.copy_records_to_table(
            "problems", records=rows(0, indexed_chunk), columns=columns
        )
        s = time.monotonic() - t
        out["copy_with_hnsw"] = {
            "rows": indexed_chunk,
            "s": round(s, 2),
            "rows_per_s": round(indexed_chunk / s),
        }
        # 2. COPY first, build HNSW after (DESIGN): same definitions as the migrations.
        indexdefs = [
            await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", name)
            for name in _HNSW_INDEXES
        ]
        out["hnsw_definition"] = indexdefs
        for name in _HNSW_INDEXES:
            await conn.execute(f"DROP INDEX {name}")
        t = time.monotonic()
        for start in range(indexed_chunk, total, 10_000):
            await conn.copy_records_to_table(
                "problems", records=rows(start, min(total, start + 10_000)), columns=columns
            )
        s = time.monotonic() - t
        n = total - indexed_chunk
        out["copy_without_hnsw"] = {"rows": n, "s": round(s, 2), "rows_per_s": round(n / s)}
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 1")
        t = time.monotonic()
        for indexdef in indexdefs:
            await conn.execute(indexdef)
        out["hnsw_build_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        # VACUUM too, not only ANALYZE: otherwise autovacuum's insert-triggered pass over the
        # 100k new rows (and their HNSW indexes) runs during the measurements.
        await conn.execute("VACUUM (ANALYZE) problems")
        out["analyze_s"] = round(time.monotonic() - t, 1)
        out["approved_rows"] = await conn.fetchval(
            "SELECT count(*) FROM problems WHERE guardrail_status = 'APPROVED'"
        )
        out["table_size_mb"] = round(
            await conn.fetchval("SELECT pg_total_relation_size('problems')") / 2**20
        )
        # The load leaves about a gigabyte for the checkpointer and the kernel to write out,
        # over minutes: done now, so the scenarios do not measure the load's aftermath.
        t = time.monotonic()
        await conn.execute("CHECKPOINT")
        await asyncio.to_thread(os.sync)
        out["flush_s"] = round(time.monotonic() - t, 1)
    finally:
        await conn.close()
    out["total_s"] = round(time.monotonic() - t0, 1)
    return out


# -- queue flood -----------------------------------------------------------------------------


async def _count(dsn: str, sql: str, *args: Any) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _queued(redis_url: str, name: str) -> int:
    from bullmq import Queue

    queue = Queue(name, {"connection": redis_url})
    try:
        counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized")
        return sum(counts.values())
    finally:
        await queue.close()


def _wait_decided(dsn: str, redis_url: str | None = None, timeout: float = 120.0) -> float:
    """Waits until no problem is PENDING (the previous run's evaluations are done) and, with
    `redis_url`, the search-embedding queue is empty too; returns the seconds waited."""
    t0 = time.monotonic()
    query = "SELECT count(*) FROM problems WHERE guardrail_status = 'PENDING'"

    def busy() -> bool:
        if asyncio.run(_count(dsn, query)):
            return True
        return redis_url is not None and asyncio.run(_queued(redis_url, EMBEDDING_QUEUE)) > 0

    while busy() and time.monotonic() - t0 < timeout:
        time.sleep(1)
    return round(time.monotonic() - t0, 1)


async def wait_drained(dsn: str, target: int, timeout_s: float) -> tuple[float, int]:
    """Polls guardrail_evaluations until it holds `target` rows; (seconds waited, rows)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    t0 = time.monotonic()
    try:
        while True:
            n = int(await conn.fetchval("SELECT count(*) FROM guardrail_evaluations"))
            if n >= target or time.monotonic() - t0 > timeout_s:
                return time.monotonic() - t0, n
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def wait_embedded(
    dsn: str, title_like: str, started: float, timeout_s: float
) -> float | None:
    """Seconds from `started` until every non-rejected problem titled like `title_like` has its
    search vector (the worker embeds after deciding), or None on timeout."""
    sql = (
        "SELECT count(*) FROM problems WHERE embedding IS NULL "
        "AND guardrail_status <> 'REJECTED' AND title LIKE $1"
    )
    while await _count(dsn, sql, title_like):
        if time.monotonic() - started > timeout_s:
            return None
        await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 2)


async def queue_flood(
    base_url: str, dsn: str, keys: list[str], count: int, concurrency: int, run_id: str
) -> dict[str, Any]:
    """Creates `count` problems through the API, then waits until all are decided."""
    before = await _count(dsn, "SELECT count(*) FROM guardrail_evaluations")
    statuses: dict[int, int] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(i: int) -> None:
            async with sem:
                res = await client.post(
                    "/api/v1/problems",
                    headers={"authorization": f"Bearer {keys[i % len(keys)]}"},
                    json={
                        "title": f"Flooded wells in village {i} of run {run_id}",
                        "description": f"After the rains in village {i} (run {run_id}) the "
                        "shallow wells fill with surface water, and children fall ill with "
                        "diarrhoea because families have no other source of drinking water.",
                        "domain": "clean_water_sanitation",
                        "severity": "high",
                        "geographicScope": "local",
                    },
                )
                statuses[res.status_code] = statuses.get(res.status_code, 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(count)))
        enqueue_s = time.monotonic() - t0
    created = statuses.get(201, 0)
    waited, rows = await wait_drained(dsn, before + created, 180)
    # Decisions applied to the problems too (nothing else is pending during the flood).
    t1 = time.monotonic()
    while time.monotonic() - t1 < 120 and await _count(  # noqa: ASYNC110 (polling the DB)
        dsn, "SELECT count(*) FROM problems WHERE guardrail_status = 'PENDING'"
    ):
        await asyncio.sleep(0.2)
    applied_s = waited + time.monotonic() - t1
    embedded_s = await wait_embedded(dsn, f"% of run {run_id}", time.monotonic() - applied_s, 300)
    decisions = {}
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for r in await conn.fetch(
            "SELECT decision, count(*) AS n FROM (SELECT decision FROM guardrail_evaluations "
            "ORDER BY created_at DESC LIMIT $1) t GROUP BY decision",
            created,
        ):
            decisions[r["decision"]] = r["n"]
    finally:
        await conn.close()
    return {
        "requested": count,
        "client_concurrency": concurrency,
        "statuses": {str(k): v for k, v in statuses.items()},
        "enqueue_s": round(enqueue_s, 2),
        "enqueue_rps": round(created / enqueue_s, 1) if enqueue_s else None,
        "drain_after_enqueue_s": round(waited, 2),
        "total_s": round(enqueue_s + waited, 2),
        "decided": rows - before,
        "decisions": decisions,
        "all_applied_after_enqueue_s": round(applied_s, 2),
        "all_embedded_after_enqueue_s": embedded_s,
    }


async def queue_flood_direct(
    dsn: str, redis_url: str, author_ids: list[uuid.UUID], count: int, concurrency: int, run_id: str
) -> dict[str, Any]:
    """COPYs `count` PENDING problems, enqueues their jobs straight into the guardrail queue
    (EvaluationQueue, as the content service does), then waits until all are decided: this
    isolates the worker from the content service's CreateProblem throughput."""
    import asyncpg

    from services.core.queues import GUARDRAIL_JOB_OPTIONS, EvaluationJob, EvaluationQueue

    conn = await asyncpg.connect(dsn)
    try:
        before = int(await conn.fetchval("SELECT count(*) FROM guardrail_evaluations"))
        jobs = []
        records = []
        for i in range(count):
            pid, eid, author = uuid.uuid4(), uuid.uuid4(), author_ids[i % len(author_ids)]
            title = f"Silted irrigation canals in district {i} ({run_id})"
            body = (
                f"Farmers in district {i} (run {run_id}) lose a third of their harvest "
                "because irrigation canals silt up every season and nobody organises the "
                "clearing work, so water no longer reaches the fields at the tail end."
            )
            records.append(
                (pid, author, title, body, "food_security", "HIGH", "LOCAL", "PENDING", eid)
            )
            # Trusted author (30 days, 10 approved): the full approve/flag/reject path.
            jobs.append(
                EvaluationJob(
                    str(eid),
                    "problem",
                    str(pid),
                    str(author),
                    title,
                    body,
                    "food_security",
                    30.0,
                    10,
                )
            )
        await conn.copy_records_to_table(
            "problems",
            records=records,
            columns=[
                "id",
                "author_agent_id",
                "title",
                "description",
                "domain",
                "severity",
                "geographic_scope",
                "guardrail_status",
                "guardrail_evaluation_id",
            ],
        )
    finally:
        await conn.close()
    queue = EvaluationQueue(redis_url)
    sem = asyncio.Semaphore(concurrency)
    ok = 0

    errors: dict[str, int] = {}

    async def one(job: EvaluationJob) -> None:
        nonlocal ok
        async with sem:
            # The producer's own add (queue name, job options, job id = evaluation id), without
            # EvaluationQueue.enqueue's swallow-and-return-False, so a failure shows its cause.
            try:
                await queue.queue.add(
                    job.kind, job.data(), {**GUARDRAIL_JOB_OPTIONS, "jobId": job.evaluation_id}
                )
                ok += 1
            except Exception as exc:
                errors[repr(exc)[:200]] = errors.get(repr(exc)[:200], 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(j) for j in jobs))
    enqueue_s = time.monotonic() - t0
    await queue.close()
    waited, rows = await wait_drained(dsn, before + count, 180)
    # The evaluation row is written before the decision is applied to the problem (internal
    # RPC): also wait until none of these problems is PENDING.
    conn = await asyncpg.connect(dsn)
    ids = [r[0] for r in records]
    try:
        while time.monotonic() - t0 < 240:
            pending = int(
                await conn.fetchval(
                    "SELECT count(*) FROM problems WHERE id = ANY($1::uuid[]) "
                    "AND guardrail_status = 'PENDING'",
                    ids,
                )
            )
            if not pending:
                break
            await asyncio.sleep(0.2)
        applied_s = time.monotonic() - t0 - enqueue_s
        decisions = {
            r["decision"]: r["n"]
            for r in await conn.fetch(
                "SELECT decision, count(*) AS n FROM guardrail_evaluations "
                "WHERE id = ANY($1::uuid[]) "
                "GROUP BY decision",
                [uuid.UUID(j.evaluation_id) for j in jobs],
            )
        }
        still_pending = pending
    finally:
        await conn.close()
    return {
        "requested": count,
        "client_concurrency": concurrency,
        "statuses": {"201": ok} if ok == count else {"enqueued": ok},
        "enqueue_s": round(enqueue_s, 2),
        "enqueue_rps": round(ok / enqueue_s, 1) if enqueue_s else None,
        "drain_after_enqueue_s": round(waited, 2),
        "total_s": round(enqueue_s + waited, 2),
        "decided": rows - before,
        "decisions": decisions,
        "problems_still_pending": still_pending,
        "all_applied_after_enqueue_s": round(applied_s, 2),
        "enqueue_errors": errors,
    }


# -- Layer A ---------------------------------------------------------------------------------


def layer_a(repeats_long: int = 2000) -> dict[str, Any]:
    from services.guardrail.rules.engine import RuleSet

    rules = RuleSet.load()
    texts = [
        json.loads(line)["text"]
        for line in (ROOT / "tooling/guardrail_eval/data/train-v1.jsonl").read_text().splitlines()
        if line.strip()
    ]
    long_text = (" ".join(texts[:40]))[:2000]
    long_text = long_text.ljust(2000, ".")

    def timed(items: list[str]) -> list[float]:
        out = []
        for t in items:
            t0 = time.perf_counter_ns()
            rules.evaluate(t)
            out.append((time.perf_counter_ns() - t0) / 1e6)
        return out

    timed(texts)  # warm-up (regex caches)
    evalset = timed(texts * 5)
    long = timed([long_text] * repeats_long)

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {
            "n": len(xs),
            "p50_ms": round(xs[len(xs) // 2], 4),
            "p99_ms": round(xs[int(len(xs) * 0.99) - 1], 4),
            "max_ms": round(xs[-1], 4),
            "mean_ms": round(statistics.fmean(xs), 4),
        }

    return {
        "rules_version": getattr(rules, "version", "?"),
        "evalset_items": len(texts),
        "evalset": stats(evalset),
        "text_2000_chars": stats(long),
    }


# -- k6 scenario -----------------------------------------------------------------------------


def run_scenario(b: Bench, sc: Scenario, content_metrics: str) -> dict[str, Any]:
    background = b.wait_quiet(b.args.wait_quiet)
    metrics_before = _scrape(content_metrics)
    cpu_before = {name: g.cpu() for name, g in b.groups.items()}
    sys_before = procstats.system_cpu_seconds()
    wall0 = time.monotonic()
    summary = b.run_k6(sc)
    wall = time.monotonic() - wall0
    sys_after = procstats.system_cpu_seconds()
    cpu_after = {name: g.cpu() for name, g in b.groups.items()}
    result = _scenario_result(sc, summary)
    result["server_side"] = _server_side(metrics_before, _scrape(content_metrics), sc.rpc)
    cores = {n: round((cpu_after[n] - cpu_before[n]) / wall, 2) for n in cpu_before}
    ours = sum(cpu_after[n] - cpu_before[n] for n in cpu_before) / wall
    machine = (sys_after["process"] - sys_before["process"]) / wall
    cores["others_incl_k6"] = round(max(0.0, machine - ours), 2)
    cores["others_before"] = background
    result["cpu_cores"] = cores
    result["wall_s"] = round(wall, 1)
    return result


VERDICT_PERCENTILE = {"list_problems": "p99", "create_problem": "p99", "search": "p95"}


def median_run(runs: list[dict[str, Any]], pct: str) -> dict[str, Any]:
    """The run whose `pct` latency is the median (the higher one of an even count) of `runs`:
    the verdict's run. The others stay in its `runs` (all of them, in order)."""
    ranked = sorted(runs, key=lambda run: run["latency_ms"][pct] or float("inf"))
    chosen = dict(ranked[len(ranked) // 2])
    chosen["runs"] = runs if len(runs) > 1 else []
    return chosen


# -- report ----------------------------------------------------------------------------------


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:g} ms"


def render(r: dict[str, Any]) -> str:
    lines = [
        f"# Content & guardrail bench (issue 3) — {r['started']}",
        "",
        f"Machine: {r['machine']}. k6 {r['k6']}. Worker: WORKER_CONCURRENCY="
        f"{r['worker_concurrency']}, WORKER_DEFER_SECONDS={r.get('worker_defer_seconds')}, "
        f"Layer B = fake Anthropic API, {r['fake_delay_s']} s per answer.",
        "",
        "## Targets",
        "",
        "| Target | Measured | Result |",
        "|---|---|---|",
    ]
    sc = r.get("scenarios", {})

    def k6row(
        name: str, target: str, pct: str, limit: float | None, target_rps: int | None = None
    ) -> None:
        s = sc.get(name)
        if not s:
            return
        lat = s["latency_ms"]
        val = lat.get(pct)
        if target_rps is not None and s["target_rps"] != target_rps:
            # A run at another rate (--list-rate/--create-rate) says what the box sustains; it
            # is not the target's verdict.
            target = f"{target} — run at {s['target_rps']} rps instead"
        ok = (
            (target_rps is None or s["target_rps"] >= target_rps)
            and s["completed"] >= 0.98 * s["scheduled"]
            and s["dropped_iterations"] == 0
            and s["errors"] == 0
            and (limit is None or (val is not None and val < limit))
        )
        runs = s.get("runs") or []
        each = ", ".join(_ms(run["latency_ms"][pct]) for run in runs)
        spread = f"; median of {len(runs)} runs by {pct} ({each})" if runs else ""
        if s.get("decided_after_s") is not None:
            spread += f"; every item decided {s['decided_after_s']} s after the run"
        lines.append(
            f"| {target} | {s['achieved_rps']} rps of {s['target_rps']}, p50 {_ms(lat['p50'])}, "
            f"p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}, {s['errors']} errors, "
            f"{s['dropped_iterations']} dropped{spread} | {'PASS' if ok else 'FAIL'} |"
        )

    k6row("list_problems", "ListProblems 500 rps, p99 < 25 ms", "p99", 25.0, 500)
    k6row("create_problem", "CreateProblem 50 rps, p99 < 30 ms", "p99", 30.0, 50)
    k6row(
        "search",
        f"SearchContent over 100k, p95 < 30 ms ({sc.get('search', {}).get('target_rps')} rps)",
        "p95",
        SEARCH_P95_TARGET_MS,
    )
    for fkey, flabel in (
        ("flood", "via CreateProblem API"),
        ("flood_direct", "jobs enqueued directly"),
    ):
        f = r.get(fkey)
        if f:
            enq_ok = f["enqueue_s"] < 60 and f["statuses"].get("201") == f["requested"]
            drain_ok = (
                f["drain_after_enqueue_s"] < 60
                and f["decided"] >= f["requested"]
                and (f.get("all_applied_after_enqueue_s") or 0) < 60
            )
            lines.append(
                f"| Queue flood 1,000 ({flabel}): enqueued < 60 s | {f['enqueue_s']} s "
                f"({f['enqueue_rps']}/s, statuses {f['statuses']}) | "
                f"{'PASS' if enq_ok else 'FAIL'} |"
            )
            lines.append(
                f"| Queue flood 1,000 ({flabel}): drained < 60 s | "
                f"{f['drain_after_enqueue_s']} s after the last enqueue ({f['total_s']} s from "
                f"the first), {f['decided']} decided {f['decisions']}; all applied to the problems "
                f"{f.get('all_applied_after_enqueue_s')} s after the last enqueue"
                + (
                    f"; all embedded for search {f['all_embedded_after_enqueue_s']} s after it"
                    if f.get("all_embedded_after_enqueue_s")
                    else ""
                )
                + f" | {'PASS' if drain_ok else 'FAIL'} |"
            )
    a = r.get("layer_a")
    if a:
        for key, label in (
            ("evalset", f"eval set ({a['evalset_items']} texts x5)"),
            ("text_2000_chars", "2000-char text"),
        ):
            s = a[key]
            lines.append(
                f"| Layer A p99 < 1 ms, {label} | p50 {s['p50_ms']} ms, p99 "
                f"{s['p99_ms']} ms, max {s['max_ms']} ms | "
                f"{'PASS' if s['p99_ms'] < 1 else 'FAIL'} |"
            )
    d = r.get("data")
    if d:
        lines += [
            "",
            "## Data load",
            "",
            f"- {d['rows']:,} APPROVED problems over the 15 domains; "
            f"{d['distinct_texts_embedded']:,} "
            f"distinct template texts embedded with `{d['embedding_model']}` in {d['embed_s']} s; "
            "every row reuses one of those vectors (and its title's) plus Gaussian noise "
            "(sigma 0.02 per dimension, re-normalized), titles get a `#n` suffix.",
            "- COPY with the two HNSW indexes (search and title vectors) in place: "
            f"{d['copy_with_hnsw']['rows']:,} rows in "
            f"{d['copy_with_hnsw']['s']} s ({d['copy_with_hnsw']['rows_per_s']:,} rows/s).",
            f"- COPY without them: {d['copy_without_hnsw']['rows']:,} rows in "
            f"{d['copy_without_hnsw']['s']} s ({d['copy_without_hnsw']['rows_per_s']:,} rows/s); "
            f"then both HNSW indexes (`{'`; `'.join(d['hnsw_definition'])}`) in "
            f"{d['hnsw_build_s']} s; VACUUM (ANALYZE) {d['analyze_s']} s; CHECKPOINT and "
            f"sync {d['flush_s']} s.",
            f"- Table + indexes: {d['table_size_mb']} MB; total load {d['total_s']} s.",
        ]
    lines += [
        "",
        "## k6 scenarios (details)",
        "",
        "| Scenario | rate | done | p50 | p90 | p95 | p99 | max | server mean / p99 est "
        "| cores (content, envoy, postgres, worker) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    every = [
        (f"{s['label']} (run {i} of {len(s['runs'])})" if s.get("runs") else s["label"], run)
        for s in sc.values()
        for i, run in enumerate(s.get("runs") or [s], 1)
    ]
    for label, s in every:
        lat, ss, c = s["latency_ms"], s.get("server_side", {}), s["cpu_cores"]
        lines.append(
            f"| {label} | {s['target_rps']}/s x {s['duration_s']} s | {s['completed']} | "
            f"{lat['p50']} | {lat['p90']} | {lat['p95']} | {lat['p99']} | {lat['max']} | "
            f"{ss.get('mean_ms')} / {ss.get('p99_ms_est')} ms | {c.get('content')}, "
            f"{c.get('envoy')}, {c.get('postgres')}, {c.get('worker')} (others+k6 "
            f"{c.get('others_incl_k6')}) |"
        )
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        nargs="*",
        help="subset of: data list_problems search create_problem "
        "flood flood_direct layer_a (list/search need data)",
    )
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--distinct", type=int, default=2000)
    p.add_argument(
        "--indexed-chunk",
        type=int,
        default=5000,
        help="rows COPYed with the HNSW index in place (to measure its cost)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="k6 duration factor")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each k6 scenario; the verdict is the median run (by its target percentile)",
    )
    p.add_argument("--search-rate", type=int, default=50)
    p.add_argument(
        "--list-rate", type=int, default=0, help="ListProblems rate (default: the target's 500)"
    )
    p.add_argument(
        "--create-rate", type=int, default=0, help="CreateProblem rate (default: the target's 50)"
    )
    p.add_argument("--worker-concurrency", type=int, default=64)
    p.add_argument(
        "--worker-defer-seconds",
        type=float,
        default=None,
        help="WORKER_DEFER_SECONDS (default: the settings' default; 0 never defers)",
    )
    p.add_argument("--fake-delay", type=float, default=0.5)
    p.add_argument("--flood", type=int, default=1000)
    p.add_argument("--flood-client-concurrency", type=int, default=32)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--wait-quiet", type=float, default=10.0)
    p.add_argument(
        "--processes", type=int, default=1, help="processes per service (SERVICE_PROCESSES)"
    )
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--keep-data", action="store_true")
    args = p.parse_args(argv)
    steps = set(
        args.only
        or ["data", "list_problems", "search", "create_problem", "flood", "flood_direct", "layer_a"]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    report: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python -m bench.content", *(argv or sys.argv[1:])]),
        "machine": f"{os.cpu_count()} vCPU {platform.processor() or platform.machine()}, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        "k6": _k6_version(),
        "worker_concurrency": args.worker_concurrency,
        "worker_defer_seconds": args.worker_defer_seconds
        if args.worker_defer_seconds is not None
        else Settings.model_fields["worker_defer_seconds"].default,
        "fake_delay_s": args.fake_delay,
    }
    if "layer_a" in steps:
        report["layer_a"] = layer_a()
        print("layer A:", report["layer_a"], flush=True)
    needs_stack = steps - {"layer_a"}
    fake: subprocess.Popen[bytes] | None = None
    b: Bench | None = None
    try:
        if needs_stack:
            fake_port = free_port()
            fake_log = open(RESULTS / "fake-anthropic.log", "wb")  # noqa: SIM115
            fake = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fakes.anthropic_api",
                    "--port",
                    str(fake_port),
                    "--delay",
                    str(args.fake_delay),
                ],
                cwd=str(ROOT),
                stdout=fake_log,
                stderr=subprocess.STDOUT,
            )
            ns = argparse.Namespace(
                keep_logs=args.keep_logs,
                keep_data=args.keep_data,
                wait_quiet=args.wait_quiet,
                processes=args.processes,
            )
            b = Bench(ns)
            extra = {
                "rate_limit_content_per_agent": CONTENT_LIMIT,
                "anthropic_api_key": FAKE_KEY,
                "anthropic_base_url": f"http://127.0.0.1:{fake_port}",
                "worker_concurrency": args.worker_concurrency,
                "worker_defer_seconds": report["worker_defer_seconds"],
                "guardrail_daily_budget_cents": 1_000_000.0,
            }
            b.overrides.update(extra)
            b.env.update({k.upper(): str(v) for k, v in extra.items()})
            b.k6_log = RESULTS / "content-k6.log"
            b.start()
            dsn = b.stack.postgres.dsn
            keys = asyncio.run(_register_agents(b.base_url, b.run_id, args.agents))
            b.keys_file.write_text(json.dumps(keys))
            author_ids = [uuid.UUID(str(x)) for x in asyncio.run(_ids(dsn))]
            content_metrics = f"http://127.0.0.1:{b.ports['metrics_port_content']}/metrics"
            if "data" in steps:
                report["data"] = asyncio.run(
                    load_problems(dsn, author_ids, args.rows, args.distinct, args.indexed_chunk)
                )
                print("data:", report["data"], flush=True)
            report["scenarios"] = {}
            # Warm-ups, in the reverse order of the runs: the create warm-up's decisions empty
            # the content process's list cache, so the list warm-up comes last.
            if "create_problem" in steps:
                # The create path's first calls prepare statements, load bullmq's scripts and
                # fill the key cache; its items are decided before the runs start.
                b.run_k6(Scenario("warmup", "warm-up", "create_problem.js", 10, 3, 5, 20, "", None))
                _wait_decided(dsn, b.stack.valkey.url)
            # The content service loads its embedding model on the first search or create
            # (~0.5 s); a few searches first, so the runs measure a warm service.
            b.run_k6(Scenario("warmup", "warm-up", "search.js", 10, 3, 5, 20, "", None))
            b.run_k6(Scenario("warmup", "warm-up", "list_problems.js", 100, 5, 10, 50, "", None))
            for name in ("list_problems", "search", "create_problem"):
                if name not in steps:
                    continue
                sc = SCENARIOS[name]
                rate = {
                    "search": args.search_rate,
                    "list_problems": args.list_rate,
                    "create_problem": args.create_rate,
                }.get(name) or sc.rate
                sc = Scenario(
                    sc.name,
                    sc.label,
                    sc.script,
                    rate,
                    max(5, round(sc.duration_s * args.scale)),
                    sc.pre_vus,
                    sc.max_vus,
                    sc.rpc,
                    sc.p99_target_ms,
                )
                runs = []
                for _ in range(args.repeat):
                    res = run_scenario(b, sc, content_metrics)
                    if name == "create_problem":
                        # What the run left for the worker, and how long until all of it was
                        # decided and embedded; the next run starts without it.
                        res["decided_after_s"] = _wait_decided(dsn, b.stack.valkey.url)
                    runs.append(res)
                    print(
                        name,
                        res["achieved_rps"],
                        res["latency_ms"],
                        "errors",
                        res["errors"],
                        "dropped",
                        res["dropped_iterations"],
                        flush=True,
                    )
                report["scenarios"][name] = median_run(runs, VERDICT_PERCENTILE[name])
            if "flood" in steps:
                # Let the CreateProblem runs' evaluations finish first.
                report["pending_before_flood_wait_s"] = _wait_decided(dsn)
                b.wait_quiet(args.wait_quiet)
                cpu0 = {n: g.cpu() for n, g in b.groups.items()}
                t0 = time.monotonic()
                report["flood"] = asyncio.run(
                    queue_flood(
                        b.base_url, dsn, keys, args.flood, args.flood_client_concurrency, b.run_id
                    )
                )
                wall = time.monotonic() - t0
                report["flood"]["cpu_cores"] = {
                    n: round((g.cpu() - cpu0[n]) / wall, 2) for n, g in b.groups.items()
                }
                print("flood:", report["flood"], flush=True)
            if "flood_direct" in steps:
                b.wait_quiet(args.wait_quiet)
                cpu0 = {n: g.cpu() for n, g in b.groups.items()}
                t0 = time.monotonic()
                report["flood_direct"] = asyncio.run(
                    queue_flood_direct(
                        dsn, b.stack.valkey.url, author_ids, args.flood, 50, b.run_id
                    )
                )
                wall = time.monotonic() - t0
                report["flood_direct"]["cpu_cores"] = {
                    n: round((g.cpu() - cpu0[n]) / wall, 2) for n, g in b.groups.items()
                }
                print("flood_direct:", report["flood_direct"], flush=True)
    except Interrupted as exc:
        report["failed"] = str(exc)
    except Exception as exc:
        report["failed"] = repr(exc)
        if b is not None:
            b.results["failed"] = True
        raise
    finally:
        if b is not None:
            b.stop()
        if fake is not None:
            _stop_child(fake)
        (RESULTS / "content-report.json").write_text(json.dumps(report, indent=1, default=str))
        md = render(report) if "failed" not in report else f"FAILED: {report['failed']}\n"
        (RESULTS / "content-report.md").write_text(md)
        print(md)
    return 0


async def _ids(dsn: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM agents LIMIT 20")]
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
