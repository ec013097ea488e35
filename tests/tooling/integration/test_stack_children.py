"""The local stack's children do not outlive it, even when it is killed without a chance to stop
them (they run in sessions of their own, so a signal to its process group misses them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG)")

_PARENT = """
import sys, time
from pathlib import Path
from services.registry import REGISTRY
from tooling.stack import Stack

settings = REGISTRY.load_settings(_env_file=None, data_dir=Path(sys.argv[1]))
stack = Stack(settings)
stack.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"])
print(stack.children["sleeper"].pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return status != "Z"


def test_a_child_is_terminated_when_the_stack_process_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived the stack"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
