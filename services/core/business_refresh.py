"""The worker's side of the business gauges: one round computes every service's figures, and
the metrics endpoint exports the last values.

A scrape only reads the values a round stored, so Prometheus never makes the database count
anything. A gauge no round has computed yet is exported without a value (HELP and TYPE only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.logging import get_logger

if TYPE_CHECKING:
    from services.core.definition import ServiceDefinition
    from services.core.runtime import Runtime

log = get_logger(__name__)

REFRESH_INTERVAL_SECONDS = 60.0
"""How often the worker computes the figures: dashboards show numbers at most a minute old, and
the database counts once a minute however many scrape."""
TASK_NAME = "business-gauges"
"""The periodic task's name (its `queue` label in job_duration_seconds)."""


class BusinessGaugeCollector(Collector):
    """The last computed value of every declared business gauge."""

    def __init__(self) -> None:
        self._help: dict[str, str] = {}
        self._values: dict[str, float] = {}

    def declare(self, gauges: Iterable[BusinessGauge]) -> None:
        """Exports these gauges (without a value until `set` gives them one)."""
        for gauge in gauges:
            known = self._help.setdefault(gauge.name, gauge.help)
            if known != gauge.help:
                raise ValueError(f"business gauge {gauge.name} declared twice, differently")

    def set(self, name: str, value: float) -> None:
        """Records a computed value of a declared gauge."""
        if name not in self._help:
            raise ValueError(f"business gauge {name} was never declared")
        self._values[name] = value

    def value(self, name: str) -> float | None:
        """The last computed value (None before the first)."""
        return self._values.get(name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One family per declared gauge, with its last value if it has one."""
        for name, help_text in sorted(self._help.items()):
            yield GaugeMetricFamily(name, help_text, value=self._values.get(name))


_COLLECTOR: BusinessGaugeCollector | None = None


def collector() -> BusinessGaugeCollector:
    """The process's collector, registered with the default registry (the one the metrics
    endpoint serves) on first use."""
    global _COLLECTOR
    if _COLLECTOR is None:
        _COLLECTOR = BusinessGaugeCollector()
        REGISTRY.register(_COLLECTOR)
    return _COLLECTOR


def declared(definitions: Sequence[ServiceDefinition]) -> list[BusinessGauges]:
    """The business gauges these services declare, now exported by this process."""
    found = [d.business_gauges for d in definitions if d.business_gauges is not None]
    for gauges in found:
        collector().declare(gauges.gauges)
    return found


class BusinessGaugesFailed(Exception):
    """Some gauges could not be computed this round; their previous values stay."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"not refreshed: {', '.join(names)}")
        self.names = names


async def refresh_business_gauges(
    declarations: Sequence[BusinessGauges], runtime: Runtime, *, now: datetime | None = None
) -> dict[str, float]:
    """One round: every service's figures at one instant; returns the values stored.

    A service whose query fails keeps its previous values while the others are refreshed; the
    round then raises BusinessGaugesFailed, so that it is logged and counted as failed
    (job_duration_seconds{outcome="failed"}).
    """
    instant = now or datetime.now(UTC)
    values: dict[str, float] = {}
    failed: list[str] = []
    for declaration in declarations:
        names = [gauge.name for gauge in declaration.gauges]
        try:
            computed = await declaration.compute(runtime, instant)
            fresh = {name: float(computed[name]) for name in names}
        except Exception:
            log.warning("business_gauges_failed", gauges=names, exc_info=True)
            failed += names
            continue
        for name, value in fresh.items():
            collector().set(name, value)
        values |= fresh
    if failed:
        raise BusinessGaugesFailed(failed)
    return values
