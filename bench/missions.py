"""Issue-16 bench: missions and humans (`python -m bench.missions`).

Reuses bench.run's private stack (free ports, temp data dir, everything stopped by PID) and
measures:

1. Data load: `--rows` APPROVED, OPEN missions via PostgreSQL COPY (binary, asyncpg), with the
   missions' indexes dropped first and built after (each timed). They are spread over the
   continental US with a dense cluster (`--cluster` of them) within 50 km of San Francisco.
2. k6 through Envoy (JSON): ListNearbyMissions at `--nearby-rate` (target 300/s, p95 < 30 ms).
3. k6 through Envoy (JSON): ClaimMission at `--claim-rate` (target 50/s, p99 < 30 ms) by
   `--humans` humans (sessions opened directly in the database with the stack's JWT secret:
   their logins are measured apart) on `--claim-missions` missions of 3 slots; then SQL checks
   that no mission has more live claims than slots and that every counter matches its claims.
4. Login: the domain's `login` timed in this process against the bench database (wall and CPU
   per login, argon2id included), and what one core sustains from the CPU figure.
5. RSS of every stack process, idle, before the load.

Results: bench/results/missions-report.md and missions-report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import resource
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text

from bench.run import (
    RESULTS,
    Bench,
    Interrupted,
    Scenario,
    _k6_version,
    _on_signal,
    _scenario_result,
    _scrape,
    _server_side,
)
from services.core.credentials import sessions
from services.core.credentials.tokens import TokenType
from services.core.runtime import build_runtime, token_signer
from services.mission import humans as human_domain
from services.mission.model import NewHuman
from services.mission.service import build_deps

SF = (37.7749, -122.4194)
_MISSION_INDEXES = (
    "ix_missions_author",
    "ix_missions_public",
    "ix_missions_pending",
    "ix_missions_earth",
)
_COLUMNS = (
    "id", "solution_id", "problem_id", "author_agent_id", "title", "description", "instructions",
    "evidence_required", "required_skills", "latitude", "longitude", "location_name",
    "location_radius_km", "estimated_duration_minutes", "difficulty", "token_reward",
    "max_claims", "status", "domain", "guardrail_status", "guardrail_evaluation_id",
    "expires_at",
)  # fmt: skip


def _point(rng: random.Random, clustered: bool) -> tuple[float, float]:
    if clustered:  # uniform in a disc of 50 km around San Francisco
        r, a = 50 * math.sqrt(rng.random()), rng.random() * 2 * math.pi
        return SF[0] + r * math.cos(a) / 111.0, SF[1] + r * math.sin(a) / (111.0 * 0.79)
    return rng.uniform(25.0, 49.0), rng.uniform(-124.0, -67.0)


async def load_missions(dsn: str, rows: int, cluster: int, seed: int = 7) -> dict[str, float]:
    """COPYs `rows` approved missions (indexes dropped first, built after); returns timings."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    steps = json.dumps([{"step": 1, "text": "Go to the place and do the task.", "optional": False}])
    proof = json.dumps(
        [{"type": "photo", "description": "A photo of the result", "required": True}]
    )
    expires = datetime.now(UTC) + timedelta(days=30)
    solution, problem, author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        definitions = {
            name: await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", name)
            for name in _MISSION_INDEXES
        }
        for name in _MISSION_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        # Binary COPY: jsonb's binary form is a version byte (1) and the JSON text.
        await conn.set_type_codec(
            "jsonb",
            encoder=lambda value: b"\x01" + value.encode(),
            decoder=lambda data: json.loads(data[1:]),
            schema="pg_catalog",
            format="binary",
        )
        t0 = time.monotonic()
        chunk = 50_000
        for start in range(0, rows, chunk):
            records = []
            for i in range(start, min(rows, start + chunk)):
                lat, lng = _point(rng, i < cluster)
                records.append(
                    (
                        uuid.uuid4(), solution, problem, author, f"Bench mission {i}",
                        "Carry out the bench task at the place and photograph the result.",
                        steps, proof, ["data_collection"], lat, lng, "", 5, 60, "beginner",
                        10 + i % 90, 3, "open", "clean_water_sanitation", "approved",
                        uuid.uuid4(), expires,
                    )
                )  # fmt: skip
            await conn.copy_records_to_table("missions", records=records, columns=_COLUMNS)
        copied = time.monotonic() - t0
        timings = {"copy_s": round(copied, 1)}
        for name, definition in definitions.items():
            t1 = time.monotonic()
            await conn.execute(definition)
            timings[f"index_{name}_s"] = round(time.monotonic() - t1, 1)
        t2 = time.monotonic()
        await conn.execute("ANALYZE missions")
        timings["analyze_s"] = round(time.monotonic() - t2, 1)
        return timings
    finally:
        await conn.close()


