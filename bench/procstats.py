"""Per-process memory and CPU from /proc, and a description of the machine."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MiB, None when the process is gone."""
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) in MiB."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the parenthesised command name (which may contain spaces).
    return raw.rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, in seconds (0 when gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After ")": state(0) ppid(1) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def children_of(pid: int) -> list[int]:
    """Direct children of pid (scans /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[1] == str(pid):
            out.append(int(entry.name))
    return out


@dataclass
class ProcessGroup:
    """A named process, optionally counted with its direct children (PostgreSQL backends)."""

    name: str
    pid: int
    with_children: bool = False
    rss_per_process: bool = False

    def pids(self) -> list[int]:
        return [self.pid, *children_of(self.pid)] if self.with_children else [self.pid]

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def rss(self) -> float | None:
        """Summed over the group, or with `rss_per_process` its largest process (a service run
        as N processes: the target is per process)."""
        values = [rss_mb(p) for p in self.pids()]
        known = [v for v in values if v is not None]
        if not known:
            return None
        return round(max(known) if self.rss_per_process else sum(known), 1)


def machine() -> dict[str, object]:
    """CPU count and model, memory, kernel."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def system_cpu_seconds() -> dict[str, float]:
    """CPU seconds of the whole machine since boot, from /proc/stat: process time (user, nice,
    system), interrupt time (irq + softirq: loopback networking partly lands here) and steal."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return {
        "process": (user + nice + system) / _CLK_TCK,
        "interrupts": (irq + softirq) / _CLK_TCK,
        "steal": steal / _CLK_TCK,
    }


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0, 0.0
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of one process, all threads."""
    total_v = total_n = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    for task in tasks:
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total_v += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    total_n += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_v, total_n


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process on the machine: pid -> (command line, CPU seconds so far)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            raw = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
            name = raw.decode(errors="replace") or f"[{(entry / 'comm').read_text().strip()}]"
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        out[pid] = (name[:120], cpu_seconds(pid))
    return out


def top_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    ours: set[int],
    wall: float,
    n: int = 3,
) -> list[tuple[str, float]]:
    """The processes outside `ours` that used the most CPU between two snapshots (cores)."""
    usage = []
    for pid, (name, cpu) in after.items():
        if pid in ours:
            continue
        delta = cpu - before.get(pid, (name, 0.0))[1]
        if delta > 0.01 * wall:
            usage.append((name, round(delta / wall, 2)))
    return sorted(usage, key=lambda item: -item[1])[:n]
