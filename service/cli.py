"""The service's commands. Bad configuration exits 2 with one message naming every problem."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timedelta

import asyncpg

from service import audit, db, eventloop
from service.config import ConfigError, Settings, load_settings
from service.errors import DatabaseUnavailable, StripeFailed
from service.http.app import PortInUse, serve
from service.logs import actor_var, configure_logging
from service.metrics import Metrics, multiprocess_dir
from service.reconcile import parse_window, reconcile
from service.stripe_gateway import StripeGateway, make_stripe_client
from service.workers import run_workers

EXIT_CONFIG = 2

# What each command needs (NEEDS in service/config/reading.py), for --help; .env.example
# lists them all.
_NEEDS_SERVE = (
    "Needs STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_PRODUCT_PRICE_ID, "
    "STRIPE_SUCCESS_URL, STRIPE_CANCEL_URL and DATABASE_URL (or the *_FILE forms), from the "
    "environment or ./.env; every optional variable and its default is in .env.example."
)
_NEEDS_MIGRATE = "Needs DATABASE_URL (`make migrate` takes the one `make run` started)."
_NEEDS_RECONCILE = (
    "Needs DATABASE_URL and STRIPE_SECRET_KEY, and STRIPE_API_BASE when Stripe is the local "
    "sandbox (`make reconcile` takes all three from a running `make run`). Progress goes to "
    "stderr, one line per page of events; the summary to stdout."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=f"{__doc__} Without a command: serve.",
        epilog=_NEEDS_SERVE,
    )
    commands = parser.add_subparsers(dest="command")
    serve_command = commands.add_parser(
        "serve",
        help="serve HTTP on HOST:PORT (the default command)",
        description="Serve HTTP on HOST:PORT (default 0.0.0.0:5003).",
        epilog=_NEEDS_SERVE,
    )
    serve_command.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port (default: WEB_CONCURRENCY, else 1)",
    )
    commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply pending migrations; safe to run again and from several replicas.",
        epilog=_NEEDS_MIGRATE,
    )
    recover = commands.add_parser(
        "reconcile",
        help="apply recent Stripe events whose webhooks never arrived",
        description="Apply the Stripe events of the window whose webhooks never arrived, "
        "through the webhook's own code path; running it twice changes nothing.",
        epilog=_NEEDS_RECONCILE,
    )
    recover.add_argument(
        "--since", default="72h", help="how far back: 90m, 72h, 7d; at most 30d (default: 72h)"
    )
    recover.add_argument(
        "--dry-run", action="store_true", help="only say what would be applied (default: apply)"
    )
    audit_command = commands.add_parser("audit", help="check or export the audit trail")
    audit_actions = audit_command.add_subparsers(dest="action", required=True)
    audit_actions.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first row that does not hold"
    )
    export = audit_actions.add_parser("export", help="write the audit rows as JSON lines")
    export.add_argument(
        "--since", default="30d", help="how far back: 90m, 72h, 30d, 365d (default: 30d)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    configure_logging(settings.log_level, settings.log_buffer_lines)

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
        refused = ConfigError(
            {
                "METRICS_PORT": "set with several workers but PROMETHEUS_MULTIPROC_DIR is not; "
                "expected PROMETHEUS_MULTIPROC_DIR too (an empty folder the workers share)"
            }
        )
        print(f"payment-service: {refused}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if workers > 1:
            return run_workers(settings, workers)
        eventloop.run(serve(settings), settings.event_loop)
    except PortInUse as error:
        print(f"payment-service: {error}", file=sys.stderr)
        return 1
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
            pool,
            db.load_queries(),
            StripeGateway(client, Metrics()),
            window,
            livemode=settings.stripe_livemode,
            dry_run=dry_run,
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
