"""The service's commands. Bad configuration exits 2 with one message naming every problem."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timedelta

import asyncpg

from service import audit, db, eventloop
from service.app import serve
from service.config import ConfigError, Settings, load_settings
from service.errors import DatabaseUnavailable, StripeFailed
from service.logs import actor_var, configure_logging
from service.metrics import Metrics, multiprocess_dir
from service.reconcile import parse_window, reconcile
from service.stripe_gateway import StripeGateway, make_stripe_client
from service.workers import run_workers

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve_command = commands.add_parser(
        "serve", help="serve HTTP on HOST:PORT (the default command)"
    )
    serve_command.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port (default: WEB_CONCURRENCY, else 1)",
    )
    commands.add_parser("migrate", help="apply pending database migrations")
    recover = commands.add_parser(
        "reconcile", help="apply recent Stripe events whose webhooks never arrived"
    )
    recover.add_argument("--since", default="72h", help="how far back: 90m, 72h, 7d (max 30d)")
    recover.add_argument("--dry-run", action="store_true", help="only say what would be applied")
    audit_command = commands.add_parser("audit", help="check or export the audit trail")
    audit_actions = audit_command.add_subparsers(dest="action", required=True)
    audit_actions.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first row that does not hold"
    )
    export = audit_actions.add_parser("export", help="write the audit rows as JSON lines")
    export.add_argument("--since", default="30d", help="how far back: 90m, 72h, 30d, 365d")
    args = parser.parse_args(argv)
    if args.command == "audit" and args.action == "export":
        try:
            since = audit.parse_since(args.since)
        except ValueError as error:
            print(f"payment-service: {error}", file=sys.stderr)
            return EXIT_CONFIG
    if args.command == "reconcile":
        try:
            window = parse_window(args.since)
        except ValueError as error:
            print(f"payment-service: {error}", file=sys.stderr)
            return EXIT_CONFIG

    try:
        settings = load_settings(purpose=args.command or "serve")
    except ConfigError as error:
        print(f"payment-service: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)

    if args.command == "migrate":
        return eventloop.run(_migrate(settings), settings.event_loop)
    if args.command == "audit":
        exported = since if args.action == "export" else None
        return eventloop.run(_audit(settings, exported), settings.event_loop)
    if args.command == "reconcile":
        actor_var.set("reconcile")
        return eventloop.run(
            _reconcile(settings, window, dry_run=args.dry_run), settings.event_loop
        )
    workers = getattr(args, "workers", None) or settings.web_concurrency
    if workers > 1 and settings.metrics_port and not multiprocess_dir():
        print(
            "payment-service: invalid configuration:\n  METRICS_PORT: with several workers "
            "it needs PROMETHEUS_MULTIPROC_DIR (an empty folder the workers share)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if workers > 1:
        return run_workers(settings, workers)
    try:
        eventloop.run(serve(settings), settings.event_loop)
    except Exception:
        logging.getLogger("service").exception("start-up failed")
        return 1
    return 0


async def _migrate(settings: Settings) -> int:
    applied = await db.migrate(settings.migrate_url, db.load_queries(), settings.db_app_role)
    print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    return 0


async def _reconcile(settings: Settings, window: timedelta, *, dry_run: bool) -> int:
    pool = await db.create_pool(settings)
    client, http = make_stripe_client(settings)
    try:
        summary = await reconcile(
            pool, db.load_queries(), StripeGateway(client, Metrics()), window, dry_run=dry_run
        )
    except (StripeFailed, DatabaseUnavailable) as error:
        print(f"payment-service: reconcile stopped: {error.message}", file=sys.stderr)
        return 1
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        await pool.close()
    print(summary.line(dry_run=dry_run))
    for event_id in summary.would_apply:
        print(f"would apply {event_id}")
    return 0


async def _audit(settings: Settings, export_since: datetime | None) -> int:
    """`audit verify` (export_since None) or `audit export --since`."""
    conn = await asyncpg.connect(settings.database_url, server_settings=audit.SERVER_SETTINGS)
    queries = db.load_queries()
    try:
        if export_since is None:
            verdict = await audit.verify(conn, queries)
            print(verdict.line(), file=sys.stdout if verdict.intact else sys.stderr)
            return 0 if verdict.intact else 1
        async for line in audit.export_lines(conn, queries, export_since):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        return 0
    finally:
        await conn.close()
