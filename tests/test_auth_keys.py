"""API_AUTH=keys: a server-side caller presents a key whose SHA-256 is a line of
API_KEYS_FILE; keys are rotated by editing the file, without a restart."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from helpers import ServiceClient, key_line, new_id, with_settings
from tokens import bearer

from service.config import Settings
from service.http.auth import KEYS_FILE_CHECK_SECONDS
from service.http.context import AppContext

OLD_KEY = secrets.token_urlsafe(32)
NEW_KEY = secrets.token_urlsafe(32)


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-keys"
    path.write_text("# key id, sha256 of the key\n" + key_line("billing-2026", OLD_KEY))
    return path


@pytest.fixture
def settings(settings: Settings, keys_file: Path) -> Settings:
    return with_settings(settings, api_auth="keys", api_keys_file=str(keys_file))


async def test_a_listed_key_may_call_for_any_project_and_is_named_in_the_audit(
    client: ServiceClient, ctx: AppContext
) -> None:
    project = new_id()
    assert (await client.checkout(project, headers=bearer(OLD_KEY))).code == 200
    assert (await client.status(project, headers=bearer(OLD_KEY))).code == 200
    async with ctx.pool.acquire() as conn:
        rows = [r async for r in ctx.queries.list_project_history(conn, project_id=project)]
    assert [r["actor"] for r in rows] == ["key:billing-2026"]


async def test_an_unlisted_or_missing_key_is_401(client: ServiceClient) -> None:
    project = new_id()
    for headers in [{}, bearer(NEW_KEY), bearer(OLD_KEY[:-1]), {"Authorization": OLD_KEY}]:
        response = await client.checkout(project, headers=headers)
        assert response.code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_keys_rotate_by_editing_the_file_without_a_restart(
    client: ServiceClient, keys_file: Path
) -> None:
    project = new_id()
    assert (await client.checkout(project, headers=bearer(OLD_KEY))).code == 200
    # Step 1: the new key is added next to the old one; both work.
    await asyncio.to_thread(
        keys_file.write_text, key_line("billing-2026", OLD_KEY) + key_line("billing-2027", NEW_KEY)
    )
    await asyncio.sleep(KEYS_FILE_CHECK_SECONDS + 0.1)
    assert (await client.status(project, headers=bearer(NEW_KEY))).code == 200
    assert (await client.status(project, headers=bearer(OLD_KEY))).code == 200
    # Step 2: the old key is removed (revoked); it stops working, the new one goes on.
    await asyncio.to_thread(keys_file.write_text, key_line("billing-2027", NEW_KEY))
    await asyncio.sleep(KEYS_FILE_CHECK_SECONDS + 0.1)
    assert (await client.status(project, headers=bearer(OLD_KEY))).code == 401
    assert (await client.status(project, headers=bearer(NEW_KEY))).code == 200
