"""Supervision of the local stack: a process that dies is started again, with backoff, while the
others keep serving.

Every process of `betterworld up` (PostgreSQL, Valkey, each service, the worker, Envoy) is a
`Supervised`: how to start it, whether it is alive and its PID. `Supervisor.check()` runs every
half second from the stack's loop: a dead process is restarted after 1 s, then 2, 4, ... up to
30 s while it keeps dying within a minute of its start; one that stayed up a minute starts again
from 1 s. Each restart is logged and counted, and the state of every process is written to
`DATA_DIR/stack-state.json`, which `betterworld status` reads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
"""Up this long, a process has recovered: its next failure waits BACKOFF_FIRST_SECONDS again."""
STATE_FILE = "stack-state.json"


@dataclass
class Supervised:
    """One process of the stack and its history."""

    name: str
    start: Callable[[], None]
    """Starts it (again); may raise, which counts as a failed start."""
    alive: Callable[[], bool]
    pid: Callable[[], int | None]
    kind: str = "service"
    """service, worker, proxy, database or observability (for status)."""
    health_url: str | None = None
    """An HTTP URL that answers 200 while the process works (status asks it), if it has one."""
    started_at: float = field(default_factory=time.time)
    restarts: int = 0
    failures: int = 0
    """Deaths in a row without STABLE_SECONDS of uptime between them."""
    retry_at: float | None = None
    """When a dead process is started again; None while it is alive."""
    last_exit: str = ""

    def backoff(self) -> float:
        """The wait before the next start."""
        return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(self.failures - 1, 0))


class Supervisor:
    """Keeps the stack's processes running and records their state."""

    def __init__(self, state_path: Path, log: Callable[[str], None] | None = None) -> None:
        self.processes: list[Supervised] = []
        self._state_path = state_path
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def add(self, process: Supervised) -> Supervised:
        """Supervises a process that was just started."""
        process.started_at = time.time()
        self.processes.append(process)
        return process

    def check(self, now: float | None = None) -> None:
        """Restarts what died (once its backoff passed) and writes the state file."""
        now = time.time() if now is None else now
        for process in self.processes:
            if process.retry_at is None:
                if process.alive():
                    if now - process.started_at >= STABLE_SECONDS:
                        process.failures = 0
                    continue
                process.failures += 1
                process.retry_at = now + process.backoff()
                process.last_exit = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
                self._log(
                    f"supervisor: {process.name} died; restarting in {process.backoff():.0f} s "
                    f"(restart {process.restarts + 1})"
                )
            elif now >= process.retry_at:
                self._restart(process, now)
        self.write_state(now)

    def _restart(self, process: Supervised, now: float) -> None:
        try:
            process.start()
        except Exception as exc:  # a failed start is one more failure, retried later
            process.failures += 1
            process.retry_at = now + process.backoff()
            self._log(
                f"supervisor: {process.name} did not start ({exc}); next try in "
                f"{process.backoff():.0f} s"
            )
            return
        process.restarts += 1
        process.retry_at = None
        process.started_at = now
        self._log(
            f"supervisor: {process.name} restarted (pid {process.pid()}, "
            f"{process.restarts} restarts)"
        )

    def state(self, now: float | None = None) -> list[dict[str, Any]]:
        """Each process: name, kind, pid, alive, started_at, restarts, last_exit, health_url."""
        now = time.time() if now is None else now
        return [
            {
                "name": p.name,
                "kind": p.kind,
                "pid": p.pid(),
                "alive": p.retry_at is None and p.alive(),
                "started_at": p.started_at,
                "restarts": p.restarts,
                "last_exit": p.last_exit,
                "health_url": p.health_url,
            }
            for p in self.processes
        ]

    def write_state(self, now: float | None = None) -> None:
        """Writes the state file atomically (a reader never sees half of it)."""
        payload = {
            "supervisor_pid": os.getpid(),
            "written_at": time.time(),
            "processes": self.state(now),
        }
        temp = self._state_path.with_suffix(".tmp")
        temp.write_text(json.dumps(payload, indent=2))
        os.replace(temp, self._state_path)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state a running stack wrote, or None when there is none (or it is stale: the
    supervisor is gone)."""
    path = data_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["supervisor_pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return state
