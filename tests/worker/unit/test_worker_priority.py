"""The worker lowers its own CPU priority before it starts work, in every thread it has."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Run in a child: the policy cannot be undone without privileges, and must not slow the tests.
_CHILD = textwrap.dedent(
    """
    import os, sys, threading
    from services.core.settings import Settings
    from services.worker.main import lower_priority

    started = threading.Event()
    done = threading.Event()
    early = threading.Thread(target=lambda: (started.set(), done.wait()))
    early.start()  # a thread that exists before the call, as a library's would
    started.wait()
    idle = sys.argv[1] == "idle"
    print(lower_priority(Settings(worker_idle_priority=idle, worker_nice=7)))
    print(os.sched_getscheduler(0), os.sched_getscheduler(early.native_id))
    late = threading.Thread(target=lambda: print(os.sched_getscheduler(0)))
    late.start()
    late.join()
    print(os.getpriority(os.PRIO_PROCESS, 0))
    done.set()
    """
)


def _run(mode: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.split("\n")


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policy")
def test_idle_priority_covers_threads_started_before_and_after() -> None:
    policy, existing, later, _nice, _ = _run("idle")
    assert policy == "idle"
    assert existing == f"{os.SCHED_IDLE} {os.SCHED_IDLE}"
    assert later == str(os.SCHED_IDLE)


def test_without_idle_priority_the_worker_is_niced() -> None:
    policy, existing, _later, nice, _ = _run("normal")
    assert policy == "nice 7"
    assert existing == f"{os.SCHED_OTHER} {os.SCHED_OTHER}"
    assert int(nice) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
