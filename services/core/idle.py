"""Threads that only use CPU nothing else wants (Linux SCHED_IDLE).

Niceness lowers a process's share of the CPU but still gives it a slice whenever it is runnable;
a request arriving while the worker embeds a long text waits for that slice. A SCHED_IDLE thread
runs only when no normal thread wants the core, so bulk, deferrable work (search embeddings,
backfills) stops competing with request serving on the same machine for run time; on a small
VM it can still lengthen the requests' tail (shared caches, the vCPUs' host scheduling), which
is why the worker also defers jobs while the machine is busy (`services.worker.deferral`).
The policy is per thread: a pool of idle threads leaves the rest of its process at its
priority, and `make_process_idle` puts a whole process there (the worker, by default).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from services.core.logging import get_logger

log = get_logger(__name__)


def make_current_thread_idle() -> bool:
    """Puts the calling thread in SCHED_IDLE; false where the OS has no such policy."""
    return _make_idle([0])


def make_process_idle() -> bool:
    """Puts every thread of this process in SCHED_IDLE; threads started later inherit it.
    False where the OS has no such policy or refuses it."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # the calling thread
    return _make_idle(threads)


def _make_idle(threads: list[int]) -> bool:
    if not hasattr(os, "SCHED_IDLE"):
        return False
    for tid in threads:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except OSError as exc:
            log.warning("sched_idle_refused", error=str(exc))
            return False
    return True


def idle_executor(max_workers: int, *, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads run at idle priority (normal priority where unsupported).

    Work on it progresses only on spare CPU: on a saturated machine it waits, so use it only
    for work that may be late but must not slow anything else.
    """
    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix=name, initializer=make_current_thread_idle
    )
