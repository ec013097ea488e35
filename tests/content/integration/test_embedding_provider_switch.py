"""Replacing the local model by a hosted one (Voyage, 1024 dimensions) with its own migration.

The hosted API is the local fake behind the real provider; the database is a scratch one on the
session's PostgreSQL, migrated to head, filled through the service, then resized the way a
switching migration does it (`resize_embeddings`), and backfilled.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from betterworld.content.v1 import content_pb2 as pb
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.content import definition as content_definition
from services.content import service as content_service
from services.content.embedding import backfill
from services.content.embedding_migration import resize_embeddings
from services.content.tables import problems
from services.core.migrate import upgrade
from services.core.runtime import build_runtime
from services.core.settings import Settings, SettingsError
from tests.fakes.voyage_api import FakeVoyageAPI, embeddings, server_error
from tests.support.content import ContentClient
from tests.support.helpers import start_service, unpack
from tooling.devstack import EmbeddedPostgres

KEY = "voyage-test-key-do-not-log"


@pytest.fixture
async def scratch_url(postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A database of its own, migrated to head, dropped afterwards."""
    name = f"bw_switch_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(postgres.url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres.url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _models(url: str) -> list[Any]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(problems.c.embedding_model))).scalars().all()
    await engine.dispose()
    return list(rows)


async def test_a_hosted_provider_replaces_the_local_model_through_its_migration(
    content_settings: Settings,
    clean_state: None,
    scratch_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = content_settings.model_copy(update={"database_url": scratch_url})
    service = await start_service(content_definition.DEFINITION, local)
    try:
        client = ContentClient(service, local)
        author = await client.agent()
        lake = await client.approved_problem(author)
        await client.approved_problem(
            author,
            title="Youth unemployment in rural towns",
            description="Young people in rural towns cannot find apprenticeships or jobs, so "
            "many leave and local businesses struggle to hire.",
        )
    finally:
        await service.stop()
    assert await _models(scratch_url) == ["all-MiniLM-L6-v2-onnx-dynint8"] * 2

    async with FakeVoyageAPI(api_key=KEY, default=embeddings()) as fake:
        hosted = local.model_copy(
            update={
                "embedding_provider": "voyage",
                "voyage_api_key": KEY,
                "voyage_base_url": fake.base_url,
                "voyage_max_retries": 0,
            }
        )
        # Without the migration the service refuses to start rather than fail on every write.
        runtime = build_runtime(hosted)
        with pytest.raises(SettingsError, match="1024-dimension vectors but the schema stores 384"):
            content_service.build_deps(runtime)
        await runtime.close()

        engine = create_async_engine(scratch_url)
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: resize_embeddings(Operations(MigrationContext.configure(sync)), 1024)
            )
        await engine.dispose()
        monkeypatch.setattr(content_service, "EMBEDDING_DIMENSIONS", 1024)  # the schema change

        service = await start_service(content_definition.DEFINITION, hosted)
        try:
            client = ContentClient(service, hosted)
            search = pb.SearchContentRequest(q="water quality of a lake", kind=pb.PROBLEM)
            assert not (await client.content.SearchContent(search)).data  # vectors dropped
            assert [r.input_type for r in fake.requests] == ["query"]

            deps = content_service.build_deps(service.runtime)
            assert await backfill(deps) == 2
            assert await _models(scratch_url) == ["voyage:voyage-3.5"] * 2
            assert [r.input_type for r in fake.requests[1:]] == ["document"]  # one batch

            found = await client.content.SearchContent(search)
            assert len(found.data) == 2
            assert fake.requests[-1].input_type == "query"

            # Titles stay on the local model: the duplicate check never calls the hosted API.
            calls = len(fake.requests)
            duplicate = await client.content.CreateProblem(
                pb.CreateProblemRequest(
                    title="Lake Merritt water quality is declining",
                    description=lake.description,
                    domain=lake.domain,
                    severity=pb.HIGH,
                    geographic_scope=pb.LOCAL,
                ),
                metadata=author.auth,
            )
            assert [d.problem_id for d in duplicate.possible_duplicates] == [lake.problem_id]
            assert len(fake.requests) == calls

            fake.script(server_error(503))
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await client.content.SearchContent(search)
            error = unpack(failed.value)
            assert error.code == grpc.StatusCode.UNAVAILABLE
            assert error.reason == "EMBEDDING_FAILED"
            assert KEY not in (failed.value.details() or "")
        finally:
            await service.stop()
