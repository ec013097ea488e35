"""The whole local stack on free ports, supervised as `betterworld up` does: for the tests of
supervision, alerting and the recovery runbooks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from services.core.migrate import upgrade
from services.core.settings import Settings
from tooling.stack import Stack


@contextmanager
def supervised_stack(
    settings: Settings,
    *,
    every: float = 0.2,
    then: Callable[[Stack], None] | None = None,
) -> Iterator[Stack]:
    """Starts PostgreSQL and Valkey, migrates, starts the services and Envoy, waits for health,
    runs `then` (more processes to start), and checks the supervisor every `every` seconds until
    the block ends; then stops it all."""
    stack = Stack(settings)
    stop = threading.Event()

    def supervise() -> None:
        while not stop.wait(every):
            stack.supervisor.check()

    supervision = threading.Thread(target=supervise, daemon=True)
    try:
        stack.start_databases()
        upgrade(stack.postgres.url)
        stack.start_services()
        stack.wait_healthy()
        if then is not None:
            then(stack)
        stack.supervisor.check()
        supervision.start()
        yield stack
    finally:
        stop.set()
        if supervision.is_alive():
            supervision.join(5)
        stack.stop()
