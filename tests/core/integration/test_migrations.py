"""Migrations and table declarations agree, and migrations apply from scratch and roll back."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.core.migrate import alembic_config, upgrade
from services.schema import collect
from tooling.devstack import EmbeddedPostgres


def test_models_match_migrations(postgres: EmbeddedPostgres) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def diff() -> list[object]:
        engine = create_async_engine(postgres.url)
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), collect())
            )
        await engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []


def test_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    from tooling.devstack import free_port

    server = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    server.start()
    try:
        upgrade(server.url)
        command.downgrade(alembic_config(server.url), "base")
        upgrade(server.url)
    finally:
        server.stop()


def test_a_service_engine_works_on_a_database_without_pgvector_yet(
    postgres: EmbeddedPostgres,
) -> None:
    # Engines register pgvector's binary codec on connect; before the first migration there is
    # no vector type, and the connection must still serve everything else.
    import asyncio
    import uuid

    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.core.db import create_engine
    from services.core.settings import Settings

    name = f"bw_bare_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres.url).set(database=name).render_as_string(hide_password=False)

    async def run() -> int:
        admin = create_async_engine(postgres.url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())
        finally:
            await engine.dispose()
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            await admin.dispose()

    assert asyncio.run(run()) == 1
