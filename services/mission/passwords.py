"""Password hashes: argon2id (argon2-cffi), computed off the event loop.

Parameters: RFC 9106's second recommended profile (3 passes over 64 MiB, 4 lanes), the
library's defaults. One hash or check costs tens of milliseconds of CPU (README, measured),
so it runs in a thread, and the login and registration limits per IP bound what an attacker
can make the service spend.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST, MEMORY_KIB, PARALLELISM = 3, 64 * 1024, 4


class Passwords:
    """Hashes and checks passwords."""

    def __init__(
        self,
        *,
        time_cost: int = TIME_COST,
        memory_kib: int = MEMORY_KIB,
        parallelism: int = PARALLELISM,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        """A new argon2id hash of `password`."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def check(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with None, spends the same time and says no."""
        if self._decoy is None:
            # Checked against when the email is unknown, so that answer costs what a wrong
            # password costs and timing does not tell which emails have accounts. Made at the
            # first check of any kind (not at start-up: the worker and the seed build this
            # class too), so that check's extra cost tells nothing either.
            self._decoy = await self.hash("decoy password that matches nothing")
        decoy = self._decoy

        def verify() -> bool:
            try:
                return self._hasher.verify(stored or decoy, password) and stored is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)
