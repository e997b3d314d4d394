"""`python -m devtools.query_types`: write the typed interfaces of the aiosql queries.

aiosql builds one method per `-- name:` line of the .sql files at run time, so mypy cannot see
them. This reads the same files with aiosql itself and writes, for each set of SQL files, a
`typing.Protocol` with one method per query: its parameters keyword-only under the names the
name line declares, its return type what aiosql's asyncpg adapter returns for the name's
suffix. `load_queries()` (service/db.py) and the tests' and bench's loaders cast aiosql's
object to it. Run it after adding or changing a query; `--check` only says whether the
committed files are current (tests/test_query_types.py fails when they are not).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosql
from aiosql.types import SQLOperationType

ROOT = Path(__file__).resolve().parent.parent
LINE_LENGTH = 100  # pyproject's ruff line-length (ruff format leaves the class as written)


@dataclass(frozen=True)
class Source:
    sql: Path  # a folder of .sql files, or one file
    module: Path  # the generated Python module
    protocol: str  # the Protocol's class name
    summary: str  # its docstring

    def sql_files(self) -> list[Path]:
        return sorted(self.sql.glob("*.sql")) if self.sql.is_dir() else [self.sql]


SOURCES = (
    Source(
        ROOT / "queries",
        ROOT / "service" / "query_types.py",
        "Queries",
        "The service's queries (queries/*.sql), as `service.db.load_queries()` returns them.",
    ),
    Source(
        ROOT / "tests" / "queries",
        ROOT / "tests" / "query_types.py",
        # Not Test…: pytest would try to collect a Test* class imported into a test module.
        "FixtureQueries",
        "The tests' own statements (tests/queries/*.sql), for states the API cannot reach.",
    ),
    Source(
        ROOT / "bench" / "queries.sql",
        ROOT / "bench" / "query_types.py",
        "BenchQueries",
        "The bench's own statements (bench/queries.sql): seeding and checking a round.",
    ),
)

# What aiosql 15's asyncpg adapter makes of each suffix (aiosql/adapters/asyncpg.py). A
# value's type ($, and <! whose RETURNING has one column) is its column's, which only
# PostgreSQL knows: Any there, and only there.
_SHAPES: dict[SQLOperationType, tuple[bool, str]] = {  # (async def?, return annotation)
    SQLOperationType.SELECT: (False, "AsyncIterator[Record]"),  # no suffix: an async generator
    SQLOperationType.SELECT_ONE: (True, "Record | None"),  # ^: fetchrow
    SQLOperationType.SELECT_VALUE: (True, "Any"),  # $: fetchval (None when no row)
    # <!: the one RETURNING column's value, the row when there are several, None when no row
    SQLOperationType.INSERT_RETURNING: (True, "Any"),
    SQLOperationType.INSERT_UPDATE_DELETE: (True, "str"),  # !: the command tag, "UPDATE 1"
    SQLOperationType.INSERT_UPDATE_DELETE_MANY: (True, "None"),  # *!: executemany
    SQLOperationType.SCRIPT: (True, "str"),  # #: the last statement's command tag
}


@dataclass(frozen=True)
class Query:
    name: str  # as aiosql names the method: the name line's, `-` made `_`
    operation: SQLOperationType
    parameters: list[str]


def read_queries(sql_file: Path) -> list[Query]:
    """The file's queries in file order, as aiosql itself parses them."""
    loaded = aiosql.from_path(sql_file, "asyncpg")
    names = set(loaded.available_queries)
    # aiosql adds a `<name>_cursor` to each select; nothing here uses one, so it is left out.
    names -= {f"{name}_cursor" for name in names}
    methods: list[Any] = [getattr(loaded, name) for name in names]
    found = []
    for method in sorted(methods, key=lambda m: m.__code__.co_firstlineno):
        # Declared parameters in the name line's order; a script declares none, and a `<!`
        # may leave them to the SQL's own :names (aiosql's signature lists them then).
        declared = method.parameters
        if declared is None:
            declared = [p for p in method.__signature__.parameters if p != "self"]
        found.append(Query(method.__name__, method.operation, list(declared)))
    return found


def _method(query: Query) -> list[str]:
    is_async, returns = _SHAPES[query.operation]
    if query.operation is SQLOperationType.INSERT_UPDATE_DELETE_MANY:
        params = ["self", "conn: Connection", "parameters: Iterable[Mapping[str, object]]", "/"]
    else:
        params = ["self", "conn: Connection", "/"]
        if query.parameters:
            params += ["*", *(f"{name}: object" for name in query.parameters)]
    head = f"    {'async def' if is_async else 'def'} {query.name}("
    tail = f") -> {returns}: ..."
    one_line = head + ", ".join(params) + tail
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    # The parameters filled into as few lines as fit (not ruff format's one a line, which
    # would repeat the same runs of lines wherever two queries share parameters).
    lines = [head]
    for param in params:
        if len(lines) > 1 and len(f"{lines[-1]} {param},") <= LINE_LENGTH:
            lines[-1] += f" {param},"
        else:
            lines.append(f"        {param},")
    return [*lines, f"    {tail}"]


def render(source: Source) -> str:
    files = [(path, read_queries(path)) for path in source.sql_files()]
    queries = [query for _, found in files for query in found]
    typing_names = ["Protocol"]
    if any(_SHAPES[q.operation][1] == "Any" for q in queries):
        typing_names.insert(0, "Any")
    abc_names = []
    if any(q.operation is SQLOperationType.SELECT for q in queries):
        abc_names.append("AsyncIterator")
    if any(q.operation is SQLOperationType.INSERT_UPDATE_DELETE_MANY for q in queries):
        abc_names += ["Iterable", "Mapping"]
    lines = [
        f'"""{source.summary}"""',
        "",
        "# Generated by `python -m devtools.query_types` from the `-- name:` lines; do not edit:",
        "# regenerate it after adding or changing a query (tests/test_query_types.py checks).",
        "",
    ]
    if abc_names:
        lines.append(f"from collections.abc import {', '.join(sorted(abc_names))}")
    lines += [
        f"from typing import {', '.join(typing_names)}",
        "",
        "from asyncpg import Connection, Record",
        "",
        "",
        "# Wrapped by the generator, which keeps its lines within the line length.",
        "# fmt: off",
        f"class {source.protocol}(Protocol):",
    ]
    for path, found in files:
        if not found:
            continue
        if not lines[-1].startswith("class "):
            lines.append("")
        lines.append(f"    # {path.relative_to(ROOT)}")
        for query in found:
            lines += _method(query)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.query_types", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which files are stale")
    args = parser.parse_args(argv)
    stale = []
    for source in SOURCES:
        text = render(source)
        if source.module.is_file() and source.module.read_text() == text:
            continue
        stale.append(source.module.relative_to(ROOT))
        if not args.check:
            source.module.write_text(text)
    for module in stale:
        print(f"{'stale' if args.check else 'wrote'} {module}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
