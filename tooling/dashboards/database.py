"""Database: the processes' connection pools, PostgreSQL and Redis/Valkey (from the exporters)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from tooling.dashboards.panels import RATE, graph, new_dashboard, row, single


def dashboard() -> Dashboard:
    """The database dashboard."""
    return (
        new_dashboard(
            "betterworld-database",
            "BetterWorld / Database",
            "Connection pools of the processes, PostgreSQL (postgres_exporter) and "
            "Redis/Valkey (redis_exporter).",
        )
        .with_row(row("Now"))
        .with_panel(
            single(
                "PostgreSQL connections used",
                "Connections over max_connections (DBConnectionsHigh: 80 %).",
                "sum(pg_stat_activity_count) / max(pg_settings_max_connections)",
                unit="percentunit",
                warn_at=0.8,
            )
        )
        .with_panel(
            single(
                "Pool connections in use",
                "Connections checked out of the processes' pools now.",
                'sum(db_pool_connections{state="in_use"})',
            )
        )
        .with_panel(
            single(
                "PostgreSQL up",
                "1 while postgres_exporter reaches PostgreSQL.",
                "min(pg_up)",
            )
        )
        .with_panel(
            single(
                "Redis up",
                "1 while redis_exporter reaches Redis/Valkey.",
                "min(redis_up)",
            )
        )
        .with_row(row("Connection pools"))
        .with_panel(
            graph(
                "Pool connections by process",
                "Checked out (in_use), persistent size and extra (overflow) connections.",
                [
                    ("sum by (instance, state) (db_pool_connections)", "{{instance}} {{state}}"),
                ],
            )
        )
        .with_panel(
            graph(
                "PostgreSQL connections by state",
                "Connections by state (active, idle, idle in transaction, ...).",
                [
                    ("sum by (state) (pg_stat_activity_count)", "{{state}}"),
                    ("max(pg_settings_max_connections)", "max_connections"),
                ],
            )
        )
        .with_row(row("PostgreSQL"))
        .with_panel(
            graph(
                "Transactions per second",
                "Commits and rollbacks per database.",
                [
                    (
                        f"sum by (datname) (rate(pg_stat_database_xact_commit[{RATE}]))",
                        "{{datname}} commits",
                    ),
                    (
                        f"sum by (datname) (rate(pg_stat_database_xact_rollback[{RATE}]))",
                        "{{datname}} rollbacks",
                    ),
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Locks and deadlocks",
                "Locks held by mode, and deadlocks detected in the last hour.",
                [
                    ("sum by (mode) (pg_locks_count)", "{{mode}}"),
                    ("sum(increase(pg_stat_database_deadlocks[1h]))", "deadlocks (1 h)"),
                ],
            )
        )
        .with_panel(
            graph(
                "Database size",
                "Size on disk of each database.",
                [("sum by (datname) (pg_database_size_bytes)", "{{datname}}")],
                unit="bytes",
            )
        )
        .with_row(row("Redis / Valkey"))
        .with_panel(
            graph(
                "Memory",
                "Memory used against maxmemory: queues never evict, so a full Redis refuses "
                "new jobs.",
                [
                    ("max(redis_memory_used_bytes)", "used"),
                    ("max(redis_memory_max_bytes)", "maxmemory"),
                ],
                unit="bytes",
            )
        )
        .with_panel(
            graph(
                "Commands and clients",
                "Commands processed per second and client connections.",
                [
                    (f"sum(rate(redis_commands_processed_total[{RATE}]))", "commands/s"),
                    ("sum(redis_connected_clients)", "clients"),
                ],
            )
        )
        .with_panel(
            graph(
                "Append-only file writes",
                "1 while the last AOF write succeeded (the queues' durability).",
                [("min(redis_aof_last_write_status)", "last write ok")],
            )
        )
    )
