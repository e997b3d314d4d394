"""Secrets: read from NAME, or from the file NAME_FILE names (mounted secrets), and checked.

Read here rather than through environs so that no parser error can ever echo a value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from service.config.problems import NOT_SET, NOT_VALID, problem

_SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=_-]+$")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def read_secret(
    from_file: Mapping[str, str],
    name: str,
    problems: dict[str, str],
    check: Callable[[str], bool],
    *,
    required: bool = True,
) -> str:
    """NAME's value, or NAME_FILE's content; "" with the reason in `problems` when unusable.
    `from_file` holds .env's values: the environment wins over them."""
    direct = os.environ.get(name, from_file.get(name))
    file_name = os.environ.get(f"{name}_FILE", from_file.get(f"{name}_FILE"))
    if direct and file_name:
        problems[name] = f"set twice; expected either {name} or {name}_FILE, not both"
        return ""
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
            why = _too_open(Path(file_name))
        except (OSError, UnicodeDecodeError):
            problems[f"{name}_FILE"] = problem(f"{name}_FILE", "the file it names cannot be read")
            return ""
        if why:
            problems[f"{name}_FILE"] = why
            return ""
        where = f"{name}_FILE"
    else:
        value = (direct or "").strip()
        where = name
    if not value:
        if required or where != name:
            problems[where] = problem(where, NOT_SET if where == name else "the file is empty")
        return ""
    if not check(value):
        problems[where] = problem(where, NOT_VALID)
        return ""
    return value


def database_urls(
    from_file: Mapping[str, str], problems: dict[str, str], purpose: str
) -> tuple[str, str]:
    """DATABASE_URL (the app role) and DATABASE_MIGRATE_URL (the owner, optional): migrate
    needs either, every other command DATABASE_URL."""
    migrate_url = read_secret(
        from_file, "DATABASE_MIGRATE_URL", problems, check_database_url, required=False
    )
    database_url = read_secret(
        from_file,
        "DATABASE_URL",
        problems,
        check_database_url,
        required=purpose != "migrate" or not migrate_url,
    )
    return database_url, migrate_url


def _too_open(path: Path) -> str | None:
    """Why a secret file is readable by more than its owner, or None.

    Others may never read it. The group may only in the shape Kubernetes mounts secrets with
    an fsGroup (owned by root, group = this process's group, 0440): the same exception libpq
    makes for root-owned key files. Anything else names the mode so it can be fixed.
    """
    status = path.stat()
    mode = stat.S_IMODE(status.st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return f"mode {mode:04o} lets others read or write it; chmod 0400 (or 0600)"
    group_may = mode & (stat.S_IRGRP | stat.S_IWGRP)
    projected = status.st_uid == 0 and status.st_gid == os.getgid() and os.getuid() != 0
    if group_may and not (projected and not mode & stat.S_IWGRP):
        return f"mode {mode:04o} lets its group read it; chmod 0400 (or 0600)"
    return None


def check_secret_key(value: str) -> bool:
    return _SECRET_KEY.fullmatch(value) is not None


def check_webhook_secrets(value: str) -> bool:
    secrets = [s.strip() for s in value.split(",")]
    return all(secrets) and all(_WEBHOOK_SECRET.fullmatch(s) for s in secrets)


def check_database_url(value: str) -> bool:
    """What asyncpg would otherwise fail on at start-up, with a traceback (a bad port, an
    unclosed IPv6 bracket) or, worse, forever as "database unavailable" (a bad sslmode)."""
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        return False
    sslmode = parse_qs(parts.query).get("sslmode", [])
    return (
        parts.scheme in ("postgres", "postgresql")
        and port != 0
        and all(mode in _SSL_MODES for mode in sslmode)
    )
