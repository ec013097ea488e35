"""Password hashes: argon2id with the documented parameters, and no timing tell for unknown
emails."""

from __future__ import annotations

import statistics
import time

from services.mission.passwords import Passwords


async def test_hashes_are_argon2id_with_the_documented_parameters() -> None:
    passwords = Passwords()
    stored = await passwords.hash("Sturdy-Pass-42")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await passwords.check(stored, "Sturdy-Pass-42")
    assert not await passwords.check(stored, "sturdy-pass-42")
    assert stored != await passwords.hash("Sturdy-Pass-42")  # salted


async def test_an_unknown_account_costs_what_a_wrong_password_costs() -> None:
    passwords = Passwords(time_cost=1, memory_kib=16 * 1024)
    stored = await passwords.hash("Sturdy-Pass-42")

    async def median_seconds(hash_or_none: str | None) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            assert not await passwords.check(hash_or_none, "Wrong-Pass-1")
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    wrong, unknown = await median_seconds(stored), await median_seconds(None)
    assert 0.5 < unknown / wrong < 2.0, (unknown, wrong)
