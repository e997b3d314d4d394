"""A PostgreSQL for development and tests when none is configured.

`pgserver` ships PostgreSQL 16 binaries on PyPI, so this works on a machine with no
PostgreSQL installed, and as root (it runs the server as a `pgserver` system user).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def start_embedded(pgdata: Path, *, delete_on_exit: bool) -> tuple[str, Any]:
    """Start (or reuse) the server whose data lives in `pgdata`; returns (URL, handle).

    Keep the handle referenced: the server stops (and with delete_on_exit, its data is
    removed) when the last process holding one exits.
    """
    import pgserver  # noqa: PLC0415 - only developer machines and tests need it

    pgdata.mkdir(parents=True, exist_ok=True)
    mode = "delete" if delete_on_exit else "stop"
    server = pgserver.get_server(str(pgdata), cleanup_mode=mode)  # type: ignore[attr-defined]
    return str(server.get_uri()), server


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_user(url: str, user: str) -> str:
    """The same server and database URL, connecting as another role (no password: the
    embedded and test servers trust local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _quoted(name: str) -> str:
    """`name` as an SQL identifier. Identifiers cannot be bound parameters, so the name is
    checked against a strict pattern instead."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"unsafe role or database name: {name!r}")
    return f'"{name}"'


async def _execute(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def allow_login(admin_url: str, role: str) -> None:
    """Let the NOLOGIN role migration 0002.security creates log in (development and tests only)."""
    await _execute(admin_url, f"ALTER ROLE {_quoted(role)} LOGIN")


async def drop_role(admin_url: str, role: str) -> None:
    await _execute(admin_url, f"DROP ROLE IF EXISTS {_quoted(role)}")


async def create_database(admin_url: str, name: str) -> str:
    """Create an empty database and return its URL."""
    await _execute(admin_url, f"CREATE DATABASE {_quoted(name)}")
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    await _execute(admin_url, f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")


def stop_embedded(server: Any) -> None:
    """Stop the server now (fast shutdown: sessions are cut, as in an outage)."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # noqa: PLC0415

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)


def start_embedded_again(server: Any) -> None:
    """Start a server stopped by stop_embedded, on the same data and socket."""
    with server._lock:
        server.ensure_postgres_running()


def listen_on_tcp(server: Any, host: str, port: int) -> str:
    """Restart the embedded server listening on host:port as well as on its socket; returns
    the TCP URL of its `postgres` database.

    pgserver listens on a socket inside its data folder, which only its own system user may
    enter. A client that cannot reach that socket (a container running as its own user on the
    host's network) connects over TCP instead, as a deployment does. Trust authentication, as
    pgserver's initdb set it up.
    """
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # noqa: PLC0415
    from pgserver.utils import PostmasterInfo  # noqa: PLC0415

    with server._lock:
        socket_dir = server._postmaster_info.socket_dir
        stop_embedded(server)
        options = f"-h {host} -p {port} -k {socket_dir}"
        pg_ctl(
            ["-w", "-o", options, "-l", str(server.log), "start"],
            pgdata=server.pgdata,
            user=server.system_user,
            timeout=30,
        )
        # pgserver stops the server it knows at exit: make that this one.
        server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
    return f"postgresql://postgres@{host}:{port}/postgres"
