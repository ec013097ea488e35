"""The markdown report: the issue's targets first, then the details behind them."""

from __future__ import annotations

from typing import Any

IDLE_RSS_TARGET_MB = 150.0
NONE = "-"
AUTH_TARGET_MS = 1.0


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return NONE
    if isinstance(value, float):
        text = f"{value:.2f}" if value < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def _verdict(ok: bool | None) -> str:
    return NONE if ok is None else ("**PASS**" if ok else "**FAIL**")


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with measured values and verdicts."""
    rows: list[dict[str, Any]] = []
    by_name = {s["name"]: s for s in report.get("scenarios", [])}

    def scen(name: str, target: str, extra: str = "") -> None:
        s = by_name.get(name)
        if s is None:
            return
        lat = s["latency_ms"]
        measured = (
            f"{s['achieved_rps']} rps, p99 {_f(lat['p99'])} ms, "
            f"{s['errors']} errors, {s['dropped_iterations']} dropped{extra}"
        )
        if s.get("disturbed"):
            measured += f" (disturbed: others used {s['cpu_cores']['others']} cores)"
        rows.append({"target": target, "measured": measured, "pass": s["pass"]})

    scen("get_me", "GetMe (JSON, authenticated): 500 rps, p99 < 15 ms, 0 errors")
    scen("get_me_grpc", "GetMe (gRPC, extra): 500 rps, p99 < 15 ms, 0 errors")
    scen("heartbeat_instructions", "GetHeartbeatInstructions: 300 rps, p99 < 20 ms")
    scen("checkin", "Checkin: 300 rps, p99 < 20 ms")
    scen("register_agent", "RegisterAgent: 200/s, 0 errors (limit raised)")
    auth = report.get("auth_cost")
    if auth:
        c, u = auth["cached"], auth["uncached"]
        rows.append(
            {
                "target": "Authentication < 1 ms server-side (cached key)",
                "measured": f"cached mean {c['mean_ms']:.3f} ms / p99 {c['p99_ms']:.3f} ms; "
                f"uncached mean {u['mean_ms']:.3f} ms / p99 {u['p99_ms']:.3f} ms",
                "pass": c["mean_ms"] < AUTH_TARGET_MS,
            }
        )
    services = report.get("service_processes") or ["agent"]
    memory = {name: row for name, row in report.get("memory_mb", {}).items() if name in services}
    if memory:
        idle = {
            name: max(v for v in (row["idle_after_start"], row["idle_after_warmup"]) if v)
            for name, row in memory.items()
        }
        after = {name: row["after_load"] for name, row in memory.items()}
        rows.append(
            {
                "target": "Each gRPC service process < 150 MB RSS idle",
                "measured": "idle (max of after start / after warm-up): "
                + ", ".join(f"{name} {value} MB" for name, value in idle.items())
                + f"; agent after load {after.get('agent')} MB"
                + "".join(
                    f"; {name} (not a gRPC service) {row['idle_after_warmup']} MB"
                    for name, row in report.get("memory_mb", {}).items()
                    if name not in services and name not in ("envoy", "postgres", "valkey")
                ),
                "pass": all(v < IDLE_RSS_TARGET_MB for v in idle.values()),
            }
        )
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    v = report.get("versions", {})
    cfg = report.get("config", {})
    lines = [
        "# BetterWorld mesh: benchmark report",
        "",
        f"Generated {report['generated_at']} by `make bench` (project {report['project_version']},"
        f" {report.get('elapsed_s', '?')} s).",
        "",
        f"**Machine:** {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, "
        f"Linux {m['kernel']}. k6, Envoy, the agent service, PostgreSQL and Valkey all run on "
        f"these {m['nproc']} cores at once (see *CPU used* below), so every number includes "
        "the load generator competing with the server for CPU.",
        "",
        f"**Versions:** {v.get('k6', '?')}; Envoy {v.get('envoy', '?')}; "
        f"Python {v.get('python', '?')}; PostgreSQL {v.get('postgresql', '?')}; "
        f"Valkey {v.get('valkey', '?')}.",
        "",
        f"**Setup:** one agent service process (asyncio, DB pool "
        f"{cfg.get('database_pool_size', '?')}), authentication on, rate limiting "
        f"{cfg.get('rate_limiting', '?')}, {cfg.get('log_level', '')}; "
        f"{cfg.get('agents', '?')} pre-registered agents, keys spread round-robin over "
        "requests; auth cache TTL "
        f"{cfg.get('auth_cache_ttl_seconds', '?')} s. Load: k6 constant-arrival-rate through "
        "Envoy on 127.0.0.1 (JSON transcoding unless marked gRPC).",
        "",
        "## Targets (issue 2)",
        "",
        "| Target | Measured | Result |",
        "|---|---|---|",
    ]
    for row in targets(report):
        lines.append(f"| {row['target']} | {row['measured']} | {_verdict(row['pass'])} |")

    lines += [
        "",
        "## Scenarios (client side, k6)",
        "",
        "| Scenario | Target rate | Achieved rps | Requests | Errors | Dropped | p50 ms | p95 ms "
        "| p99 ms | max ms | p99 target | Result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.get("scenarios", []):
        lat = s["latency_ms"]
        target = f"< {s['p99_target_ms']:g} ms" if s["p99_target_ms"] else NONE
        if s.get("disturbed"):
            target += " (disturbed: other processes used CPU)"
        lines.append(
            f"| {s['label']} | {s['target_rps']}/s | {s['achieved_rps']} | {s['completed']} | "
            f"{s['errors']} | {s['dropped_iterations']} | {_f(lat['p50'])} | {_f(lat['p95'])} | "
            f"{_f(lat['p99'])} | {_f(lat['max'])} | {target} | {_verdict(s['pass'])} |"
        )
    lines += [
        "",
        "*Requests* = iterations completed; *Dropped* = iterations k6 could not start on "
        "schedule because every VU was busy (the server fell behind the arrival rate). A "
        "scenario passes when it completed ≥ 98 % of the scheduled requests with nothing "
        "dropped, 0 errors (any unexpected status or timeout), and p99 below its target.",
        "",
        "## Server side (agent process, `grpc_server_handling_seconds`)",
        "",
        "Time inside the service from the first interceptor to the response (excludes Envoy, "
        "the network and gRPC's own queueing). Percentiles are interpolated from the "
        "histogram buckets (0.5, 1, 2.5, 5, 10, 25, 50 ms …), so they are coarse.",
        "",
        "*Agent CPU/request* is the service process's CPU time divided by the requests served; "
        "1000 / that is roughly what one fully available core could serve.",
        "",
        "| Scenario | RPCs | mean ms | ~p50 ms | ~p99 ms | agent CPU ms/request (user + sys) "
        "| ≈ max rps on one free core | context switches/request (vol./invol.) "
        "| Envoy CPU ms/request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.get("scenarios", []):
        ss = s.get("server_side") or {}
        per = s.get("cpu_ms_per_request") or {}
        agent_ms = per.get("agent")
        ceiling = round(1000 / agent_ms) if agent_ms else None
        ap = s.get("agent_per_request") or {}
        split = (
            f"{_f(agent_ms)} ({_f(ap.get('user_cpu_ms'))} + {_f(ap.get('system_cpu_ms'))})"
            if ap
            else _f(agent_ms)
        )
        switches = (
            f"{_f(ap.get('voluntary_switches'))} / {_f(ap.get('involuntary_switches'))}"
            if ap
            else NONE
        )
        lines.append(
            f"| {s['label']} | {_f(ss.get('rpcs'))} | {_f(ss.get('mean_ms'))} | "
            f"{_f(ss.get('p50_ms_est'))} | {_f(ss.get('p99_ms_est'))} | {split} | "
            f"{_f(ceiling)} | {switches} | {_f(per.get('envoy'))} |"
        )
    lines += [
        "",
        "## Round trips per request (server counters)",
        "",
        "From `pg_stat_database` and Valkey `INFO commandstats`: exact, unaffected by CPU "
        "contention. Each PostgreSQL transaction through SQLAlchemy + asyncpg is at least "
        "BEGIN, the statement(s) and COMMIT/ROLLBACK, each a round trip; `pool_pre_ping` adds a "
        "whole transaction (BEGIN; `;`; ROLLBACK) to every connection checkout.",
        "",
        "| Scenario | PostgreSQL transactions | PostgreSQL detail | Valkey network commands "
        "| Valkey commandstats (includes TIME/GET/SET run inside the rate-limit script) |",
        "|---|---|---|---|---|",
    ]
    for s in report.get("scenarios", []):
        rt = s.get("round_trips_per_request") or {}
        pg = ", ".join(f"{k} {v}" for k, v in (rt.get("postgres") or {}).items())
        vk = ", ".join(f"{k} {v}" for k, v in (rt.get("valkey") or {}).items())
        lines.append(
            f"| {s['label']} | {_f(rt.get('postgres_transactions'))} | {pg or NONE} | "
            f"{_f(rt.get('valkey_commands'))} | {vk or NONE} |"
        )
    names = [
        "agent",
        "envoy",
        "rest_of_stack",
        "postgres",
        "valkey",
        "k6",
        "total",
        "interrupts",
        "others",
        "machine",
    ]
    lines += [
        "",
        f"## CPU used during each scenario (cores busy, of {m['nproc']})",
        "",
        "| Scenario | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for s in report.get("scenarios", []):
        c = s.get("cpu_cores", {})
        lines.append(f"| {s['label']} | " + " | ".join(_f(c.get(n)) for n in names) + " |")
    lines += [
        "",
        "1.00 = one core fully busy. *rest_of_stack* = the stack's other services and worker "
        "(started by the stack, not loaded here); *total* = all the bench's processes (stack "
        "+ k6); "
        "*interrupts* = irq/softirq time (mostly the loopback networking of these processes); "
        "*others* = other processes on the machine meanwhile (from /proc/stat); *machine* = "
        "all of it. The agent service is one asyncio process and cannot use more than one core "
        "(DESIGN.md §1: scale out with `betterworld serve --reuse-port` processes).",
    ]
    disturbed = [s for s in report.get("scenarios", []) if s.get("top_other_processes")]
    if disturbed:
        lines += ["", "Other processes that used CPU during a scenario (cores):", ""]
        for s in disturbed:
            tops = "; ".join(f"`{name[:70]}` {cores}" for name, cores in s["top_other_processes"])
            lines.append(f"- {s['label']}: {tops}")
    mem = report.get("memory_mb", {})
    if mem:
        lines += [
            "",
            "## Memory (RSS, MiB)",
            "",
            "| Process | idle after start | idle after warm-up | after load | peak (VmHWM) |",
            "|---|---|---|---|---|",
        ]
        for name, row in mem.items():
            label = name + (" (all backends)" if name == "postgres" else "")
            lines.append(
                f"| {label} | {_f(row['idle_after_start'])} | {_f(row['idle_after_warmup'])} | "
                f"{_f(row['after_load'])} | {_f(row['peak'])} |"
            )
    auth = report.get("auth_cost")
    if auth:
        lines += [
            "",
            "## Authentication cost (`Authenticator.authenticate`, idle stack)",
            "",
            "Timed in the bench process with the service's own runtime (`build_runtime`: "
            "asyncpg pool + redis.asyncio) against the bench's PostgreSQL and Valkey, one call "
            "at a time.",
            "",
            "| Path | n | mean ms | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|",
        ]
        labels = {
            "cached": "cached key (Redis GET hit + decode)",
            "uncached": "uncached key (Redis miss, 2 PostgreSQL reads, Redis SET)",
            "cpu_only_digest_and_decode": "CPU only: SHA-256 + JSON decode",
        }
        for key, label in labels.items():
            a = auth[key]
            lines.append(
                f"| {label} | {a['n']} | {a['mean_ms']:.3f} | {a['p50_ms']:.3f} | "
                f"{a['p95_ms']:.3f} | {a['p99_ms']:.3f} | {a['max_ms']:.3f} |"
            )
    prof = report.get("profile")
    if prof:
        lines += [
            "",
            "## Profile of the agent process (py-spy, extra unreported runs)",
            "",
            "Sampled below saturation. Percentages are of samples in which a thread of the agent "
            "process was running or runnable (threads blocked in poll/epoll are excluded). A "
            "thread preempted inside a syscall (e.g. `send` to PostgreSQL wakes the backend, "
            "which can take the core on this 2-core box) still counts, so syscall shares are an "
            "upper bound of their pure CPU cost. Categories are assigned by the first marker "
            "found in each stack (see `bench/profiling.py`).",
            "",
        ]
        for name, p in prof.items():
            if "error" in p:
                lines.append(f"- {name}: py-spy failed: {p['error']}")
                continue
            lines += [
                f"### {name} at {p.get('rate', '?')}/s ({p['samples']} on-CPU samples; "
                f"raw stacks in `{p['raw']}`)",
                "",
            ]
            load = p.get("load")
            if load:
                lines += [
                    f"Profiled run: {load['achieved_rps']} rps, p50 "
                    f"{_f(load['latency_ms']['p50'])} ms, p99 {_f(load['latency_ms']['p99'])} ms, "
                    f"{load['errors']} errors, {load['dropped_iterations']} dropped"
                    + (
                        " (py-spy slowed the process into a backlog: read with care)."
                        if load["errors"] or load["dropped_iterations"]
                        else "."
                    ),
                    "",
                ]
            lines += [
                "| Where the agent process's CPU time goes | % |",
                "|---|---|",
            ]
            lines += [f"| {k} | {v} |" for k, v in p.get("by_category", [])]
            lines += [
                "",
                f"Socket write syscalls (send/sendmsg/write as the leaf frame, any category): "
                f"{p.get('socket_write_syscalls_pct')} % of on-CPU samples.",
                "",
                "| Self time by package | % |",
                "|---|---|",
            ]
            lines += [f"| {k} | {v} |" for k, v in p["self_by_package"][:12]]
            lines += ["", "| Self time by function (top 15) | % |", "|---|---|"]
            lines += [f"| `{k}` | {v} |" for k, v in p["self_by_function"][:15]]
            lines += ["", "| Inclusive time by function (top 25) | % |", "|---|---|"]
            lines += [f"| `{k}` | {v} |" for k, v in p["inclusive_by_function"][:25]]
            lines.append("")
    lines += [
        "",
        "## Notes",
        "",
        "- The load generator is on the same machine: k6 alone takes a sizeable share of the "
        "cores (table above), as do Envoy, PostgreSQL and Valkey. On a dedicated server the "
        "service would have its core to itself; here it competes for it.",
        "- Rate limits are raised, not disabled: each request still runs the GCRA Lua script "
        "in Valkey. Authentication is on for every agent RPC.",
        "- Each scenario runs after a 5 s warm-up, again if other processes disturbed it "
        "(`--reruns`); expect ~10 % run-to-run noise in throughput on a VM, more in the tail "
        "(p99, max).",
        "",
    ]
    return "\n".join(lines)