async def claim_fixture(bench: Bench, humans: int, missions: int, path: Any) -> dict[str, Any]:
    """Humans with open sessions (tokens signed with the stack's secret) and the missions they
    will race for; written to the k6 keys file."""
    settings = bench.db_settings()
    signer = token_signer(settings)
    runtime = build_runtime(settings)
    try:
        async with runtime.engine.begin() as conn:
            rows = (
                await conn.execute(
                    text("SELECT id FROM missions WHERE max_claims = 3 ORDER BY id LIMIT :n"),
                    {"n": missions},
                )
            ).all()
        targets = [str(r[0]) for r in rows]
        deps = build_deps(runtime)
        tokens = []
        for n in range(humans):
            _, token = await verified_human_with_session(
                deps, runtime.engine, signer, f"bench{n}@example.org", f"Bench {n}"
            )
            tokens.append(token)
        path.write_text(json.dumps({"humans": tokens, "missions": targets}))
        return {"humans": humans, "missions": len(targets)}
    finally:
        await runtime.close()


async def verified_human_with_session(
    deps: Any, engine: Any, signer: Any, email: str, name: str
) -> tuple[str, str]:
    """A verified human whose session is opened directly with the stack's JWT secret (bench
    humans never log in: argon2 would be what is measured); (human id, access token)."""
    human = await deps.store.insert(NewHuman(email, "", name), password_hash="!")  # noqa: S106
    await deps.store.mark_verified(human.id)
    sid = str(uuid.uuid4())
    refresh = signer.issue(
        human_id=human.id, session_id=sid, type=TokenType.REFRESH, lifetime=timedelta(days=1)
    )
    async with engine.begin() as conn:
        await sessions.create(
            conn,
            session_id=sid,
            human_id=human.id,
            refresh_jti=refresh.claims.token_id,
            expires_at=refresh.claims.expires_at,
        )
    access = signer.issue(
        human_id=human.id, session_id=sid, type=TokenType.ACCESS, lifetime=timedelta(hours=2)
    )
    return human.id, access.token


async def claim_invariants(dsn: str) -> dict[str, int]:
    """Over-claims and counters out of step with the claims (both must be 0)."""
    conn = await asyncpg.connect(dsn)
    try:
        over = await conn.fetchval("SELECT count(*) FROM missions WHERE active_claims > max_claims")
        drift = await conn.fetchval(
            "SELECT count(*) FROM missions m WHERE m.active_claims <> (SELECT count(*) FROM "
            "mission_claims c WHERE c.mission_id = m.id AND c.status IN ('active', 'submitted'))"
        )
        per_human = await conn.fetchval(
            "SELECT count(*) FROM (SELECT human_id FROM mission_claims WHERE status = 'active' "
            "GROUP BY human_id HAVING count(*) > 3) x"
        )
        claims = await conn.fetchval("SELECT count(*) FROM mission_claims")
        return {
            "claims": int(claims),
            "over_claimed_missions": int(over),
            "counter_drift": int(drift),
            "humans_over_3": int(per_human),
        }
    finally:
        await conn.close()


async def login_cost(bench: Bench, repeat: int) -> dict[str, Any]:
    """`humans.login` in this process, one at a time: wall and CPU per login."""
    runtime = build_runtime(bench.db_settings())
    try:
        deps = build_deps(runtime)
        email, password = "login-bench@example.org", "Sturdy-Pass-42"
        human = await deps.store.insert(
            NewHuman(email, password, "Login Bench"),
            password_hash=await deps.passwords.hash(password),
        )
        await deps.store.mark_verified(human.id)
        walls, cpus = [], []
        for _ in range(repeat):
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            await human_domain.login(deps, email=email, password=password)
            walls.append(time.perf_counter() - t0)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpus.append(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime)
        cpu_ms = statistics.median(cpus) * 1000
        return {
            "logins": repeat,
            "wall_p50_ms": round(statistics.median(walls) * 1000, 1),
            "cpu_p50_ms": round(cpu_ms, 1),
            "per_core_per_second": round(1000 / cpu_ms, 1),
        }
    finally:
        await runtime.close()


def measure(bench: Bench, sc: Scenario) -> dict[str, Any]:
    """A k6 run with the mission service's own view of it."""
    metrics_url = f"http://127.0.0.1:{bench.ports['metrics_port_mission']}/metrics"
    before = _scrape(metrics_url)
    cpu_before = {name: g.cpu() for name, g in bench.groups.items()}
    t0 = time.monotonic()
    summary = bench.run_k6(sc)
    wall = time.monotonic() - t0
    result = _scenario_result(sc, summary)
    result["server_side"] = _server_side(before, _scrape(metrics_url), sc.rpc)
    result["cpu_cores"] = {
        name: round((g.cpu() - cpu_before[name]) / wall, 2) for name, g in bench.groups.items()
    }
    return result


