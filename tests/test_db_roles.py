"""Two database roles: `migrate` as the tables' owner (DATABASE_MIGRATE_URL), `serve` as the
app role (DB_APP_ROLE) with only the grants it needs, granted by the migration itself, for
the tables there are and those later migrations add. `serve` warns when it has more."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import defaultdict

import asyncpg
import tornado.httpclient
from helpers import RunDatabase, StripeStandIn
from processes import ROOT, ServiceProcess, free_port, run_to_end, service_environment
from query_types import FixtureQueries

from devtools.postgres import create_database, drop_database, with_database, with_user

READ_WRITE = {"SELECT", "INSERT", "UPDATE", "DELETE"}


async def privileges(url: str, role: str, test_queries: FixtureQueries) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        found: dict[str, set[str]] = defaultdict(set)
        async for row in test_queries.list_table_privileges(conn, role=role):
            found[row["table_name"]].add(row["privilege"])
        schema = await test_queries.get_schema_privileges(conn, role=role)
        assert schema is not None
        assert (schema["create_in_schema"], schema["create_in_database"]) == (False, False)
        return dict(found)
    finally:
        await conn.close()


async def test_the_app_role_has_only_the_grants_it_needs(
    test_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    found = await privileges(test_database.owner_url, test_database.app_role, test_queries)
    assert found.pop("payment_audit") == {"SELECT", "INSERT"}
    assert found.pop("payment_audit_heads") == {"SELECT"}
    assert not {name for name in found if "yoyo" in name}, found
    assert found, "the service's own tables are granted"
    for table, granted in found.items():
        assert granted == READ_WRITE, (table, granted)


async def test_a_table_a_later_migration_adds_is_granted_to_the_app_role(
    fresh_database: RunDatabase, test_queries: FixtureQueries
) -> None:
    conn = await asyncpg.connect(fresh_database.owner_url)
    try:
        await test_queries.create_later_table(conn)
    finally:
        await conn.close()
    found = await privileges(fresh_database.owner_url, fresh_database.app_role, test_queries)
    assert found["later_migration_table"] == READ_WRITE


async def test_migrate_runs_as_the_owner_from_database_migrate_url_and_serve_as_the_app_role(
    owner_database_url: str, test_database: RunDatabase, stripe_api: StripeStandIn
) -> None:
    admin = with_database(owner_database_url, "postgres")
    name = f"migrate_roles_{uuid.uuid4().hex[:10]}"
    owner_url = await create_database(admin, name)
    app_url = with_user(owner_url, test_database.app_role)
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")} | {
            "DATABASE_URL": app_url,  # cannot create tables: migrate must not use it
            "DATABASE_MIGRATE_URL": owner_url,
            "DB_APP_ROLE": test_database.app_role,
            "PYTHONPATH": str(ROOT),
        }
        migrated = await asyncio.to_thread(
            run_to_end, [sys.executable, "-m", "service", "migrate"], environment, timeout=120
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "0002.security" in migrated.stdout
        service = ServiceProcess(service_environment(app_url, stripe_api, free_port())).start()
        http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        try:
            await service.wait_healthy(http)
            response = await service.client(http).checkout("roles_project")
            assert response.code == 200, response.body
        finally:
            http.close()
            service.stop()
        assert service.log_path is not None
        assert "database_role_too_powerful" not in service.log_path.read_text()
    finally:
        await drop_database(admin, name)


async def test_serve_warns_at_start_when_its_role_owns_the_tables(
    owner_database_url: str, stripe_api: StripeStandIn
) -> None:
    service = ServiceProcess(
        service_environment(owner_database_url, stripe_api, free_port())
    ).start()
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    assert service.log_path is not None
    try:
        await service.wait_healthy(http)
        # Log lines reach stdout from a writer thread a moment later: wait for it.
        for _ in range(50):
            if "database_role_too_powerful" in service.log_path.read_text():
                break
            await asyncio.sleep(0.1)
    finally:
        http.close()
        service.stop()
    log = service.log_path.read_text()
    assert "database_role_too_powerful" in log
    assert '"owns_tables":true' in log
