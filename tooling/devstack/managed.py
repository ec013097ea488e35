"""Context-manager behaviour shared by the embedded servers."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ManagedServer:
    """`with server:` starts it and always stops it; subclasses provide start() and stop()."""

    def start(self) -> None:
        """Starts the server."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stops the server."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
