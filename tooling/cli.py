"""The `betterworld` command: run the local stack, serve a service, migrate, seed, operators."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from services.core.settings import Settings, SettingsError
from services.registry import REGISTRY


def _settings() -> Settings:
    try:
        return REGISTRY.load_settings()
    except SettingsError as exc:
        print(f"betterworld: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


LOOPBACK = ("127.0.0.1", "::1")


def _cmd_up(args: argparse.Namespace) -> int:
    from tooling.stack import run_stack

    settings = _settings()
    if (
        settings.environment == "development"
        and "rate_limit_auth_exempt_ips" not in settings.model_fields_set
    ):
        # On a laptop every user is 127.0.0.1: three sign-ups would lock out the developer.
        settings = settings.model_copy(update={"rate_limit_auth_exempt_ips": list(LOOPBACK)})
    return run_stack(settings, seed_demo_data=not args.no_seed, with_observability=args.observe)


def _cmd_serve(args: argparse.Namespace) -> int:
    from services.core.logging import configure_logging
    from tooling.process import serve

    settings = _settings()
    configure_logging(service=args.service, level=settings.log_level)
    if args.processes > 1:
        from tooling.multiprocess import serve_processes

        return serve_processes(args.service, settings, processes=args.processes, port=args.port)
    return asyncio.run(
        serve(
            args.service,
            settings,
            port=args.port,
            reuse_port=args.reuse_port,
            metrics=not args.group_member,
        )
    )


def _cmd_worker(args: argparse.Namespace) -> int:
    from services.core.logging import configure_logging
    from services.worker.main import run_worker

    settings = _settings()
    configure_logging(service="worker", level=settings.log_level)
    return asyncio.run(run_worker(settings))


def _cmd_review(args: argparse.Namespace) -> int:
    from tooling.review_cli import run_review

    return run_review(args, _settings())


def _cmd_migrate(args: argparse.Namespace) -> int:
    from services.core.migrate import downgrade, head_revision, upgrade
    from tooling.backup import PRE_MIGRATION_LABEL, BackupError, backups_for, current_revision

    if args.action == "generate":
        return _migrate_generate(args)
    settings = _settings()
    url = settings.database_url
    current = asyncio.run(current_revision(url))
    head = head_revision(url)
    if args.action == "status":
        print(
            f"database at {current or 'nothing (not migrated)'}; the code's head is {head}"
            + ("" if current == head else " (upgrade pending)")
        )
        return 0
    target = head if args.revision == "head" else args.revision
    if args.action == "downgrade" and args.revision == "head":
        print("downgrade needs --revision (e.g. -1 or a revision id)", file=sys.stderr)
        return 2
    if current is not None and current != target and not args.no_snapshot:
        # Before any schema change: a snapshot to go back to (kept 90 days by `backup prune`).
        try:
            snapshot = asyncio.run(backups_for(settings).create(label=PRE_MIGRATION_LABEL))
        except BackupError as exc:
            print(f"betterworld migrate: no snapshot, not migrating: {exc}", file=sys.stderr)
            return 1
        print(f"snapshot {snapshot.name} taken")
    if args.action == "downgrade":
        downgrade(url, args.revision)
    else:
        upgrade(url, args.revision)
    print(f"migrated from {current or 'nothing'} to {asyncio.run(current_revision(url))}")
    return 0


def _migrate_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.core.migrate import MigrationError, generate_revision

    if not args.message:
        print('migrate generate needs a message: migrate generate "add …"', file=sys.stderr)
        return 2
    try:
        path = generate_revision(
            args.message,
            directory=Path(args.directory) if args.directory else None,
            database_url=_settings().database_url if args.autogenerate else None,
        )
    except MigrationError as exc:
        print(f"betterworld migrate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    from tooling.process import seed

    seeded = asyncio.run(seed(_settings()))
    if not seeded.agents:
        print("the database already has agents; nothing seeded")
    for agent in seeded.agents:
        print(f"{agent.username:<18} {agent.agent_id}  {agent.api_key}")
    for human in seeded.humans:
        print(f"{human.email:<24} password {human.password}")
    return 0


def _cmd_embeddings_backfill(args: argparse.Namespace) -> int:
    from tooling.process import backfill_embeddings

    stored = asyncio.run(backfill_embeddings(_settings(), batch_size=args.batch_size))
    print(f"stored {stored} embeddings")
    return 0


def _cmd_operator_create_key(args: argparse.Namespace) -> int:
    from tooling.process import create_operator_key

    key = asyncio.run(create_operator_key(_settings(), args.name))
    print(f"operator {args.name}: {key}")
    print("store it now: the key is not shown again")
    return 0


def _cmd_dev_cert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tooling.devcert import DEFAULT_NAMES, instructions, make_dev_certificates

    settings = _settings()
    out = Path(args.out) if args.out else settings.data_dir / "tls"
    made = make_dev_certificates(out.resolve(), names=tuple(args.name or DEFAULT_NAMES))
    print(instructions(made, port=settings.envoy_port), end="")
    return 0


def _cmd_envoy_config(args: argparse.Namespace) -> int:
    from tooling.edge.envoy_config import compose_spec, dump, render_envoy_config
    from tooling.stack import edge_tls, local_envoy_spec

    if args.compose:
        # The compose variant takes the edge settings as they are: paths inside the container.
        settings = _settings()
        spec = compose_spec(
            tls=edge_tls(settings, check_files=False),
            admin_allow_cidrs=tuple(settings.edge_admin_allow_cidrs),
        )
    else:
        spec = local_envoy_spec(_settings())
    text = dump(render_envoy_config(spec))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


def _health(process: dict[str, Any], settings: Settings) -> str:
    """SERVING / NOT_SERVING for services and the worker (gRPC health), Envoy's /health, and
    up / down for the databases."""
    import httpx

    from tooling.healthprobe import probe

    if not process["alive"]:
        return "down (restarting)"
    name, host = process["name"], settings.host
    if process["kind"] == "database":
        return "up"
    if process.get("health_url"):
        try:
            code = httpx.get(process["health_url"], timeout=2).status_code
        except httpx.HTTPError:
            return "unreachable"
        return "healthy" if code == 200 else f"unhealthy ({code})"
    if process["kind"] == "proxy":
        from tooling.stack import envoy_health_url

        url = envoy_health_url(settings)
        try:
            # A probe of our own child on this machine: the certificate is not what it checks.
            code = httpx.get(url, timeout=2, verify=False).status_code  # noqa: S501
        except httpx.HTTPError:
            return "unreachable"
        return "healthy" if code == 200 else f"unhealthy ({code})"
    port = settings.worker_port if process["kind"] == "worker" else settings.service_ports(name)[0]
    return "SERVING" if probe(f"{host}:{port}", timeout=2) == 0 else "NOT_SERVING"


def _cmd_status(args: argparse.Namespace) -> int:
    import time

    from tooling.supervisor import read_state

    settings = _settings()
    state = read_state(settings.data_dir.resolve())
    if state is None:
        print(f"no stack is running from {settings.data_dir} (start it with `betterworld up`)")
        return 1
    now = time.time()
    width = max([12, *(len(process["name"]) for process in state["processes"])])
    print(f"{'process':<{width}} {'pid':>8} {'uptime':>10} {'restarts':>9}  health")
    for process in state["processes"]:
        uptime = int(now - process["started_at"]) if process["alive"] else 0
        print(
            f"{process['name']:<{width}} {process['pid'] or '-':>8} {uptime:>9}s "
            f"{process['restarts']:>9}  {_health(process, settings)}"
        )
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    import json

    from tooling.backup import BackupError, backups_for, describe

    backups = backups_for(_settings())
    try:
        if args.action == "create":
            manifest = asyncio.run(backups.create(label=args.label))
            print(
                f"created {manifest.name}: {manifest.size_bytes} bytes, "
                f"{sum(manifest.tables.values())} rows in {len(manifest.tables)} tables"
            )
        elif args.action == "list":
            for manifest in asyncio.run(backups.all()):
                print(json.dumps(describe(manifest)))
        elif args.action == "verify":
            result = asyncio.run(backups.verify(args.name))
            if not result.ok:
                for difference in result.differences:
                    print(f"  {difference}", file=sys.stderr)
                print(f"backup {result.manifest.name} FAILED verification", file=sys.stderr)
                return 1
            print(
                f"backup {result.manifest.name} restores to what its manifest says "
                f"({sum(result.manifest.tables.values())} rows, ledger checksum equal)"
            )
        elif args.action == "restore":
            if not args.yes:
                print("restore replaces the database's contents: add --yes", file=sys.stderr)
                return 2
            manifest = asyncio.run(backups.restore(args.name))
            print(f"restored {manifest.name}")
        elif args.action == "prune":
            for manifest in asyncio.run(backups.prune()):
                print(f"deleted {manifest.name}")
    except BackupError as exc:
        print(f"betterworld backup: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_alertmanager_config(args: argparse.Namespace) -> int:
    import os

    import yaml

    from tooling.observe import render_alertmanager_config

    text = yaml.safe_dump(render_alertmanager_config(_settings()), sort_keys=False)
    if args.output:
        # The receivers' URLs carry tokens: readable by this user only.
        with open(os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(text)
    else:
        print(text, end="")
    return 0


def _cmd_health_probe(args: argparse.Namespace) -> int:
    from tooling.healthprobe import probe

    return probe(args.target, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="betterworld", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="run the whole local stack (PostgreSQL, Valkey, services, Envoy)"
    )
    up.add_argument("--no-seed", action="store_true", help="do not seed demo data")
    up.add_argument(
        "--observe",
        action="store_true",
        help="also run Prometheus, Alertmanager and the PostgreSQL and Redis exporters "
        "(deploy/prometheus, deploy/alertmanager; `make ops-tools` installs them)",
    )
    up.set_defaults(func=_cmd_up)

    serve = sub.add_parser("serve", help="run one service process")
    serve.add_argument("service", choices=REGISTRY.names)
    serve.add_argument("--port", type=int, default=None, help="gRPC port (default from settings)")
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT so several processes share the port",
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run N processes, one per core: process i on port + 1000*i (Envoy and internal "
        "callers balance over them); metrics aggregated on the service's metrics port",
    )
    # A child of `--processes`: the supervisor serves the group's metrics.
    serve.add_argument("--group-member", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=_cmd_serve)

    worker = sub.add_parser("worker", help="run the job worker (guardrail evaluations, sweeps)")
    worker.set_defaults(func=_cmd_worker)

    from tooling.review_cli import add_parser as add_review_parser

    add_review_parser(sub)
    sub.choices["review"].set_defaults(func=_cmd_review)

    status = sub.add_parser(
        "status", help="the local stack's processes: PID, uptime, restarts and health"
    )
    status.set_defaults(func=_cmd_status)

    backup = sub.add_parser(
        "backup", help="database backups (BACKUP_STORAGE): create, list, verify, restore, prune"
    )
    backup.add_argument("action", choices=["create", "list", "verify", "restore", "prune"])
    backup.add_argument("--name", default=None, help="the backup (default: the newest)")
    backup.add_argument("--label", default="manual", help="create: a word in the name")
    backup.add_argument("--yes", action="store_true", help="restore: replace the database")
    backup.set_defaults(func=_cmd_backup)

    migrate = sub.add_parser(
        "migrate",
        help="database migrations: status, upgrade (default), downgrade or generate a revision",
    )
    migrate.add_argument(
        "action",
        nargs="?",
        default="upgrade",
        choices=["status", "upgrade", "downgrade", "generate"],
    )
    migrate.add_argument("message", nargs="?", help="generate: what the revision does")
    migrate.add_argument(
        "--autogenerate",
        action="store_true",
        help="generate: write the operations that bring DATABASE_URL (at head) to the code's "
        "tables, to review by hand",
    )
    migrate.add_argument(
        "--directory", help="generate: the migrations directory (default: the checkout's)"
    )
    migrate.add_argument("--revision", default="head")
    migrate.add_argument(
        "--no-snapshot", action="store_true", help="skip the backup taken before a schema change"
    )
    migrate.set_defaults(func=_cmd_migrate)

    seed = sub.add_parser("seed", help="create demo agents in an empty database, print their keys")
    seed.set_defaults(func=_cmd_seed)

    embeddings = sub.add_parser("embeddings", help="search embeddings of problems and solutions")
    embeddings_sub = embeddings.add_subparsers(dest="embeddings_command", required=True)
    backfill = embeddings_sub.add_parser(
        "backfill",
        help="embed every item with no vector or one from another model (after changing "
        "EMBEDDING_PROVIDER); resumable",
    )
    backfill.add_argument("--batch-size", type=int, default=64, help="texts per provider call")
    backfill.set_defaults(func=_cmd_embeddings_backfill)

    operator = sub.add_parser("operator", help="operator accounts")
    operator_sub = operator.add_subparsers(dest="operator_command", required=True)
    create_key = operator_sub.add_parser("create-key", help="create an operator API key")
    create_key.add_argument("--name", required=True, help="operator name (shown in audit logs)")
    create_key.set_defaults(func=_cmd_operator_create_key)

    dev_cert = sub.add_parser(
        "dev-cert",
        help="make a local CA and a server certificate for localhost, 127.0.0.1 and ::1 "
        "(for EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE)",
    )
    dev_cert.add_argument("--out", default=None, help="directory (default: DATA_DIR/tls)")
    dev_cert.add_argument(
        "--name",
        action="append",
        help="a DNS name or IP address the certificate is for (repeatable; default: "
        "localhost, 127.0.0.1, ::1)",
    )
    dev_cert.set_defaults(func=_cmd_dev_cert)

    envoy = sub.add_parser("envoy-config", help="render Envoy's configuration")
    envoy.add_argument("--compose", action="store_true", help="the docker-compose variant")
    envoy.add_argument("-o", "--output", help="write to this file instead of stdout")
    envoy.set_defaults(func=_cmd_envoy_config)

    alertmanager = sub.add_parser(
        "alertmanager-config",
        help="render deploy/alertmanager/alertmanager.yml with the receivers' webhooks from "
        "ALERT_<RECEIVER>_WEBHOOK_URL",
    )
    alertmanager.add_argument("-o", "--output", help="write to this file instead of stdout")
    alertmanager.set_defaults(func=_cmd_alertmanager_config)

    health = sub.add_parser(
        "health-probe", help="exit 0 when a service's grpc.health.v1 status is SERVING"
    )
    health.add_argument("--target", default="127.0.0.1:50051", help="host:port of the service")
    health.add_argument("--timeout", type=float, default=2.0)
    health.set_defaults(func=_cmd_health_probe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
