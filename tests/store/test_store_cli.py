"""The history commands through the real Typer app: tables, ``--json``, unknown ids,
dates, bad database files, and model output shown inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.runtime.events import AgentStatus, RunStatus
from agentops.store import load_resume_state
from agentops.store.location import locate
from agentops.store.stores import open_database
from tests.support.postgres import PASSWORD, PostgresServer
from tests.support.store import (
    T0,
    failed,
    is_postgres,
    make_sketch_database,
    not_run,
    record,
    succeeded,
    workflow_of,
)

HOSTILE = (
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x07click\x1b]8;;\x07 \x1b]52;c;cm0gLXJmIH4=\x07"
    "\x9b2J [bold red]markup stays literal[/bold red] \u202eevil"
)
LITERAL = "[bold red]markup stays literal[/bold red]"
DAY = 86_400.0


@dataclass
class History:
    db: str  # a SQLite file or a PostgreSQL URL (with its password)
    research: list[int]  # workflow run ids, oldest first
    digest: int


@pytest.fixture
def history(db: str) -> Iterator[History]:
    """Three runs of "research" (the last one resumed the second) and one of "digest", on three
    days; in SQLite, then in PostgreSQL."""
    research = workflow_of("research", ["gather", "write"], cost_cap=1.0)
    digest = workflow_of("digest", ["summarize"])
    with open_database(db) as store:
        first = record(
            store,
            research,
            [
                succeeded("gather", "first sources", cost=0.01),
                succeeded("write", "first draft", cost=0.02),
            ],
            RunStatus.SUCCEEDED,
        )
        second = record(
            store,
            research,
            [
                succeeded("gather", HOSTILE, at=T0 + DAY, failures=1, cost=0.03),
                failed("write", "BadRequestError: 400 [red]too long[/red]", at=T0 + DAY),
            ],
            RunStatus.FAILED,
            at=T0 + DAY,
        )
        state = load_resume_state(store, second)
        third = record(
            store,
            research,
            [succeeded("write", "final draft", at=T0 + 2 * DAY, cost=0.04)],
            RunStatus.SUCCEEDED,
            resumed_from=second,
            reused=state.succeeded,
            at=T0 + 2 * DAY,
        )
        other = record(
            store,
            digest,
            [
                not_run(
                    "summarize", AgentStatus.CANCELLED, "interrupted by SIGTERM", at=T0 + 2 * DAY
                )
            ],
            RunStatus.INTERRUPTED,
            at=T0 + 2 * DAY,
        )
    yield History(db, [first, second, third], other)


def invoke(*args: str | Path | int) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert PASSWORD not in result.output  # a PostgreSQL URL's password is never printed
    return result


def json_of(*args: str | Path | int) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_runs(history: History) -> None:
    result = invoke("list-runs", "--db", history.db)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "run",
        "workflow",
        "agent",
        "status",
        "tokens",
        "cost",
        "output",
    ]
    body = [line.split() for line in lines[2:]]
    assert [(row[0], row[2], row[3], row[4]) for row in body] == [
        ("7", "digest", "summarize", "cancelled"),
        ("6", "research", "write", "succeeded"),
        ("5", "research", "gather", "reused"),
        ("4", "research", "write", "failed"),
        ("3", "research", "gather", "succeeded"),
        ("2", "research", "write", "succeeded"),
        ("1", "research", "gather", "succeeded"),
    ]
    assert lines[3].rstrip().endswith("final draft")
    assert lines[5].rstrip().endswith("BadRequestErro…")  # cut to fit 80 columns

    listed = json_of("list-runs", "--limit", "2", "--db", history.db)
    assert [(r["id"], r["agent"], r["status"]) for r in listed] == [
        (7, "summarize", "cancelled"),
        (6, "write", "succeeded"),
    ]
    assert list(listed[1]) == [
        "id",
        "workflow_run_id",
        "workflow",
        "agent",
        "name",
        "status",
        "model",
        "provider",
        "input_tokens",
        "output_tokens",
        "tokens_estimated",
        "cost",
        "retries",
        "started_at",
        "finished_at",
        "duration",
        "reused",
        "reused_from_run_id",
        "output",
        "error",
        "value",
        "item_index",
        "item",
        "item_count",
        "skip_cause",
        "decision",
        "iteration",
        "iterations",
        "loop",
        "loop_end",
        "node",
    ]
    assert (
        listed[1]["output"] == "final draft"
        and listed[1]["value"] is None
        and listed[1]["cost"] == pytest.approx(0.04)
    )


def test_show_runs_of_one_workflow(history: History) -> None:
    result = invoke("show-runs", "--workflow", "research", "--limit", "3", "--db", history.db)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Agent run ") == 3 and "digest" not in result.stdout
    assert (
        "final draft" in result.stdout
        and "BadRequestError: 400 [red]too long[/red]" in result.stdout
    )
    assert "succeeded (reused) · gpt-4o-mini · from agent run 3" in result.stdout
    assert [r["id"] for r in json_of("show-runs", "-w", "research", "--db", history.db)] == [
        6,
        5,
        4,
        3,
        2,
        1,
    ]

    typo = invoke("show-runs", "--workflow", "reserch", "--db", history.db)
    assert typo.exit_code == 2
    assert (
        typo.stderr.strip()
        == f"error: no runs of workflow 'reserch' in {locate(history.db)}; did you mean 'research'?"
    )


def test_list_workflow_runs(history: History) -> None:
    result = invoke("list-workflow-runs", "--db", history.db)
    assert result.exit_code == 0, result.output
    body = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [(row[0], row[1], row[2]) for row in body] == [
        ("4", "digest", "interrupted"),
        ("3", "research", "succeeded"),
        ("2", "research", "failed"),
        ("1", "research", "succeeded"),
    ]
    assert body[1][-3:] == ["2/2", "$0.0400", "2"]  # agents ok, cost, resumed from

    listed = json_of(
        "list-workflow-runs", "--workflow", "research", "--limit", "2", "--db", history.db
    )
    assert [(r["id"], r["status"], r["resumed_from"]) for r in listed] == [
        (3, "succeeded", 2),
        (2, "failed", None),
    ]
    assert listed[1]["cost"] == pytest.approx(0.03) and listed[1]["cost_cap"] == 1.0
    assert (listed[1]["agents_total"], listed[1]["agents_succeeded"], listed[1]["duration"]) == (
        2,
        1,
        10.0,
    )


def test_show_workflow_run(history: History) -> None:
    result = invoke("show-workflow-run", history.research[1], "--db", history.db)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Workflow run 2 · research · failed\n")
    assert "started 2024-05-02 12:00:00 UTC · took 10.0s" in out
    assert "cost $0.0300 ($1.00 cap) · tokens 100+50" in out
    assert "attempt 1 failed after 0.5s (HTTP 503): ServerError: 503 upstream busy" in out
    assert "failed: BadRequestError: 400 [red]too long[/red]" in out

    shown = json_of("show-workflow-run", history.research[2], "--db", history.db)
    assert (shown["id"], shown["status"], shown["resumed_from"], shown["inputs"]) == (
        3,
        "succeeded",
        2,
        {},
    )
    assert (
        shown["definition"].startswith("name: research") and len(shown["definition_sha256"]) == 64
    )
    gather, write = shown["agents"]
    assert (
        gather["agent"],
        gather["reused"],
        gather["reused_from_run_id"],
        gather["attempts"],
    ) == ("gather", True, 3, [])
    assert write["output"] == "final draft" and write["prompt"] == "[user]\ndo write"
    assert [(a["number"], a["status"]) for a in write["attempts"]] == [(1, "succeeded")]


def test_show_run(history: History) -> None:
    result = invoke("show-run", "3", "--db", history.db)
    assert result.exit_code == 0, result.output
    assert (
        "Agent run 3 · gather of research · succeeded · gpt-4o-mini · 100+50 tokens · $0.0300"
        in result.stdout
    )
    assert "2 attempts" in result.stdout and "[user]\ndo gather" in result.stdout

    shown = json_of("show-run", "3", "--db", history.db)
    assert (
        shown["prompt"] == "[user]\ndo gather" and shown["output"] == HOSTILE
    )  # JSON keeps the data as it was
    assert [(a["number"], a["status"], a["http_status"]) for a in shown["attempts"]] == [
        (1, "failed", 503),
        (2, "succeeded", None),
    ]


def test_unknown_ids_name_the_latest(
    history: History, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    empty: str | Path = tmp_path / "empty.db"
    if is_postgres(history.db):  # an empty database of the same server
        server: PostgresServer = request.getfixturevalue("postgres_server")
        empty = server.url(server.create_database())
    for command, what, latest in (
        ("show-workflow-run", "workflow run", 4),
        ("show-run", "agent run", 7),
    ):
        result = invoke(command, "42", "--db", history.db)
        assert result.exit_code == 2
        shown = locate(history.db)  # a URL without its password
        assert result.stderr.strip() == f"error: no {what} 42; latest is {latest} (in {shown})"
        result = invoke(command, "1", "--db", empty)
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: no {what}s recorded yet in {locate(empty)}"
    assert (
        invoke("show-run", "0", "--db", history.db).exit_code == 2
    )  # ids start at 1: a usage error


def test_empty_or_missing_history_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    """SQLite only: a file that does not exist (an empty PostgreSQL database:
    test_unknown_ids_name_the_latest)."""
    missing = tmp_path / "nothing-yet.db"
    result = invoke("list-runs", "--db", missing)
    assert (
        result.exit_code == 0
        and result.stdout.strip() == f"No agent runs recorded yet in {missing}."
    )
    assert (
        invoke("list-workflow-runs", "--db", missing).stdout.strip()
        == f"No workflow runs recorded yet in {missing}."
    )
    assert (
        json_of("list-runs", "--db", missing) == []
        and json_of("list-workflow-runs", "--db", missing) == []
    )
    assert json_of("costs", "--db", missing)["groups"] == []
    assert not missing.exists()


def test_agentops_db_environment_variable_chooses_the_file(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTOPS_DB", str(history.db))
    assert [r["id"] for r in json_of("list-workflow-runs")] == [4, 3, 2, 1]


def test_costs_grouped_and_between_dates(history: History) -> None:
    by_workflow = json_of("costs", "--db", history.db)
    assert by_workflow["by"] == "workflow" and by_workflow["since"] is None
    assert [
        (g["key"], g["workflow_runs"], g["agent_runs"], round(g["cost"], 4))
        for g in by_workflow["groups"]
    ] == [
        ("digest", 1, 1, 0.0),
        ("research", 3, 5, 0.1),  # the reused row is not counted: run 2 paid for it
    ]
    assert (
        by_workflow["total"]["cost"] == pytest.approx(0.1)
        and by_workflow["total"]["input_tokens"] == 400
    )

    by_day = json_of("costs", "--by", "day", "--db", history.db)
    assert [(g["key"], round(g["cost"], 4)) for g in by_day["groups"]] == [
        ("2024-05-01", 0.03),
        ("2024-05-02", 0.03),
        ("2024-05-03", 0.04),
    ]
    window = json_of(
        "costs",
        "--by",
        "model",
        "--since",
        "2024-05-02",
        "--until",
        "2024-05-02",
        "--db",
        history.db,
    )
    assert [(g["key"], round(g["cost"], 4), g["workflow_runs"]) for g in window["groups"]] == [
        ("openai:gpt-4o-mini", 0.03, 1)
    ]
    assert (window["since"], window["until"]) == ("2024-05-02", "2024-05-02")

    table = invoke("costs", "--by", "day", "--since", "2024-05-02", "--db", history.db)
    assert table.exit_code == 0, table.output
    assert table.stdout.startswith("Spend by day, 2024-05-02 to today (UTC days)\n")
    assert table.stdout.splitlines()[-1].split() == ["total", "3", "4", "200+100", "$0.0700"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--since", "May 1st"),
            "error: --since 'May 1st' is not a date; use YYYY-MM-DD, e.g. --since 2024-05-01",
        ),
        (
            ("--since", "2024-05-03", "--until", "2024-05-01"),
            "error: --since 2024-05-03 is after --until 2024-05-01; swap them",
        ),
    ],
)
def test_costs_rejects_bad_dates(history: History, args: tuple[str, ...], message: str) -> None:
    result = invoke("costs", *args, "--db", history.db)
    assert result.exit_code == 2 and result.stderr.strip() == message


def test_a_broken_database_file_is_one_clear_line(tmp_path: Path) -> None:
    """SQLite only: a file that is not a database."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all\x00" * 200)
    for command in (("list-runs",), ("show-workflow-run", "1"), ("costs",)):
        result = invoke(*command, "--db", garbage)
        assert result.exit_code == 2
        assert result.stderr.startswith(
            f"error: {garbage} is not a usable agentops history database"
        )
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_a_sketch_era_file_is_listed(tmp_path: Path) -> None:
    """SQLite only: the sketch wrote SQLite files."""
    db = tmp_path / "agentops.db"
    make_sketch_database(db)
    assert [(r["id"], r["status"]) for r in json_of("list-workflow-runs", "--db", db)] == [
        (2, "interrupted"),
        (1, "failed"),
    ]
    result = invoke("show-workflow-run", "1", "--db", db)
    assert (
        result.exit_code == 0
        and "three requests" in result.stdout
        and "failed: timeout" in result.stdout
    )


def test_model_output_is_shown_inert(history: History) -> None:
    for command in (
        ("list-runs",),
        ("show-runs", "--workflow", "research"),
        ("show-workflow-run", "2"),
        ("show-workflow-run", "3"),
        ("show-run", "3"),
        ("show-run", "5"),
    ):
        result = invoke(*command, "--db", history.db)
        assert result.exit_code == 0, result.output
        for forbidden in ("\x1b", "\x9b", "\x07", "\u202e"):
            assert forbidden not in result.stdout, (command, forbidden)
    shown = invoke("show-run", "3", "--db", history.db).stdout
    assert f"red click  {LITERAL} evil" in shown  # escapes gone, markup kept as text
    raw = invoke("show-run", "3", "--json", "--db", history.db).stdout
    assert "\x1b" not in raw and "\\u001b[31m" in raw  # JSON escapes control characters
