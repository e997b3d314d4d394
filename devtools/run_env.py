"""`python -m devtools.run_env COMMAND…`: run COMMAND with what a running `make run` chose.

`make run` writes the database URL, the sandbox's API base, key and webhook secret and its
ports to ./.data/run.env (PAYMENT_DATA_DIR overrides the folder). This runs COMMAND with
those as defaults: a variable already in the environment wins, as it does for the service.
`make migrate`, `make reconcile`, `make send-event` and `make trigger` go through it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import dotenv_values

RUN_ENV_NAME = "run.env"
ROOT = Path(__file__).resolve().parent.parent


def run_env_path() -> Path:
    return Path(os.environ.get("PAYMENT_DATA_DIR", str(ROOT / ".data"))) / RUN_ENV_NAME


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m devtools.run_env COMMAND [ARG…]", file=sys.stderr)
        return 2
    path = run_env_path()
    chosen: dict[str, str] = {}
    if path.is_file():
        chosen = {k: v for k, v in dotenv_values(path).items() if v is not None}
    elif not os.environ.get("DATABASE_URL") and not os.environ.get("DATABASE_URL_FILE"):
        print(
            f"[run env] no {path} (is `make run` running?) and no DATABASE_URL: "
            "start `make run` in another terminal, or set the variables yourself",
            file=sys.stderr,
        )
    os.execvpe(argv[0], argv, chosen | dict(os.environ))  # noqa: S606 - the developer's own command


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
