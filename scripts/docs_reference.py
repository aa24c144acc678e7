"""The manual's generated references, so they cannot drift from the code.

- ``docs/reference/cli.md``: every command's ``--help``, walked from the Typer app.
- ``docs/reference/tables.md``: every table of the history as a fresh file gets it,
  from the migrations applied to an empty in-memory database.

``python scripts/docs_reference.py`` rewrites both; ``--check`` only says which are
stale (exit 1). tests/test_docs.py fails when a checked-in file differs.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentops.store.migrations import Migration

ROOT = Path(__file__).resolve().parent.parent
REFRESH = ".venv/bin/python scripts/docs_reference.py"
# A fixed width, so the help text wraps the same on every machine and terminal.
HELP_WIDTH = 100


def _generated_note(source: str) -> str:
    return f"<!-- Generated from {source} by `{REFRESH}`: edit the source, not this file. -->"


def cli_reference() -> str:
    """Markdown with the ``--help`` of ``agentops`` and of each of its commands, in the app's order."""
    import typer
    from typer.core import TyperGroup
    from typer.testing import CliRunner

    from agentops.cli.app import app

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup), "agentops.cli:app has commands, so Typer makes it a group"
    names = group.list_commands(typer.Context(group))
    runner = CliRunner()

    def help_text(*args: str) -> str:
        result = runner.invoke(
            app,
            [*args, "--help"],
            prog_name="agentops",
            terminal_width=HELP_WIDTH,
            env={"AGENTOPS_DB": None, "COLUMNS": str(HELP_WIDTH)},
        )
        if result.exit_code != 0:
            raise RuntimeError(
                f"agentops {' '.join(args)} --help exited {result.exit_code}: {result.output}"
            )
        return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())

    lines = [
        "# Commands",
        "",
        _generated_note("the Typer app (`agentops.cli:app`)"),
        "",
        "Every command's `--help`, exactly as `agentops` prints it. What the commands show and",
        "their JSON output are described in [Command line](../cli.md).",
        "",
        "## agentops",
        "",
        "```text",
        help_text(),
        "```",
    ]
    for name in names:
        lines += ["", f"## {name}", "", "```text", help_text(name), "```"]
        command = group.get_command(typer.Context(group), name)
        if isinstance(command, TyperGroup):  # a group (db, budget, cache): each command too
            for sub in command.list_commands(typer.Context(command)):
                lines += ["", f"## {name} {sub}", "", "```text", help_text(name, sub), "```"]
    return "\n".join(lines) + "\n"


def tables_reference() -> str:
    """Markdown with every table's columns and indexes after all migrations, and the migration that added each column."""
    from agentops.store.migrations import MIGRATIONS, migrate
    from agentops.store.sqlite import Store

    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(Store(Path(":memory:"), connection))
        added_by = _columns_added_by(MIGRATIONS)
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        lines = [
            "# Tables",
            "",
            _generated_note("`src/agentops/store/migrations.py`"),
            "",
            "The history's schema as a new file gets it: every migration applied to an empty database.",
            "What the columns mean: [History database](../history.md#tables).",
            "",
            "## Migrations",
            "",
            "| Number | Name |",
            "|---|---|",
            *(f"| {m.number} | `{m.name}` |" for m in MIGRATIONS),
        ]
        for table in tables:
            lines += ["", *_table_section(connection, table, added_by)]
        return "\n".join(lines) + "\n"
    finally:
        connection.close()


def _columns_added_by(migrations: tuple[Migration, ...]) -> dict[tuple[str, str], str]:
    """``(table, column)`` → the migration that added it, by replaying them one at a time."""
    replay = sqlite3.connect(":memory:", isolation_level=None)
    added: dict[tuple[str, str], str] = {}
    try:
        for migration in migrations:
            for statement in migration.statements:
                replay.execute(statement)
            label = f"{migration.number} `{migration.name}`"
            for (table,) in replay.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall():
                for column in replay.execute(f"PRAGMA table_info({table})").fetchall():
                    added.setdefault((table, column[1]), label)
    finally:
        replay.close()
    return added


def _table_section(
    connection: sqlite3.Connection, table: str, added_by: dict[tuple[str, str], str]
) -> list[str]:
    references = {
        row[3]: f"`{row[2]}.{row[4]}`"
        + (f" (on delete {row[6].lower()})" if row[6] != "NO ACTION" else "")
        for row in connection.execute(f"PRAGMA foreign_key_list({table})")
    }
    lines = [
        f"## `{table}`",
        "",
        "| Column | Type | Not null | Default | Key | Added by migration |",
        "|---|---|---|---|---|---|",
    ]
    for _cid, name, kind, not_null, default, primary_key in connection.execute(
        f"PRAGMA table_info({table})"
    ):
        key = "primary key" if primary_key else references.get(name, "")
        lines.append(
            f"| `{name}` | {kind or ''} | {'yes' if not_null else ''} | {'' if default is None else f'`{default}`'} "
            f"| {key} | {added_by.get((table, name), '')} |"
        )
    indexes = []
    for _seq, index, unique, _origin, _partial in connection.execute(f"PRAGMA index_list({table})"):
        columns = ", ".join(row[2] for row in connection.execute(f"PRAGMA index_info({index})"))
        name = "unique" if index.startswith("sqlite_autoindex") else f"`{index}`"
        if unique and not index.startswith("sqlite_autoindex"):
            name += " (unique)"
        indexes.append(f"- {name} on ({columns})")
    if indexes:
        lines += ["", "Indexes:", "", *sorted(indexes)]
    return lines


REFERENCES: dict[str, Callable[[], str]] = {
    "docs/reference/cli.md": cli_reference,
    "docs/reference/tables.md": tables_reference,
}


def stale() -> list[str]:
    """The reference files whose checked-in text differs from what the code generates now."""
    return [
        path
        for path, generate in REFERENCES.items()
        if not (ROOT / path).exists() or (ROOT / path).read_text(encoding="utf-8") != generate()
    ]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        outdated = stale()
        for path in outdated:
            print(f"{path} is out of date: run {REFRESH}", file=sys.stderr)
        return 1 if outdated else 0
    if argv:
        print(f"usage: {REFRESH} [--check]", file=sys.stderr)
        return 2
    for path, generate in REFERENCES.items():
        (ROOT / path).write_text(generate(), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
