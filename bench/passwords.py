"""Cost of one humans' password hash and one check with the service's argon2id parameters.

Run: `.venv/bin/python -m bench.passwords [--repeat N]`. Times `Passwords.hash` and
`Passwords.check` one at a time (each runs in a thread, as in the service) and prints the
median, p95 and the parameters, so the README's figure can be re-measured on any machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from services.mission.passwords import MEMORY_KIB, PARALLELISM, TIME_COST, Passwords


async def _measure(repeat: int) -> dict[str, float]:
    passwords = Passwords()
    hashes, checks = [], []
    stored = ""
    for _ in range(repeat):
        start = time.perf_counter()
        stored = await passwords.hash("Sturdy-Pass-42")
        hashes.append(time.perf_counter() - start)
    for _ in range(repeat):
        start = time.perf_counter()
        await passwords.check(stored, "Sturdy-Pass-42")
        checks.append(time.perf_counter() - start)

    def ms(samples: list[float], q: int) -> float:
        return round(statistics.quantiles(samples, n=20)[q] * 1000, 1)

    return {
        "hash_p50_ms": round(statistics.median(hashes) * 1000, 1),
        "hash_p95_ms": ms(hashes, 18),
        "check_p50_ms": round(statistics.median(checks) * 1000, 1),
        "check_p95_ms": ms(checks, 18),
    }


def main() -> None:
    """Prints the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"argon2id t={TIME_COST} m={MEMORY_KIB} KiB p={PARALLELISM}, {args.repeat} each")
    for name, value in asyncio.run(_measure(args.repeat)).items():
        print(f"{name:14} {value}")


if __name__ == "__main__":
    main()
