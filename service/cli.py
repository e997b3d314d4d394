"""The service's commands. Bad configuration exits 2 with one message naming every problem."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta

from service import db, eventloop
from service.app import serve
from service.config import ConfigError, Settings, load_settings
from service.errors import DatabaseUnavailable, StripeFailed
from service.logs import configure_logging
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
    args = parser.parse_args(argv)
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
    if args.command == "reconcile":
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
    applied = await db.migrate(settings.database_url, db.load_queries())
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