def profile_nearby(bench: Bench, nearby: Scenario, py_spy: str) -> dict[str, Any]:
    """py-spy on the mission process during an unreported nearby run at 150/s."""
    from bench.profiling import start_py_spy, summarise

    raw = RESULTS / "profile-nearby.txt"
    raw.unlink(missing_ok=True)
    spy = start_py_spy(py_spy, bench.groups["mission"].pid, 16, raw, False)
    try:
        time.sleep(0.5)
        bench.run_k6(nearby, rate=150, duration_s=20, summary_path=bench.tmp / "prof.json")
    finally:
        spy.communicate(timeout=30)
    return summarise(raw) if raw.exists() else {"error": "py-spy wrote nothing"}


def render(report: dict[str, Any]) -> str:
    """The markdown report."""
    lines = [
        f"# Missions bench, {report['started']}",
        "",
        f"`{report['command']}` on {report['machine']}; k6 {report['k6']}.",
        "",
        f"Data: {report['rows']:,} missions ({report['cluster']:,} within 50 km of San "
        f"Francisco): {json.dumps(report.get('load', {}))}",
        "",
        "| scenario | target | achieved | p50 | p95 | p99 | errors | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.get("scenarios", []):
        lat = r["latency_ms"]
        lines.append(
            f"| {r['label']} | {r['target_rps']}/s | {r['achieved_rps']}/s | {lat['p50']} ms | "
            f"{lat['p95']} ms | {lat['p99']} ms | {r['errors']} | {r['dropped_iterations']} |"
        )
    lines += [
        "",
        f"Claims after the run: {json.dumps(report.get('claims', {}))}",
        f"Login: {json.dumps(report.get('login', {}))}",
        f"Idle RSS (MB): {json.dumps(report.get('idle_rss_mb', {}))}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cluster", type=int, default=20_000)
    p.add_argument("--nearby-rate", type=int, default=300)
    p.add_argument("--claim-rate", type=int, default=50)
    p.add_argument("--duration", type=int, default=30)
    p.add_argument("--humans", type=int, default=1000)
    p.add_argument("--claim-missions", type=int, default=400)
    p.add_argument("--logins", type=int, default=20)
    p.add_argument(
        "--processes", type=int, default=1, help="processes per service (SERVICE_PROCESSES)"
    )
    p.add_argument(
        "--py-spy",
        default=None,
        help="py-spy binary: after the reported runs, profile nearby at 150/s (not reported)",
    )
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--keep-data", action="store_true")
    args = p.parse_args(argv)
    args.wait_quiet = 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    report: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python -m bench.missions", *(argv or sys.argv[1:])]),
        "machine": f"{os.cpu_count()} vCPU {platform.processor() or platform.machine()}",
        "k6": _k6_version(),
        "rows": args.rows,
        "cluster": args.cluster,
    }
    bench = Bench(args)
    try:
        bench.start()
        time.sleep(3)
        report["idle_rss_mb"] = bench.rss()
        dsn = bench.stack.postgres.dsn
        print(f"loading {args.rows:,} missions...", flush=True)
        report["load"] = asyncio.run(load_missions(dsn, args.rows, args.cluster))
        print(f"  {report['load']}", flush=True)
        nearby = Scenario(
            "nearby", "ListNearbyMissions (JSON)", "nearby.js", args.nearby_rate,
            args.duration, 40, 300, "ListNearbyMissions", None,
        )  # fmt: skip
        claim = Scenario(
            "claim", "ClaimMission (JSON)", "claim.js", args.claim_rate, args.duration, 20, 200,
            "ClaimMission", 30.0,
        )  # fmt: skip
        report["claim_fixture"] = asyncio.run(
            claim_fixture(bench, args.humans, args.claim_missions, bench.keys_file)
        )
        report["scenarios"] = []
        for sc in (nearby, claim):
            print(f"k6 {sc.name} at {sc.rate}/s for {sc.duration_s} s...", flush=True)
            report["scenarios"].append(measure(bench, sc))
        report["claims"] = asyncio.run(claim_invariants(dsn))
        if args.py_spy:
            report["profile"] = profile_nearby(bench, nearby, args.py_spy)
        report["login"] = asyncio.run(login_cost(bench, args.logins))
    except Interrupted:
        print("interrupted", file=sys.stderr)
        report["failed"] = "interrupted"
    finally:
        bench.stop()
    (RESULTS / "missions-report.json").write_text(json.dumps(report, indent=1, default=str))
    text = render(report)
    (RESULTS / "missions-report.md").write_text(text)
    print(text)
    return 0 if "failed" not in report else 1


if __name__ == "__main__":
    raise SystemExit(main())
