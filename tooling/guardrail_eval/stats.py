"""Shares with 95 % confidence intervals (Wilson score), for small per-category counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964


@dataclass(frozen=True)
class Share:
    """k of n, with its Wilson 95 % interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        """k / n (0 for an empty count)."""
        return self.k / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The Wilson score interval: sound at 0 and n, unlike the normal approximation."""
        if not self.n:
            return (0.0, 1.0)
        p, n = self.value, self.n
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        spread = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
        return (max(0.0, centre - spread), min(1.0, centre + spread))

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.k}/{self.n} = {100 * self.value:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"
