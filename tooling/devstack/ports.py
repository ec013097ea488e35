"""Free TCP ports, port probes and PID-based process checks shared by the embedded stack."""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

_PROC = Path("/proc")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The kernel picks the port (bind to 0); the socket is closed before returning, so another
    process could grab it in between. That race is acceptable for tests and local runs.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_group(
    spread: Callable[[int], Sequence[int]],
    *,
    taken: Collection[int] = (),
    host: str = "127.0.0.1",
    attempts: int = 100,
) -> tuple[int, ...]:
    """Ports that ``spread`` derives from a free port (its first one), all free a moment ago
    and none in ``taken``; ``spread`` may raise ValueError for a port it cannot use.

    For a group of processes that listen on ports derived from one (``serve --processes``).
    """
    for _ in range(attempts):
        try:
            group = tuple(spread(free_port(host)))
        except ValueError:
            continue
        if not set(group) & set(taken) and all(_bindable(host, p) for p in group[1:]):
            return group
    raise RuntimeError(f"no free port group on {host} after {attempts} attempts")


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def process_alive(pid: int, comm: str | None = None) -> bool:
    """Return True when ``pid`` is a live (non-zombie) process, named ``comm`` if given.

    The name check guards against PID reuse: a PID recorded by a caller that crashed long ago
    may now belong to an unrelated process, which must never be signalled.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, but owned by someone else
    proc_dir = _PROC / str(pid)
    if not _PROC.joinpath("self").exists():
        return True  # no procfs (macOS): liveness is all we can tell
    try:
        # The state field follows the parenthesised name, which may itself contain spaces.
        state = proc_dir.joinpath("stat").read_text().rpartition(")")[2].split()[0]
        if state in ("Z", "X"):
            return False
        if comm is not None and proc_dir.joinpath("comm").read_text().strip() != comm:
            return False
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return True


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError as exc:  # pragma: no cover - defensive
        if exc.errno != errno.ECHILD:
            raise


def wait_for_exit(pid: int, timeout: float, comm: str | None = None) -> bool:
    """Poll until ``pid`` has exited; return False if it is still alive after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not process_alive(pid, comm):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def log_tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as fh:
            # Logs can grow large across runs; only the end matters for a start-up error.
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"
