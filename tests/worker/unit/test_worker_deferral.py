"""Deferring background jobs while the machine is busy: the load reading and the gate."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from services.core.deferral import Deferral, LoadWatch, read_cpu_seconds


class Machine:
    """Scripted /proc/stat readings: the test says how many cores everyone and the worker used."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy_seconds = 0.0
        self.own_seconds = 0.0
        self.readable = True

    def run(self, seconds: float, *, others_cores: float, own_cores: float = 0.0) -> None:
        self.now += seconds
        self.busy_seconds += seconds * (others_cores + own_cores)
        self.own_seconds += seconds * own_cores

    def read(self) -> tuple[float, float] | None:
        return (self.busy_seconds, self.own_seconds) if self.readable else None


def _watch(machine: Machine, **options: object) -> LoadWatch:
    watch = LoadWatch(0.3, cpus=2, read=machine.read, clock=lambda: machine.now, **options)  # type: ignore[arg-type]
    watch.sample()  # the baseline
    return watch


def test_the_machine_is_busy_when_other_processes_use_more_than_the_threshold() -> None:
    machine = Machine()
    watch = _watch(machine)
    machine.run(0.5, others_cores=0.5)
    watch.sample()
    assert not watch.busy  # 0.25 of 2 cores
    machine.run(0.5, others_cores=0.7)
    watch.sample()
    assert watch.busy
    assert watch.others_cores == pytest.approx(0.7)


def test_the_workers_own_cpu_does_not_count() -> None:
    machine = Machine()
    watch = _watch(machine)
    machine.run(0.5, others_cores=0.2, own_cores=1.8)
    watch.sample()
    assert not watch.busy
    assert watch.others_cores == pytest.approx(0.2)


def test_it_calms_down_only_after_two_calm_samples_and_says_so() -> None:
    machine = Machine()
    watch = _watch(machine)
    changes: list[bool] = []
    watch.on_change(lambda: changes.append(watch.busy))
    machine.run(0.5, others_cores=1.0)
    watch.sample()
    machine.run(0.5, others_cores=0.0)
    watch.sample()
    assert watch.busy  # one quiet half second between requests is not calm
    machine.run(0.5, others_cores=1.0)
    watch.sample()
    machine.run(0.5, others_cores=0.0)
    watch.sample()
    machine.run(0.5, others_cores=0.1)
    watch.sample()
    assert not watch.busy
    assert changes == [True, False]


def test_without_proc_stat_nothing_is_ever_busy() -> None:
    machine = Machine()
    machine.readable = False
    watch = _watch(machine)
    machine.run(1, others_cores=2)
    watch.sample()
    assert not watch.available
    assert not watch.busy


def test_the_cpu_reading_grows_with_this_processs_work() -> None:
    before = read_cpu_seconds()
    assert before is not None  # Linux
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    after = read_cpu_seconds()
    assert after is not None
    # os.times() counts in clock ticks (10 ms), process_time() in nanoseconds: allow two ticks.
    assert after[1] - before[1] >= 0.18
    assert after[0] - before[0] >= 0.1  # the machine's busy time includes this process


class Gate:
    """A deferral over a scripted machine, and helpers to run jobs through it."""

    def __init__(self, *, max_defer: float = 30.0, busy: bool) -> None:
        self.machine = Machine()
        self.watch = _watch(self.machine)
        self.deferral = Deferral(self.watch, queue="test", max_defer_seconds=max_defer)
        self.running_peak = 0
        self.done: list[str] = []
        if busy:
            self.load(1.0)

    def load(self, others_cores: float) -> None:
        for _ in range(2):  # two samples: enough to turn busy, or to calm down
            self.machine.run(0.5, others_cores=others_cores)
            self.watch.sample()

    async def job(self, name: str, *, queued_ago: float = 0.0, seconds: float = 0.05) -> None:
        async with self.deferral.admit((time.time() - queued_ago) * 1000):
            self.running_peak = max(self.running_peak, self.deferral.running)
            await asyncio.sleep(seconds)
        self.done.append(name)


async def test_a_calm_machine_runs_jobs_at_once_and_together() -> None:
    gate = Gate(busy=False)
    await asyncio.wait_for(asyncio.gather(*(gate.job(str(i)) for i in range(5))), 1)
    assert gate.running_peak == 5


async def test_a_busy_machine_runs_one_job_at_a_time() -> None:
    gate = Gate(busy=True)
    assert gate.deferral.deferring
    await asyncio.wait_for(asyncio.gather(*(gate.job(str(i)) for i in range(4))), 2)
    assert gate.running_peak == 1
    assert sorted(gate.done) == ["0", "1", "2", "3"]


async def test_a_job_waits_no_longer_than_the_deferral_allows() -> None:
    gate = Gate(busy=True, max_defer=0.3)
    started = time.monotonic()
    jobs = [asyncio.create_task(gate.job(str(i), seconds=1.0)) for i in range(3)]
    await asyncio.sleep(0.6)
    assert gate.deferral.running == 3  # the two held back ran once queued 0.3 s
    await asyncio.gather(*jobs)
    assert time.monotonic() - started < 2.5  # one after another would take 3 s


async def test_a_job_queued_long_ago_is_not_held_back() -> None:
    gate = Gate(busy=True, max_defer=5)
    slow = asyncio.create_task(gate.job("running", seconds=0.5))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(gate.job("old", queued_ago=6), 0.3)
    await slow


async def test_held_jobs_run_when_the_machine_calms_down() -> None:
    gate = Gate(busy=True)
    jobs = [asyncio.create_task(gate.job(str(i), seconds=0.5)) for i in range(3)]
    await asyncio.sleep(0.1)
    assert gate.deferral.running == 1
    gate.load(0.0)
    await asyncio.sleep(0.1)
    assert gate.deferral.running == 3
    await asyncio.gather(*jobs)


async def test_opening_the_gate_lets_every_held_job_run() -> None:
    gate = Gate(busy=True)
    jobs = [asyncio.create_task(gate.job(str(i), seconds=0.5)) for i in range(3)]
    await asyncio.sleep(0.1)
    gate.deferral.open()
    await asyncio.sleep(0.1)
    assert gate.deferral.running == 3
    assert not gate.deferral.deferring
    await asyncio.gather(*jobs)


async def test_the_watch_samples_in_the_background_until_stopped() -> None:
    readings = 0

    def read() -> tuple[float, float]:
        nonlocal readings
        readings += 1
        return (float(readings), 0.0)

    watch = LoadWatch(0.3, interval_seconds=0.01, read=read, cpus=os.cpu_count())
    watch.start()
    await asyncio.sleep(0.1)
    await watch.stop()
    seen = readings
    await asyncio.sleep(0.05)
    assert seen >= 3
    assert readings == seen
