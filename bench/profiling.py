"""Optional: sample the agent service process with py-spy during an extra (unreported) load run.

py-spy is not a project dependency: install it into a separate virtualenv, e.g.
`python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`, and pass
`--profile --py-spy /tmp/pyspy/bin/py-spy` (or put it on PATH). Stacks are recorded in py-spy's
"raw" (collapsed) format and summarised here: self time by function and by package, and inclusive
time of selected frames, as percentages of the samples in which the process was on-CPU.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def start_py_spy(
    py_spy: str, pid: int, seconds: int, out: Path, native: bool
) -> subprocess.Popen[bytes]:
    """Starts `py-spy record` on pid for `seconds`, writing collapsed stacks to `out`."""
    argv = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        # Native unwinding pauses the process for each sample: sample less often so that the
        # profiled process is not slowed into a backlog (which would change what it does).
        "67" if native else "250",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    # --native (C/Cython frames, e.g. grpc's core) needs to pause the process for each sample;
    # Python-only sampling does not.
    argv.append("--native" if native else "--nonblocking")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _package(file: str) -> str:
    """A readable bucket for a frame's file."""
    if "site-packages/" in file:
        rest = file.split("site-packages/", 1)[1]
        top = rest.split("/", 1)[0]
        if top == "grpc" and "_cython" in rest:
            return "grpc (cython core)"
        return top
    if "/work/" in file or file.startswith(("services/", "gen/")):
        if "/services/" in file or file.startswith("services/"):
            return "services/" + file.split("services/", 1)[1].split("/")[0]
        return "project"
    if "/lib/python3" in file:
        mod = file.split("/lib/python3", 1)[1].split("/", 2)
        name = mod[1] if len(mod) > 1 else file
        return "stdlib:" + name.removesuffix(".py")
    if file.endswith((".so", ".c", ".cc", ".h")) or not file:
        return "native"
    return file


def _frame_key(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


# Leaf frames of a thread that waits rather than works. py-spy drops idle Python stacks itself,
# but with --native a thread blocked in poll/epoll is sampled as if it ran.
IDLE_LEAVES = {
    "poll",
    "epoll_wait",
    "select",
    "ppoll",
    "pselect",
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "sem_wait",
    "sem_timedwait",
    "nanosleep",
    "clock_nanosleep",
    "futex",
    "__futex_abstimed_wait_common",
    # Python-level leaves of the same waits when sampling without --native.
    "EpollSelector.select",
    "PollSelector.select",
    "_PollLikeSelector.select",
    "SelectSelector.select",
}

# Where a sample's time goes, by the first marker found anywhere in its stack (order matters).
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("other threads (gRPC core poller, metrics HTTP, ...)", ("Thread._bootstrap",)),
    ("PostgreSQL: pool pre-ping (BEGIN; ';'; ROLLBACK per checkout)", ("_async_ping", "do_ping")),
    ("PostgreSQL: BEGIN of the request's transaction", ("Transaction.start (",)),
    (
        "PostgreSQL: ROLLBACK/COMMIT when the connection is released",
        ("Transaction.rollback (", "Transaction.commit (", "_call_and_discard"),
    ),
    (
        "PostgreSQL: the statement itself (SQLAlchemy compile/result + asyncpg)",
        ("sqlalchemy/", "asyncpg/"),
    ),
    ("Redis: rate-limit GCRA script (EVALSHA)", ("RateLimiter.hit",)),
    ("Redis: auth cache lookup (GET)", ("Authenticator._lookup",)),
    ("access log + structured logging", ("structlog/", "logging/__init__", "core/logging.py")),
    ("Prometheus metrics", ("prometheus_client/",)),
    ("protobuf / JSON (de)serialisation", ("protobuf/", "_message.", "json/")),
    ("interceptors, servicer and domain code (rest)", ("services/agent/", "services/core/")),
    ("gRPC aio core + asyncio event loop (rest of the main thread)", ("",)),
]


def summarise(raw: Path, top: int = 25) -> dict[str, object]:
    """Self and inclusive percentages from a py-spy raw file (idle samples excluded)."""
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    send_leaf = 0
    total = 0
    idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if _frame_key(frames[-1])[0] in IDLE_LEAVES:
            idle += count
            continue
        total += count
        if _frame_key(frames[-1])[0] in ("send", "sendmsg", "sendto", "write", "writev"):
            send_leaf += count
        for label, markers in CATEGORIES:
            if any(m in stack for m in markers):
                categories[label] += count
                break
        func, file = _frame_key(frames[-1])
        short = file.split("site-packages/")[-1].split("/work/main/")[-1]
        self_fn[f"{func} ({short})"] += count
        self_pkg[_package(file)] += count
        seen_fn: set[str] = set()
        seen_pkg: set[str] = set()
        for frame in frames:
            f_func, f_file = _frame_key(frame)
            f_short = f_file.split("site-packages/")[-1].split("/work/main/")[-1]
            key = f"{f_func} ({f_short})"
            if key not in seen_fn:
                seen_fn.add(key)
                incl_fn[key] += count
            pkg = _package(f_file)
            if pkg not in seen_pkg:
                seen_pkg.add(pkg)
                incl_pkg[pkg] += count

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "idle_samples_excluded": idle,
        "by_category": [(k, round(100 * v / total, 1)) for k, v in categories.most_common()]
        if total
        else [],
        "socket_write_syscalls_pct": round(100 * send_leaf / total, 1) if total else None,
        "self_by_package": pct(self_pkg, 20),
        "inclusive_by_package": pct(incl_pkg, 20),
        "self_by_function": pct(self_fn, top),
        "inclusive_by_function": pct(incl_fn, top + 15),
    }
