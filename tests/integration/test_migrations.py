"""Migrations and table declarations agree, and migrations apply from scratch and roll back."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.core.migrate import alembic_config, upgrade
from services.core.schema import metadata
from services.devstack import EmbeddedPostgres


def test_models_match_migrations(postgres: EmbeddedPostgres) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def diff() -> list[object]:
        engine = create_async_engine(postgres.url)
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        await engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []


def test_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    from services.devstack import free_port

    server = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    server.start()
    try:
        upgrade(server.url)
        command.downgrade(alembic_config(server.url), "base")
        upgrade(server.url)
    finally:
        server.stop()
